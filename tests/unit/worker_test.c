/*
 * worker_test.c - what a worker's lock file record may make consumers
 * believe: a held lock whose heartbeat is old enough is hung, whatever
 * figures a hand-written record holds, and none overflows.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"

#define YEAR_MS		(365LL * 86400 * 1000)

/* Write record as run/worker.T of q, hold its lock, probe at mtime + age. */
static enum sq_worker_state
probe(struct sq_queue *q, const char *record, int64_t age_ms)
{
	enum sq_worker_state st;
	struct stat sb;
	int fd;

	fd = openat(q->fd, SQ_DIR_RUN "/" SQ_WORKER_PREFIX "T", O_RDWR |
	    O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1 || write(fd, record, strlen(record)) == -1 ||
	    flock(fd, LOCK_EX) == -1 || fstat(fd, &sb) == -1)
		return (enum sq_worker_state)-1;
	st = sq_worker_probe(q, "T", (int64_t)sb.st_mtim.tv_sec * 1000 +
	    sb.st_mtim.tv_nsec / 1000000 + age_ms);
	close(fd);
	return st;
}

int
main(void)
{
	char dir[] = "/tmp/spoolq-unit.XXXXXX", path[PATH_MAX], err[512];
	struct sq_queue q;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/q", dir);
	if (sq_queue_create(path, NULL, NULL, 0, err, sizeof(err)) == -1 ||
	    sq_queue_open(&q, path, err, sizeof(err)) == -1) {
		printf("not ok 1 - make a queue: %s\n1..1\n", err);
		return 1;
	}
	ok(probe(&q, "heartbeat=10000 lease=300000 pid=1\n", 0) ==
	    SQ_WORKER_ALIVE, "a fresh heartbeat is alive");
	ok(probe(&q, "heartbeat=10000 lease=300000 pid=1\n", 300001) ==
	    SQ_WORKER_HUNG, "one older than the recorded lease is hung");
	ok(probe(&q, "heartbeat=10000 lease=300000 pid=1\n", 299000) ==
	    SQ_WORKER_ALIVE, "one within the recorded lease is alive");
	ok(probe(&q, "heartbeat=10000 lease=", 1000 * YEAR_MS) ==
	    SQ_WORKER_ALIVE, "a record caught half written is alive");
	ok(probe(&q, "heartbeat=10 lease=99999999999999999999999 pid=1\n",
	    1000 * YEAR_MS) == SQ_WORKER_HUNG,
	    "a lease past any duration does not keep claims forever");
	ok(probe(&q, "heartbeat=4000000000000000000 lease=1 pid=1\n",
	    1000 * YEAR_MS) == SQ_WORKER_HUNG,
	    "nor does a heartbeat whose triple overflows");
	sq_queue_close(&q);
	sq_queue_destroy(path, 1);
	rmdir(dir);
	return tap_done();
}
