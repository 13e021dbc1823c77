/*
 * queue_conf_fuzz.c - queue.conf as any member of the queue's group may
 * write it: loaded by every tool (sq_conf_load, through inih), searched
 * by `qadmin config get` (sq_conf_source) and edited by `qadmin config
 * set` (sq_conf_update).  The input's first byte picks a setting to
 * edit in; the rest is the file.
 *
 * Invariants: a file that does not load says where (queue.conf:LINE: or
 * queue.conf: and why), with errno EINVAL; a file that loads gives
 * settings within their bounds, every key's source line is a line of the
 * file, and an edit keeps it loading, with the edited key set to the new
 * value and every other key as it was.
 */
#include <ctype.h>

#include "fuzz.h"

static const struct {
	const char	*key, *value, *shown;	/* shown: as sq_conf_get */
} edits[] = {
	{ "max_attempts", "7", "7" },
	{ "lease", "90s", "90s" },
	{ "retry_delay", "1500ms", "1500ms" },
	{ "retry_max_delay", "120m", "2h" },
	{ "ttl", "3d", "3d" },
	{ "durability", "none", "none" },
	{ "job_timeout", "45", "45s" },
	{ "dedup_window", "0", "0" },
	{ "max_messages", "1000", "1000" },
	{ "max_bytes", "64k", "65536" },
	{ "overflow", "drop-oldest", "drop-oldest" },
	{ "min_free_disk", "1M", "1048576" },
	{ "archive", "yes", "yes" },
	{ "retention", "7d", "7d" },
	{ "retention_bytes", "1G", "1073741824" },
	{ "poll_interval", "250ms", "250ms" },
};
#define NEDITS	(sizeof(edits) / sizeof(edits[0]))

static int dirfd = -1;

/* 1 when a and b read the same for every key but skip (NULL: none). */
static int
conf_same(const struct sq_conf *a, const struct sq_conf *b, const char *skip)
{
	const char *const *k;
	char x[SQ_CONF_VALUE_MAX], y[SQ_CONF_VALUE_MAX];

	for (k = sq_conf_keys(); *k != NULL; k++) {
		if (skip != NULL && strcmp(*k, skip) == 0)
			continue;
		if (sq_conf_get(a, *k, x, sizeof(x)) == -1 ||
		    sq_conf_get(b, *k, y, sizeof(y)) == -1 || strcmp(x, y) != 0)
			return 0;
	}
	return 1;
}

static int
lines_of(const uint8_t *data, size_t size)
{
	size_t i;
	int n = 1;

	for (i = 0; i < size; i++)
		if (data[i] == '\n' && i + 1 < size)
			n++;
	return n;
}

static void
check_error(const char *err, int nlines)
{
	const char *p = err + strlen("queue.conf");
	char *end;
	long line;

	fuzz_check(errno == EINVAL || errno == EIO, "errno %d: %s", errno,
	    err);
	fuzz_check(strncmp(err, "queue.conf", strlen("queue.conf")) == 0 &&
	    (p[0] == ':'), "\"%s\"", err);
	if (isdigit((unsigned char)p[1])) {
		line = strtol(p + 1, &end, 10);
		fuzz_check(line >= 1 && line <= nlines && strncmp(end, ": ", 2)
		    == 0 && end[2] != '\0', "\"%s\" of %d lines", err, nlines);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sq_conf c, again;
	struct sq_queue q;
	char err[512], got[64];
	const char *const *k;
	size_t e;
	int nlines, line;

	if (size < 1)
		return 0;
	if (dirfd == -1 && (dirfd = open(fuzz_dir(), O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC)) == -1)
		abort();
	e = data[0] % NEDITS;
	data++;
	size--;
	nlines = lines_of(data, size);
	fuzz_write(dirfd, SQ_CONF_FILE, data, size);
	sq_conf_defaults(&c);
	err[0] = '\0';
	if (sq_conf_load(&c, dirfd, SQ_CONF_FILE, err, sizeof(err)) == -1) {
		check_error(err, nlines);
		return 0;
	}
	fuzz_check(c.max_attempts >= 1 && c.max_attempts <= 10000 &&
	    c.lease_ms >= 1000, "attempts %u lease %lld", c.max_attempts,
	    (long long)c.lease_ms);
	for (k = sq_conf_keys(); *k != NULL; k++)
		fuzz_check(sq_conf_source(dirfd, *k, &line) == 0 && line >= 0 &&
		    line <= nlines, "%s: line %d of %d", *k, line, nlines);

	memset(&q, 0, sizeof(q));
	q.fd = dirfd;
	q.conf = c;
	fuzz_check(sq_conf_update(&q, edits[e].key, edits[e].value, err,
	    sizeof(err)) == 0, "set %s = %s: %s", edits[e].key,
	    edits[e].value, err);
	sq_conf_defaults(&again);
	fuzz_check(sq_conf_load(&again, dirfd, SQ_CONF_FILE, err,
	    sizeof(err)) == 0, "after set %s = %s: %s", edits[e].key,
	    edits[e].value, err);
	fuzz_check(sq_conf_get(&again, edits[e].key, got, sizeof(got)) == 0 &&
	    strcmp(got, edits[e].shown) == 0, "set %s = %s, got %s",
	    edits[e].key, edits[e].value, got);
	fuzz_check(conf_same(&c, &again, edits[e].key), "set %s = %s "
	    "changed another key", edits[e].key, edits[e].value);
	return 0;
}
