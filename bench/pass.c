/*
 * bench/pass - time the maintenance pass of a queue's message groups
 * (sq_group_maintain, spoolq(5) "Message groups") as a claim runs it,
 * for bench/groups.
 *
 * usage: bench/pass QUEUE ROUNDS
 *
 * Runs ROUNDS passes of QUEUE (a path), each at a clock 11 s ahead of
 * the real one, so that each is due (groups/,maint, written by the one
 * before, is more than 10 s old to it) and sees every baton as older
 * than the 5 s a baton is left alone: a pass as a queue with slow
 * consumers meets it.  Prints the best time of one pass in nanoseconds.
 * Exit status: 0, or 1 when the queue cannot be opened or a pass fails.
 */
#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "spoolq.h"

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
main(int argc, char *argv[])
{
	struct sq_queue q;
	char why[512];
	int64_t best = INT64_MAX, t0, t1;
	long rounds, i;

	if (argc != 3 || (rounds = strtol(argv[2], NULL, 10)) < 1)
		errx(64, "usage: bench/pass QUEUE ROUNDS");
	if (sq_queue_open(&q, argv[1], why, sizeof(why)) == -1)
		errx(1, "%s", why);
	for (i = 0; i < rounds; i++) {
		t0 = mono_ns();
		if (sq_group_maintain(&q, sq_now_ms() + 11000, 0, NULL,
		    NULL) == -1)
			err(1, "%s: pass", argv[1]);
		t1 = mono_ns();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	sq_queue_close(&q);
	printf("%lld\n", (long long)best);
	return 0;
}
