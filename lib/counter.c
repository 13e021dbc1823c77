/*
 * counter.c - throughput counters: the messages sent to a queue,
 * acknowledged, retried and dead-lettered since it was made, for
 * `qadmin stats` (rates are the change of a counter between two reports),
 * and the counts that could not be written (dropped).
 *
 * They live in run/counters, one line "SENT ACKED RETRIED DEAD DROPPED",
 * never derived from the directories (no scan per message).  A process
 * adds to its struct sq_queue (sq_counter_add) and writes the sums into
 * the file when the queue is closed, or at the next count once
 * COUNTER_FLUSH_MS has passed since it last did (a long-running qworker),
 * under flock(2) on the file held only for that read and write and waited
 * for at most COUNTER_WAIT_MS: a holder that is stopped (SIGSTOP, a
 * debugger) costs each other process that much at most.  A long-running
 * process keeps what it could not write for its next try; at close, what
 * cannot be written is not lost silently: its number is appended as one
 * line to run/counters.dropped (O_APPEND, under a shared flock that the
 * fold below excludes), and the next writer that holds the counters lock
 * folds those lines into DROPPED and empties the file.  Counts are lost
 * without a trace only when the process is killed before it writes, or
 * on an I/O error of both files.  The counters measure rates and never
 * take part in delivery: a failure to count never fails a transition.
 */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define COUNTER_FLUSH_MS	1000	/* a long-lived process writes this often */
#define COUNTER_WAIT_MS		10	/* then the counts wait or are dropped */
#define DROPPED_FILE		SQ_COUNTER_FILE ".dropped"
#define DROPPED_MAX		(1024 * 1024)	/* bytes of it read at a fold */

static void
counters_parse(int fd, uint64_t v[SQ_NCOUNTERS])
{
	char buf[160];
	unsigned long long a, b, c, d, e = 0;
	ssize_t n;

	memset(v, 0, sizeof(uint64_t) * SQ_NCOUNTERS);
	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return;
	buf[n] = '\0';
	/* A damaged record starts again from 0; DROPPED may be missing. */
	if (sscanf(buf, "%llu %llu %llu %llu %llu", &a, &b, &c, &d, &e) >= 4) {
		v[SQ_COUNT_SENT] = a;
		v[SQ_COUNT_ACKED] = b;
		v[SQ_COUNT_RETRIED] = c;
		v[SQ_COUNT_DEAD] = d;
		v[SQ_COUNT_DROPPED] = e;
	}
}

/* The sum of the numbers, one a line, in the open dropped file fd. */
static uint64_t
dropped_sum(int fd)
{
	char buf[4096];
	uint64_t sum = 0, cur = 0;
	off_t off = 0;
	ssize_t n, i;

	while (off < DROPPED_MAX &&
	    (n = pread(fd, buf, sizeof(buf), off)) > 0) {
		for (i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9')
				cur = cur * 10 + (uint64_t)(buf[i] - '0');
			else {
				sum += cur;
				cur = 0;
			}
		}
		off += n;
	}
	return sum;		/* a line not yet ended is not counted */
}

/*
 * Counts that could not be written: append their number to the dropped
 * file, under a shared lock (appenders share; a fold excludes them).
 */
static void
counters_drop(struct sq_queue *q, uint64_t n)
{
	char buf[32];
	int fd, len;

	fd = sq_open_regular(q->fd, DROPPED_FILE, O_WRONLY | O_CREAT |
	    O_APPEND, 0666, NULL);
	if (fd == -1)
		return;
	(void)share_file(q->share, fd);
	len = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)n);
	if (sq_backoff_lock(fd, LOCK_SH, COUNTER_WAIT_MS) == 0)
		(void)write(fd, buf, (size_t)len);
	close(fd);
}

/*
 * Under the counters lock: the counts dropped so far, into *dfd locked
 * (LOCK_EX) for counters_unfold to empty once the sum is written; 0 and
 * *dfd -1 when there are none or an appender holds it.
 */
static uint64_t
counters_fold(struct sq_queue *q, int *dfd)
{
	uint64_t sum;
	int fd;

	*dfd = -1;
	fd = sq_open_regular(q->fd, DROPPED_FILE, O_RDWR, 0, NULL);
	if (fd == -1)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		close(fd);
		return 0;
	}
	sum = dropped_sum(fd);
	*dfd = fd;
	return sum;
}

/* The folded counts are in run/counters: empty the dropped file. */
static void
counters_unfold(int dfd, int written)
{
	if (dfd == -1)
		return;
	if (written)
		(void)ftruncate(dfd, 0);
	close(dfd);
}

int
sq_counter_flush(struct sq_queue *q, int final)
{
	uint64_t v[SQ_NCOUNTERS], pending = 0;
	char buf[160];
	int fd, dfd, i, len, rc = -1, saved = errno;

	for (i = 0; i < SQ_NCOUNTERS; i++)
		pending += q->counted[i];
	if (pending == 0 || q->fd < 0)
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
	v[SQ_COUNT_DROPPED] += counters_fold(q, &dfd);
	len = snprintf(buf, sizeof(buf), "%llu %llu %llu %llu %llu\n",
	    (unsigned long long)v[0], (unsigned long long)v[1],
	    (unsigned long long)v[2], (unsigned long long)v[3],
	    (unsigned long long)v[4]);
	/* Never shorter than before: a plain overwrite, no truncation. */
	if (pwrite(fd, buf, (size_t)len, 0) == len)
		rc = 0;
	counters_unfold(dfd, rc == 0);
	close(fd);			/* drops the lock */
out:
	if (rc == -1 && !final) {
		errno = saved;		/* kept for the next try */
		return -1;
	}
	if (rc == -1)
		counters_drop(q, pending);
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
		(void)sq_counter_flush(q, 0);
}

int
sq_counter_read(struct sq_queue *q, uint64_t v[SQ_NCOUNTERS])
{
	int fd;

	memset(v, 0, sizeof(uint64_t) * SQ_NCOUNTERS);
	fd = sq_open_regular(q->fd, SQ_COUNTER_FILE, O_RDONLY, 0, NULL);
	if (fd == -1 && errno != ENOENT)
		return -1;
	if (fd != -1) {
		counters_parse(fd, v);
		close(fd);
	}
	/* Drops not yet folded in count too. */
	if ((fd = sq_open_regular(q->fd, DROPPED_FILE, O_RDONLY, 0, NULL)) !=
	    -1) {
		v[SQ_COUNT_DROPPED] += dropped_sum(fd);
		close(fd);
	}
	return 0;
}
