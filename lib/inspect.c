/*
 * inspect.c - looking at a queue without changing it: the statistics of
 * `qadmin stats`, the oldest messages of a state for `qadmin ls -n`, and
 * opening a message or its failure record by ID for `qadmin cat`.
 *
 * Invariants: nothing here renames, unlinks or creates anything, so it
 * is safe beside any producer, consumer or worker.  Directories are
 * streamed with sq_msg_each (one readdir pass, an lstat per entry), so
 * memory is constant in the size of the queue; the only exception,
 * sq_msg_oldest, holds as many names as its caller asks for.  Symlinks
 * are never followed and only regular files are opened (O_NOFOLLOW |
 * O_NONBLOCK, then fstat), so a FIFO or a link planted in a queue can
 * neither block an inspection nor redirect it.
 *
 * The dead-letter rate is read from the ctime of the files in dead/: a
 * rename sets the ctime of the file it moves, so the ctime of a dead
 * letter is the time it was dead-lettered (unless it was chmod'ed or
 * linked since).  No counters are kept anywhere.  Dead letters are
 * counted by reason in a fixed table (struct sq_stats), so that reasons
 * made up by users cannot make memory grow.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspect.h"
#include "internal.h"

#define OPEN_TRIES	8	/* sq_msg_open: finds of a moving message */

/* The reasons always in the table, in this order. */
static const char *const std_reasons[] = {
	SQ_REASON_ATTEMPTS, SQ_REASON_EXPIRED, SQ_REASON_REJECTED,
	SQ_REASON_TIMEOUT, "overflow"
};
#define NSTD_REASONS	(sizeof(std_reasons) / sizeof(std_reasons[0]))

/* Upper bounds of the ready-age buckets, in minutes (qshape(1)). */
static const int64_t age_limits_m[SQ_STATS_AGES - 1] = {
	5, 10, 20, 40, 80, 160
};

static const char *const age_labels[SQ_STATS_AGES] = {
	"0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m", "160m+"
};

const char *
sq_stats_age_label(size_t i)
{
	return i < SQ_STATS_AGES ? age_labels[i] : NULL;
}

size_t
sq_stats_age_bucket(int64_t age_s)
{
	size_t i;

	for (i = 0; i < SQ_STATS_AGES - 1; i++)
		if (age_s < age_limits_m[i] * 60)
			return i;
	return SQ_STATS_AGES - 1;
}

/*
 * Count one dead letter under its reason: a slot of the table, found or
 * made (the reasons after the standard ones kept sorted), or "other".
 */
static void
count_reason(struct sq_stats *s, const char *reason)
{
	struct sq_stats_reason *r = s->dead_reason;
	size_t i, at;
	int c;

	if (reason[0] == '\0' || strcmp(reason, "other") == 0) {
		s->dead_other++;	/* one "other" series, not two */
		return;
	}
	for (i = 0; i < NSTD_REASONS; i++)
		if (strcmp(reason, r[i].name) == 0) {
			r[i].count++;
			return;
		}
	for (at = NSTD_REASONS; at < s->ndead_reasons; at++) {
		if ((c = strcmp(reason, r[at].name)) == 0) {
			r[at].count++;
			return;
		}
		if (c < 0)
			break;
	}
	if (s->ndead_reasons == SQ_STATS_REASONS) {
		s->dead_other++;
		return;
	}
	memmove(&r[at + 1], &r[at], (s->ndead_reasons - at) * sizeof(*r));
	strlcpy(r[at].name, reason, sizeof(r[at].name));
	r[at].count = 1;
	s->ndead_reasons++;
}

const char *
sq_msg_stray(const struct sq_msg *m)
{
	switch (m->st.st_mode & S_IFMT) {
	case S_IFREG:
		return m->parsed ? NULL : "bad-name";
	case S_IFLNK:
		return "symlink";
	case S_IFIFO:
		return "fifo";
	case S_IFDIR:
		return "directory";
	case S_IFSOCK:
		return "socket";
	default:
		return "device";
	}
}

static int64_t
ts_ms(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

int64_t
sq_msg_sent_ms(const struct sq_msg *m)
{
	int64_t t;

	if ((t = sq_id_time_ms(m->n.id)) >= 0)
		return t;
	return ts_ms(&m->st.st_mtim);
}

/* Keep the smaller of *min and t (-1 = none yet); t < 0 is no value. */
static void
keep_min(int64_t *min, int64_t t)
{
	if (t >= 0 && (*min < 0 || t < *min))
		*min = t;
}

static int
count_msg(const struct sq_msg *m, void *arg)
{
	struct sq_stats *s = arg;
	int64_t age_ms;
	unsigned a;

	if (sq_msg_stray(m) != NULL) {
		s->stray++;
		return 0;
	}
	s->state[m->state].count++;
	s->state[m->state].bytes += (uint64_t)m->st.st_size;
	a = m->n.attempts;
	s->attempts[a < SQ_STATS_ATTEMPTS - 1 ? a : SQ_STATS_ATTEMPTS - 1]++;
	switch (m->state) {
	case SQ_STATE_READY:
		keep_min(&s->oldest_ready, sq_msg_sent_ms(m));
		s->ready_age[sq_stats_age_bucket((s->now_ms -
		    sq_msg_sent_ms(m)) / 1000)]++;
		break;
	case SQ_STATE_INFLIGHT:
		keep_min(&s->earliest_lease, m->n.lease);
		break;
	case SQ_STATE_RETRY:
		keep_min(&s->next_due, m->n.due);
		break;
	case SQ_STATE_DEAD:
		count_reason(s, m->n.reason);
		age_ms = s->now_ms - ts_ms(&m->st.st_ctim);
		if (age_ms < (int64_t)SQ_STATS_HOUR_S * 1000)
			s->dead_last_hour++;
		if (age_ms < (int64_t)SQ_STATS_DAY_S * 1000)
			s->dead_last_day++;
		break;
	default:
		break;
	}
	return 0;
}

/*
 * A message waiting in its group (groups/KEY/) is ready, blocked only by
 * its group's head: it counts with new/ in every ready figure.
 */
static int
count_grouped(const struct sq_msg *m, void *arg)
{
	struct sq_msg r = *m;

	r.state = SQ_STATE_READY;
	return count_msg(&r, arg);
}

/* 1 when s is a worker token as spoolq(5) allows: [A-Za-z0-9]{1,32}. */
static int
token_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= SQ_TOKEN_MAX - 1 ||
		    !((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return i > 0;
}

/* Probe every run/worker.TOKEN that is a regular file. */
static int
count_workers(struct sq_queue *q, struct sq_stats *s)
{
	const size_t plen = sizeof(SQ_WORKER_PREFIX) - 1;
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd;

	fd = openat(q->fd, SQ_DIR_RUN, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, SQ_WORKER_PREFIX, plen) != 0 ||
		    !token_valid(e->d_name + plen))
			continue;
		/* The probe opens the file: only a regular one. */
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1 || !S_ISREG(st.st_mode))
			continue;
		switch (sq_worker_probe(q, e->d_name + plen, s->now_ms)) {
		case SQ_WORKER_ALIVE:
			s->workers_alive++;
			break;
		case SQ_WORKER_HUNG:
			s->workers_hung++;
			break;
		default:
			break;
		}
	}
	closedir(d);
	return 0;
}

int
sq_stats_collect(struct sq_queue *q, int64_t now_ms, struct sq_stats *s)
{
	uint64_t v[SQ_NCOUNTERS];
	size_t i;
	int st;

	memset(s, 0, sizeof(*s));
	s->now_ms = now_ms;
	s->oldest_ready = s->earliest_lease = s->next_due = -1;
	for (i = 0; i < NSTD_REASONS; i++)
		strlcpy(s->dead_reason[i].name, std_reasons[i],
		    sizeof(s->dead_reason[i].name));
	s->ndead_reasons = NSTD_REASONS;
	for (st = 0; st < SQ_NSTATES; st++)
		if (sq_msg_each(q, (enum sq_state)st, count_msg, s) == -1)
			return -1;
	if (sq_msg_each(q, SQ_STATE_GROUPED, count_grouped, s) == -1)
		return -1;
	if (sq_counter_read(q, v) == 0) {
		s->sent = v[SQ_COUNT_SENT];
		s->acked = v[SQ_COUNT_ACKED];
		s->retried = v[SQ_COUNT_RETRIED];
		s->dead_lettered = v[SQ_COUNT_DEAD];
		s->dropped = v[SQ_COUNT_DROPPED];
	}
	if (sq_group_stats(q, &s->groups) == -1)
		return -1;
	return count_workers(q, s);
}

/* ------------------------------------------------ the oldest of a state */

struct oldest_entry {
	char		name[SQ_NAME_MAX + 1];
	struct stat	st;
};

/* A max-heap of at most max entries: the root is the newest kept. */
struct oldest {
	struct oldest_entry *heap;
	size_t		n, alloc, max;
};

/* Compare names by ID (the part before the first comma), then whole. */
static int
name_cmp(const char *a, const char *b)
{
	size_t la = strcspn(a, ","), lb = strcspn(b, ",");
	int c = memcmp(a, b, la < lb ? la : lb);

	if (c != 0)
		return c;
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a, b);
}

static void
heap_swap(struct oldest_entry *h, size_t i, size_t j)
{
	struct oldest_entry t = h[i];

	h[i] = h[j];
	h[j] = t;
}

static void
sift_down(struct oldest_entry *h, size_t n, size_t i)
{
	size_t big, l;

	for (;;) {
		big = i;
		l = 2 * i + 1;
		if (l < n && name_cmp(h[l].name, h[big].name) > 0)
			big = l;
		if (l + 1 < n && name_cmp(h[l + 1].name, h[big].name) > 0)
			big = l + 1;
		if (big == i)
			return;
		heap_swap(h, i, big);
		i = big;
	}
}

static int
keep_oldest(const struct sq_msg *m, void *arg)
{
	struct oldest *o = arg;
	struct oldest_entry *e;
	size_t i, want;

	if (o->n == o->max) {
		/* Full: replace the newest kept if this one is older. */
		if (name_cmp(m->name, o->heap[0].name) >= 0)
			return 0;
		strlcpy(o->heap[0].name, m->name, sizeof(o->heap[0].name));
		o->heap[0].st = m->st;
		sift_down(o->heap, o->n, 0);
		return 0;
	}
	if (o->n == o->alloc) {
		want = o->alloc == 0 ? 64 : o->alloc * 2;
		if (want > o->max)
			want = o->max;
		if ((e = reallocarray(o->heap, want, sizeof(*e))) == NULL)
			return -1;
		o->heap = e;
		o->alloc = want;
	}
	i = o->n++;
	strlcpy(o->heap[i].name, m->name, sizeof(o->heap[i].name));
	o->heap[i].st = m->st;
	while (i > 0 && name_cmp(o->heap[(i - 1) / 2].name,
	    o->heap[i].name) < 0) {
		heap_swap(o->heap, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	return name_cmp(((const struct oldest_entry *)a)->name,
	    ((const struct oldest_entry *)b)->name);
}

int
sq_msg_oldest(struct sq_queue *q, enum sq_state st, size_t max,
    sq_msg_fn *fn, void *arg)
{
	struct oldest o = { NULL, 0, 0, max };
	struct sq_msg m;
	size_t i;
	int dfd = -1, rc = 0, saved;

	if (max == 0)
		return 0;
	if (sq_msg_each(q, st, keep_oldest, &o) == -1)
		goto fail;
	if (o.n == 0)
		goto out;
	sort(o.heap, o.n, sizeof(*o.heap), entry_cmp);
	/* Grouped messages are in a directory each group: none given. */
	if (st != SQ_STATE_GROUPED && (dfd = sq_state_open(q, st, 0)) == -1)
		goto fail;
	for (i = 0; i < o.n && rc == 0; i++) {
		memset(&m, 0, sizeof(m));
		m.state = st;
		m.dirfd = dfd;
		m.name = o.heap[i].name;
		m.parsed = sq_name_parse(&m.n, m.name) == 0;
		m.st = o.heap[i].st;
		rc = fn(&m, arg);
	}
	if (rc == -1)
		goto fail;
out:
	if (dfd != -1)
		close(dfd);
	free(o.heap);
	return 0;
fail:
	saved = errno;
	if (dfd != -1)
		close(dfd);
	free(o.heap);
	errno = saved;
	return -1;
}

/* ------------------------------------------------ opening by ID */

/* Open name in dfd for reading if it is a regular file; fstat into st. */
static int
open_regular(int dfd, const char *name, struct stat *st)
{
	return sq_open_regular(dfd, name, O_RDONLY, 0, st);
}

int
sq_msg_open(struct sq_queue *q, const char *id, struct sq_msg *out,
    char *name)
{
	int dfd, fd, tries, saved;

	for (tries = 0; tries < OPEN_TRIES; tries++) {
		if (sq_msg_find(q, id, out, name) == -1)
			return -1;
		dfd = out->state == SQ_STATE_GROUPED ? group_dir_of(q, name) :
		    sq_state_open(q, out->state, 0);
		if (dfd == -1) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		fd = open_regular(dfd, name, &out->st);
		saved = errno;
		close(dfd);
		if (fd != -1)
			return fd;
		/* Moved on, or replaced by something else: look again. */
		if (saved != ENOENT && saved != EINVAL) {
			errno = saved;
			return -1;
		}
	}
	errno = EAGAIN;
	return -1;
}

int
sq_failure_open(struct sq_queue *q, const char *id)
{
	char file[SQ_ID_MAX + sizeof(SQ_FAILURE_SUFFIX)];
	struct sq_name n;
	struct stat st;
	int afd, fd, saved;

	if (sq_name_parse(&n, id) == -1 || strcmp(n.id, id) != 0) {
		errno = EINVAL;
		return -1;
	}
	snprintf(file, sizeof(file), "%s%s", id, SQ_FAILURE_SUFFIX);
	afd = openat(q->fd, SQ_DIR_ATTR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (afd == -1)
		return -1;
	fd = open_regular(afd, file, &st);
	saved = errno;
	close(afd);
	errno = saved;
	return fd;
}
