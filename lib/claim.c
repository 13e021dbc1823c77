/*
 * claim.c - consumers: claim ready messages, keep the queue moving.
 *
 * The claim is one rename new/NAME -> cur/ID,a=k+1,l=DEADLINE: whoever
 * renames first owns the message; a loser sees ENOENT and moves on.  That
 * rename decides every race, between consumers of one host or of many;
 * nothing else is trusted.  claim_one is the one place where a candidate
 * name is accepted or skipped before that rename.  After it, what was
 * renamed is proven a regular file, else put back: by an fstatat(2) of
 * the claimed name, or for sq_claim_open, whose caller reads the body at
 * once, by the status of the body opened (claimed_open).
 *
 * Which names to try comes from the claim index of this host,
 * run/index.HOST (index.c): a sorted snapshot of the oldest names of new/
 * with a cursor, and a side list of the names that promotion and
 * recovery moved back into new/ after the snapshot was taken (older IDs:
 * they are merged ahead of the newer names in ID order, without listing
 * new/ again).  A claim takes a few names under the index's flock(2),
 * then tries them without it; only when the index is used up is new/
 * listed again, once per snapshot and host (the others of the host wait
 * for that listing, LIST_WAIT_MS at most).  So the cost of a claim does
 * not grow with the backlog, even for one process per message (SPEC 6),
 * nor with a trickle of retries.  The listing keeps only the oldest
 * INDEX_MAX names, in a bounded heap, so memory is bounded too.
 *
 * Why per host (spoolq(5), The claim index): on a shared file system the
 * clients of one host share one mount, so its flock and page cache agree,
 * while another host's view of a shared file can be stale (a one-file
 * index rewritten by each host made the other rebuild on every claim).
 * Hosts never read each other's index: they list new/ each for itself and
 * race on the same names, which the rename settles.  No lock is held
 * across a rename, a listing or maintenance, and the lock is waited for
 * at most INDEX_WAIT_MS: past that (a holder that was stopped), a claim
 * lists new/ itself, so no stopped process stops the others.
 *
 * The index also records when the next retry falls due or lease ends,
 * and the mtime of retry/ at the last maintenance: a claim that finds
 * that time passed, or retry/ changed (perhaps by another host), runs
 * maintenance first.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define INDEX_TAKE	64		/* names taken per lock hold */
#define MAINT_EVERY_MS	(60 * 1000)	/* look for hand-made changes */
#define LIST_WAIT_MS	5000		/* for another's listing, then list */
#define RETRY_LOOK_MS	1000		/* retry/ changed: maintain after, */
#define RETRY_LONG	1000		/* when it held this many */
#define MOVED_BYTES	(16 * 1024)	/* names one maintenance notes */

/* ------------------------------------------------------------- claims */

/* Names that one maintenance pass moved into new/, for the side list. */
struct moved {
	char	buf[MOVED_BYTES];	/* NUL-terminated names */
	size_t	len;
	int	overflow;		/* more than fit: some left out */
	size_t	retries;		/* messages seen in retry/ */
};

static int	maintain(struct sq_queue *, int64_t, struct sq_maint *,
		    struct moved *);

/*
 * Nonces for the names of claims made without a token, drawn from
 * arc4random a pool at a time: arc4random(3) of libbsd asks getpid(2)
 * at each call, to stir again after a fork, so one draw per claim was
 * a system call per message.  The pool lives for one claim call only,
 * so a process forked since never shares it.
 */
struct nonces {
	uint32_t	v[INDEX_TAKE];
	size_t		next;		/* v[next..] unused; 0 none drawn */
	int		drawn;
};

/* What one claim call is doing, for every name it tries. */
struct claimer {
	int64_t		 now_ms;
	int64_t		 deadline;	/* lease end, epoch seconds */
	int64_t		 lease_ms;	/* the lease, from each rename */
	const char	*token;		/* worker token, or NULL */
	const char	*drop;		/* dead-letter instead, this reason */
	int		 open;		/* open each body (sq_claim_open) */
	struct nonces	*nonces;	/* for claims without a token */
};

/* The next nonce of c's pool, drawn afresh when used up. */
static uint32_t
claim_nonce(const struct claimer *c)
{
	struct nonces *p = c->nonces;

	if (!p->drawn || p->next == sizeof(p->v) / sizeof(p->v[0])) {
		arc4random_buf(p->v, sizeof(p->v));
		p->next = 0;
		p->drawn = 1;
	}
	return p->v[p->next++];
}

/* Close the body a claim opened, if any; errno is kept. */
static void
claim_close(struct sq_claim *c)
{
	int saved = errno;

	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	errno = saved;
}

/*
 * The rename of new/name to tofd/moved is done: make sure it moved a
 * regular file.  Only those go into the index, but another one may have
 * taken the name since it was listed (a race, or a hand on the queue).
 * Such an entry is put back where it was, which qadmin check reports;
 * it is never handed out.  Returns 1 for a message, 0 for anything else.
 */
static int
claimed_regular(struct sq_queue *q, const char *name, int tofd,
    const char *moved)
{
	struct stat st;

	if (fstatat(tofd, moved, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;		/* gone on already */
	if (S_ISREG(st.st_mode))
		return 1;
	(void)move_rename(tofd, moved, q->newfd, name);
	return 0;
}

/*
 * claimed_regular for a claim whose body is wanted (sq_claim_open): the
 * body is opened as sq_open_regular opens it (O_NOFOLLOW, O_NONBLOCK:
 * nothing planted is followed or blocks), and the status of that open
 * file says whether it is a regular file, so it costs no fstatat(2)
 * before the open.  Anything else is put back where it was and closed;
 * an open that fails otherwise (EACCES, EMFILE) leaves out->fd at -1
 * and claimed_regular judges, so the caller's open meets the error as
 * it would have.  Returns 1 for a message, 0 for anything else.
 */
static int
claimed_open(struct sq_queue *q, const char *name, struct sq_claim *out)
{
	struct stat st;
	int fd;

	fd = openat(q->curfd, out->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;	/* gone on already */
		if (errno == ELOOP || errno == ENXIO) {
			/* A symlink or a socket: not a message. */
			(void)move_rename(q->curfd, out->name, q->newfd, name);
			return 0;
		}
		return claimed_regular(q, name, q->curfd, out->name);
	}
	if (fstat(fd, &st) == -1) {
		close(fd);
		return claimed_regular(q, name, q->curfd, out->name);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		(void)move_rename(q->curfd, out->name, q->newfd, name);
		return 0;
	}
	out->fd = fd;
	out->size = st.st_size;
	return 1;
}

/*
 * Try to claim the ready message name: the one place where a candidate
 * is accepted or skipped (a name that does not parse, an expired or
 * worn-out message) before the claim rename, wherever it came from (the
 * snapshot, the side list, a private listing).  Returns 1 when claimed
 * (out filled), 0 when it is gone, dead-lettered or not a message, -1 on
 * error.  When dropping (overflow = drop-oldest), "claimed" means moved
 * to dead/.
 */
static int
claim_one(struct sq_queue *q, const char *name, const struct claimer *c,
    struct sq_claim *out)
{
	struct sq_name n;
	int64_t now_ms = c->now_ms;
	int rc;

	out->fd = -1;
	out->size = -1;
	if (sq_name_parse(&n, name) == -1)
		return 0;		/* left for qadmin check */
	if (c->drop != NULL) {
		dead_name(&n, c->drop);
		/* A forward looks that it moves a regular file, before. */
		if (dead_letter_forward(q, q->newfd, name, &n, out->name) !=
		    1) {
			if (move_message(q->newfd, name, q->deadfd, &n,
			    out->name) == -1)
				return errno == ENOENT || errno == EEXIST ? 0 :
				    -1;
			if (!claimed_regular(q, name, q->deadfd, out->name))
				return 0;
		}
		sq_counter_add(q, SQ_COUNT_DEAD, 1);
		sq_group_release(q, &n);
		out->n = n;
		return 1;
	}
	if (expired(q, &n, now_ms) || n.attempts >= q->conf.max_attempts) {
		dead_name(&n, expired(q, &n, now_ms) ? SQ_REASON_EXPIRED :
		    SQ_REASON_ATTEMPTS);
		if (dead_letter_forward(q, q->newfd, name, &n, NULL) == 1 ||
		    move_message(q->newfd, name, q->deadfd, &n, NULL) == 0) {
			sq_counter_add(q, SQ_COUNT_DEAD, 1);
			sq_group_release(q, &n);
		} else if (errno != ENOENT && errno != EEXIST)
			return -1;
		return 0;
	}
	/*
	 * From now: a claimer stopped since it began gets a whole lease.
	 * The token or a nonce gives every claim a name of its own.
	 */
	claimed_name(&n, SQ_MS_TO_S_CEIL(sq_now_ms() + c->lease_ms),
	    c->token, c->token == NULL ? claim_nonce(c) : 0);
	/* A worker back from a pause beats before it claims (worker.c). */
	if (c->token != NULL && sq_worker_fresh(q) == -1)
		return -1;
	if (move_message(q->newfd, name, q->curfd, &n, out->name) == -1)
		return errno == ENOENT || errno == EEXIST ? 0 : -1;
	/* Paused in the rename: beat, then see the claim is still there. */
	if (c->token != NULL)
		(void)sq_worker_fresh(q);
	if (!(c->open ? claimed_open(q, name, out) :
	    claimed_regular(q, name, q->curfd, out->name)))
		return 0;
	/* The group hook: only its group's head is handed out. */
	if (n.group[0] != '\0' && (rc = sq_group_admit(q, out->name, &n)) !=
	    1) {
		claim_close(out);
		return rc;
	}
	out->n = n;
	return 1;
}

/* Claim each of the n names picked from the index, in order. */
static int
claim_picked(struct sq_queue *q, const struct claimer *c,
    char (*pick)[SQ_NAME_MAX + 1], size_t n, struct sq_claim *out,
    size_t *got)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if ((rc = claim_one(q, pick[i], c, &out[*got])) == -1)
			return -1;
		*got += (size_t)rc;
	}
	return 0;
}

/* Claim from a listing held in memory (the index could not be written). */
static int
claim_from_names(struct sq_queue *q, const struct names *l,
    const struct claimer *c, struct sq_claim *out, size_t max, size_t *got)
{
	size_t i;
	int rc;

	for (i = 0; i < l->n && *got < max; i++) {
		if ((rc = claim_one(q, l->v[i], c, &out[*got])) == -1)
			return -1;
		*got += (size_t)rc;
	}
	return 0;
}

/*
 * Claim without the index, when run/index.HOST cannot be created or
 * locked (a full disk, a read-only or missing run/, a stopped holder):
 * maintain, list new/, claim from the listing.
 */
static int
claim_unindexed(struct sq_queue *q, const struct claimer *c,
    struct sq_claim *out, size_t max, size_t *got, int64_t *next_ms)
{
	struct sq_maint m;
	struct names l;
	int rc;

	(void)workers_check(q, c->now_ms, c->token);	/* best effort */
	if (sq_queue_maintain(q, c->now_ms, &m) == -1 ||
	    names_list(q->newfd, INDEX_MAX, &l) == -1)
		return -1;
	rc = claim_from_names(q, &l, c, out, max, got);
	names_free(&l);
	*next_ms = m.next_ms < c->now_ms + MAINT_EVERY_MS ? m.next_ms :
	    c->now_ms + MAINT_EVERY_MS;
	return rc;
}

/* Whether the index cannot be used and a claim must list new/ itself. */
static int
index_unusable(int e)
{
	/*
	 * ENOENT: a hand-made queue without run/; EBUSY: a holder of the
	 * index lock is stopped; SQ_ENOTREG: something else planted as
	 * run/index.HOST (qadmin check reports it); the rest: a full disk,
	 * a read-only file system, no right to write run/.
	 */
	return e == ENOSPC || e == EDQUOT || e == EACCES || e == EROFS ||
	    e == EPERM || e == ENOENT || e == EBUSY || e == SQ_ENOTREG ||
	    e == ENAMETOOLONG;
}

static int64_t
mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/*
 * Maintenance is due when the index says so (a retry due, a lease ended,
 * a minute passed) or when retry/ changed since the last one: another
 * host's retry, which this host's index was never told of.  When the
 * last maintenance found RETRY_LONG messages or more in retry/, the
 * second is looked at RETRY_LOOK_MS after it at the earliest, so that a
 * stream of retries into a long retry/ does not make every claim list it.
 */
static int
maintenance_due(struct sq_queue *q, const struct index *ix, int64_t now_ms)
{
	struct stat st;

	if (now_ms >= ix->maint_ms)
		return 1;
	if (now_ms >= ix->maint_at_ms && now_ms - ix->maint_at_ms <
	    RETRY_LOOK_MS)
		return 0;
	return fstat(q->retryfd, &st) == 0 && mtime_ns(&st) != ix->retry_ns;
}

/*
 * Run maintenance without holding the index: its renames can stall on a
 * network file system.  The maintenance time is pushed on first, so that
 * the other consumers of this host do not run it too; then the names it
 * moved into new/ go on the side list, to be claimed in ID order ahead
 * of the newer names of the snapshot, without listing new/ again.  Sets
 * *moved.  Returns 0 with the index locked again, or -1 with errno and
 * the index not locked.
 */
static int
maintain_unlocked(struct sq_queue *q, struct index *ix, int64_t now_ms,
    size_t *moved)
{
	struct sq_maint m;
	struct moved *mv;
	struct stat st;
	int rc, saved;

	*moved = 0;
	if ((mv = malloc(sizeof(*mv))) == NULL) {
		index_unlock(ix);
		return -1;
	}
	mv->len = 0;
	mv->overflow = 0;
	mv->retries = 0;
	ix->maint_ms = now_ms + MAINT_EVERY_MS;
	ix->maint_at_ms = now_ms;
	if (fstat(q->retryfd, &st) == 0)
		ix->retry_ns = mtime_ns(&st);
	(void)index_save(ix);
	index_unlock(ix);
	rc = maintain(q, now_ms, &m, mv);
	saved = errno;
	if (index_lock(q, ix) == -1) {
		free(mv);
		return -1;
	}
	if (rc == -1) {
		ix->maint_ms = now_ms;	/* the next claim tries again */
	} else {
		*moved = m.promoted + m.recovered;
		if (mv->overflow)
			index_reset(ix);	/* a mass move: list new/ */
		else if (index_side_add(ix, mv->buf, mv->len) == -1)
			index_reset(ix);
		if (m.next_ms < ix->maint_ms)
			ix->maint_ms = m.next_ms;
		/* A short retry/ is cheap to look at again at once. */
		ix->maint_at_ms = mv->retries >= RETRY_LONG ? now_ms : 0;
	}
	free(mv);
	if (rc == -1) {
		(void)index_save(ix);
		index_unlock(ix);
		errno = saved;
	}
	return rc;
}

/* Whether another live consumer of this host is listing new/ now. */
static int
listing_by_other(const struct index *ix, int64_t now_ms)
{
	if (ix->list_pid <= 0 || ix->list_pid == getpid() ||
	    ix->list_ms > now_ms || now_ms - ix->list_ms >= LIST_WAIT_MS)
		return 0;
	return kill(ix->list_pid, 0) == 0 || errno == EPERM;
}

/*
 * The index is used up: list new/ into a new snapshot, without the lock,
 * unless another consumer of this host is listing it (then wait for its
 * snapshot, LIST_WAIT_MS at most), so a host lists new/ once per
 * snapshot.  Returns 0 with the index locked, 1 when the snapshot could
 * not be written and the claims were made from the listing in memory,
 * -1 with errno; the index is not locked unless 0 is returned.
 */
static int
relist(struct sq_queue *q, struct index *ix, const struct claimer *c,
    struct sq_claim *out, size_t max, size_t *got)
{
	struct sq_backoff b;
	struct names l;
	uint64_t gen;
	int64_t until = sq_mono_ms() + LIST_WAIT_MS;
	int rc, saved;

	sq_backoff_init(&b, 1, 50);
	while (listing_by_other(ix, sq_now_ms())) {
		gen = ix->gen;
		index_unlock(ix);
		rc = backoff_sleep_mono(&b, until);
		if (rc == -1 && errno != ETIMEDOUT)
			return -1;
		if (index_lock(q, ix) == -1)
			return -1;
		if (ix->gen != gen)
			return 0;		/* its snapshot is in */
		if (rc == -1)
			break;			/* it stalled: list here */
	}
	ix->list_pid = getpid();
	ix->list_ms = sq_now_ms();
	gen = ix->gen;
	(void)index_save(ix);
	index_unlock(ix);
	rc = names_list(q->newfd, INDEX_MAX, &l);
	saved = errno;
	if (index_lock(q, ix) == -1) {
		if (rc == 0 && errno == EBUSY) {
			rc = claim_from_names(q, &l, c, out, max, got);
			names_free(&l);
			return rc == -1 ? -1 : 1;
		}
		if (rc == 0)
			names_free(&l);
		return -1;
	}
	if (rc == -1) {
		ix->list_pid = 0;
		(void)index_save(ix);
		index_unlock(ix);
		errno = saved;
		return -1;
	}
	if (ix->gen != gen) {
		names_free(&l);		/* another's snapshot came first */
		return 0;
	}
	if (index_install(ix, &l) == 0) {
		names_free(&l);
		return 0;
	}
	/* Consumers must go on working on a full disk: they free it. */
	(void)index_save(ix);
	index_unlock(ix);
	rc = claim_from_names(q, &l, c, out, max, got);
	names_free(&l);
	return rc == -1 ? -1 : 1;
}

/*
 * A claim: take a few names from the index under its lock, then try
 * them without it, and so on until max are claimed or the index is used
 * up; then list new/ once, and when still short look for claims of dead
 * workers.  Every lock hold only reads and writes run/index.HOST.
 */
static int
claim(struct sq_queue *q, struct claimer *c, struct sq_claim *out,
    size_t max, size_t *got, int64_t *next_ms)
{
	char (*pick)[SQ_NAME_MAX + 1];
	struct index ix;
	size_t n, moved;
	int listed = 0, checked = 0, rc = 0;

	*got = 0;
	*next_ms = INT64_MAX;
	if ((pick = reallocarray(NULL, INDEX_TAKE, sizeof(*pick))) == NULL)
		return -1;
	if (index_lock(q, &ix) == -1 ||
	    (maintenance_due(q, &ix, c->now_ms) &&
	    maintain_unlocked(q, &ix, c->now_ms, &moved) == -1)) {
		free(pick);
		if (!index_unusable(errno))
			return -1;
		return claim_unindexed(q, c, out, max, got, next_ms);
	}
	while (*got < max) {
		n = index_take(&ix, pick, max - *got < INDEX_TAKE ?
		    max - *got : INDEX_TAKE);
		if (n > 0) {
			if (c->drop == NULL && c->deadline * 1000 < ix.maint_ms)
				ix.maint_ms = c->deadline * 1000;
			(void)index_save(&ix);	/* a cache: best effort */
			index_unlock(&ix);
			if ((rc = claim_picked(q, c, pick, n, out, got)) == -1 ||
			    *got == max)
				goto unlocked;
			if (index_lock(q, &ix) == -1)
				goto lost;
			continue;
		}
		if (!listed) {
			listed = 1;
			if ((rc = relist(q, &ix, c, out, max, got)) == -1)
				goto lost;
			if (rc == 1) {
				rc = 0;
				goto unlocked;
			}
			continue;
		}
		/* Short: are claims of dead workers waiting? */
		if (checked || workers_check(q, c->now_ms, c->token) != 1)
			break;
		checked = 1;
		if ((rc = maintain_unlocked(q, &ix, c->now_ms, &moved)) == -1)
			goto unlocked;
		if (moved == 0)
			break;
	}
	(void)index_save(&ix);
	index_unlock(&ix);
unlocked:
	*next_ms = ix.maint_ms;
	free(pick);
	return rc;
lost:
	/* The index was lost midway (a stopped holder): go on without it. */
	rc = index_unusable(errno) ? 0 : -1;
	if (rc == 0 && *got == 0) {
		free(pick);
		return claim_unindexed(q, c, out, max, got, next_ms);
	}
	goto unlocked;
}

static int
claim_call(struct sq_queue *q, int64_t lease_ms, const char *token,
    int open, struct sq_claim *out, size_t max, size_t *got,
    int64_t *next_ms)
{
	struct claimer c;
	struct nonces nonces;
	size_t i;

	*got = 0;
	*next_ms = INT64_MAX;
	/* A held queue hands out nothing (qadmin hold). */
	if (sq_queue_held(q))
		return 0;
	if (lease_ms <= 0)
		lease_ms = q->conf.lease_ms;
	c.now_ms = sq_now_ms();
	c.deadline = SQ_MS_TO_S_CEIL(c.now_ms + lease_ms);
	c.lease_ms = lease_ms;
	c.token = token;
	c.drop = NULL;
	c.open = open;
	nonces.drawn = 0;
	c.nonces = &nonces;
	if (claim(q, &c, out, max, got, next_ms) == -1) {
		for (i = 0; i < *got; i++)
			claim_close(&out[i]);
		return -1;
	}
	/* Groups whose heads are gone: best effort, a stat at most. */
	(void)sq_group_tick(q, c.now_ms, next_ms);
	return 0;
}

int
sq_claim(struct sq_queue *q, int64_t lease_ms, const char *token,
    struct sq_claim *out, size_t max, size_t *got, int64_t *next_ms)
{
	return claim_call(q, lease_ms, token, 0, out, max, got, next_ms);
}

int
sq_claim_open(struct sq_queue *q, int64_t lease_ms, const char *token,
    struct sq_claim *out, size_t max, size_t *got, int64_t *next_ms)
{
	return claim_call(q, lease_ms, token, 1, out, max, got, next_ms);
}

int
drop_oldest(struct sq_queue *q, size_t max, const char *reason, size_t *got)
{
	struct sq_claim out[16];
	struct claimer c;
	size_t n;
	int64_t next;

	c.now_ms = sq_now_ms();
	c.deadline = 0;
	c.lease_ms = 0;
	c.token = NULL;
	c.drop = reason;
	c.open = 0;
	c.nonces = NULL;		/* a drop makes no claim */
	for (*got = 0; *got < max; *got += n) {
		if (claim(q, &c, out, max - *got < 16 ? max - *got : 16, &n,
		    &next) == -1)
			return -1;
		if (n == 0)
			break;
	}
	return 0;
}

/* ------------------------------------------------------------- upkeep */

#define PROBE_CACHE	64	/* workers remembered within one pass */
#define JOB_LOOK_MS	1000	/* a claim kept by its job: look again */

/* One maintenance pass: its counts and what it learnt of workers. */
struct pass {
	struct sq_maint	*m;
	int64_t		 now_ms;
	struct moved	*mv;		/* or NULL */
	size_t		 nprobed;
	struct {
		char			token[SQ_TOKEN_MAX];
		enum sq_worker_state	state;
	} probed[PROBE_CACHE];
};

typedef int	visit_fn(struct sq_queue *, const char *, struct sq_name *,
		    struct pass *);

/*
 * Call fn for each parsable name of a regular file in the directory dirfd:
 * nothing else is ever promoted or recovered (qadmin check reports it).
 */
static int
each_message(struct sq_queue *q, int dirfd, struct pass *p, visit_fn *fn)
{
	struct dirent *e;
	struct sq_name n;
	DIR *d;
	int fd, rc = 0;

	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || sq_name_parse(&n, e->d_name) == -1 ||
		    !sq_entry_regular(fd, e->d_name, e->d_type))
			continue;
		rc = fn(q, e->d_name, &n, p);
	}
	closedir(d);
	return rc;
}

static void
note_next_ms(struct sq_maint *m, int64_t at_ms)
{
	if (at_ms >= 0 && at_ms < m->next_ms)
		m->next_ms = at_ms;
}

static void
note_next(struct sq_maint *m, int64_t at_s)
{
	if (at_s >= 0)
		note_next_ms(m, at_s * 1000);
}

/* Note a name moved into new/ (when the pass keeps them). */
static void
moved_note(struct pass *p, const char *name)
{
	size_t len = strlen(name) + 1;

	if (p->mv == NULL)
		return;
	if (p->mv->len + len > sizeof(p->mv->buf)) {
		p->mv->overflow = 1;
		return;
	}
	memcpy(p->mv->buf + p->mv->len, name, len);
	p->mv->len += len;
}

static int
promote(struct sq_queue *q, const char *name, struct sq_name *n,
    struct pass *p)
{
	char moved[SQ_NAME_MAX + 1];

	if (p->mv != NULL)
		p->mv->retries++;
	if (n->due > 0 && n->due * 1000 > p->now_ms) {
		note_next(p->m, n->due);
		return 0;
	}
	ready_name(n);
	if (move_message(q->retryfd, name, q->newfd, n, moved) == 0) {
		p->m->promoted++;
		moved_note(p, moved);
	} else if (errno != ENOENT && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * The state of a claim's worker, probed once per pass.  A live worker
 * judged by its heartbeat makes the pass note when that heartbeat turns
 * older than its lease: a worker stopped then (SIGSTOP, a host cut off)
 * is found hung by the next claim after that time, and its claims
 * recovered, rather than at a maintenance a lease or a minute later.
 */
static enum sq_worker_state
worker_state(struct sq_queue *q, const char *token, struct pass *p)
{
	enum sq_worker_state state;
	int64_t hung_ms = INT64_MAX;
	size_t i;

	for (i = 0; i < p->nprobed; i++)
		if (strcmp(p->probed[i].token, token) == 0)
			return p->probed[i].state;	/* noted */
	state = worker_probe_at(q, token, p->now_ms, &hung_ms);
	if (state == SQ_WORKER_ALIVE)
		note_next_ms(p->m, hung_ms);
	if (p->nprobed < PROBE_CACHE) {
		strlcpy(p->probed[p->nprobed].token, token, SQ_TOKEN_MAX);
		p->probed[p->nprobed++].state = state;
	}
	return state;
}

/*
 * The state of the job a dead or hung worker ran for the claim n, by its
 * job lock (sq_job_probe); a lock found free goes.  A job that outlived
 * its worker (a grandchild, which no parent-death signal reaches) holds
 * the lock until its whole tree is gone, but no longer than the lease
 * recorded in the lock past the worker's last beat of it (SPEC 2: a
 * stopped process never blocks others longer than its lease).  While it
 * holds the lock, the pass looks again JOB_LOOK_MS later: nothing tells
 * when a job ends.
 */
static enum sq_worker_state
job_state(struct sq_queue *q, const struct sq_name *n, struct pass *p)
{
	enum sq_worker_state state;
	int64_t hung_ms = INT64_MAX;

	state = job_probe_at(q, n->token, n->id, p->now_ms, 1, &hung_ms);
	if (state == SQ_WORKER_ALIVE)
		note_next_ms(p->m, hung_ms < p->now_ms + JOB_LOOK_MS ?
		    hung_ms : p->now_ms + JOB_LOOK_MS);
	return state;
}

static int
recover(struct sq_queue *q, const char *name, struct sq_name *n,
    struct pass *p)
{
	char moved[SQ_NAME_MAX + 1];
	int dead = n->attempts >= q->conf.max_attempts;

	if (n->token[0] != '\0') {
		/*
		 * A worker's claim lives as long as its worker, and after it
		 * as long as the job it ran (its job lock).
		 */
		if (worker_state(q, n->token, p) == SQ_WORKER_ALIVE ||
		    job_state(q, n, p) == SQ_WORKER_ALIVE)
			return 0;
	} else if (n->lease < 0 || n->lease * 1000 > p->now_ms) {
		note_next(p->m, n->lease);
		return 0;
	}
	if (dead)
		dead_name(n, SQ_REASON_ATTEMPTS);
	else
		ready_name(n);
	if ((dead && dead_letter_forward(q, q->curfd, name, n, moved) == 1) ||
	    move_message(q->curfd, name, dead ? q->deadfd : q->newfd, n,
	    moved) == 0) {
		(*(dead ? &p->m->dead : &p->m->recovered))++;
		if (dead) {
			sq_counter_add(q, SQ_COUNT_DEAD, 1);
			sq_group_release(q, n);
		} else
			moved_note(p, moved);
	} else if (errno != ENOENT && errno != EEXIST)
		return -1;
	return 0;
}

/* A maintenance pass; the names it moves into new/ go to mv (may be NULL). */
static int
maintain(struct sq_queue *q, int64_t now_ms, struct sq_maint *m,
    struct moved *mv)
{
	struct pass p;

	memset(m, 0, sizeof(*m));
	m->next_ms = INT64_MAX;
	p.m = m;
	p.now_ms = now_ms;
	p.mv = mv;
	p.nprobed = 0;
	if (each_message(q, q->retryfd, &p, promote) == -1 ||
	    each_message(q, q->curfd, &p, recover) == -1)
		return -1;
	/* Groups left half-way by a crash; best effort, rate-limited. */
	(void)sq_group_maintain(q, now_ms, 0, NULL, NULL);
	return 0;
}

int
sq_queue_maintain(struct sq_queue *q, int64_t now_ms, struct sq_maint *m)
{
	return maintain(q, now_ms, m, NULL);
}
