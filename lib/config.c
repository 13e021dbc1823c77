/*
 * config.c - queue.conf: durations, defaults, validation, loading.
 *
 * The file is INI read by inih; every key is checked here and an error
 * names the file, the line and the key.  inih reports only the first bad
 * line, so a line-counting reader tells the handler where it is.
 * Defaults come from SPEC 3 (SQS visibility timeout and receive count,
 * beanstalkd, RabbitMQ).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <libutil.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MS_PER_S	1000LL
#define MAX_ATTEMPTS	10000
#define MIN_POLL_INTERVAL_MS 10		/* shorter would be busy polling */
#define EDIT_WAIT_MS	10000		/* for another editor of queue.conf */

void
sq_conf_defaults(struct sq_conf *c)
{
	c->max_attempts = 5;
	c->lease_ms = 5 * 60 * MS_PER_S;
	c->retry_delay_ms = 30 * MS_PER_S;
	c->retry_max_delay_ms = 3600 * MS_PER_S;
	c->ttl_ms = 0;
	c->durability = SQ_DURABILITY_FSYNC;
	c->job_timeout_ms = 0;
	c->dedup_window_ms = 5 * 60 * MS_PER_S;	/* SQS FIFO: 5 min */
	c->poll_interval_ms = MS_PER_S;		/* SPEC 2, "Waiting" */
	c->max_messages = 0;
	c->max_bytes = 0;
	c->overflow = SQ_OVERFLOW_REJECT;
	c->min_free_disk = 0;
	c->archive = 0;
	c->retention_ms = 0;
	c->retention_bytes = 0;
	c->rate.count = 0;
	c->rate.interval_ms = 0;
	memset(c->dead_letter, 0, sizeof(c->dead_letter));
}

/*
 * A size: decimal bytes, or with a k/M/G/T suffix (libbsd
 * expand_number(3)).  expand_number reads the number with strtoumax(3)
 * in base 0, which takes blanks, a sign ("-1" is 2^64 - 1), hexadecimal
 * and octal ("010" is 8): only digits may start a size, and leading
 * zeros are skipped so that the number is read as decimal.
 */
static int
size_key(uint64_t *dst, const char *value, char *why, size_t whysize)
{
	const char *s = value;

	while (s[0] == '0' && isdigit((unsigned char)s[1]))
		s++;
	if (!isdigit((unsigned char)s[0]) || (s[0] == '0' &&
	    (s[1] == 'x' || s[1] == 'X')) || expand_number(s, dst) == -1) {
		snprintf(why, whysize, "%s: not a size (like 500, 64k, 10M, "
		    "2G)", value);
		return -1;
	}
	return 0;
}

static int
duration_key(int64_t *dst, const char *value, int64_t min, char *why,
    size_t whysize)
{
	int64_t ms;

	if (sq_duration_parse(value, &ms) == -1) {
		snprintf(why, whysize, "%s: not a duration (like 500ms, 30s, "
		    "5m, 2h, 4d)", value);
		return -1;
	}
	if (ms < min) {
		snprintf(why, whysize, "%s: must be at least %lldms", value,
		    (long long)min);
		return -1;
	}
	*dst = ms;
	return 0;
}

int
sq_conf_set(struct sq_conf *c, const char *key, const char *value,
    char *why, size_t whysize)
{
	const char *errstr;
	long long n;
	int rc = 0;

	/* A refused value leaves c as it was: parse first, then assign. */
	if (strcmp(key, "max_attempts") == 0) {
		n = strtonum(value, 1, MAX_ATTEMPTS, &errstr);
		if (errstr != NULL) {
			snprintf(why, whysize, "%s: must be a number from 1 "
			    "to %d", value, MAX_ATTEMPTS);
			rc = -1;
		} else
			c->max_attempts = (unsigned)n;
	} else if (strcmp(key, "lease") == 0)
		rc = duration_key(&c->lease_ms, value, MS_PER_S, why, whysize);
	else if (strcmp(key, "retry_delay") == 0)
		rc = duration_key(&c->retry_delay_ms, value, 0, why, whysize);
	else if (strcmp(key, "retry_max_delay") == 0)
		rc = duration_key(&c->retry_max_delay_ms, value, 0, why,
		    whysize);
	else if (strcmp(key, "job_timeout") == 0)
		rc = duration_key(&c->job_timeout_ms, value, 0, why, whysize);
	else if (strcmp(key, "dedup_window") == 0)
		rc = duration_key(&c->dedup_window_ms, value, 0, why, whysize);
	else if (strcmp(key, "poll_interval") == 0)
		rc = duration_key(&c->poll_interval_ms, value,
		    MIN_POLL_INTERVAL_MS, why, whysize);
	else if (strcmp(key, "max_messages") == 0) {
		n = strtonum(value, 0, LLONG_MAX, &errstr);
		if (errstr != NULL) {
			snprintf(why, whysize, "%s: must be a count (0 = no "
			    "bound)", value);
			rc = -1;
		} else
			c->max_messages = (uint64_t)n;
	} else if (strcmp(key, "max_bytes") == 0)
		rc = size_key(&c->max_bytes, value, why, whysize);
	else if (strcmp(key, "min_free_disk") == 0)
		rc = size_key(&c->min_free_disk, value, why, whysize);
	else if (strcmp(key, "archive") == 0) {
		if (strcmp(value, "yes") == 0)
			c->archive = 1;
		else if (strcmp(value, "no") == 0)
			c->archive = 0;
		else {
			snprintf(why, whysize, "%s: must be yes or no", value);
			rc = -1;
		}
	} else if (strcmp(key, "retention") == 0)
		rc = duration_key(&c->retention_ms, value, 0, why, whysize);
	else if (strcmp(key, "retention_bytes") == 0)
		rc = size_key(&c->retention_bytes, value, why, whysize);
	else if (strcmp(key, "overflow") == 0) {
		if (strcmp(value, "reject") == 0)
			c->overflow = SQ_OVERFLOW_REJECT;
		else if (strcmp(value, "block") == 0)
			c->overflow = SQ_OVERFLOW_BLOCK;
		else if (strcmp(value, "drop-oldest") == 0)
			c->overflow = SQ_OVERFLOW_DROP_OLDEST;
		else {
			snprintf(why, whysize, "%s: must be reject, block or "
			    "drop-oldest", value);
			rc = -1;
		}
	}
	else if (strcmp(key, "ttl") == 0)
		rc = duration_key(&c->ttl_ms, value, 0, why, whysize);
	else if (strcmp(key, "rate") == 0) {
		struct sq_rate r;

		if (sq_rate_parse(value, &r) == -1) {
			snprintf(why, whysize, "%s: not a rate (like 50/s, "
			    "100/m, 10/h, 5/100ms; 0 = none)", value);
			rc = -1;
		} else {
			/* Field by field: r's padding is not ours to copy. */
			c->rate.count = r.count;
			c->rate.interval_ms = r.interval_ms;
		}
	}
	else if (strcmp(key, "dead_letter") == 0) {
		/*
		 * A queue NAME (SPEC 1) beside this one, never a path, as
		 * the bindings and alternate of an exchange: a spool moved
		 * or mounted elsewhere keeps its dead letters together.
		 * "" (or "none") puts them in dead/ again.  The field is
		 * cleared whole, so that one setting is always the same
		 * bytes, whatever was set before (settings compare whole).
		 */
		if (value[0] == '\0' || strcmp(value, "none") == 0)
			memset(c->dead_letter, 0, sizeof(c->dead_letter));
		else if (!sq_queue_name_valid(value)) {
			snprintf(why, whysize, "%s: not a queue name "
			    "([A-Za-z0-9][A-Za-z0-9._-]{0,127}; no paths)",
			    value);
			rc = -1;
		} else {
			memset(c->dead_letter, 0, sizeof(c->dead_letter));
			strlcpy(c->dead_letter, value, sizeof(c->dead_letter));
		}
	}
	else if (strcmp(key, "durability") == 0) {
		if (strcmp(value, "none") == 0)
			c->durability = SQ_DURABILITY_NONE;
		else if (strcmp(value, "fsync") == 0)
			c->durability = SQ_DURABILITY_FSYNC;
		else {
			snprintf(why, whysize, "%s: must be none or fsync",
			    value);
			rc = -1;
		}
	} else {
		snprintf(why, whysize, "unknown key");
		rc = -1;
	}
	if (rc == -1)
		errno = EINVAL;
	return rc;
}

/* Every key of queue.conf (SPEC 3), in the order show prints them. */
static const char *const conf_keys[] = {
	"max_attempts", "lease", "retry_delay", "retry_max_delay", "ttl",
	"durability", "job_timeout", "dedup_window", "max_messages",
	"max_bytes", "overflow", "min_free_disk", "archive", "retention",
	"retention_bytes", "poll_interval", "rate", "dead_letter", NULL,
};

/*
 * Lines of queue.conf, read whole (getline) so that line numbers count
 * the lines of the file and inih sees each line once.  inih as Debian
 * builds it (INI_MAX_LINE 200, no realloc) cuts a longer line and parses
 * its rest as a line of its own, which would let the end of a long
 * comment set a key.  So each line is handed on without its inline
 * comment (';' after a blank, inih's rule for key lines, here for
 * continuation lines too, whatever their length) and blanks around it,
 * a comment or blank line as ";"; what is still too long for inih, and
 * a line with a NUL byte, is refused.
 */
struct lines {
	FILE		*fp;
	char		*buf;
	size_t		 cap;
	int		 line;		/* lines read so far */
	int		 badline;	/* first line refused here, or 0 */
	const char	*bad;		/* why */
	int		 indented;	/* the last line starts with a blank */
};

/* The start of the inline comment of s (the blank before ';'), or NULL. */
static char *
inline_comment(char *s)
{
	char *p;

	for (p = s; *p != '\0'; p++)
		if (p > s && *p == ';' && isspace((unsigned char)p[-1]))
			return p - 1;
	return NULL;
}

static void
line_refuse(struct lines *r, const char *why)
{
	if (r->badline == 0) {
		r->badline = r->line;
		r->bad = why;
	}
}

/* An ini_reader over r: the next whole line, as inih may take it. */
static char *
line_read(struct lines *r, char *buf, int size)
{
	ssize_t len;
	char *s, *t, *cut;
	int indent;

	if ((len = getline(&r->buf, &r->cap, r->fp)) == -1)
		return NULL;
	r->line++;
	s = r->buf;
	if ((size_t)len != strlen(s)) {
		line_refuse(r, "a NUL byte in the line");
		strlcpy(buf, ";", (size_t)size);
		return buf;
	}
	t = s + strspn(s, " \t\r\f\v");
	if ((cut = inline_comment(t)) == NULL)
		cut = t + strlen(t);
	while (cut > t && isspace((unsigned char)cut[-1]))
		cut--;
	/* One blank of its indent keeps a continuation line one. */
	indent = t > s;
	r->indented = indent;
	if (*t == ';' || *t == '#' || cut == t)
		strlcpy(buf, ";", (size_t)size);
	else if (indent + (cut - t) + 2 <= size)
		snprintf(buf, (size_t)size, "%s%.*s\n", indent ? " " : "",
		    (int)(cut - t), t);
	else {
		line_refuse(r, "line too long");
		strlcpy(buf, ";", (size_t)size);
	}
	return buf;
}

struct loader {
	struct sq_conf	*conf;
	struct lines	 in;
	int		 dirfd;		/* the queue's directory */
	int		 errline;	/* first line the handler refused */
	char		 why[256];
	int		 seen[sizeof(conf_keys) / sizeof(conf_keys[0])];
					/* the line that set each key, or 0 */
};

static char *
counting_reader(char *buf, int size, void *arg)
{
	struct loader *l = arg;

	return line_read(&l->in, buf, size);
}

/*
 * 1 when key is dead_letter and names the queue whose queue.conf this
 * is (the same directory beside it), with the reason in why: its dead
 * letters would come back to be claimed again for ever.  A symlink in
 * the name's place is not followed, as the move does not follow it
 * (SPEC 2, "Hostile and broken surroundings"): it is no queue, and the
 * dead letters stay in dead/, instead of the queue failing to load.
 */
static int
self_dead_letter(struct loader *l, const char *key, char *why,
    size_t whysize)
{
	char rel[SQ_QUEUE_NAME_MAX + 4];
	struct stat a, b;

	if (strcmp(key, "dead_letter") != 0 || l->conf->dead_letter[0] == '\0')
		return 0;
	snprintf(rel, sizeof(rel), "../%s", l->conf->dead_letter);
	if (fstat(l->dirfd, &a) == -1 || fstatat(l->dirfd, rel, &b,
	    AT_SYMLINK_NOFOLLOW) == -1 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return 0;
	snprintf(why, whysize, "%s: is this queue itself",
	    l->conf->dead_letter);
	return 1;
}

static int
handler(void *arg, const char *section, const char *key, const char *value)
{
	struct loader *l = arg;
	char why[200];
	size_t i;

	if (l->errline != 0)
		return 0;
	if (strcmp(section, "queue") != 0) {
		/* Each key belongs under [queue]: say so, wherever it is. */
		if (section[0] == '\0')
			snprintf(l->why, sizeof(l->why), "%s: before any "
			    "section: every key must be under [queue] (qadmin "
			    "config set moves it there)", key);
		else
			snprintf(l->why, sizeof(l->why), "%s: in section [%s]: "
			    "every key must be under [queue]", key, section);
		l->errline = l->in.line;
		return 0;
	}
	if (sq_conf_set(l->conf, key, value, why, sizeof(why)) == -1 ||
	    self_dead_letter(l, key, why, sizeof(why))) {
		snprintf(l->why, sizeof(l->why), "%s: %s", key, why);
		l->errline = l->in.line;
		return 0;
	}
	/*
	 * A key set twice is an error (SPEC 3), not "the last one wins";
	 * a continuation line (indented) goes on with the key above.
	 */
	for (i = 0; conf_keys[i] != NULL; i++)
		if (strcmp(key, conf_keys[i]) == 0)
			break;
	if (conf_keys[i] != NULL && !l->in.indented) {
		if (l->seen[i] != 0) {
			snprintf(l->why, sizeof(l->why), "%s: set twice (also "
			    "on line %d)", key, l->seen[i]);
			l->errline = l->in.line;
			return 0;
		}
		l->seen[i] = l->in.line;
	}
	return 1;
}

/*
 * "PATH: not a regular file (KIND)" for an entry name of dirfd that
 * sq_open_regular refused (e: SQ_ENOTREG), else "PATH: strerror(e)".
 */
static void
not_regular(char *err, size_t errsize, int dirfd, const char *name,
    const char *path, int e)
{
	struct stat st;

	if (e == SQ_ENOTREG && fstatat(dirfd, name, &st,
	    AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
		snprintf(err, errsize, "%s: not a regular file (%s)", path,
		    sq_mode_name(st.st_mode));
	else
		snprintf(err, errsize, "%s: %s", path, e == SQ_ENOTREG ?
		    "not a regular file" : strerror(e));
}

/* sq_conf_load of the file name in dirfd, such as a new queue.conf. */
static int
load_file(struct sq_conf *c, int dirfd, const char *name, const char *path,
    char *err, size_t errsize)
{
	struct loader l;
	struct sq_conf next = *c;
	struct stat st;
	int fd, rc, saved;

	memset(&l, 0, sizeof(l));
	memset(&st, 0, sizeof(st));
	l.conf = &next;
	l.dirfd = dirfd;
	fd = sq_open_regular(dirfd, name, O_RDONLY, 0, &st);
	if (fd == -1 && errno == ENOENT)
		return 0;
	if (fd == -1 || (l.in.fp = fdopen(fd, "r")) == NULL) {
		saved = errno;
		if (fd != -1)
			close(fd);
		not_regular(err, errsize, dirfd, name, path, saved);
		errno = saved;
		return -1;
	}
	rc = ini_parse_stream(counting_reader, &l, handler, &l);
	saved = ferror(l.in.fp) ? EIO : EINVAL;
	fclose(l.in.fp);
	free(l.in.buf);
	if (rc == 0 && l.in.badline == 0) {
		*c = next;
		return 0;
	}
	if (l.in.badline != 0 && (rc <= 0 || rc >= l.in.badline)) {
		snprintf(err, errsize, "%s:%d: %s", path, l.in.badline,
		    l.in.bad);
		rc = 1;
	} else if (rc > 0 && rc == l.errline)
		snprintf(err, errsize, "%s:%d: %s", path, rc, l.why);
	else if (rc > 0)
		snprintf(err, errsize, "%s:%d: not a key = value line or "
		    "[section]", path, rc);
	else
		snprintf(err, errsize, "%s: %s", path, strerror(saved));
	errno = rc > 0 ? EINVAL : saved;
	return -1;
}

int
sq_conf_load(struct sq_conf *c, int dirfd, const char *path, char *err,
    size_t errsize)
{
	return load_file(c, dirfd, SQ_CONF_FILE, path, err, errsize);
}

int64_t
sq_conf_backoff_ms(const struct sq_conf *c, unsigned attempt)
{
	int64_t d = c->retry_delay_ms, span;
	unsigned i;

	for (i = 1; i < attempt && d < c->retry_max_delay_ms; i++)
		d *= 2;
	if (d > c->retry_max_delay_ms)
		d = c->retry_max_delay_ms;
	/* +-20% jitter so that retries of one failure do not stampede. */
	span = d / 5;
	if (span > 0)
		d += (int64_t)arc4random_uniform((uint32_t)
		    (span * 2 + 1 > UINT32_MAX ? UINT32_MAX : span * 2 + 1)) -
		    span;
	return d;
}

/* ------------------------------------------------------------- editing */

const char *const *
sq_conf_keys(void)
{
	return conf_keys;
}

int
sq_conf_get(const struct sq_conf *c, const char *key, char *buf, size_t size)
{
	const int64_t *d = NULL;

	if (strcmp(key, "max_attempts") == 0)
		snprintf(buf, size, "%u", c->max_attempts);
	else if (strcmp(key, "durability") == 0)
		strlcpy(buf, c->durability == SQ_DURABILITY_NONE ? "none" :
		    "fsync", size);
	else if (strcmp(key, "lease") == 0)
		d = &c->lease_ms;
	else if (strcmp(key, "retry_delay") == 0)
		d = &c->retry_delay_ms;
	else if (strcmp(key, "retry_max_delay") == 0)
		d = &c->retry_max_delay_ms;
	else if (strcmp(key, "ttl") == 0)
		d = &c->ttl_ms;
	else if (strcmp(key, "job_timeout") == 0)
		d = &c->job_timeout_ms;
	else if (strcmp(key, "dedup_window") == 0)
		d = &c->dedup_window_ms;
	else if (strcmp(key, "poll_interval") == 0)
		d = &c->poll_interval_ms;
	else if (strcmp(key, "max_messages") == 0)
		snprintf(buf, size, "%llu", (unsigned long long)c->max_messages);
	else if (strcmp(key, "max_bytes") == 0)
		snprintf(buf, size, "%llu", (unsigned long long)c->max_bytes);
	else if (strcmp(key, "min_free_disk") == 0)
		snprintf(buf, size, "%llu",
		    (unsigned long long)c->min_free_disk);
	else if (strcmp(key, "archive") == 0)
		strlcpy(buf, c->archive ? "yes" : "no", size);
	else if (strcmp(key, "rate") == 0)
		sq_rate_format(&c->rate, buf, size);
	else if (strcmp(key, "dead_letter") == 0) {
		if (strlcpy(buf, c->dead_letter[0] != '\0' ? c->dead_letter :
		    "none", size) >= size) {
			errno = ERANGE;
			return -1;
		}
	}
	else if (strcmp(key, "retention") == 0)
		d = &c->retention_ms;
	else if (strcmp(key, "retention_bytes") == 0)
		snprintf(buf, size, "%llu",
		    (unsigned long long)c->retention_bytes);
	else if (strcmp(key, "overflow") == 0)
		strlcpy(buf, c->overflow == SQ_OVERFLOW_BLOCK ? "block" :
		    c->overflow == SQ_OVERFLOW_DROP_OLDEST ? "drop-oldest" :
		    "reject", size);
	else {
		errno = EINVAL;
		return -1;
	}
	if (d != NULL)
		sq_duration_format(*d, buf, size);
	return 0;
}

/* Where each key is set: the line of its last setting, 0 for none. */
struct finder {
	struct lines	 in;
	int		 lines[sizeof(conf_keys) / sizeof(conf_keys[0])];
	int		 elsewhere[sizeof(conf_keys) / sizeof(conf_keys[0])];
	int		 in_queue;	/* the last section header is [queue] */
	int		 bare;		/* keys before any section header */
	int		 headers;	/* any section header at all */
	unsigned char	*keyof;		/* per line: 1 + the key it sets, or
					   0; NULL: not wanted */
	int		 nlines;	/* entries of keyof */
};

static char *
finder_reader(char *buf, int size, void *arg)
{
	struct finder *f = arg;
	char *s = line_read(&f->in, buf, size);

	/* A new key is appended: under [queue] only if that is the last. */
	if (s != NULL && s[strspn(s, " \t")] == '[') {
		f->in_queue = strncmp(s + strspn(s, " \t"), "[queue]", 7) == 0;
		f->headers = 1;
	}
	return s;
}

static int
finder_handler(void *arg, const char *section, const char *key,
    const char *value)
{
	struct finder *f = arg;
	size_t i;

	(void)value;
	if (section[0] == '\0')
		f->bare = 1;
	for (i = 0; conf_keys[i] != NULL; i++)
		if (strcmp(key, conf_keys[i]) == 0) {
			f->lines[i] = f->in.line;
			/* In another section: set moves it under [queue]. */
			f->elsewhere[i] = section[0] != '\0' &&
			    strcmp(section, "queue") != 0;
			if (f->keyof != NULL && f->in.line < f->nlines)
				f->keyof[f->in.line] = (unsigned char)(i + 1);
		}
	return 1;
}

/*
 * Scan dirfd/queue.conf for the lines of each key; missing file: none.
 * With keyof (nlines entries, zeroed), also the key each line sets.
 */
static int
find_lines(int dirfd, struct finder *f, unsigned char *keyof, int nlines)
{
	int fd;

	memset(f, 0, sizeof(*f));
	f->keyof = keyof;
	f->nlines = nlines;
	fd = sq_open_regular(dirfd, SQ_CONF_FILE, O_RDONLY, 0, NULL);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	if ((f->in.fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return -1;
	}
	ini_parse_stream(finder_reader, f, finder_handler, f);
	fclose(f->in.fp);
	free(f->in.buf);
	f->in.fp = NULL;
	f->in.buf = NULL;
	return 0;
}

int
sq_conf_source(int dirfd, const char *key, int *line)
{
	struct finder f;
	size_t i;

	if (find_lines(dirfd, &f, NULL, 0) == -1)
		return -1;
	for (i = 0; conf_keys[i] != NULL; i++)
		if (strcmp(key, conf_keys[i]) == 0) {
			*line = f.lines[i];
			return 0;
		}
	errno = EINVAL;
	return -1;
}

/* Read all of dirfd/queue.conf (at most max bytes) into buf. */
static ssize_t
slurp(int dirfd, char *buf, size_t max)
{
	ssize_t n, len = 0;
	int fd;

	fd = sq_open_regular(dirfd, SQ_CONF_FILE, O_RDONLY, 0, NULL);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	while ((n = read(fd, buf + len, max - (size_t)len)) > 0)
		len += n;
	close(fd);
	if (n == -1 || (size_t)len == max) {
		errno = n == -1 ? errno : EFBIG;
		return -1;
	}
	buf[len] = '\0';
	return len;
}

int
sq_conf_update(struct sq_queue *q, const char *key, const char *value,
    char *err, size_t errsize)
{
	return sq_conf_update_many(q, &key, &value, 1, err, errsize);
}

/*
 * The index in conf_keys of each of keys[0..n-1], and whether each is the
 * last setting of its key, the one that counts.
 */
static void
key_slots(const char *const *keys, size_t n, size_t *slot, int *last)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (slot[i] = 0; strcmp(conf_keys[slot[i]], keys[i]) != 0;
		    slot[i]++)
			;
		last[i] = 1;
		for (j = 0; j < i; j++)
			if (slot[j] == slot[i])
				last[j] = 0;
	}
}

int
sq_conf_update_many(struct sq_queue *q, const char *const *keys,
    const char *const *values, size_t nkeys, char *err, size_t errsize)
{
	char old[64 * 1024], tmp[64], why[200], *line, *next;
	unsigned char *keyof = NULL;	/* per line: the key it sets */
	struct sq_conf check = q->conf, loaded;
	struct finder f;
	ssize_t len;
	size_t i, slot[SQ_CONF_UPDATE_MAX];
	int last[SQ_CONF_UPDATE_MAX], done, fd, n = 1, saved, dropped;
	FILE *fp;

	if (nkeys > SQ_CONF_UPDATE_MAX) {
		snprintf(err, errsize, "more than %d settings at once",
		    SQ_CONF_UPDATE_MAX);
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < nkeys; i++)
		if (sq_conf_set(&check, keys[i], values[i], why,
		    sizeof(why)) == -1) {
			snprintf(err, errsize, "%s: %s", keys[i], why);
			return -1;
		}
	key_slots(keys, nkeys, slot, last);
	/*
	 * One editor at a time: a lost update would pass unnoticed.  A
	 * stopped editor holds the others EDIT_WAIT_MS at most (EBUSY).
	 */
	if ((n = sq_backoff_lock(q->fd, LOCK_EX, EDIT_WAIT_MS)) != 0) {
		if (n == 1)
			errno = EBUSY;
		goto fail;
	}
	n = 1;
	if ((len = slurp(q->fd, old, sizeof(old))) == -1 ||
	    (keyof = calloc((size_t)len + 2, 1)) == NULL ||
	    find_lines(q->fd, &f, keyof, (int)len + 2) == -1)
		goto fail;
	snprintf(tmp, sizeof(tmp), ".%s.%ld", SQ_CONF_FILE, (long)getpid());
	fd = sq_open_regular(q->fd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666,
	    NULL);
	if (fd != -1)
		share_file(q->share, fd);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL)
		goto fail;
	/*
	 * Keys before any section header were meant for [queue]: one
	 * header on top puts them there (inih takes a section named twice
	 * as one), which mends such a file.
	 */
	if (f.bare)
		fputs("[queue]\n", fp);
	/*
	 * Keep every line but the keys' own, which get the new values: all
	 * settings go into one file and one rename, so a crash leaves all
	 * of them or none.
	 */
	for (line = old; line < old + len; line = next, n++) {
		next = memchr(line, '\n', (size_t)(old + len - line));
		next = next ? next + 1 : old + len;
		for (i = 0, done = 0, dropped = 0; i < nkeys && !done; i++)
			if (last[i] && n == f.lines[slot[i]] &&
			    f.elsewhere[slot[i]])
				dropped = 1;	/* appended under [queue] */
			else if (last[i] && n == f.lines[slot[i]]) {
				fprintf(fp, "%s = %s\n", keys[i], values[i]);
				last[i] = 0;
				done = 1;
			} else if (keyof[n] == slot[i] + 1)
				dropped = 1;	/* an earlier line of the key */
		if (done || dropped)
			continue;
		fwrite(line, 1, (size_t)(next - line), fp);
		if (next[-1] != '\n')
			fputc('\n', fp);	/* a last line without one */
	}
	for (i = 0, done = f.in_queue || (f.bare && !f.headers); i < nkeys;
	    i++)
		if (last[i]) {
			fprintf(fp, "%s%s = %s\n", done ? "" : "[queue]\n",
			    keys[i], values[i]);
			done = 1;
		}
	if (fflush(fp) == EOF || fsync(fileno(fp)) == -1) {
		saved = errno;
		fclose(fp);
		unlinkat(q->fd, tmp, 0);
		errno = saved;
		goto fail;
	}
	fclose(fp);
	/*
	 * The new file must load as it is, settings not set here included:
	 * a broken queue.conf is mended only when every error goes.
	 */
	sq_conf_defaults(&loaded);
	if (load_file(&loaded, q->fd, tmp, SQ_CONF_FILE, err, errsize) ==
	    -1) {
		saved = errno;
		unlinkat(q->fd, tmp, 0);
		flock(q->fd, LOCK_UN);
		free(keyof);
		errno = saved;
		return -1;
	}
	if (renameat(q->fd, tmp, q->fd, SQ_CONF_FILE) == -1) {
		saved = errno;
		unlinkat(q->fd, tmp, 0);
		errno = saved;
		goto fail;
	}
	fsync(q->fd);
	flock(q->fd, LOCK_UN);
	q->conf = loaded;
	free(keyof);
	return 0;
fail:
	saved = errno;
	flock(q->fd, LOCK_UN);
	free(keyof);
	not_regular(err, errsize, q->fd, SQ_CONF_FILE, SQ_CONF_FILE, saved);
	errno = saved;
	return -1;
}
