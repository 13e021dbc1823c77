/*
 * bound.c - backpressure: max_messages, max_bytes and min_free_disk.
 *
 * A send must not list the queue to learn its size (SPEC 6), so the size
 * of ready + retry + in-flight is kept in run/usage ("COUNT BYTES MS"),
 * under flock(2) on that file.  Senders add what they admit; the file is
 * recounted from the directories when it is older than RECOUNT_MS, which
 * is how consumption shows up.  Between recounts the figure can only be
 * too high (consumers do not write it), so senders never overshoot the
 * bound by themselves; what an operator or a hand delivery adds within
 * one RECOUNT_MS is the documented overshoot.  A sender keeps the lock
 * from its admission until its messages are published, so a recount by
 * another sender cannot miss them.  The lock is waited for at most
 * USAGE_WAIT_MS (less when the lease or the sender's own wait is
 * shorter); after that the holder is taken for stalled (SIGSTOP, a host
 * cut off) and the sender decides by a fresh count without the lock
 * (SPEC 2: a stopped process never stops the others for longer than
 * its lease).  What such a count misses is the stalled sender's batch,
 * admitted but not yet published: that is the documented overshoot.  Without a bound set none
 * of this runs.  min_free_disk is Postfix's queue_minfree: refuse new
 * work when the file system is nearly full.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define USAGE_FILE	"run/usage"
#define RECOUNT_MS	1000		/* consumption shows up this late */
#define BLOCK_FIRST_MS	10		/* overflow = block: first look again */
#define USAGE_WAIT_MS	5000		/* then count without the lock */

struct usage {
	uint64_t	count, bytes;
	int64_t		ms;
};

struct tally {
	struct usage	*u;
	int		 bytes;		/* lstat for sizes too */
};

static int
tally_one(const struct sq_msg *m, void *arg)
{
	struct tally *t = arg;

	if (!S_ISREG(m->st.st_mode))
		return 0;
	t->u->count++;
	if (t->bytes)
		t->u->bytes += (uint64_t)m->st.st_size;
	return 0;
}

/*
 * Count ready, retry and in-flight messages, and those waiting in groups
 * (and bytes when bounded).
 */
static int
recount(struct sq_queue *q, struct usage *u)
{
	static const enum sq_state live[] = { SQ_STATE_READY, SQ_STATE_RETRY,
	    SQ_STATE_INFLIGHT };
	struct tally t = { u, q->conf.max_bytes > 0 };
	size_t i;

	u->count = u->bytes = 0;
	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (sq_msg_each(q, live[i], tally_one, &t) == -1)
			return -1;
	/* Messages waiting behind their group's head count too. */
	if (sq_group_each(q, tally_one, &t) == -1)
		return -1;
	u->ms = sq_now_ms();
	return 0;
}

static int
usage_read(int fd, struct usage *u)
{
	char buf[96];
	unsigned long long c, b;
	long long ms;
	ssize_t n;

	memset(u, 0, sizeof(*u));
	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	/* A damaged record (no time, or one before 1970) is recounted. */
	if (sscanf(buf, "%llu %llu %lld", &c, &b, &ms) == 3 && ms >= 0) {
		u->count = c;
		u->bytes = b;
		u->ms = ms;
	}
	return 0;
}

static int
usage_write(int fd, const struct usage *u)
{
	char buf[96];
	int len;

	len = snprintf(buf, sizeof(buf), "%llu %llu %lld\n",
	    (unsigned long long)u->count, (unsigned long long)u->bytes,
	    (long long)u->ms);
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)len, 0) != len)
		return -1;
	return 0;
}

static int
over(const struct sq_conf *c, const struct usage *u, size_t n, size_t bytes)
{
	return (c->max_messages > 0 && u->count + n > c->max_messages) ||
	    (c->max_bytes > 0 && u->bytes + bytes > c->max_bytes);
}

/* Dead-letter the oldest ready messages until n, bytes fit, or none is left. */
static int
make_room(struct sq_queue *q, struct usage *u, size_t n, size_t bytes)
{
	size_t dropped, need;

	while (over(&q->conf, u, n, bytes)) {
		need = q->conf.max_messages > 0 && u->count + n >
		    q->conf.max_messages ? u->count + n - q->conf.max_messages :
		    1;
		if (drop_oldest(q, need, SQ_REASON_OVERFLOW, &dropped) == -1 ||
		    recount(q, u) == -1)
			return -1;
		if (dropped == 0)
			break;		/* nothing ready is left to drop */
	}
	return 0;
}

/*
 * Decide without the lock, the holder being stalled: a fresh count, with
 * room made by drop-oldest, and nothing written to run/usage (its holder
 * will write it).  2 admitted without the lock, 1 full, -1 error.
 */
static int
admit_unlocked(struct sq_queue *q, size_t n, size_t bytes)
{
	struct usage u;

	if (recount(q, &u) == -1)
		return -1;
	if (q->conf.overflow == SQ_OVERFLOW_DROP_OLDEST &&
	    make_room(q, &u, n, bytes) == -1)
		return -1;
	return over(&q->conf, &u, n, bytes) ? 1 : 2;
}

/*
 * One attempt: 0 admitted with the usage lock taken (it is kept until
 * sq_bound_release, so that no recount by another sender misses what
 * this one is about to publish), 2 admitted without it (its holder is
 * stalled), 1 full, -1 error.  The lock is waited for at most lock_ms.
 */
static int
admit_once(struct sq_queue *q, int fd, size_t n, size_t bytes, int force,
    int64_t lock_ms)
{
	struct usage u;
	int rc;

	if ((rc = sq_backoff_lock(fd, LOCK_EX, lock_ms)) == 1)
		return admit_unlocked(q, n, bytes);
	if (rc == -1)
		return -1;
	usage_read(fd, &u);
	if ((force || sq_now_ms() - u.ms >= RECOUNT_MS ||
	    over(&q->conf, &u, n, bytes)) && recount(q, &u) == -1)
		goto fail;
	if (q->conf.overflow == SQ_OVERFLOW_DROP_OLDEST &&
	    make_room(q, &u, n, bytes) == -1)
		goto fail;
	if (over(&q->conf, &u, n, bytes)) {
		flock(fd, LOCK_UN);
		return 1;
	}
	u.count += n;
	u.bytes += bytes;
	if (usage_write(fd, &u) == -1)
		goto fail;
	return 0;
fail:
	flock(fd, LOCK_UN);
	return -1;
}

/*
 * How long to wait for the usage lock: never past until (sq_mono_ms),
 * nor the lease.
 */
static int64_t
lock_wait(const struct sq_queue *q, int64_t until)
{
	int64_t ms = USAGE_WAIT_MS, now = sq_mono_ms();

	if (q->conf.lease_ms > 0 && q->conf.lease_ms < ms)
		ms = q->conf.lease_ms;
	if (until != INT64_MAX && until - now < ms)
		ms = until > now ? until - now : 0;
	return ms;
}

int
sq_bound_admit(struct sq_queue *q, size_t n, size_t bytes, int64_t wait_ms,
    int *lockfd)
{
	struct statvfs sv;
	/* Monotonic: a step of the wall clock must not stretch the wait. */
	int64_t until = wait_ms < 0 ? INT64_MAX : sq_mono_ms() + wait_ms;
	struct sq_backoff b;
	int fd, rc, saved, first;

	*lockfd = -1;
	if (q->conf.min_free_disk > 0 && fstatvfs(q->fd, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < q->conf.min_free_disk) {
		errno = ENOSPC;
		return -1;
	}
	if (q->conf.max_messages == 0 && q->conf.max_bytes == 0)
		return 0;
	/* What can never fit is refused at once: no waiting, no dropping. */
	if (n == 1 && q->conf.max_bytes > 0 && bytes > q->conf.max_bytes) {
		errno = EFBIG;
		return -1;
	}
	fd = sq_open_regular(q->fd, USAGE_FILE, O_RDWR | O_CREAT, 0666, NULL);
	if (fd == -1)
		return -1;
	share_file(q->share, fd);	/* its creator's, else the group's */
	/* Room shows within poll_interval, and a full queue is not spun on. */
	sq_backoff_init(&b, BLOCK_FIRST_MS, q->conf.poll_interval_ms);
	for (first = 1;; first = 0) {
		rc = admit_once(q, fd, n, bytes, !first, lock_wait(q, until));
		/* A batch waits message by message: it may never fit whole. */
		if (rc != 1 || q->conf.overflow != SQ_OVERFLOW_BLOCK ||
		    n > 1 || sq_mono_ms() >= until)
			break;
		if (backoff_sleep_mono(&b, until) == -1 && errno != EINTR)
			break;
	}
	if (rc == 0 || rc == 2) {
		if (rc == 2)
			close(fd);
		*lockfd = rc == 0 ? fd : -1;
		return 0;
	}
	saved = errno;
	close(fd);
	errno = rc == 1 ? EAGAIN : saved;
	return -1;
}

void
sq_bound_release(int lockfd)
{
	if (lockfd != -1)
		close(lockfd);		/* drops the lock */
}
