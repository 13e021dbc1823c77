/*
 * age_test.c - ages are measured from the full time an ID holds (seconds
 * and nanoseconds) and are never taken as longer than they are: ttl
 * expiry, gc of tmp/ and the ages of qadmin stats, at fixed clock values.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "internal.h"
#include "inspect.h"
#include "repair.h"
#include "tap.h"
#include "tap_queue.h"

/* Sent at 1700000000.999 s: whole seconds would make it 0.999 s older. */
#define ID	"1700000000.999000000.42_0_0a0b0c0d.host"
#define SENT_MS	1700000000999LL

static void
test_id_time(void)
{
	ok(sq_id_time_ms(ID) == SENT_MS, "ID time in ms keeps the fraction");
	ok(sq_id_time(ID) == 1700000000, "ID time in s rounds down");
	ok(sq_id_time_ms("1700000000.000000001.1_0_00000000.h") ==
	    1700000000000LL, "a nanosecond rounds down to the millisecond");
	ok(sq_id_time_ms("hand-made") == -1, "a hand-made ID has no time");
	ok(sq_id_time_ms("1700000000.99900000x.1_0_00000000.h") == -1,
	    "a bad fraction is no time");
}

static void
test_ttl(void)
{
	struct sq_queue q;
	struct sq_name n;

	memset(&q, 0, sizeof(q));
	q.conf.ttl_ms = 1000;
	ok(sq_name_parse(&n, ID) == 0, "ID parses");
	ok(!expired(&q, &n, SENT_MS + 501),
	    "ttl=1s: 0.501 s after the send it has not expired (sent x.999, "
	    "now x+1.5)");
	ok(!expired(&q, &n, SENT_MS + 1000),
	    "ttl=1s: exactly 1 s after the send it has not expired");
	ok(expired(&q, &n, SENT_MS + 1001), "ttl=1s: 1.001 s after, expired");
	q.conf.ttl_ms = 0;
	ok(!expired(&q, &n, SENT_MS + 86400000LL), "ttl=0 never expires");
	ok(sq_name_parse(&n, ID ",e=1700000002") == 0, "e= parses");
	ok(!expired(&q, &n, 1700000001999LL), "e=: not before its second");
	ok(expired(&q, &n, 1700000002000LL), "e=: expired at its second");
}

/* In q (ttl=1s), the one ready message ID. */
static void
test_gc_and_stats(struct sq_queue *q)
{
	struct sq_stats s;
	struct timespec ts[2];
	struct stat st;
	int fd;

	if ((fd = openat(q->newfd, ID, O_WRONLY | O_CREAT | O_EXCL, 0644)) ==
	    -1 || close(fd) == -1) {
		ok(0, "send %s: %s", ID, strerror(errno));
		return;
	}

	ok(sq_stats_collect(q, SENT_MS + 299500, &s) == 0, "stats");
	ok(s.oldest_ready == SENT_MS, "oldest ready: its send time in ms");
	ok(s.ready_age[sq_stats_age_bucket(299)] == 1 &&
	    sq_stats_age_bucket(299) != sq_stats_age_bucket(300),
	    "299.5 s old counts as under 300 s, not as 300 s");

	/* ttl=1s: gc at x+1.5 s keeps the message, at x+2.0 s expires it. */
	ok(fstatat(q->newfd, ID, &st, 0) == 0 &&
	    sq_queue_gc(q, SENT_MS + 501, SQ_GC_TMP_AGE_MS, 0, NULL, NULL) ==
	    0 && fstatat(q->newfd, ID, &st, 0) == 0,
	    "gc leaves a message 0.501 s old under ttl=1s in new/");
	ok(sq_queue_gc(q, SENT_MS + 1001, SQ_GC_TMP_AGE_MS, 0, NULL, NULL) ==
	    0 && fstatat(q->newfd, ID, &st, 0) == -1 &&
	    fstatat(q->deadfd, ID ",r=expired", &st, 0) == 0,
	    "gc dead-letters it 1.001 s after its send with r=expired");
	/* A tmp/ file written at x.999 is not older than 36 h at +36h-1ms. */
	fd = openat(q->tmpfd, "leftover", O_WRONLY | O_CREAT | O_EXCL, 0644);
	ts[0].tv_sec = ts[1].tv_sec = 1700000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 999000000;
	ok(fd != -1 && futimens(fd, ts) == 0 && close(fd) == 0,
	    "tmp file with mtime x.999");
	ok(sq_queue_gc(q, SENT_MS + SQ_GC_TMP_AGE_MS, SQ_GC_TMP_AGE_MS, 0,
	    NULL, NULL) == 0 && fstatat(q->tmpfd, "leftover", &st, 0) == 0,
	    "gc keeps a tmp file exactly 36 h old");

	ok(sq_queue_gc(q, SENT_MS + SQ_GC_TMP_AGE_MS + 1, SQ_GC_TMP_AGE_MS,
	    0, NULL, NULL) == 0 && fstatat(q->tmpfd, "leftover", &st, 0) == -1,
	    "gc removes the tmp file 1 ms later");
}

int
main(void)
{
	static const char *const keys[] = { "ttl" };
	static const char *const values[] = { "1s" };
	struct tap_queue t;
	struct sq_queue q;

	test_id_time();
	test_ttl();
	tap_queue_make(&t, &q, keys, values, 1);
	test_gc_and_stats(&q);
	tap_queue_remove(&t, &q);
	return tap_done();
}
