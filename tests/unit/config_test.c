/*
 * config_test.c - durations, queue.conf loading and its errors, backoff.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"

static void
test_durations(void)
{
	static const struct {
		const char	*s;
		int64_t		 ms;
	} good[] = {
		{ "500ms", 500 }, { "30s", 30000 }, { "5m", 300000 },
		{ "2h", 7200000 }, { "4d", 345600000 }, { "7", 7000 },
		{ "0", 0 },
	};
	static const char *bad[] = {
		"", "s", "5x", "-1s", "1.5s", "5 m", "10mss", "99999999999999999999",
		"40000d",
	};
	int64_t ms;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(sq_duration_parse(good[i].s, &ms) == 0 && ms == good[i].ms,
		    "duration %s = %lld ms", good[i].s, (long long)good[i].ms);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(sq_duration_parse(bad[i], &ms) == -1, "refuses \"%s\"",
		    bad[i]);
}

/* Sizes are decimal bytes with an optional k/M/G/T suffix, nothing else. */
static void
test_sizes(void)
{
	static const struct {
		const char	*s;
		uint64_t	 bytes;
	} good[] = {
		{ "500", 500 }, { "64k", 65536 }, { "10M", 10485760 },
		{ "0", 0 }, { "010", 10 }, { "00", 0 }, { "0k", 0 },
	};
	static const char *bad[] = {
		"", "-1", " 5", "\r2G", "+5", "0x10", "0X10", "k", "5q",
	};
	struct sq_conf c;
	char why[256];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		sq_conf_defaults(&c);
		ok(sq_conf_set(&c, "max_bytes", good[i].s, why,
		    sizeof(why)) == 0 && c.max_bytes == good[i].bytes,
		    "size %s = %llu bytes", good[i].s,
		    (unsigned long long)good[i].bytes);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sq_conf_defaults(&c);
		ok(sq_conf_set(&c, "max_bytes", bad[i], why, sizeof(why)) ==
		    -1 && c.max_bytes == 0, "refuses size \"%s\"", bad[i]);
	}
}

/* A refused value changes nothing: the settings stay as they were. */
static void
test_refused(void)
{
	static const char *const keys[] = {
		"max_attempts", "max_messages", "lease", "max_bytes",
		"overflow", "durability", "archive",
	};
	struct sq_conf c, def;
	char why[256];
	size_t i;

	memset(&def, 0, sizeof(def));
	sq_conf_defaults(&def);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		c = def;
		ok(sq_conf_set(&c, keys[i], "bad", why, sizeof(why)) == -1 &&
		    memcmp(&c, &def, sizeof(c)) == 0,
		    "%s = bad is refused and changes nothing", keys[i]);
	}
}

/* Write text (len bytes) as dir/queue.conf and load it. */
static int
load_n(const char *dir, const char *text, size_t len, struct sq_conf *c,
    char *err, size_t errsize)
{
	char path[512];
	FILE *fp;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/queue.conf", dir);
	if ((fp = fopen(path, "w")) == NULL)
		return -2;
	fwrite(text, 1, len, fp);
	fclose(fp);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	sq_conf_defaults(c);
	err[0] = '\0';
	rc = sq_conf_load(c, fd, "Q/queue.conf", err, errsize);
	close(fd);
	return rc;
}

static int
load(const char *dir, const char *text, struct sq_conf *c, char *err,
    size_t errsize)
{
	return load_n(dir, text, strlen(text), c, err, errsize);
}

/*
 * Lines longer than inih's 200-byte buffer and NUL bytes: inih would cut
 * a long line and read its end as a line of its own, so the tail of a
 * comment could set a key, and a NUL made the line numbers of the loader
 * and of `qadmin config set` drift apart.
 */
static void
test_long_lines(const char *dir)
{
	char text[2048], pad[400], err[512];
	struct sq_conf c;
	int n;

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(text, sizeof(text), "[queue]\n# %.197s lease = 1s\n", pad);
	ok(load(dir, text, &c, err, sizeof(err)) == 0 && c.lease_ms == 300000,
	    "the end of a long comment sets nothing");
	snprintf(text, sizeof(text), "[queue]\n   ; %s max_attempts = 0\n",
	    pad);
	ok(load(dir, text, &c, err, sizeof(err)) == 0 && c.max_attempts == 5,
	    "nor does the end of a long indented comment");
	snprintf(text, sizeof(text), "[queue]\nlease = 90s ; %s\nttl = 2d\n",
	    pad);
	ok(load(dir, text, &c, err, sizeof(err)) == 0 && c.lease_ms == 90000 &&
	    c.ttl_ms == 172800000, "a long inline comment is a comment");
	snprintf(text, sizeof(text), "[queue]\nlease = 90s%s\n", pad);
	ok(load(dir, text, &c, err, sizeof(err)) == -1 && errno == EINVAL &&
	    strcmp(err, "Q/queue.conf:2: line too long") == 0,
	    "a long key line is refused, with its line");
	ok(load(dir, "[queue]\nlease = 5m\n  10m ; why\n", &c, err,
	    sizeof(err)) == 0 && c.lease_ms == 600000,
	    "an inline comment ends a continuation line too");
	memset(text, ' ', 300);
	snprintf(text + 300, sizeof(text) - 300, "\n[queue]\n%s\n%s",
	    "ttl = 1d", "   ");
	ok(load(dir, text, &c, err, sizeof(err)) == 0 && c.ttl_ms == 86400000,
	    "long blank lines are blank");
	/* 199 bytes are too long with or without a newline after them. */
	snprintf(text, sizeof(text), "[queue]\nlease = 9s%.189s", pad);
	ok(load(dir, text, &c, err, sizeof(err)) == -1 &&
	    strcmp(err, "Q/queue.conf:2: line too long") == 0,
	    "a last line of 199 bytes without a newline is too long");
	strlcat(text, "\n", sizeof(text));
	ok(load(dir, text, &c, err, sizeof(err)) == -1 &&
	    strcmp(err, "Q/queue.conf:2: line too long") == 0,
	    "and with one");
	snprintf(text, sizeof(text), "[queue]\nlease = 9s%.188s", pad);
	ok(load(dir, text, &c, err, sizeof(err)) == -1 &&
	    strncmp(err, "Q/queue.conf:2: lease: 9sx", 26) == 0,
	    "198 bytes are read whole: %s", err);
	n = snprintf(text, sizeof(text), "[queue]\n# a%cb\nlease = 9s\n", 0);
	ok(load_n(dir, text, (size_t)n, &c, err, sizeof(err)) == -1 &&
	    errno == EINVAL &&
	    strcmp(err, "Q/queue.conf:2: a NUL byte in the line") == 0,
	    "a NUL byte is refused, with its line");
	n = snprintf(text, sizeof(text), "[queue]\nttl = 1x\n# %c\n", 0);
	ok(load_n(dir, text, (size_t)n, &c, err, sizeof(err)) == -1 &&
	    strncmp(err, "Q/queue.conf:2: ttl: 1x", 23) == 0,
	    "the first bad line is named");
}

/*
 * config set of a key the file does not have appends it under [queue]:
 * under a new [queue] header when the file's last section is another
 * (an empty one loads), else the key would land in that section.
 */
static void
test_update(const char *dir)
{
	char path[600], err[512], text[700];
	struct sq_queue q;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/uq", dir);
	if (sq_queue_create(path, NULL, NULL, 0, err, sizeof(err)) == -1 ||
	    snprintf(text, sizeof(text), "%s/queue.conf", path) < 0 ||
	    (fp = fopen(text, "w")) == NULL) {
		ok(0, "make a queue in %s", path);
		return;
	}
	fputs("[queue]\nlease = 90s\n[later]\n", fp);
	fclose(fp);
	ok(sq_queue_open(&q, path, err, sizeof(err)) == 0 &&
	    q.conf.lease_ms == 90000, "an empty unknown section loads");
	ok(sq_conf_update(&q, "ttl", "2d", err, sizeof(err)) == 0,
	    "config set ttl = 2d");
	sq_queue_close(&q);
	ok(sq_queue_open(&q, path, err, sizeof(err)) == 0 &&
	    q.conf.ttl_ms == 172800000 && q.conf.lease_ms == 90000,
	    "the new key is under [queue]: the file still loads");
	sq_queue_close(&q);
	snprintf(text, sizeof(text), "%s/queue.conf", path);
	if ((fp = fopen(text, "r")) != NULL) {
		n = fread(text, 1, sizeof(text) - 1, fp);
		text[n] = '\0';
		fclose(fp);
		is_str(text, "[queue]\nlease = 90s\n[later]\n[queue]\n"
		    "ttl = 2d\n", "every line kept, the key appended");
	}
	sq_queue_destroy(path, 1, NULL, 0);
}

static void
test_load(const char *dir)
{
	struct sq_conf c;
	char err[512];

	sq_conf_defaults(&c);
	ok(c.max_attempts == 5 && c.lease_ms == 300000 &&
	    c.retry_delay_ms == 30000 && c.retry_max_delay_ms == 3600000 &&
	    c.ttl_ms == 0 && c.durability == SQ_DURABILITY_FSYNC,
	    "defaults of SPEC 3");
	ok(load(dir, "[queue]\nmax_attempts = 3\nlease = 90s\n"
	    "retry_delay = 500ms\nretry_max_delay = 2m\nttl = 1d\n"
	    "durability = none\n; comment\n# comment\n", &c, err,
	    sizeof(err)) == 0, "a full file loads");
	ok(c.max_attempts == 3 && c.lease_ms == 90000 &&
	    c.retry_delay_ms == 500 && c.retry_max_delay_ms == 120000 &&
	    c.ttl_ms == 86400000 && c.durability == SQ_DURABILITY_NONE,
	    "every key applied");

	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "[queue]\nfoo = 1\n", "Q/queue.conf:2: foo: unknown key" },
		{ "[queue]\n\nlease = 5x\n", "Q/queue.conf:3: lease: 5x: not a duration" },
		{ "[queue]\ndurability = sometimes\n", "Q/queue.conf:2: durability: sometimes: must be none or fsync" },
		{ "[queue]\nmax_attempts = 0\n", "Q/queue.conf:2: max_attempts: 0: must be a number" },
		{ "[queue]\nlease = 500ms\n", "Q/queue.conf:2: lease: 500ms: must be at least" },
		{ "[other]\nlease = 5m\n", "Q/queue.conf:2: lease: in section [other]: every key must be under [queue]" },
		{ "lease = 5m\n", "Q/queue.conf:1: lease: before any section: every key must be under [queue]" },
		{ "[queue]\nthis is not ini\n", "Q/queue.conf:2: not a key = value line" },
		{ "[queue]\nlease = 5m\nlease = 5x\nttl = bad\n", "Q/queue.conf:3: lease: 5x" },
		{ "[queue]\nlease = 5m\nttl = 1d\nlease = 6m\n", "Q/queue.conf:4: lease: set twice (also on line 2)" },
		{ "[queue]\nlease = 5m\n[queue]\nlease = 5m\n", "Q/queue.conf:4: lease: set twice (also on line 2)" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = load(dir, bad[i].text, &c, err, sizeof(err));

		ok(rc == -1 && errno == EINVAL && strncmp(err, bad[i].want,
		    strlen(bad[i].want)) == 0, "error names file, line, key: %s",
		    bad[i].want);
		if (strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
			printf("#   got: %s\n", err);
	}
	ok(load(dir, "[queue]\nlease = 5m\nlease = 5x\n", &c, err,
	    sizeof(err)) == -1 && c.max_attempts == 5 && c.lease_ms == 300000,
	    "a bad file leaves the settings untouched");
}

static void
test_missing(const char *dir)
{
	struct sq_conf c;
	char path[512], err[256];
	int fd;

	snprintf(path, sizeof(path), "%s/queue.conf", dir);
	unlink(path);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	sq_conf_defaults(&c);
	ok(sq_conf_load(&c, fd, "x", err, sizeof(err)) == 0 &&
	    c.max_attempts == 5, "a missing queue.conf means defaults");
	mkdir(path, 0700);
	ok(sq_conf_load(&c, fd, "x", err, sizeof(err)) == -1,
	    "a directory named queue.conf is an error");
	rmdir(path);
	close(fd);
}

static void
test_backoff(void)
{
	struct sq_conf c;
	int64_t d, lo = INT64_MAX, hi = 0;
	int i;

	sq_conf_defaults(&c);
	for (i = 0; i < 2000; i++) {
		d = sq_conf_backoff_ms(&c, 1);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	ok(lo >= 24000 && hi <= 36000 && hi - lo > 6000,
	    "attempt 1: 30s +-20%% jitter (saw %lld..%lld)", (long long)lo,
	    (long long)hi);
	d = sq_conf_backoff_ms(&c, 3);
	ok(d >= 96000 && d <= 144000, "attempt 3: doubled twice, 120s +-20%%");
	d = sq_conf_backoff_ms(&c, 40);
	ok(d >= 2880000 && d <= 4320000, "attempt 40: capped at 1h +-20%%");
	c.retry_delay_ms = 0;
	ok(sq_conf_backoff_ms(&c, 5) == 0, "retry_delay 0 means at once");
}

/* dead_letter: a queue NAME beside this one, never itself or a path. */
static void
test_dead_letter(const char *dir)
{
	static const char *const bad[] = {
		"a/b", "../q", "/tmp/q", ".hidden", "-x", "a b",
	};
	struct sq_conf c;
	char why[256], err[512], text[300], want[400];
	const char *self = strrchr(dir, '/') + 1;
	size_t i;

	sq_conf_defaults(&c);
	ok(c.dead_letter[0] == '\0', "dead_letter: none by default");
	ok(sq_conf_get(&c, "dead_letter", why, sizeof(why)) == 0 &&
	    strcmp(why, "none") == 0, "dead_letter shown as none");
	ok(sq_conf_set(&c, "dead_letter", "jobs.dead-1", why, sizeof(why)) ==
	    0 && strcmp(c.dead_letter, "jobs.dead-1") == 0,
	    "dead_letter = jobs.dead-1");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(sq_conf_set(&c, "dead_letter", bad[i], why, sizeof(why)) ==
		    -1 && strcmp(c.dead_letter, "jobs.dead-1") == 0 &&
		    strstr(why, "not a queue name") != NULL,
		    "dead_letter = %s refused (%s)", bad[i], why);
	ok(sq_conf_set(&c, "dead_letter", "none", why, sizeof(why)) == 0 &&
	    c.dead_letter[0] == '\0', "dead_letter = none: dead/ again");
	snprintf(text, sizeof(text), "[queue]\nttl = 1h\ndead_letter = %s\n",
	    self);
	snprintf(want, sizeof(want), "Q/queue.conf:3: dead_letter: %s: is "
	    "this queue itself", self);
	ok(load(dir, text, &c, err, sizeof(err)) == -1 && errno == EINVAL &&
	    strcmp(err, want) == 0, "dead_letter naming its own queue: %s",
	    err);
	ok(load(dir, "[queue]\ndead_letter = other\n", &c, err,
	    sizeof(err)) == 0 && strcmp(c.dead_letter, "other") == 0,
	    "dead_letter = other loads (its existence is judged at the move)");
}

int
main(void)
{
	char dir[] = "/tmp/spoolq-unit.XXXXXX";

	if (mkdtemp(dir) == NULL)
		return 1;
	test_durations();
	test_sizes();
	test_refused();
	test_load(dir);
	test_long_lines(dir);
	test_update(dir);
	test_missing(dir);
	test_backoff();
	test_dead_letter(dir);
	{
		char path[600];

		snprintf(path, sizeof(path), "%s/queue.conf", dir);
		unlink(path);
		rmdir(dir);
	}
	return tap_done();
}
