/*
 * bound_test.c - the usage record of a bounded queue (run/usage) as a
 * damaged or forged file may leave it: a sender recounts rather than
 * believe it, and no figure in it overflows (the sanitized build traps
 * on signed overflow).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"

/* Write record as run/usage of q and ask room for one message. */
static int
admit(struct sq_queue *q, const char *record)
{
	int fd, lockfd;

	fd = openat(q->fd, "run/usage", O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0644);
	if (fd == -1 || write(fd, record, strlen(record)) == -1 ||
	    close(fd) == -1)
		return -2;
	if (sq_bound_admit(q, 1, 10, 0, &lockfd) == -1)
		return -1;
	sq_bound_release(lockfd);
	return 0;
}

int
main(void)
{
	static const char *const keys[] = { "durability", "max_messages" };
	static const char *const values[] = { "none", "10" };
	char dir[] = "/tmp/spoolq-unit.XXXXXX", path[PATH_MAX], err[512];
	char rec[64];
	struct sq_queue q;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/q", dir);
	if (sq_queue_create(path, keys, values, 2, err, sizeof(err)) == -1 ||
	    sq_queue_open(&q, path, err, sizeof(err)) == -1) {
		printf("not ok 1 - make a queue: %s\n1..1\n", err);
		return 1;
	}
	ok(admit(&q, "0 0 -9223372036854775808\n") == 0,
	    "a record dated before 1970 is recounted: admitted");
	snprintf(rec, sizeof(rec), "999 0 %lld\n", (long long)sq_now_ms());
	ok(admit(&q, rec) == 0, "a fresh record of a full queue is "
	    "recounted before refusing: admitted");
	ok(admit(&q, "garbage") == 0, "garbage is recounted: admitted");
	sq_queue_close(&q);
	sq_queue_destroy(path, 1);
	rmdir(dir);
	return tap_done();
}
