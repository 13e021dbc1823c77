/*
 * exchange.c - exchanges (SPEC 5): exchange.conf read and edited.
 * Routing a key through the bindings read here is route.c's.
 *
 * An exchange owns one directory and the one file in it, exchange.conf;
 * the queues it routes to are its siblings.  Invariants: exchange.conf
 * always loads (an edit re-reads its own result before publishing it);
 * bindings are kept in file order; every change is a complete new file
 * renamed over the old one, the commit point, made under flock(2) on the
 * exchange directory so that two concurrent binds cannot lose each
 * other's line.  Readers take no lock.
 *
 * The file is INI read by inih, like queue.conf, and errors name the
 * file, the line and the key.  Two limits of inih as distributions build
 * it are worked around in the reader, which sees each whole line first:
 * section names are cut at 49 bytes (MAX_SECTION), shorter than
 * [bind "QUEUE"] with a 128-byte queue name, so the reader parses
 * section lines itself and hands inih a stand-in; and lines are cut at
 * 199 bytes (INI_MAX_LINE), shorter than "key = " and a 255-byte
 * pattern, so a longer line reaches inih with its value replaced by a
 * marker, and the handler takes the value from the whole line by inih's
 * own rules (ini.c: comments, inline "  ;", continuation lines).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exchange.h"
#include "internal.h"

#define DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
#define DESTROY_TRIES	16	/* emptyings of a directory renamed aside */
#define CONF_MAX	(16 * 1024 * 1024)	/* bytes of exchange.conf */
#define BOM		"\xef\xbb\xbf"	/* UTF-8 byte order mark */
#define LONG_MARK	"\001"	/* the value of a line too long for inih */
#define NAME_SHOWN	100	/* key name bytes kept from such a line */
#define EDIT_WAIT_MS	10000	/* for another editor of exchange.conf */

static const char *const type_names[] = {
	[SQ_EXCHANGE_FANOUT] = "fanout",
	[SQ_EXCHANGE_DIRECT] = "direct",
	[SQ_EXCHANGE_TOPIC] = "topic",
};
#define NTYPES	(sizeof(type_names) / sizeof(type_names[0]))

const char *
sq_exchange_type_name(enum sq_exchange_type t)
{
	return (size_t)t < NTYPES ? type_names[t] : "unknown";
}

static int
type_parse(const char *s, enum sq_exchange_type *t)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		if (strcmp(s, type_names[i]) == 0) {
			*t = (enum sq_exchange_type)i;
			return 0;
		}
	errno = EINVAL;
	return -1;
}

/*
 * A pattern as exchange.conf may hold it: at most SQ_PATTERN_MAX bytes,
 * no control bytes.  To be written it must also read back the same: no
 * blank at either end (inih strips them) and no ';' first or after a
 * blank (an inline comment).
 */
static int
pattern_ok(const char *p, int writing)
{
	size_t i, n = strlen(p);
	unsigned char c;

	if (n > SQ_PATTERN_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (writing && c == ';' && (i == 0 ||
		    isspace((unsigned char)p[i - 1])))
			return 0;
	}
	if (writing && n > 0 && (isspace((unsigned char)p[0]) ||
	    isspace((unsigned char)p[n - 1])))
		return 0;
	return 1;
}

/* ------------------------------------------------------------ reading */

/* inih's text rules (ini.c), for the lines it cannot be handed whole. */
static char *
lskip(char *s)
{
	while (*s != '\0' && isspace((unsigned char)*s))
		s++;
	return s;
}

static char *
rstrip(char *s)
{
	char *e = s + strlen(s);

	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* The first of chars, or an inline comment (';' after a blank), or NUL. */
static char *
find_stop(char *s, const char *chars)
{
	int was_space = 0;

	while (*s != '\0' && (chars == NULL || strchr(chars, *s) == NULL) &&
	    !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/* What inih makes of a line. */
enum kind {
	K_BLANK,	/* empty or a comment */
	K_CONT,		/* indented after a key: one more value of it */
	K_HEADER,	/* [section] */
	K_KEY,		/* name = value or name: value */
	K_BAD		/* none of these: a syntax error */
};

/* Classify line (right-stripped) as inih does; prev: a key came before. */
static enum kind
classify(char *line, int prev)
{
	char *s = lskip(line), *e;

	if (*s == '\0' || *s == ';' || *s == '#')
		return K_BLANK;
	if (prev && s > line)
		return K_CONT;
	if (*s == '[') {
		e = find_stop(s + 1, "]");
		return *e == ']' ? K_HEADER : K_BAD;
	}
	e = find_stop(s, "=:");
	return *e == '=' || *e == ':' ? K_KEY : K_BAD;
}

/* The value inih gives for a K_KEY or K_CONT line (changed in place). */
static char *
line_value(char *line, enum kind k)
{
	char *s = lskip(line);

	if (k == K_KEY)
		s = find_stop(s, "=:") + 1;
	*find_stop(s, NULL) = '\0';
	return rstrip(lskip(s));
}

/* What each line of a loaded file is, for editing it. */
struct lineinfo {
	size_t		off, len;	/* in the text, newline included */
	enum kind	kind;
	long		sect;		/* its [bind] section, or -1 */
	long		bind;		/* the binding of a key line, or -1 */
};

struct edit {
	struct lineinfo	*lines;
	size_t		 nlines, alines;
	char		(*sects)[SQ_QUEUE_NAME_MAX + 1];	/* queues */
	size_t		 nsects, asects;
};

enum sect { SEC_NONE, SEC_EXCHANGE, SEC_BIND, SEC_BAD };

struct loader {
	struct sq_exchange *x;
	struct edit	*ed;		/* NULL when not editing */
	const char	*text;
	size_t		 len, pos;
	int		 line;		/* the line the reader returned last */
	char		*raw;		/* that line, whole */
	size_t		 rawsize;
	const char	*longval;	/* its value, when too long for inih */
	enum kind	 kind;
	int		 prev;		/* a key line since the last section */
	enum sect	 sec;
	char		 queue[SQ_QUEUE_NAME_MAX + 1];	/* of a [bind] */
	size_t		 keys;		/* key lines in this [bind] */
	size_t		 abind;		/* bindings allocated */
	int		 have_type;
	int		 oom;
	int		 errline;	/* first line refused, or 0 */
	char		 why[256];
};

static void fail(struct loader *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail(struct loader *l, const char *fmt, ...)
{
	va_list ap;

	if (l->errline != 0)
		return;
	l->errline = l->line;
	va_start(ap, fmt);
	vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
}

static int
add_binding(struct loader *l, const char *queue, const char *pattern)
{
	struct sq_exchange *x = l->x;
	struct sq_binding *b;

	if (x->nbindings == l->abind) {
		b = reallocarray(x->bindings, l->abind ? l->abind * 2 : 16,
		    sizeof(*b));
		if (b == NULL)
			goto oom;
		x->bindings = b;
		l->abind = l->abind ? l->abind * 2 : 16;
	}
	b = &x->bindings[x->nbindings];
	b->pattern = NULL;
	b->first = x->nbindings;
	if ((b->queue = strdup(queue)) == NULL ||
	    (pattern != NULL && (b->pattern = strdup(pattern)) == NULL)) {
		free(b->queue);
		goto oom;
	}
	x->nbindings++;
	return 0;
oom:
	l->oom = 1;
	return -1;
}

/* End of a section: a [bind] without keys is one binding without key. */
static void
section_end(struct loader *l)
{
	if (l->sec == SEC_BIND && l->keys == 0)
		add_binding(l, l->queue, NULL);
	l->sec = SEC_NONE;
}

/* A "[name]" line (s at the '['): [exchange] or [bind "QUEUE"]. */
static void
section(struct loader *l, char *s)
{
	struct edit *ed = l->ed;
	char *name = s + 1, *q;
	size_t n;
	void *p;

	*find_stop(name, "]") = '\0';
	name = rstrip(lskip(name));
	section_end(l);
	l->sec = SEC_BAD;
	if (strcmp(name, "exchange") == 0) {
		l->sec = SEC_EXCHANGE;
		return;
	}
	if (strncmp(name, "bind", 4) != 0 || !isspace((unsigned char)name[4]) ||
	    (n = strlen(q = lskip(name + 4))) < 2 || q[0] != '"' ||
	    q[n - 1] != '"') {
		fail(l, "[%s]: unknown section (want [exchange] or "
		    "[bind \"QUEUE\"])", name);
		return;
	}
	q[n - 1] = '\0';
	if (!sq_queue_name_valid(++q)) {
		fail(l, "[bind \"%s\"]: not a queue name "
		    "([A-Za-z0-9][A-Za-z0-9._-]{0,127})", q);
		return;
	}
	strlcpy(l->queue, q, sizeof(l->queue));
	l->sec = SEC_BIND;
	l->keys = 0;
	if (ed == NULL)
		return;
	if (ed->nsects == ed->asects) {
		if ((p = reallocarray(ed->sects, ed->asects ? ed->asects * 2 :
		    8, sizeof(*ed->sects))) == NULL) {
			l->oom = 1;
			return;
		}
		ed->sects = p;
		ed->asects = ed->asects ? ed->asects * 2 : 8;
	}
	strlcpy(ed->sects[ed->nsects], q, sizeof(ed->sects[0]));
	ed->lines[ed->nlines - 1].sect = (long)ed->nsects++;
}

/* Note where line l->line is in the text, for editing. */
static int
note_line(struct loader *l, size_t off, size_t len)
{
	struct edit *ed = l->ed;
	void *p;

	if (ed == NULL)
		return 0;
	if (ed->nlines == ed->alines) {
		if ((p = reallocarray(ed->lines, ed->alines ? ed->alines * 2 :
		    64, sizeof(*ed->lines))) == NULL)
			return -1;
		ed->lines = p;
		ed->alines = ed->alines ? ed->alines * 2 : 64;
	}
	ed->lines[ed->nlines].off = off;
	ed->lines[ed->nlines].len = len;
	ed->lines[ed->nlines].kind = K_BLANK;
	ed->lines[ed->nlines].sect = -1;
	ed->lines[ed->nlines].bind = -1;
	ed->nlines++;
	return 0;
}

/*
 * inih reader: the next line of the text, whole in l->raw, handed to
 * inih as it is when it fits in size bytes, else shortened to a line of
 * the same kind (see the top of this file).
 */
static char *
reader(char *buf, int size, void *arg)
{
	struct loader *l = arg;
	const char *p, *nl;
	size_t n, len;
	char *s;
	void *r;

	if (l->pos >= l->len || l->oom)
		return NULL;
	p = l->text + l->pos;
	nl = memchr(p, '\n', l->len - l->pos);
	n = nl != NULL ? (size_t)(nl - p) + 1 : l->len - l->pos;
	len = nl != NULL ? n - 1 : n;
	l->pos += n;
	l->line++;
	l->longval = NULL;
	if (len + 1 > l->rawsize) {
		if ((r = realloc(l->raw, len + 1)) == NULL)
			goto oom;
		l->raw = r;
		l->rawsize = len + 1;
	}
	if (note_line(l, (size_t)(p - l->text), n) == -1)
		goto oom;
	memcpy(l->raw, p, len);
	l->raw[len] = '\0';
	s = l->raw;
	if (l->line == 1 && strncmp(s, BOM, 3) == 0)
		s += 3;		/* a byte order mark, as inih skips it */
	if (strlen(l->raw) != len) {
		fail(l, "a NUL byte in the line");
		*s = '\0';
	}
	rstrip(s);
	l->kind = classify(s, l->prev);
	if (l->ed != NULL)
		l->ed->lines[l->ed->nlines - 1].kind = l->kind;
	switch (l->kind) {
	case K_HEADER:
		section(l, lskip(s));
		l->prev = 0;
		snprintf(buf, (size_t)size, "[s]\n");	/* ours: see section */
		return buf;
	case K_KEY:
		l->prev = 1;
		break;
	case K_CONT:
		/*
		 * inih (r55) keeps an inline comment in a continuation line,
		 * though it drops it from key lines, as line_value does for
		 * long lines: drop it here too, so that a continuation line
		 * reads the same whatever its length, and the same once an
		 * edit has written it as a key line of its own.
		 */
		*find_stop(lskip(s), NULL) = '\0';
		rstrip(s);
		break;
	default:
		break;
	}
	if (strlen(s) + 2 <= (size_t)size) {
		snprintf(buf, (size_t)size, "%s\n", s);
		return buf;
	}
	switch (l->kind) {
	case K_KEY:
		n = (size_t)(find_stop(lskip(s), "=:") - lskip(s));
		snprintf(buf, (size_t)size, "%.*s=" LONG_MARK "\n",
		    (int)(n < NAME_SHOWN ? n : NAME_SHOWN), lskip(s));
		l->longval = line_value(s, K_KEY);
		break;
	case K_CONT:
		snprintf(buf, (size_t)size, " " LONG_MARK "\n");
		l->longval = line_value(s, K_CONT);
		break;
	case K_BAD:
		snprintf(buf, (size_t)size, "!\n");	/* inih refuses it */
		break;
	default:
		snprintf(buf, (size_t)size, ";\n");
		break;
	}
	return buf;
oom:
	l->oom = 1;
	return NULL;
}

static int
handler(void *arg, const char *section_name, const char *key,
    const char *value)
{
	struct loader *l = arg;
	struct sq_exchange *x = l->x;
	struct edit *ed = l->ed;
	enum sq_exchange_type t;

	(void)section_name;	/* ours comes from the reader: see section */
	if (l->longval != NULL && strcmp(value, LONG_MARK) == 0)
		value = l->longval;
	if (l->errline != 0 || l->oom)
		return 0;
	switch (l->sec) {
	case SEC_EXCHANGE:
		if (strcmp(key, "type") == 0) {
			if (type_parse(value, &t) == -1)
				fail(l, "type: %s: must be fanout, direct or "
				    "topic", value);
			else {
				x->type = t;
				l->have_type = 1;
			}
		} else if (strcmp(key, "alternate") == 0) {
			if (!sq_queue_name_valid(value))
				fail(l, "alternate: %s: not a queue name "
				    "([A-Za-z0-9][A-Za-z0-9._-]{0,127})", value);
			else {
				free(x->alternate);
				if ((x->alternate = strdup(value)) == NULL)
					l->oom = 1;
			}
		} else
			fail(l, "%s: unknown key in [exchange] (want type or "
			    "alternate)", key);
		break;
	case SEC_BIND:
		if (strcmp(key, "key") != 0)
			fail(l, "%s: unknown key in [bind] (want key)", key);
		else if (strlen(value) > SQ_PATTERN_MAX)
			fail(l, "key: longer than %d bytes", SQ_PATTERN_MAX);
		else if (!pattern_ok(value, 0))
			fail(l, "key: a control character in the pattern");
		else if (add_binding(l, l->queue, value) == 0) {
			l->keys++;
			if (ed != NULL) {
				ed->lines[ed->nlines - 1].sect =
				    (long)ed->nsects - 1;
				ed->lines[ed->nlines - 1].bind =
				    (long)x->nbindings - 1;
			}
		}
		break;
	default:
		fail(l, "%s: not in a section (want [exchange] or "
		    "[bind \"QUEUE\"] before it)", key);
		break;
	}
	return l->errline == 0 && !l->oom;
}

static int
by_queue(const void *a, const void *b)
{
	const struct sq_binding *const *x = a, *const *y = b;
	int c = strcmp((*x)->queue, (*y)->queue);

	if (c != 0)
		return c;
	return *x < *y ? -1 : *x > *y;
}

/* Point each binding at the first binding of its queue (sq_binding.first). */
static int
index_queues(struct sq_exchange *x)
{
	struct sq_binding **v;
	size_t i, first = 0;

	if (x->nbindings == 0)
		return 0;
	if ((v = reallocarray(NULL, x->nbindings, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < x->nbindings; i++)
		v[i] = &x->bindings[i];
	sort(v, x->nbindings, sizeof(*v), by_queue);
	for (i = 0; i < x->nbindings; i++) {
		if (i == 0 || strcmp(v[i]->queue, v[i - 1]->queue) != 0)
			first = (size_t)(v[i] - x->bindings);
		v[i]->first = first;
	}
	free(v);
	return 0;
}

/*
 * Parse text (len bytes; shown as file) into x, noting its lines in ed
 * when not NULL.  Returns 0, or -1 with errno EINVAL or ENOMEM and a
 * message in err.
 */
static int
parse(struct sq_exchange *x, const char *text, size_t len, const char *file,
    struct edit *ed, char *err, size_t errsize)
{
	struct loader l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.x = x;
	l.ed = ed;
	l.text = text;
	l.len = len;
	rc = ini_parse_stream(reader, &l, handler, &l);
	if (!l.oom && l.errline == 0)
		section_end(&l);
	free(l.raw);
	if (l.oom || rc == -2 || (rc == 0 && l.errline == 0 &&
	    index_queues(x) == -1)) {
		snprintf(err, errsize, "%s: %s", file, strerror(ENOMEM));
		errno = ENOMEM;
		return -1;
	}
	if (rc > 0 && (l.errline == 0 || rc < l.errline))
		snprintf(err, errsize, "%s:%d: not a key = value line or "
		    "[section]", file, rc);
	else if (l.errline != 0)
		snprintf(err, errsize, "%s:%d: %s", file, l.errline, l.why);
	else if (!l.have_type)
		snprintf(err, errsize, "%s: type: missing (want [exchange] "
		    "type = fanout, direct or topic)", file);
	else
		return 0;
	errno = EINVAL;
	return -1;
}

/* Read all of fd, a regular file of at most CONF_MAX bytes. */
static int
read_all(int fd, char **text, size_t *len)
{
	struct stat st;
	size_t cap, n = 0;
	ssize_t r;
	char *buf, *nbuf;

	if (fstat(fd, &st) == -1)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (st.st_size > CONF_MAX) {
		errno = EFBIG;
		return -1;
	}
	cap = (size_t)st.st_size + 1;
	if ((buf = malloc(cap)) == NULL)
		return -1;
	for (;;) {
		if (n + 1 == cap) {	/* it grew meanwhile */
			if (cap > CONF_MAX) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			if ((nbuf = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return -1;
			}
			buf = nbuf;
			cap *= 2;
		}
		if ((r = read(fd, buf + n, cap - n - 1)) == -1) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

/*
 * Load exchange.conf of the directory dfd into x (x->path set), keeping
 * its text in *text (freed by the caller) and, with ed, its lines.
 */
static int
load(struct sq_exchange *x, int dfd, struct edit *ed, char **text,
    char *err, size_t errsize)
{
	char file[PATH_MAX + sizeof(SQ_EXCHANGE_FILE) + 1];
	size_t len;
	int fd, saved;

	*text = NULL;
	snprintf(file, sizeof(file), "%s/%s", x->path, SQ_EXCHANGE_FILE);
	fd = sq_open_regular(dfd, SQ_EXCHANGE_FILE, O_RDONLY, 0, NULL);
	if (fd == -1) {
		saved = errno == ENOENT ? ENOTDIR : errno;
		if (saved == ENOTDIR)
			snprintf(err, errsize, "%s: not an exchange (no %s)",
			    x->path, SQ_EXCHANGE_FILE);
		else
			snprintf(err, errsize, "%s: %s", file, saved == EINVAL ?
			    "not a regular file" : strerror(saved));
		errno = saved;
		return -1;
	}
	if (read_all(fd, text, &len) == -1) {
		saved = errno;
		close(fd);
		snprintf(err, errsize, "%s: %s", file, saved == EINVAL ?
		    "not a regular file" : strerror(saved));
		errno = saved;
		return -1;
	}
	close(fd);
	if (parse(x, *text, len, file, ed, err, errsize) == -1) {
		saved = errno;
		sq_exchange_close(x);
		errno = saved;
		return -1;
	}
	return 0;
}

int
sq_exchange_is(const char *path)
{
	struct stat st;
	int fd, yes;

	if ((fd = open(path, DIR_FLAGS)) == -1)
		return 0;
	yes = fstatat(fd, SQ_EXCHANGE_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
	close(fd);
	return yes;
}

/* Start x for the exchange at path: its names set, its directory opened. */
static int
start(struct sq_exchange *x, const char *path, char *err, size_t errsize)
{
	char base[PATH_MAX];
	int dfd, saved;

	memset(x, 0, sizeof(*x));
	if (strlcpy(x->path, path, sizeof(x->path)) >= sizeof(x->path) ||
	    path_split(path, x->root, sizeof(x->root), base,
	    sizeof(base)) == -1) {
		saved = errno == EINVAL ? ENOTDIR : ENAMETOOLONG;
		snprintf(err, errsize, "%s: %s", path, saved == ENOTDIR ?
		    "not an exchange" : strerror(saved));
		errno = saved;
		return -1;
	}
	if ((dfd = open(path, DIR_FLAGS)) == -1) {
		saved = errno == ELOOP ? ENOTDIR : errno;
		snprintf(err, errsize, "%s: %s", path, saved == ENOENT ?
		    "no such exchange" : saved == ENOTDIR ? "not an exchange" :
		    strerror(saved));
		errno = saved;
		return -1;
	}
	return dfd;
}

int
sq_exchange_open(struct sq_exchange *x, const char *path, char *err,
    size_t errsize)
{
	char *text;
	int dfd, rc, saved;

	if ((dfd = start(x, path, err, errsize)) == -1)
		return -1;
	rc = load(x, dfd, NULL, &text, err, errsize);
	saved = errno;
	free(text);
	close(dfd);
	errno = saved;
	return rc;
}

void
sq_exchange_close(struct sq_exchange *x)
{
	size_t i;

	for (i = 0; i < x->nbindings; i++) {
		free(x->bindings[i].queue);
		free(x->bindings[i].pattern);
	}
	free(x->bindings);
	free(x->alternate);
	x->bindings = NULL;
	x->nbindings = 0;
	x->alternate = NULL;
}

/* ------------------------------------------------------------ writing */

/* Write len bytes of data as name in dfd (mode from the umask), fsynced. */
static int
write_file(int dfd, const char *name, const char *data, size_t len,
    int excl)
{
	int fd, saved;

	fd = sq_open_regular(dfd, name, O_WRONLY | O_CREAT |
	    (excl ? O_EXCL : O_TRUNC), 0666, NULL);
	if (fd == -1)
		return -1;
	share_file(dir_share(dfd), fd);
	if (sq_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(dfd, name, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1) {
		saved = errno;
		unlinkat(dfd, name, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

int
sq_exchange_create(const char *path, const char *type, const char *alternate)
{
	char parent[PATH_MAX], base[PATH_MAX], tmp[NAME_MAX + 1], text[256];
	enum sq_exchange_type t;
	int pfd, dfd = -1, made = 0, saved, n;

	if (type_parse(type, &t) == -1 ||
	    (alternate != NULL && !sq_queue_name_valid(alternate)))
		goto inval;
	if (path_split(path, parent, sizeof(parent), base, sizeof(base)) == -1)
		return -1;
	if (strlen(base) > NAME_MAX)
		goto inval;
	n = snprintf(text, sizeof(text), "[exchange]\ntype = %s\n%s%s%s",
	    type_names[t], alternate != NULL ? "alternate = " : "",
	    alternate != NULL ? alternate : "", alternate != NULL ? "\n" : "");
	if (make_dirs(parent) == -1 ||
	    (pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (faccessat(pfd, base, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		close(pfd);
		errno = EEXIST;
		return -1;
	}
	snprintf(tmp, sizeof(tmp), ".create.%ld.%08x", (long)getpid(),
	    arc4random());
	if (mkdir_shared(pfd, tmp) == -1)
		goto fail;
	made = 1;
	if ((dfd = openat(pfd, tmp, DIR_FLAGS)) == -1 ||
	    write_file(dfd, SQ_EXCHANGE_FILE, text, (size_t)n, 1) == -1 ||
	    fsync(dfd) == -1 || sq_rename(pfd, tmp, pfd, base) == -1)
		goto fail;
	fsync(pfd);
	close(dfd);
	close(pfd);
	return 0;
fail:
	saved = errno;
	if (dfd != -1) {
		unlinkat(dfd, SQ_EXCHANGE_FILE, 0);
		close(dfd);
	}
	if (made)
		unlinkat(pfd, tmp, AT_REMOVEDIR);
	close(pfd);
	/* A directory renamed onto a non-empty one answers ENOTEMPTY. */
	errno = saved == ENOTEMPTY ? EEXIST : saved;
	return -1;
inval:
	errno = EINVAL;
	return -1;
}

/* A growing output buffer; oom remembers a failed allocation. */
struct out {
	char	*buf;
	size_t	 len, cap;
	int	 oom;
};

static void
out_add(struct out *o, const char *s, size_t n)
{
	char *nbuf;
	size_t cap;

	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		for (cap = o->cap ? o->cap : 1024; cap < o->len + n + 1; )
			cap *= 2;
		if ((nbuf = realloc(o->buf, cap)) == NULL) {
			o->oom = 1;
			return;
		}
		o->buf = nbuf;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void
out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

/*
 * Copy line i of the loaded text so that it reads the same whatever an
 * edit puts before it.  An indented line is a continuation when a key
 * line comes before it (classify), so a line that was read as a key or a
 * [section] only because none came before it loses its indent: once an
 * edit adds a key line above, or removes the header between, it would
 * otherwise join that key.  A continuation line of a binding is
 * rewritten as "key = P", as its key line may go.
 */
static void
out_line(struct out *o, const struct sq_exchange *x, const struct edit *ed,
    const char *text, size_t i)
{
	const struct lineinfo *li = &ed->lines[i];
	const char *p = text + li->off;
	size_t n = li->len, bom = 0, k;

	if (li->kind == K_CONT && li->bind >= 0) {
		out_str(o, "key = ");
		out_str(o, x->bindings[li->bind].pattern);
		out_str(o, "\n");
		return;
	}
	if (li->kind == K_HEADER || li->kind == K_KEY) {
		if (li->off == 0 && n >= 3 && memcmp(p, BOM, 3) == 0)
			bom = 3;
		for (k = bom; k < n && p[k] != '\n' &&
		    isspace((unsigned char)p[k]); k++)
			;
		out_add(o, p, bom);
		p += k;
		n -= k;
	}
	out_add(o, p, n);
	if (n == 0 || p[n - 1] != '\n')
		out_str(o, "\n");
}

/* The new text for binding queue with pattern; 0 when already bound. */
static int
plan_bind(struct out *o, const struct sq_exchange *x, const struct edit *ed,
    const char *text, const char *queue, const char *pattern)
{
	const struct sq_binding *b;
	size_t i;
	long after = -1;

	for (i = 0; i < x->nbindings; i++) {
		b = &x->bindings[i];
		if (strcmp(b->queue, queue) == 0 && (pattern == NULL ||
		    (b->pattern != NULL && strcmp(b->pattern, pattern) == 0)))
			return 0;
	}
	/* The last line of queue's last [bind] section gets the key. */
	for (i = 0; pattern != NULL && i < ed->nlines; i++)
		if (ed->lines[i].sect >= 0 &&
		    strcmp(ed->sects[ed->lines[i].sect], queue) == 0)
			after = (long)i;
	for (i = 0; i < ed->nlines; i++) {
		out_line(o, x, ed, text, i);
		if ((long)i == after) {
			out_str(o, "key = ");
			out_str(o, pattern);
			out_str(o, "\n");
		}
	}
	if (after == -1) {
		if (o->len > 0 && !(o->len >= 2 && o->buf[o->len - 2] == '\n'))
			out_str(o, "\n");
		out_str(o, "[bind \"");
		out_str(o, queue);
		out_str(o, "\"]\n");
		if (pattern != NULL) {
			out_str(o, "key = ");
			out_str(o, pattern);
			out_str(o, "\n");
		}
	}
	return 1;
}

/* The new text without queue's bindings (with pattern); 0 if none. */
static int
plan_unbind(struct out *o, const struct sq_exchange *x,
    const struct edit *ed, const char *text, const char *queue,
    const char *pattern)
{
	const struct lineinfo *li;
	size_t i, *keys = NULL, *gone = NULL;
	unsigned char *drop = NULL;
	int removed = 0;

	keys = calloc(ed->nsects + 1, sizeof(*keys));
	gone = calloc(ed->nsects + 1, sizeof(*gone));
	drop = calloc(ed->nlines + 1, 1);
	if (keys == NULL || gone == NULL || drop == NULL) {
		o->oom = 1;
		goto done;
	}
	for (i = 0; i < ed->nlines; i++) {
		li = &ed->lines[i];
		if (li->sect < 0 || li->bind < 0)
			continue;
		keys[li->sect]++;
		if (strcmp(ed->sects[li->sect], queue) == 0 &&
		    (pattern == NULL ||
		    strcmp(x->bindings[li->bind].pattern, pattern) == 0)) {
			drop[i] = 1;
			gone[li->sect]++;
			removed++;
		}
	}
	/* Headers: with every binding of the queue, or with their keys. */
	for (i = 0; i < ed->nlines; i++) {
		li = &ed->lines[i];
		if (li->kind != K_HEADER || li->sect < 0 ||
		    strcmp(ed->sects[li->sect], queue) != 0)
			continue;
		if (pattern == NULL && keys[li->sect] == 0)
			removed++;	/* a binding without key */
		if (pattern == NULL || (keys[li->sect] > 0 &&
		    gone[li->sect] == keys[li->sect]))
			drop[i] = 1;
	}
	for (i = 0; removed > 0 && i < ed->nlines; i++) {
		if (!drop[i])
			out_line(o, x, ed, text, i);
		else if (ed->lines[i].kind == K_HEADER && o->len >= 2 &&
		    o->buf[o->len - 1] == '\n' && o->buf[o->len - 2] == '\n')
			o->buf[--o->len] = '\0';	/* its blank line */
	}
done:
	free(keys);
	free(gone);
	free(drop);
	return removed > 0;
}

/* Write text as exchange.conf of dfd: temporary file, fsync, rename. */
static int
replace_conf(int dfd, const char *text, size_t len)
{
	char tmp[64];
	int saved;

	snprintf(tmp, sizeof(tmp), ".%s.%ld", SQ_EXCHANGE_FILE, (long)getpid());
	if (write_file(dfd, tmp, text, len, 0) == -1)
		return -1;
	if (renameat(dfd, tmp, dfd, SQ_EXCHANGE_FILE) == -1) {
		saved = errno;
		unlinkat(dfd, tmp, 0);
		errno = saved;
		return -1;
	}
	fsync(dfd);
	return 0;
}

/* bind (binding set) or unbind queue with pattern, under the lock. */
static int
edit_conf(const char *path, const char *queue, const char *pattern,
    int binding)
{
	struct sq_exchange x, check;
	struct edit ed;
	struct out o;
	char err[PATH_MAX + 300], *text = NULL;
	int dfd, changed, rc = -1, saved, busy;

	if (!sq_queue_name_valid(queue) ||
	    (pattern != NULL && !pattern_ok(pattern, 1))) {
		errno = EINVAL;
		return -1;
	}
	memset(&ed, 0, sizeof(ed));
	memset(&o, 0, sizeof(o));
	if ((dfd = start(&x, path, err, sizeof(err))) == -1)
		return -1;
	/*
	 * Serialize edits; the kernel drops the lock if we die, and a
	 * stopped editor holds the others EDIT_WAIT_MS at most (EBUSY).
	 */
	if ((busy = sq_backoff_lock(dfd, LOCK_EX, EDIT_WAIT_MS)) != 0 ||
	    load(&x, dfd, &ed, &text, err, sizeof(err)) == -1) {
		saved = busy == 1 ? EBUSY : errno;
		goto out;
	}
	changed = binding ? plan_bind(&o, &x, &ed, text, queue, pattern) :
	    plan_unbind(&o, &x, &ed, text, queue, pattern);
	saved = o.oom ? ENOMEM : binding || changed ? 0 : ENOENT;
	if (saved == 0 && changed) {
		/* Publish only what loads. */
		memset(&check, 0, sizeof(check));
		if (parse(&check, o.buf, o.len, SQ_EXCHANGE_FILE, NULL, err,
		    sizeof(err)) == -1 || replace_conf(dfd, o.buf, o.len) == -1)
			saved = errno;
		sq_exchange_close(&check);
	}
	if (saved == 0)
		rc = 0;
	sq_exchange_close(&x);
out:
	free(text);
	free(o.buf);
	free(ed.lines);
	free(ed.sects);
	close(dfd);
	errno = saved;
	return rc;
}

int
sq_exchange_bind(const char *path, const char *queue, const char *pattern)
{
	return edit_conf(path, queue, pattern, 1);
}

int
sq_exchange_unbind(const char *path, const char *queue, const char *pattern)
{
	return edit_conf(path, queue, pattern, 0);
}

/* Remove every entry of the directory dfd (an exchange holds files only). */
static int
unlink_entry(int dfd, const char *name, const struct stat *st, void *arg)
{
	(void)st;
	(void)arg;
	return unlinkat(dfd, name, 0) == -1 && errno != ENOENT ? -1 : 0;
}

/*
 * The directory renamed aside as tmp in pfd is not the exchange fd that
 * was judged (the exchange was destroyed meanwhile and something else,
 * a queue perhaps, took its name): put it back under base untouched, or,
 * should base be taken again, under tmp with ".kept" added, a name that
 * qadmin gc never removes.  Returns -1 with errno ENOENT (the exchange
 * judged is gone).
 */
static int
put_back(int pfd, const char *tmp, const char *base)
{
	char kept[80];

	if (sq_rename(pfd, tmp, pfd, base) == -1) {
		snprintf(kept, sizeof(kept), "%s.kept", tmp);
		(void)sq_rename(pfd, tmp, pfd, kept);
	}
	errno = ENOENT;
	return -1;
}

int
sq_exchange_destroy(const char *path)
{
	char parent[PATH_MAX], base[NAME_MAX + 1], tmp[64];
	struct stat was, st;
	int pfd, fd = -1, rc = -1, saved, tries;

	if (path_split(path, parent, sizeof(parent), base, sizeof(base)) == -1)
		return -1;
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	/*
	 * Judged through a descriptor of its own, kept: what is renamed
	 * aside must be that very directory, not what took its name since.
	 */
	errno = 0;
	if ((fd = openat(pfd, base, DIR_FLAGS)) == -1 ||
	    fstat(fd, &was) == -1 ||
	    fstatat(fd, SQ_EXCHANGE_FILE, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode)) {
		/* As sq_exchange_is says: no exchange.conf is none there. */
		if (fd != -1 && errno == 0)
			errno = ENOTDIR;
		goto out;
	}
	/* Gone at once for senders: renamed to a dot name, then removed. */
	snprintf(tmp, sizeof(tmp), SQ_DESTROY_PREFIX "%ld.%08x",
	    (long)getpid(), arc4random());
	if (sq_rename(pfd, base, pfd, tmp) == -1)
		goto out;
	if (fstatat(pfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    st.st_dev != was.st_dev || st.st_ino != was.st_ino) {
		put_back(pfd, tmp, base);
		goto out;
	}
	/*
	 * A bind or unbind that opened the exchange before the rename may
	 * still write its new exchange.conf into it: empty it again until
	 * it can be removed.
	 */
	for (tries = 0; tries < DESTROY_TRIES; tries++) {
		if ((rc = dir_each(fd, unlink_entry, NULL)) == 0 &&
		    (rc = unlinkat(pfd, tmp, AT_REMOVEDIR)) == 0)
			break;
		if (errno != ENOTEMPTY && errno != EEXIST)
			break;
		rc = -1;
		errno = EBUSY;
	}
out:
	saved = errno;
	if (fd != -1)
		close(fd);
	close(pfd);
	errno = saved;
	return rc;
}
