/*
 * send.c - producers: write bodies into tmp/, publish them into new/.
 *
 * Write sequence (OpenSMTPD queue_fs, maildir): open(O_CREAT|O_EXCL) in
 * tmp/, write, close, then - for durability = fsync - make the batch's
 * data durable, rename each file into new/ (the commit point: a consumer
 * never sees a partial body), and fsync new/ once.  A batch is made
 * durable with one fsync per file for small batches and one syncfs(2)
 * for larger ones, so that a batch pays one flush, not one per message.
 * On failure the uncommitted files are removed from tmp/; what was
 * committed stays.
 *
 * A send with a dedup ID is committed on its own, between its marker's
 * "pending" and "sent" (dedup.c), unless the batch defers them
 * (sq_batch_defer_dedup): then each keeps its marker locked and
 * "pending" (not flushed), and the name it is to take, in a slot; the
 * commit flushes bodies and markers together, renames each, flushes
 * new/, and only then unlocks each marker, left "pending": a pending
 * marker whose body has left tmp/ means "sent" (dedup.c).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Up to this many files a batch is synced file by file, above by syncfs. */
#define FSYNC_EACH_MAX	4
#define COPY_CHUNK	(64 * 1024)

int
sq_batch_options(struct sq_batch *b, const struct sq_msgopts *o)
{
	if (o != NULL && (sq_attr_check(o) == -1 ||
	    (o->dedup_id != NULL && !sq_dedup_id_valid(o->dedup_id)))) {
		errno = EINVAL;
		return -1;
	}
	b->opts = o;
	return 0;
}

int
sq_dedup_id_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= SQ_DEDUP_MAX && s[0] != '.' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@+=-") == n;
}

void
sq_batch_begin(struct sq_batch *b, struct sq_queue *q, sq_sent_fn *sent,
    void *arg)
{
	memset(b, 0, sizeof(*b));
	b->q = q;
	b->sent = sent;
	b->arg = arg;
	b->wait_ms = -1;
	b->ddfd = -1;
}

void
sq_batch_defer_dedup(struct sq_batch *b)
{
	b->defer_dedup = 1;
}

void
sq_batch_set_aside(struct sq_batch *b, sq_sent_fn *fn, void *arg)
{
	b->aside = 1;
	b->aside_fn = fn;
	b->aside_arg = arg;
}

/* Make room for one more pending message. */
int
batch_room(struct sq_batch *b)
{
	void *p;

	if (b->npending == b->nalloc) {
		size_t n = b->nalloc ? b->nalloc * 2 : 16;

		if ((p = reallocarray(b->ids, n, sizeof(*b->ids))) == NULL)
			return -1;
		b->ids = p;
		b->nalloc = n;
	}
	return 0;
}

/* Create a fresh tmp/ID file; the id is written into b's pending list. */
static int
tmp_create(struct sq_batch *b, char *id)
{
	int fd, tries;

	if (batch_room(b) == -1)
		return -1;
	for (tries = 0; tries < 8; tries++) {
		if (sq_id_new(id, SQ_ID_MAX) == -1)
			return -1;
		fd = openat(b->q->tmpfd, id, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC | O_NOFOLLOW, 0666);
		if (fd != -1 && share_file(b->q->share, fd) == -1) {
			close(fd);
			unlinkat(b->q->tmpfd, id, 0);
			return -1;
		}
		if (fd != -1 || errno != EEXIST)
			return fd;
	}
	return -1;
}

/* Whether a body of len bytes is set aside as larger than max_bytes. */
static int
too_large_for(const struct sq_batch *b, size_t len)
{
	return b->aside && b->q->conf.max_bytes > 0 &&
	    len > b->q->conf.max_bytes;
}

/*
 * Close fd and record its file as pending, or remove it on error.  A
 * body set aside at once (too large) is made durable through fd before
 * it is closed, rather than opened again for it (sync_tmp).
 */
static int
tmp_finish(struct sq_batch *b, int fd, const char *id, int failed,
    size_t len)
{
	int saved = errno, rc;

	if (!failed && too_large_for(b, len) &&
	    b->q->conf.durability == SQ_DURABILITY_FSYNC) {
		if (fsync(fd) == -1) {
			failed = 1;
			saved = errno;
		} else
			b->tmp_synced = 1;
	}
	if (close(fd) == -1 && !failed) {
		failed = 1;
		saved = errno;
	}
	rc = tmp_ready(b, id, len, failed, saved);
	b->tmp_synced = 0;
	return rc;
}

/*
 * Take back tmp/ID (and its sidecar), which no slot or list of b holds,
 * and abort b.  Returns -1 with errno as it was.
 */
static int
unpushed(struct sq_batch *b, const char *id)
{
	int saved = errno;

	unlinkat(b->q->tmpfd, id, 0);
	attr_remove(b->q, id);
	sq_batch_abort(b);
	errno = saved;
	return -1;
}

/* Whether key is that of a send pending in b's slots. */
static int
dedup_held(const struct sq_batch *b, const char *key)
{
	size_t i;

	for (i = 0; i < b->ndd; i++)
		if (strcmp(b->dd[i].d.keybuf, key) == 0)
			return 1;
	return 0;
}

/*
 * Make tmp/ID of b durable (durability = fsync), unless tmp_finish did
 * through the descriptor it wrote it with.  0 or -1 with errno.
 */
static int
sync_tmp(const struct sq_batch *b, const char *id)
{
	struct sq_queue *q = b->q;
	int fd, rc, saved;

	if (q->conf.durability != SQ_DURABILITY_FSYNC || b->tmp_synced)
		return 0;
	if ((fd = sq_open_regular(q->tmpfd, id, O_RDONLY, 0, NULL)) == -1)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/*
 * Set the finished tmp/ID aside, when b asks so (else fail with errno
 * e): the message goes into dead/ at once with r=reason, on its own
 * (one rename, the body flushed before and dead/ after, as a send), and
 * the batch goes on; else tmp/ID and its sidecar are taken back.  A
 * batch that fails after it leaves the dead letter, as the commit point
 * of its own: a broker that gives the message again sets it aside again
 * (at least once).  Returns 0 or -1 with errno (tmp/ID taken back; the
 * batch is the caller's).
 */
static int
set_aside(struct sq_batch *b, const char *id, const char *reason, int e)
{
	struct sq_queue *q = b->q;
	struct sq_name n;
	char name[SQ_NAME_MAX + 1];
	int saved;

	if (!b->aside) {
		errno = e;
		goto fail;
	}
	if (dead_send_name(b->opts, id, reason, name) == -1 ||
	    sync_tmp(b, id) == -1 || sq_name_parse(&n, name) == -1)
		goto fail;
	/* A dead_letter queue takes it as any other dead letter. */
	if (dead_letter_forward(q, q->tmpfd, id, &n, NULL) == 1)
		goto moved;
	if (sq_rename(q->tmpfd, id, q->deadfd, name) == -1)
		goto fail;
	/* Published: a failed flush of dead/ is the batch's to report. */
	if (q->conf.durability == SQ_DURABILITY_FSYNC &&
	    fsync(q->deadfd) == -1)
		return -1;
moved:
	sq_counter_add(q, SQ_COUNT_DEAD, 1);
	b->set_aside++;
	b->aside_reason = reason;
	if (b->aside_fn != NULL)
		b->aside_fn(id, b->aside_arg);
	return 0;
fail:
	saved = errno;
	unlinkat(q->tmpfd, id, 0);
	attr_remove(q, id);
	errno = saved;
	return -1;
}

static int	dedup_push(struct sq_batch *, const char *, size_t,
		    const char *);

/*
 * The finished tmp/ID's dedup marker cannot be had: its name is taken
 * by an entry that is not a regular file (dedup_begin gave 2).  Set
 * aside with r=badmarker, else SQ_ENOTREG.  The set-aside is
 * deduplicated under a marker of its own, dedup/ID,badmarker
 * (SQ_DEDUP_ASIDE: no dedup ID has a comma, so no send takes it), as a
 * send too large is under its ID's: a broker that gives the message
 * again, after a batch that failed or in another process, finds it sent
 * and it is not dead-lettered twice.  That name taken as well, it is set
 * aside without a marker.  Returns 0 or -1 with errno.
 */
static int
bad_marker(struct sq_batch *b, const char *id)
{
	const struct sq_msgopts *opts = b->opts;
	struct sq_msgopts o;
	char key[SQ_DEDUP_MAX + sizeof(SQ_DEDUP_ASIDE)];
	int rc;

	if (!b->aside || opts == NULL || opts->dedup_id == NULL ||
	    strchr(opts->dedup_id, ',') != NULL)
		return set_aside(b, id, SQ_REASON_BADMARKER, SQ_ENOTREG);
	o = *opts;
	snprintf(key, sizeof(key), "%s%s", opts->dedup_id, SQ_DEDUP_ASIDE);
	o.dedup_id = key;
	b->opts = &o;
	rc = dedup_push(b, id, 0, SQ_REASON_BADMARKER);
	b->opts = opts;
	return rc;
}

/*
 * Publish the finished tmp/ID (len bytes) with its batch's dedup ID:
 * dedup.c says whether it is the first within the window (then the
 * batch is committed at once, between its marker's "pending" and
 * "sent") or a duplicate (then it is dropped).  With an aside reason,
 * the first is set aside instead (into dead/ with r=toolarge or
 * r=badmarker), so that a broker that gives it again finds it sent and
 * it is not dead-lettered twice; out of tmp/, its pending marker says
 * "sent" too, as a commit.  A deferring batch that holds the ID pending
 * (a grouped send after an ungrouped one of the same ID) is committed
 * first: the marker is locked by the batch, and waiting for it would
 * wait for ourselves.  Returns 0 or -1 with errno.
 */
static int
dedup_push(struct sq_batch *b, const char *id, size_t len, const char *aside)
{
	struct dedup d;
	int rc;

	if (b->ndd > 0 && dedup_held(b, b->opts->dedup_id) &&
	    sq_batch_commit(b) == -1)
		return unpushed(b, id);
	memset(&d, 0, sizeof(d));
	if ((rc = dedup_begin(&d, b, id)) == 2)
		return aside != NULL &&
		    strcmp(aside, SQ_REASON_BADMARKER) == 0 ?
		    set_aside(b, id, SQ_REASON_BADMARKER, SQ_ENOTREG) :
		    bad_marker(b, id);
	if (rc != 0)
		return rc == 1 ? 0 : -1;
	return dedup_end(&d, b, id, aside != NULL ? set_aside(b, id, aside,
	    strcmp(aside, SQ_REASON_TOOLARGE) == 0 ? EFBIG : SQ_ENOTREG) :
	    batch_push(b, id, len, 1));
}

/*
 * The finished tmp/ID is larger than the queue's max_bytes alone and
 * b sets such sends aside: into dead/ with r=toolarge, deduplicated as
 * a send of its own (dedup_push).  Returns 0 or -1 with errno.
 */
static int
too_large(struct sq_batch *b, const char *id)
{
	if (b->opts == NULL || b->opts->dedup_id == NULL)
		return set_aside(b, id, SQ_REASON_TOOLARGE, EFBIG);
	return dedup_push(b, id, 0, SQ_REASON_TOOLARGE);
}

/*
 * Settle the deferred sends after their batch's commit or abort: the
 * markers of those published unlocked as they are ("pending", their
 * bodies gone from tmp/), the others taken back (marker emptied and
 * removed, tmp/ID and sidecar removed).  Returns 0, or -1 with errno
 * when the marker of a published send could not be settled.
 */
static int
dedup_settle(struct sq_batch *b)
{
	struct sq_dedup_slot *s;
	size_t i;
	int rc = 0, saved = errno;

	/*
	 * Last first: the names linked to the batch's file (dedup_link) go
	 * while it is still locked, its own slot coming before them.
	 */
	for (i = b->ndd; i-- > 0;) {
		s = &b->dd[i];
		if (dedup_end(&s->d, b, s->id, s->published ? 0 : -1) == -1 &&
		    s->published) {
			rc = -1;
			saved = errno;
		}
	}
	b->ndd = b->ddnext = 0;
	errno = saved;
	return rc;
}

/* The slot whose marker is the batch's file (dedup_link), or NULL. */
static struct sq_dedup_slot *
dedup_base(struct sq_batch *b)
{
	size_t i;

	for (i = 0; i < b->ndd; i++)
		if (b->dd[i].d.base)
			return &b->dd[i];
	return NULL;
}

/*
 * Deduplicate tmp/ID (len bytes) and keep it pending in a slot, its
 * marker locked.  The slots full, or the ID already pending (its
 * marker is ours, locked), the batch is committed first.  Returns 0 or
 * -1 with errno (the batch aborted).
 */
static int
dedup_defer(struct sq_batch *b, const char *id, size_t len)
{
	struct sq_dedup_slot *s, *base;
	int rc, saved;

	if ((b->ndd == SQ_DEDUP_BATCH || dedup_held(b, b->opts->dedup_id)) &&
	    sq_batch_commit(b) == -1)
		goto fail;
	if (b->dd == NULL) {
		if ((b->dd = calloc(SQ_DEDUP_BATCH, sizeof(*b->dd))) == NULL)
			goto fail;
		if ((b->ddfd = subdir_open(b->q->fd, SQ_DIR_DEDUP, 1)) == -1) {
			saved = errno;
			free(b->dd);
			b->dd = NULL;
			errno = saved;
			goto fail;
		}
		b->ddshare = dir_share(b->ddfd);
	}
	s = &b->dd[b->ndd];
	memset(s, 0, sizeof(*s));
	s->d.dfd = b->ddfd;
	s->d.keep_dfd = 1;
	s->d.share = b->ddshare;
	s->d.defer = 1;
	base = dedup_base(b);
	if ((rc = base != NULL ? dedup_link(&s->d, &base->d, b, id) : 1) == 1)
		rc = dedup_begin(&s->d, b, id);
	if (rc == 2 && (rc = bad_marker(b, id)) == 0)
		return 0;
	if (rc != 0) {
		if (rc == 1)
			return 0;
		saved = errno;
		sq_batch_abort(b);
		errno = saved;
		return -1;
	}
	memcpy(s->id, id, SQ_ID_MAX);
	s->due_ms = b->opts->due_ms;
	b->ndd++;
	return batch_push(b, id, len, 0);
fail:
	return unpushed(b, id);
}

int
tmp_ready(struct sq_batch *b, const char *id, size_t len, int failed,
    int saved)
{
	if (!failed && has_sidecar(b->opts) && !b->sidecar_linked &&
	    attr_write(b->q, id, b->opts) == -1) {
		failed = 1;
		saved = errno;
	}
	if (failed) {
		unlinkat(b->q->tmpfd, id, 0);
		sq_batch_abort(b);
		errno = saved;
		return -1;
	}
	/*
	 * Larger than max_bytes alone, it never fits (sq_bound_admit's
	 * EFBIG): set aside, it does not hold up the sends behind it.
	 */
	if (too_large_for(b, len))
		return too_large(b, id);
	if (b->opts != NULL && b->opts->dedup_id != NULL) {
		if (b->defer_dedup && b->opts->group == NULL)
			return dedup_defer(b, id, len);
		return dedup_push(b, id, len, NULL);
	}
	/* Deferring, the options may change after this add: commit now. */
	return batch_push(b, id, len, b->defer_dedup);
}

int
batch_push(struct sq_batch *b, const char *id, size_t len, int now)
{
	memcpy(b->ids[b->npending++], id, SQ_ID_MAX);
	b->bytes += len;
	/*
	 * Under durability = none too: the commit is where a bound admits
	 * (one usage update per batch, not per message).  Callers commit
	 * before they block, so nothing waits on a full batch.
	 */
	if (now || b->npending >= SQ_BATCH_MESSAGES ||
	    b->bytes >= SQ_BATCH_BYTES)
		return sq_batch_commit(b);
	return 0;
}

int
sq_batch_add(struct sq_batch *b, const void *body, size_t len)
{
	char id[SQ_ID_MAX];
	int fd;

	if ((fd = tmp_create(b, id)) == -1) {
		sq_batch_abort(b);
		return -1;
	}
	return tmp_finish(b, fd, id, sq_write_all(fd, body, len) == -1, len);
}

int
sq_batch_add_fd(struct sq_batch *b, int in)
{
	char id[SQ_ID_MAX], *buf;
	size_t total = 0;
	ssize_t n;
	int fd, failed = 0;

	b->input_failed = 0;
	if ((buf = malloc(COPY_CHUNK)) == NULL ||
	    (fd = tmp_create(b, id)) == -1) {
		free(buf);
		sq_batch_abort(b);
		return -1;
	}
	for (;;) {
		n = read(in, buf, COPY_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			failed = b->input_failed = n == -1;
			break;
		}
		if (sq_write_all(fd, buf, (size_t)n) == -1) {
			failed = 1;
			break;
		}
		total += (size_t)n;
	}
	free(buf);
	return tmp_finish(b, fd, id, failed, total);
}

/* Make the pending bodies durable before any of them is published. */
static int
sync_pending(struct sq_batch *b)
{
	size_t i;
	int fd, rc;

	if (b->q->conf.durability == SQ_DURABILITY_NONE)
		return 0;
	/* The markers of deferred sends are in the queue, too. */
	if (b->npending > FSYNC_EACH_MAX)
		return syncfs(b->q->tmpfd);
	for (i = b->ddnext; i < b->ndd; i++)
		if (b->dd[i].d.fd != -1 && fsync(b->dd[i].d.fd) == -1)
			return -1;
	for (i = 0; i < b->npending; i++) {
		fd = sq_open_regular(b->q->tmpfd, b->ids[i], O_RDONLY, 0,
		    NULL);
		if (fd == -1)
			return -1;
		rc = fsync(fd);
		close(fd);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/*
 * Rename a deferred send's tmp/ID under the name its marker records.
 * No new name on a clash (which cannot happen by construction): the
 * marker would not say it, so the send fails and is taken back.
 */
static int
publish_deferred(struct sq_batch *b, struct sq_dedup_slot *s)
{
	if (sq_rename(b->q->tmpfd, s->id, s->d.tofd, s->d.name) == -1)
		return -1;
	s->published = 1;
	b->ddnext++;
	if (s->d.tofd == b->q->retryfd)
		(void)index_lower_maint(b->q, s->due_ms);
	if (b->sent != NULL)
		b->sent(s->id, b->arg);
	return 0;
}

/*
 * Rename tmp/ID into place.  A clash cannot happen by construction; if
 * it does all the same, the message gets a new ID (and its sidecar with
 * it) rather than replacing anything.  A grouped message goes into its
 * group's directory, ga->fd, opened by the first of the batch and kept.
 */
static int
publish(struct sq_batch *b, const char *tmpname, struct group_add *ga)
{
	char id[SQ_ID_MAX], name[SQ_NAME_MAX + 1], side[SQ_ID_MAX];
	int tries, dirfd, rc, afd;

	if (b->ddnext < b->ndd && strcmp(b->dd[b->ddnext].id, tmpname) == 0)
		return publish_deferred(b, &b->dd[b->ddnext]);
	strlcpy(id, tmpname, sizeof(id));
	strlcpy(side, tmpname, sizeof(side));	/* where the sidecar is */
	for (tries = 0; tries < 8; tries++) {
		if (publish_name(b->q, b->opts, id, name, &dirfd) == -1)
			return -1;
		if (b->opts != NULL && b->opts->group != NULL) {
			/* Into its group's queue, delayed or not. */
			rc = group_publish_into(b->q, ga, b->q->tmpfd,
			    tmpname, name, b->opts->group);
			dirfd = -1;
		} else
			rc = move_rename(b->q->tmpfd, tmpname, dirfd, name);
		if (rc == 0) {
			if (dirfd == b->q->retryfd)
				(void)index_lower_maint(b->q, b->opts->due_ms);
			if (b->sent != NULL)
				b->sent(id, b->arg);
			return 0;
		}
		if (errno != EEXIST || sq_id_new(id, sizeof(id)) == -1)
			return -1;
		if (has_sidecar(b->opts)) {
			if ((afd = attr_dir(b->q)) == -1 ||
			    renameat(afd, side, afd, id) == -1)
				return -1;
			strlcpy(side, id, sizeof(side));
		}
	}
	return -1;
}

/*
 * Publish the first n pending messages (made durable before), dropping
 * them from the list.  Returns 0, or -1 with errno when one failed: those
 * before it stay published.
 */
static int
publish_first(struct sq_batch *b, size_t n)
{
	struct group_add ga;
	size_t i;
	int rc = 0, saved;

	/*
	 * The oldest ID to send, known before the first rename into a
	 * group (one taken anew on a clash is newer).
	 */
	memset(&ga, 0, sizeof(ga));
	ga.fd = -1;
	for (i = 0; i < n; i++)
		if (ga.first == NULL || strcmp(b->ids[i], ga.first) < 0)
			ga.first = b->ids[i];
	for (i = 0; i < n; i++) {
		if (publish(b, b->ids[i], &ga) == -1) {
			rc = -1;
			break;
		}
	}
	/* A grouped batch goes into one group: its upkeep once at the end. */
	if (ga.fd != -1) {
		saved = errno;
		group_publish_done(b->q, &ga);
		errno = saved;
	}
	memmove(b->ids, b->ids + i, (b->npending - i) * sizeof(*b->ids));
	b->npending -= i;
	b->committed += i;
	return rc;
}

/*
 * The batch does not fit under the queue's bound as a whole: admit and
 * publish message by message, so that what fits goes (and, with
 * drop-oldest, each new message pushes out an old one).  Publishing each
 * before admitting the next keeps the queue's recount right.  Returns 0
 * when all went, else -1 with errno (EAGAIN: full).
 */
static int
admit_each(struct sq_batch *b)
{
	struct stat st;
	/* wait_ms bounds the commit's wait, not each message's. */
	int64_t until = sq_mono_ms() + b->wait_ms, wait = b->wait_ms;
	int lock, rc;

	while (b->npending > 0) {
		if (b->wait_ms >= 0 && (wait = until - sq_mono_ms()) < 0)
			wait = 0;
		if (fstatat(b->q->tmpfd, b->ids[0], &st, AT_SYMLINK_NOFOLLOW) ==
		    -1 || sq_bound_admit(b->q, 1, (size_t)st.st_size,
		    wait, &lock) == -1)
			return -1;
		rc = publish_first(b, 1);
		sq_bound_release(lock);
		if (rc == -1)
			return -1;
	}
	return 0;
}

int
sq_batch_commit(struct sq_batch *b)
{
	size_t n = b->npending;
	int saved, rc, lock;

	if (n == 0)
		return 0;
	if (sq_bound_admit(b->q, b->npending, b->bytes, b->wait_ms,
	    &lock) == 0) {
		rc = sync_pending(b);
		if (rc == 0)
			rc = publish_first(b, b->npending);
		sq_bound_release(lock);
	} else {
		if (errno != EAGAIN || b->npending == 1 ||
		    sync_pending(b) == -1)
			goto fail;
		rc = admit_each(b);
	}
	if (b->q->conf.durability == SQ_DURABILITY_FSYNC &&
	    fsync(b->q->newfd) == -1 && rc == 0)
		rc = -1;
	if (rc == -1)
		goto fail;
	b->bytes = 0;
	if (b->ndd > 0 && dedup_settle(b) == -1) {
		sq_counter_add(b->q, SQ_COUNT_SENT, n);
		return -1;
	}
	sq_counter_add(b->q, SQ_COUNT_SENT, n);
	return 0;
fail:
	saved = errno;
	sq_batch_abort(b);
	errno = saved;
	return -1;
}

void
sq_batch_abort(struct sq_batch *b)
{
	size_t i;
	int saved = errno;

	for (i = 0; i < b->npending; i++) {
		unlinkat(b->q->tmpfd, b->ids[i], 0);
		if (has_sidecar(b->opts))
			attr_remove(b->q, b->ids[i]);
	}
	b->npending = 0;
	b->bytes = 0;
	if (b->ndd > 0)
		(void)dedup_settle(b);
	errno = saved;
}

int
sq_batch_end(struct sq_batch *b)
{
	int rc = sq_batch_commit(b), saved = errno;

	free(b->ids);
	b->ids = NULL;
	b->nalloc = 0;
	if (b->dd != NULL) {
		free(b->dd);
		b->dd = NULL;
		close(b->ddfd);
		b->ddfd = -1;
	}
	errno = saved;
	return rc;
}
