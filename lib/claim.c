/*
 * claim.c - consumers: claim ready messages, keep the queue moving.
 *
 * The claim is one rename new/NAME -> cur/ID,a=k+1,l=DEADLINE: whoever
 * renames first owns the message; a loser sees ENOENT and moves on.
 *
 * Which names to try comes from run/index, a sorted snapshot of new/
 * with a cursor, shared by every consumer of the queue under flock(2)
 * on the file itself.  A claim reads a few names at the cursor and
 * advances it; only when the snapshot is used up is new/ listed again.
 * So the cost of a claim does not grow with the backlog, even for one
 * process per message (SPEC 6; Directory::Queue solves the same problem
 * with time buckets, which would break shell globs over new/).  The snapshot holds
 * at most INDEX_MAX names, the oldest, so its memory is bounded too.
 * The index is a cache: when it is damaged or missing it is rebuilt, and
 * a name in it is only a hint - the rename decides.  Its lock is waited
 * for at most INDEX_WAIT_MS: past that (a holder that was stopped), a
 * claim lists new/ itself, so no stopped process stops the others.
 *
 * The header also records when the next retry falls due or lease ends;
 * the claim that finds that time passed runs sq_queue_maintain first.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define INDEX_MAX	65536		/* names in one snapshot */
#define INDEX_HDR	80		/* bytes of the text header */
#define INDEX_MAGIC	"spoolq-index-1"
#define INDEX_CHUNK	(16 * 1024)	/* bytes read at the cursor */
#define MAINT_EVERY_MS	(60 * 1000)	/* look for hand-made changes */
#define INDEX_WAIT_MS	2000		/* then claim without the index */

struct index {
	int	fd;
	int64_t	cursor, end;		/* byte offsets into the file */
	int64_t	maint_ms;		/* run maintenance at this time */
};

/* ------------------------------------------------------------- index */

static int
index_write_header(struct index *ix)
{
	char hdr[INDEX_HDR + 1];

	snprintf(hdr, sizeof(hdr), "%-15s %020lld %020lld %020lld",
	    INDEX_MAGIC, (long long)ix->cursor, (long long)ix->end,
	    (long long)ix->maint_ms);
	memset(hdr + strlen(hdr), ' ', INDEX_HDR - strlen(hdr));
	hdr[INDEX_HDR - 1] = '\n';
	return pwrite(ix->fd, hdr, INDEX_HDR, 0) == INDEX_HDR ? 0 : -1;
}

/* Make the index read as used up: the next claim lists new/ again. */
static void
index_invalidate(struct index *ix)
{
	ix->cursor = ix->end = INDEX_HDR;
	if (ftruncate(ix->fd, 0) == -1)
		return;		/* a header that fails to match reads so too */
}

/* Read the header; a damaged or foreign one reads as "used up, maintain". */
static void
index_read_header(struct index *ix)
{
	char hdr[INDEX_HDR + 1], magic[32];
	long long cursor, end, maint;
	struct stat st;

	ix->cursor = ix->end = INDEX_HDR;
	ix->maint_ms = 0;
	if (pread(ix->fd, hdr, INDEX_HDR, 0) != INDEX_HDR)
		return;
	hdr[INDEX_HDR] = '\0';
	if (sscanf(hdr, "%31s %lld %lld %lld", magic, &cursor, &end,
	    &maint) != 4 || strcmp(magic, INDEX_MAGIC) != 0)
		return;
	if (fstat(ix->fd, &st) == -1 || st.st_size != end ||
	    cursor < INDEX_HDR || cursor > end)
		return;
	ix->cursor = cursor;
	ix->end = end;
	ix->maint_ms = maint;
}

static int
index_lock(struct sq_queue *q, struct index *ix)
{
	if (q->index_fd == -1) {
		q->index_fd = sq_open_regular(q->fd, SQ_INDEX_FILE, O_RDWR |
		    O_CREAT, 0666, NULL);
		if (q->index_fd == -1)
			return -1;
		share_file(q->share, q->index_fd);
	}
	ix->fd = q->index_fd;
	/*
	 * Bounded: a holder that was stopped must not stop every consumer
	 * (SPEC 2).  Busy reads as EBUSY: the caller does without.
	 */
	switch (sq_backoff_lock(ix->fd, LOCK_EX, INDEX_WAIT_MS)) {
	case 0:
		break;
	case 1:
		errno = EBUSY;
		return -1;
	default:
		return -1;
	}
	index_read_header(ix);
	return 0;
}

static void
index_unlock(struct index *ix)
{
	flock(ix->fd, LOCK_UN);
}

int
index_lower_maint(struct sq_queue *q, int64_t at_ms)
{
	struct index ix;
	int rc = 0;

	if (index_lock(q, &ix) == -1)
		return -1;
	if (at_ms < ix.maint_ms) {
		ix.maint_ms = at_ms;
		rc = index_write_header(&ix);
	}
	index_unlock(&ix);
	return rc;
}

int
sq_queue_refresh(struct sq_queue *q)
{
	struct index ix;
	int rc;

	if (index_lock(q, &ix) == -1)
		return errno == ENOENT || errno == SQ_ENOTREG ? 0 : -1;
	ix.cursor = ix.end;
	ix.maint_ms = 0;
	rc = index_write_header(&ix);
	index_unlock(&ix);
	return rc;
}

/* Names collected from new/: one arena of NUL-terminated strings. */
struct snapshot {
	char	*arena;
	size_t	 used, size;
	size_t	*off;
	size_t	 n, alloc;
};

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and keep the oldest max names, compacting the arena. */
static int
snapshot_trim(struct snapshot *s, size_t max)
{
	char **v, *arena;
	size_t i, used = 0, keep;

	if ((v = reallocarray(NULL, s->n ? s->n : 1, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < s->n; i++)
		v[i] = s->arena + s->off[i];
	sort(v, s->n, sizeof(*v), cmp_names);
	keep = s->n < max ? s->n : max;
	if ((arena = malloc(s->size)) == NULL) {
		free(v);
		return -1;
	}
	for (i = 0; i < keep; i++) {
		size_t len = strlen(v[i]) + 1;

		memcpy(arena + used, v[i], len);
		s->off[i] = used;
		used += len;
	}
	free(v);
	free(s->arena);
	s->arena = arena;
	s->used = used;
	s->n = keep;
	return 0;
}

static int
snapshot_add(struct snapshot *s, const char *name)
{
	size_t len = strlen(name) + 1;
	void *p;

	if (s->used + len > s->size) {
		size_t size = s->size ? s->size * 2 : 64 * 1024;

		while (size < s->used + len)
			size *= 2;
		if ((p = realloc(s->arena, size)) == NULL)
			return -1;
		s->arena = p;
		s->size = size;
	}
	if (s->n == s->alloc) {
		size_t n = s->alloc ? s->alloc * 2 : 1024;

		if ((p = reallocarray(s->off, n, sizeof(*s->off))) == NULL)
			return -1;
		s->off = p;
		s->alloc = n;
	}
	memcpy(s->arena + s->used, name, len);
	s->off[s->n++] = s->used;
	s->used += len;
	if (s->n >= 2 * INDEX_MAX)
		return snapshot_trim(s, INDEX_MAX);
	return 0;
}

/* List new/ (dot names and names with newlines skipped) into a snapshot. */
static int
snapshot_take(struct sq_queue *q, struct snapshot *s)
{
	struct dirent *e;
	DIR *d;
	int fd, rc = 0;

	memset(s, 0, sizeof(*s));
	if ((fd = openat(q->newfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC))
	    == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strchr(e->d_name, '\n') != NULL)
			continue;
		/* Only regular files are messages: the rest never gets in. */
		if (!sq_entry_regular(dirfd(d), e->d_name, e->d_type))
			continue;
		rc = snapshot_add(s, e->d_name);
	}
	closedir(d);
	if (rc == 0)
		rc = snapshot_trim(s, INDEX_MAX);
	return rc;
}

static void
snapshot_free(struct snapshot *s)
{
	free(s->arena);
	free(s->off);
	memset(s, 0, sizeof(*s));
}

/*
 * Rewrite the index from a fresh listing.  The header is written last:
 * until then its end does not match the file size, so a crash mid-way
 * leaves an index that reads as used up.  When the index cannot be
 * written (a full disk, a read-only run/), the listing is kept in *s for
 * this claim alone and 1 is returned: consumers must go on working on a
 * full disk, for they are what frees it.  0 when written, -1 on error.
 */
static int
index_rebuild(struct sq_queue *q, struct index *ix, struct snapshot *s)
{
	if (snapshot_take(q, s) == -1)
		return -1;
	if (ftruncate(ix->fd, INDEX_HDR) == -1 ||
	    (s->used > 0 && pwrite(ix->fd, s->arena, s->used, INDEX_HDR) !=
	    (ssize_t)s->used))
		goto unwritten;
	ix->cursor = INDEX_HDR;
	ix->end = INDEX_HDR + (int64_t)s->used;
	if (index_write_header(ix) == -1)
		goto unwritten;
	snapshot_free(s);
	return 0;
unwritten:
	index_invalidate(ix);
	return 1;
}

/* ------------------------------------------------------------- claims */

/* What one claim call is doing, for every name it tries. */
struct claimer {
	int64_t		 now_ms;
	int64_t		 deadline;	/* lease end, epoch seconds */
	int64_t		 lease_ms;	/* the lease, from each rename */
	const char	*token;		/* worker token, or NULL */
	const char	*drop;		/* dead-letter instead, this reason */
};

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
	(void)sq_rename(tofd, moved, q->newfd, name);
	return 0;
}

/*
 * Try to claim the ready message name.  Returns 1 when claimed (out
 * filled), 0 when it is gone, dead-lettered or not a message, -1 on error.
 * When dropping (overflow = drop-oldest), "claimed" means moved to dead/.
 */
static int
claim_one(struct sq_queue *q, const char *name, const struct claimer *c,
    struct sq_claim *out)
{
	struct sq_name n;
	int64_t now_ms = c->now_ms;
	int rc;

	if (sq_name_parse(&n, name) == -1)
		return 0;		/* left for qadmin check */
	if (c->drop != NULL) {
		dead_name(&n, c->drop);
		if (move_message(q->newfd, name, q->deadfd, &n, out->name) ==
		    -1)
			return errno == ENOENT || errno == EEXIST ? 0 : -1;
		if (!claimed_regular(q, name, q->deadfd, out->name))
			return 0;
		sq_counter_add(q, SQ_COUNT_DEAD, 1);
		sq_group_release(q, &n);
		out->n = n;
		return 1;
	}
	if (expired(q, &n, now_ms) || n.attempts >= q->conf.max_attempts) {
		dead_name(&n, expired(q, &n, now_ms) ? SQ_REASON_EXPIRED :
		    SQ_REASON_ATTEMPTS);
		if (move_message(q->newfd, name, q->deadfd, &n, NULL) == 0) {
			sq_counter_add(q, SQ_COUNT_DEAD, 1);
			sq_group_release(q, &n);
		} else if (errno != ENOENT && errno != EEXIST)
			return -1;
		return 0;
	}
	ready_name(&n);
	n.attempts++;
	/* From now: a claimer stopped since it began gets a whole lease. */
	n.lease = SQ_MS_TO_S_CEIL(sq_now_ms() + c->lease_ms);
	if (c->token != NULL)
		strlcpy(n.token, c->token, sizeof(n.token));
	/* A worker back from a pause beats before it claims (worker.c). */
	if (c->token != NULL && sq_worker_fresh(q) == -1)
		return -1;
	if (move_message(q->newfd, name, q->curfd, &n, out->name) == -1)
		return errno == ENOENT || errno == EEXIST ? 0 : -1;
	/* Paused in the rename: beat, then see the claim is still there. */
	if (c->token != NULL)
		(void)sq_worker_fresh(q);
	if (!claimed_regular(q, name, q->curfd, out->name))
		return 0;
	/* The group hook: only its group's head is handed out. */
	if (n.group[0] != '\0' && (rc = sq_group_admit(q, out->name, &n)) !=
	    1)
		return rc;
	out->n = n;
	return 1;
}

/* Claim from the index at its cursor until max are claimed or it ends. */
static int
claim_from_index(struct sq_queue *q, struct index *ix, const struct claimer *c,
    struct sq_claim *out, size_t max, size_t *got)
{
	char buf[INDEX_CHUNK];
	ssize_t r;
	size_t pos;
	int rc;

	while (*got < max && ix->cursor < ix->end) {
		r = pread(ix->fd, buf, sizeof(buf), ix->cursor);
		if (r <= 0)
			return -1;
		for (pos = 0; *got < max && pos < (size_t)r;) {
			char *nul = memchr(buf + pos, '\0', (size_t)r - pos);

			if (nul == NULL) {
				if (pos == 0) {		/* longer than a chunk */
					ix->cursor = ix->end;
					return 0;
				}
				break;
			}
			rc = claim_one(q, buf + pos, c, &out[*got]);
			ix->cursor += nul - (buf + pos) + 1;
			pos = (size_t)(nul - buf) + 1;
			if (rc == -1)
				return -1;
			*got += (size_t)rc;
		}
	}
	return 0;
}

/* Claim from a listing held in memory (the index could not be written). */
static int
claim_from_snapshot(struct sq_queue *q, struct snapshot *s,
    const struct claimer *c, struct sq_claim *out, size_t max, size_t *got)
{
	size_t i;
	int rc;

	for (i = 0; i < s->n && *got < max; i++) {
		if ((rc = claim_one(q, s->arena + s->off[i], c,
		    &out[*got])) == -1)
			return -1;
		*got += (size_t)rc;
	}
	return 0;
}

/*
 * Claim without the index, when run/index cannot be created (a full disk,
 * a read-only or missing run/): maintain, list new/, claim from the
 * listing.
 */
static int
claim_unindexed(struct sq_queue *q, const struct claimer *c,
    struct sq_claim *out, size_t max, size_t *got, int64_t *next_ms)
{
	struct sq_maint m;
	struct snapshot snap;
	int rc;

	(void)sq_workers_check(q, c->now_ms);	/* best effort here */
	if (sq_queue_maintain(q, c->now_ms, &m) == -1 ||
	    snapshot_take(q, &snap) == -1)
		return -1;
	rc = claim_from_snapshot(q, &snap, c, out, max, got);
	snapshot_free(&snap);
	*next_ms = m.next_ms < c->now_ms + MAINT_EVERY_MS ? m.next_ms :
	    c->now_ms + MAINT_EVERY_MS;
	return rc;
}

static int
claim(struct sq_queue *q, struct claimer *c, struct sq_claim *out,
    size_t max, size_t *got, int64_t *next_ms)
{
	struct sq_maint m;
	struct snapshot snap;
	struct index ix;
	int64_t now_ms = c->now_ms, deadline = c->deadline;
	int rebuilt = 0, checked = 0, rc = 0, saved;

	*got = 0;
	*next_ms = INT64_MAX;
	if (index_lock(q, &ix) == -1) {
		/*
		 * ENOENT: a hand-made queue without run/; EBUSY: a holder
		 * of the index lock is stopped; SQ_ENOTREG: something else
		 * planted as run/index (qadmin check reports it).
		 */
		if (errno != ENOSPC && errno != EDQUOT && errno != EACCES &&
		    errno != EROFS && errno != EPERM && errno != ENOENT &&
		    errno != EBUSY && errno != SQ_ENOTREG)
			return -1;
		return claim_unindexed(q, c, out, max, got, next_ms);
	}
	if (now_ms >= ix.maint_ms) {
		if ((rc = sq_queue_maintain(q, now_ms, &m)) == -1)
			goto out;
		ix.maint_ms = m.next_ms < now_ms + MAINT_EVERY_MS ? m.next_ms :
		    now_ms + MAINT_EVERY_MS;
		if (m.promoted + m.recovered > 0)
			ix.cursor = ix.end;	/* let them in now */
	}
	for (;;) {
		if ((rc = claim_from_index(q, &ix, c, out, max, got)) == -1 ||
		    *got == max)
			break;
		if (rebuilt) {
			/* Short: are claims of dead workers waiting? */
			if (checked || sq_workers_check(q, now_ms) != 1)
				break;
			checked = 1;
			if ((rc = sq_queue_maintain(q, now_ms, &m)) == -1)
				break;
			if (m.recovered == 0)
				break;
		}
		if ((rc = index_rebuild(q, &ix, &snap)) == -1)
			break;
		if (rc == 1) {
			rc = claim_from_snapshot(q, &snap, c, out, max, got);
			snapshot_free(&snap);
			break;
		}
		rebuilt = 1;
	}
	if (*got > 0 && c->drop == NULL && deadline * 1000 < ix.maint_ms)
		ix.maint_ms = deadline * 1000;
	*next_ms = ix.maint_ms;
out:
	saved = errno;
	/* The index is a cache: when it cannot be saved, it is dropped. */
	if (index_write_header(&ix) == -1)
		index_invalidate(&ix);
	index_unlock(&ix);
	errno = saved;
	return rc;
}

int
sq_claim(struct sq_queue *q, int64_t lease_ms, const char *token,
    struct sq_claim *out, size_t max, size_t *got, int64_t *next_ms)
{
	struct claimer c;

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
	return claim(q, &c, out, max, got, next_ms);
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

/* One maintenance pass: its counts and what it learnt of workers. */
struct pass {
	struct sq_maint	*m;
	int64_t		 now_ms;
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
note_next(struct sq_maint *m, int64_t at_s)
{
	if (at_s >= 0 && at_s * 1000 < m->next_ms)
		m->next_ms = at_s * 1000;
}

static int
promote(struct sq_queue *q, const char *name, struct sq_name *n,
    struct pass *p)
{
	if (n->due > 0 && n->due * 1000 > p->now_ms) {
		note_next(p->m, n->due);
		return 0;
	}
	ready_name(n);
	if (move_message(q->retryfd, name, q->newfd, n, NULL) == 0)
		p->m->promoted++;
	else if (errno != ENOENT && errno != EEXIST)
		return -1;
	return 0;
}

/* The state of a claim's worker, probed once per pass. */
static enum sq_worker_state
worker_state(struct sq_queue *q, const char *token, struct pass *p)
{
	enum sq_worker_state state;
	size_t i;

	for (i = 0; i < p->nprobed; i++)
		if (strcmp(p->probed[i].token, token) == 0)
			return p->probed[i].state;
	state = sq_worker_probe(q, token, p->now_ms);
	if (p->nprobed < PROBE_CACHE) {
		strlcpy(p->probed[p->nprobed].token, token, SQ_TOKEN_MAX);
		p->probed[p->nprobed++].state = state;
	}
	return state;
}

static int
recover(struct sq_queue *q, const char *name, struct sq_name *n,
    struct pass *p)
{
	int dead = n->attempts >= q->conf.max_attempts;

	if (n->token[0] != '\0') {
		/* A worker's claim lives as long as its worker. */
		if (worker_state(q, n->token, p) == SQ_WORKER_ALIVE)
			return 0;
	} else if (n->lease < 0 || n->lease * 1000 > p->now_ms) {
		note_next(p->m, n->lease);
		return 0;
	}
	if (dead)
		dead_name(n, SQ_REASON_ATTEMPTS);
	else
		ready_name(n);
	if (move_message(q->curfd, name, dead ? q->deadfd : q->newfd, n,
	    NULL) == 0) {
		(*(dead ? &p->m->dead : &p->m->recovered))++;
		if (dead) {
			sq_counter_add(q, SQ_COUNT_DEAD, 1);
			sq_group_release(q, n);
		}
	} else if (errno != ENOENT && errno != EEXIST)
		return -1;
	return 0;
}

int
sq_queue_maintain(struct sq_queue *q, int64_t now_ms, struct sq_maint *m)
{
	struct pass p;

	memset(m, 0, sizeof(*m));
	m->next_ms = INT64_MAX;
	p.m = m;
	p.now_ms = now_ms;
	p.nprobed = 0;
	if (each_message(q, q->retryfd, &p, promote) == -1 ||
	    each_message(q, q->curfd, &p, recover) == -1)
		return -1;
	/* Groups left half-way by a crash; best effort, rate-limited. */
	(void)sq_group_maintain(q, now_ms, 0, NULL, NULL);
	return 0;
}
