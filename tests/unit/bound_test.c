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
#include "tap_queue.h"

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
	struct tap_queue t;
	struct sq_queue q;
	char rec[64];

	tap_queue_make(&t, &q, keys, values, 2);
	ok(admit(&q, "0 0 -9223372036854775808\n") == 0,
	    "a record dated before 1970 is recounted: admitted");
	snprintf(rec, sizeof(rec), "999 0 %lld\n", (long long)sq_now_ms());
	ok(admit(&q, rec) == 0, "a fresh record of a full queue is "
	    "recounted before refusing: admitted");
	ok(admit(&q, "garbage") == 0, "garbage is recounted: admitted");
	tap_queue_remove(&t, &q);
	return tap_done();
}
