/*
 * rate.c - rate limits: at most N jobs (or messages) per interval across
 * every worker of a queue, through one token bucket in run/rate.
 *
 * The bucket is kept as the generic cell rate algorithm keeps it (ITU-T
 * I.371; the "GCRA" of ATM and of most HTTP rate limiters): one time,
 * the theoretical arrival time TAT, in epoch microseconds.  With a rate
 * of N per interval I, each token costs T = I / N and the bucket holds
 * N: at time now, max(TAT, now) + I - now worth of tokens may be
 * taken, and taking k moves TAT to max(TAT, now) + k * T.  So a bucket
 * that was idle for a whole interval lets N go at once (the burst), and
 * from then on one every T.  A missing file is a full bucket.
 *
 * run/rate holds that one number on one line, always of the same width,
 * read and written with pread/pwrite under flock(2) on the file, held
 * only for that read and write and waited for at most RATE_WAIT_MS: a
 * holder that keeps it longer is taken for stopped, and the others
 * decide without the lock (SPEC 2: a stopped process never stops the
 * others), which may let a few more through than the rate while it
 * stays stopped.  A TAT more than one interval ahead (the clock was set
 * back) is taken as one interval ahead.  Workers that disagree on the
 * rate share the one bucket, each judging it by its own.
 */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define RATE_WAIT_MS	100		/* then decide without the lock */
#define RATE_COUNT_MAX	1000000		/* jobs per interval */
#define RATE_LINE	20		/* 19 digits, newline: fixed width */

int
sq_rate_parse(const char *s, struct sq_rate *r)
{
	char count[16], unit[32];
	const char *slash, *errstr;
	long long n;
	int64_t ms;
	size_t len;

	if (strcmp(s, "0") == 0) {
		r->count = 0;
		r->interval_ms = 0;
		return 0;
	}
	if ((slash = strchr(s, '/')) == NULL || slash[1] == '\0' ||
	    (len = (size_t)(slash - s)) == 0 || len >= sizeof(count) ||
	    strspn(s, "0123456789") != len)
		goto bad;
	memcpy(count, s, len);
	count[len] = '\0';
	n = strtonum(count, 1, RATE_COUNT_MAX, &errstr);
	if (errstr != NULL)
		goto bad;
	/* "s", "m", "h": one of them; "100ms", "2s": a duration. */
	if (snprintf(unit, sizeof(unit), "%s%s", slash[1] >= '0' &&
	    slash[1] <= '9' ? "" : "1", slash + 1) >= (int)sizeof(unit) ||
	    sq_duration_parse(unit, &ms) == -1 || ms < 1)
		goto bad;
	r->count = (unsigned)n;
	r->interval_ms = ms;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

void
sq_rate_format(const struct sq_rate *r, char *buf, size_t size)
{
	char d[32];

	if (r->count == 0) {
		strlcpy(buf, "0", size);
		return;
	}
	sq_duration_format(r->interval_ms, d, sizeof(d));
	snprintf(buf, size, "%u/%s", r->count, strcmp(d, "1s") == 0 ? "s" :
	    strcmp(d, "1m") == 0 ? "m" : strcmp(d, "1h") == 0 ? "h" : d);
}

/* Now in epoch microseconds. */
static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The cost of k tokens in microseconds: k * I / N, rounded up. */
static int64_t
cost_us(const struct sq_rate *r, size_t k)
{
	long double c = (long double)k * r->interval_ms * 1000 / r->count;

	return (int64_t)c + ((long double)(int64_t)c < c);
}

/*
 * Open and lock run/rate.  Returns the descriptor, locked unless the lock
 * stayed busy for RATE_WAIT_MS, or -1 with errno.
 */
static int
bucket_open(struct sq_queue *q)
{
	int fd;

	fd = sq_open_regular(q->fd, SQ_RATE_FILE, O_RDWR | O_CREAT, 0666,
	    NULL);
	if (fd == -1)
		return -1;
	(void)share_file(q->share, fd);
	if (sq_backoff_lock(fd, LOCK_EX, RATE_WAIT_MS) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The TAT of the bucket fd, within an interval of now; now if none. */
static int64_t
bucket_read(int fd, const struct sq_rate *r, int64_t now)
{
	char buf[RATE_LINE + 1];
	const char *errstr;
	long long tat;
	ssize_t n;

	if ((n = pread(fd, buf, RATE_LINE, 0)) <= 0)
		return now;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	tat = strtonum(buf, 0, INT64_MAX, &errstr);
	if (errstr != NULL || tat < now)
		return now;		/* idle, or damaged: a full bucket */
	if (tat > now + cost_us(r, r->count))
		return now + cost_us(r, r->count);
	return tat;
}

static int
bucket_write(int fd, int64_t tat)
{
	char buf[RATE_LINE + 1];

	snprintf(buf, sizeof(buf), "%019lld\n", (long long)tat);
	if (pwrite(fd, buf, RATE_LINE, 0) != RATE_LINE) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	return 0;
}

int
sq_rate_take(struct sq_queue *q, const struct sq_rate *r, size_t want,
    size_t *got, int64_t *next_ms)
{
	int64_t now = now_us(), tat, room, t;
	long double fit;
	size_t k;
	int fd, rc;

	*got = 0;
	*next_ms = INT64_MAX;
	if (r->count == 0 || want == 0) {
		*got = want;
		return 0;
	}
	if ((fd = bucket_open(q)) == -1)
		return -1;
	tat = bucket_read(fd, r, now);
	/* The tokens in the bucket: what is left of one interval past TAT. */
	room = now + cost_us(r, r->count) - tat;
	fit = (long double)room * r->count / ((long double)r->interval_ms *
	    1000);
	k = want < r->count ? want : r->count;
	if (fit < (long double)k)
		k = fit > 0 ? (size_t)fit : 0;
	while (k > 0 && cost_us(r, k) > room)
		k--;			/* rounding */
	rc = 0;
	if (k > 0)
		rc = bucket_write(fd, tat + cost_us(r, k));
	close(fd);			/* drops the lock */
	if (rc == -1)
		return -1;
	*got = k;
	if (k < want) {
		/* The next token: when one more fits. */
		t = tat + cost_us(r, k) + cost_us(r, 1) - cost_us(r, r->count);
		*next_ms = (t + 999) / 1000;
	}
	return 0;
}

int
sq_rate_give(struct sq_queue *q, const struct sq_rate *r, size_t n)
{
	int64_t now = now_us(), tat;
	int fd, rc;

	if (r->count == 0 || n == 0)
		return 0;
	if ((fd = bucket_open(q)) == -1)
		return -1;
	tat = bucket_read(fd, r, now) - cost_us(r, n);
	rc = bucket_write(fd, tat > now ? tat : now);
	close(fd);
	return rc;
}
