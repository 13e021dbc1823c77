/*
 * backoff_test.c - the bounded exponential back-off: waits double from
 * the first up to the cap, each shortened by at most a fifth, a reset
 * starts over; a lock held elsewhere is waited for no longer than its
 * bound, and one that is free is taken at once.
 */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"

/* Every wait lies in [step - step/5, step]. */
static int
within(int64_t d, int64_t step)
{
	return d <= step && d >= step - step / 5;
}

int
main(void)
{
	static const int64_t steps[] = { 100, 200, 400, 800, 1600, 3200, 5000,
	    5000, 5000 };
	char path[] = "/tmp/spoolq-backoff.XXXXXX";
	struct sq_backoff b;
	int64_t d, t0, took;
	size_t i;
	int bad = 0, fd, other;

	sq_backoff_init(&b, 100, 5000);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (!within(d = sq_backoff_next(&b), steps[i])) {
			printf("# wait %zu: %lld, want %lld less up to a fifth\n",
			    i + 1, (long long)d, (long long)steps[i]);
			bad = 1;
		}
	ok(!bad, "waits 100, 200, ... 3200, then 5000 ms (the cap), each "
	    "less up to a fifth");
	ok(b.tries == sizeof(steps) / sizeof(steps[0]), "tries counted: %u",
	    b.tries);
	sq_backoff_reset(&b);
	ok(within(sq_backoff_next(&b), 100) && b.tries == 1,
	    "after a reset the first wait is min_ms again");

	sq_backoff_init(&b, 0, -1);
	ok(b.min_ms == 1 && b.max_ms == 1 && sq_backoff_next(&b) == 1,
	    "a zero minimum is 1 ms, a cap below it is the minimum");

	/* A 10-minute step cut to 50 ms: a minute is far beyond any load. */
	sq_backoff_init(&b, 600000, 600000);
	t0 = sq_now_ms();
	ok(sq_backoff_sleep(&b, t0 + 50) == 0 && sq_now_ms() - t0 < 60000,
	    "a sleep stops at until_ms");
	ok(sq_backoff_sleep(&b, t0) == -1 && errno == ETIMEDOUT,
	    "a sleep past until_ms is ETIMEDOUT");

	if ((fd = mkstemp(path)) == -1 ||
	    (other = open(path, O_RDWR | O_CLOEXEC)) == -1)
		return 1;
	ok(sq_backoff_lock(fd, LOCK_EX, 0) == 0, "a free lock is taken");
	/* Timed by the clock the bound is kept by, in the same whole ms. */
	t0 = sq_mono_ms();
	ok(sq_backoff_lock(other, LOCK_EX, 300) == 1,
	    "a lock held elsewhere is busy (1), not an error");
	took = sq_mono_ms() - t0;
	ok(took >= 300, "busy only after the bound: %lld ms", (long long)took);
	ok(sq_backoff_lock(other, LOCK_SH, 0) == 1,
	    "a bound of 0 tries once");
	flock(fd, LOCK_UN);
	ok(sq_backoff_lock(other, LOCK_SH, 0) == 0,
	    "free again: taken at once");
	ok(sq_backoff_lock(-1, LOCK_EX, 100) == -1 && errno == EBADF,
	    "an error is -1 with errno");
	close(fd);
	close(other);
	unlink(path);
	return tap_done();
}
