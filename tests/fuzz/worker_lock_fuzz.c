/*
 * worker_lock_fuzz.c - the record in a worker's lock file
 * (run/worker.TOKEN: "heartbeat=MS lease=MS pid=N", sq_worker_record),
 * which any member of the queue's group can write, read by every
 * consumer that probes the worker (sq_worker_probe) while its lock is
 * held.
 *
 * Invariants: a worker whose heartbeat is fresh (the file's mtime is
 * now) is alive whatever its record says; one whose heartbeat is 1000
 * years old (ten times any duration spoolq takes) is hung when its
 * record parses, whatever figures it holds, or is empty (the queue's
 * lease judges it), and alive when the record does not parse (caught
 * half written).
 */
#include <sys/file.h>

#include "fuzz.h"
#include "internal.h"

#define LATER_MS	(1000LL * 365 * 86400 * 1000)	/* 1000 years */

static struct sq_queue q;
static int runfd = -1;

static void
setup(void)
{
	char path[PATH_MAX];

	if (runfd != -1)
		return;
	snprintf(path, sizeof(path), "%s/q", fuzz_dir());
	memset(&q, 0, sizeof(q));
	strlcpy(q.path, path, sizeof(q.path));
	sq_conf_defaults(&q.conf);
	q.tmpfd = q.newfd = q.curfd = q.retryfd = q.deadfd = q.index_fd = -1;
	if (mkdir(path, 0755) == -1 || (q.fd = open(path, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC)) == -1 || mkdirat(q.fd, SQ_DIR_RUN,
	    0755) == -1 || (runfd = openat(q.fd, SQ_DIR_RUN, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC)) == -1)
		abort();
}

/* 1 when the record parses as sq_worker_record writes it, else 0. */
static int
parses(const char *s)
{
	long long beat, lease;

	return sscanf(s, "heartbeat=%lld lease=%lld", &beat, &lease) == 2 &&
	    beat > 0 && lease > 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum sq_worker_state now, later;
	char *s;
	struct stat st;
	int64_t mtime;
	int fd;

	if (size > 95)
		return 0;	/* a record is read from its first 95 bytes */
	setup();
	s = fuzz_str(data, size);
	fuzz_write(runfd, SQ_WORKER_PREFIX "T", data, size);
	/* The worker: a lock held through another open file. */
	if ((fd = openat(runfd, SQ_WORKER_PREFIX "T", O_RDONLY |
	    O_CLOEXEC)) == -1 || flock(fd, LOCK_EX) == -1 ||
	    fstat(fd, &st) == -1)
		abort();
	mtime = SQ_MTIME_MS(&st);
	now = sq_worker_probe(&q, "T", mtime);
	later = sq_worker_probe(&q, "T", mtime + LATER_MS);
	close(fd);
	fuzz_check(now == SQ_WORKER_ALIVE, "\"%s\": %d with a fresh heartbeat",
	    s, (int)now);
	if (size == 0 || parses(s))
		fuzz_check(later == SQ_WORKER_HUNG, "\"%s\": %d after 1000 "
		    "years", s, (int)later);
	else
		fuzz_check(later == SQ_WORKER_ALIVE, "\"%s\": %d after 1000 "
		    "years", s, (int)later);
	free(s);
	return 0;
}
