/*
 * counter.c - throughput counters: the messages sent to a queue,
 * acknowledged, retried and dead-lettered since it was made, for
 * `qadmin stats` (rates are the change of a counter between two reports).
 *
 * They live in run/counters, one line "SENT ACKED RETRIED DEAD", never
 * derived from the directories (no scan per message).  A process adds to
 * its struct sq_queue (sq_counter_add) and writes the sums into the file
 * when the queue is closed, or at the next count once COUNTER_FLUSH_MS
 * has passed since it last did (a long-running qworker), under flock(2)
 * on the file held only for that read and write and waited for at most
 * COUNTER_WAIT_MS.  A count is lost when the process is killed before it
 * writes, when the lock cannot be had in time or on an I/O error: the
 * counters measure rates and never take part in delivery, so nothing else
 * depends on them, and a failure to count never fails a transition.
 */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define COUNTER_FLUSH_MS	1000	/* a long-lived process writes this often */
#define COUNTER_WAIT_MS		100	/* then the counts are dropped */

static void
counters_parse(int fd, uint64_t v[SQ_NCOUNTERS])
{
	char buf[128];
	unsigned long long a, b, c, d;
	ssize_t n;

	memset(v, 0, sizeof(uint64_t) * SQ_NCOUNTERS);
	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return;
	buf[n] = '\0';
	/* A damaged record starts again from 0. */
	if (sscanf(buf, "%llu %llu %llu %llu", &a, &b, &c, &d) == 4) {
		v[SQ_COUNT_SENT] = a;
		v[SQ_COUNT_ACKED] = b;
		v[SQ_COUNT_RETRIED] = c;
		v[SQ_COUNT_DEAD] = d;
	}
}

int
sq_counter_flush(struct sq_queue *q)
{
	uint64_t v[SQ_NCOUNTERS];
	char buf[128];
	int fd, i, len, rc = -1, saved = errno;

	for (i = 0; i < SQ_NCOUNTERS && q->counted[i] == 0; i++)
		;
	if (i == SQ_NCOUNTERS || q->fd < 0)
		return 0;
	q->counted_ms = sq_now_ms();
	fd = sq_open_regular(q->fd, SQ_COUNTER_FILE, O_RDWR | O_CREAT, 0666,
	    NULL);
	if (fd == -1)
		goto out;
	(void)share_file(q->share, fd);
	if (sq_backoff_lock(fd, LOCK_EX, COUNTER_WAIT_MS) != 0) {
		close(fd);
		goto out;
	}
	counters_parse(fd, v);
	for (i = 0; i < SQ_NCOUNTERS; i++)
		v[i] += q->counted[i];
	len = snprintf(buf, sizeof(buf), "%llu %llu %llu %llu\n",
	    (unsigned long long)v[0], (unsigned long long)v[1],
	    (unsigned long long)v[2], (unsigned long long)v[3]);
	/* Never shorter than before: a plain overwrite, no truncation. */
	if (pwrite(fd, buf, (size_t)len, 0) == len)
		rc = 0;
	close(fd);			/* drops the lock */
out:
	memset(q->counted, 0, sizeof(q->counted));
	errno = saved;
	return rc;
}

void
sq_counter_add(struct sq_queue *q, int which, uint64_t n)
{
	int64_t now;

	q->counted[which] += n;
	now = sq_now_ms();
	if (q->counted_ms == 0)
		q->counted_ms = now;
	else if (now - q->counted_ms >= COUNTER_FLUSH_MS)
		(void)sq_counter_flush(q);
}

int
sq_counter_read(struct sq_queue *q, uint64_t v[SQ_NCOUNTERS])
{
	int fd;

	memset(v, 0, sizeof(uint64_t) * SQ_NCOUNTERS);
	fd = sq_open_regular(q->fd, SQ_COUNTER_FILE, O_RDONLY, 0, NULL);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	counters_parse(fd, v);
	close(fd);
	return 0;
}
