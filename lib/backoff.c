/*
 * backoff.c - waiting before a step that failed is tried again.
 *
 * A step that fails and leaves the state unchanged (a start that ran out
 * of descriptors, a lock that is busy, a full queue) is never retried at
 * once (SPEC 2, "Hostile and broken surroundings"): the wait doubles
 * from min_ms up to max_ms, less up to a fifth at random so that many
 * waiters on one cause do not retry in step (AWS, "Exponential backoff
 * and jitter").  A success resets it.
 *
 * Locks are waited for the same way, never blocking in flock(2): a
 * holder that is stopped (SIGSTOP, a host cut off from a shared file
 * system) would hold everyone else for as long as it stays stopped
 * (SPEC 2: no consumer waits on a lock without a bound).
 */
#include <sys/file.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "internal.h"

#define LOCK_FIRST_MS	1		/* locks are mostly held for microseconds */
#define LOCK_MAX_MS	50		/* longest wait between tries of a lock */

void
sq_backoff_init(struct sq_backoff *b, int64_t min_ms, int64_t max_ms)
{
	b->min_ms = min_ms > 0 ? min_ms : 1;
	b->max_ms = max_ms > b->min_ms ? max_ms : b->min_ms;
	b->step_ms = 0;
	b->tries = 0;
}

void
sq_backoff_reset(struct sq_backoff *b)
{
	b->step_ms = 0;
	b->tries = 0;
}

int64_t
sq_backoff_next(struct sq_backoff *b)
{
	int64_t d, span;

	if (b->step_ms == 0)
		b->step_ms = b->min_ms;
	else if (b->step_ms < b->max_ms)
		b->step_ms = b->step_ms > b->max_ms / 2 ? b->max_ms :
		    b->step_ms * 2;
	b->tries++;
	d = b->step_ms;
	span = d / 5;
	if (span > 0)
		d -= (int64_t)arc4random_uniform((uint32_t)(span > UINT32_MAX ?
		    UINT32_MAX : span) + 1);
	return d;
}

/* Sleep for the next wait of b, but not past until by the clock now(). */
static int
sleep_until(struct sq_backoff *b, int64_t until, int64_t (*now)(void))
{
	int64_t d = sq_backoff_next(b), t;

	if (until != INT64_MAX) {
		if ((t = now()) >= until) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (until - t < d)
			d = until - t;
	}
	if (poll(NULL, 0, (int)(d > INT32_MAX ? INT32_MAX : d)) == -1)
		return -1;
	return 0;
}

int
sq_backoff_sleep(struct sq_backoff *b, int64_t until_ms)
{
	return sleep_until(b, until_ms, sq_now_ms);
}

int
backoff_sleep_mono(struct sq_backoff *b, int64_t until)
{
	return sleep_until(b, until, sq_mono_ms);
}

/*
 * The bound is kept by the monotonic clock: a step of the wall clock
 * (NTP, by hand) must neither stretch nor cut the wait for a lock.
 */
int
sq_backoff_lock(int fd, int op, int64_t wait_ms)
{
	struct sq_backoff b;
	int64_t until = wait_ms < 0 ? INT64_MAX : sq_mono_ms() + wait_ms;

	sq_backoff_init(&b, LOCK_FIRST_MS, LOCK_MAX_MS);
	for (;;) {
		if (flock(fd, op | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (backoff_sleep_mono(&b, until) == -1) {
			if (errno == ETIMEDOUT)
				return 1;
			if (errno != EINTR)
				return -1;
		}
	}
}
