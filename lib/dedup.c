/*
 * dedup.c - exactly-once effect on the producer side (SQS FIFO
 * MessageDeduplicationId): a send whose dedup ID was already sent within
 * dedup_window is accepted and dropped.
 *
 * Each dedup ID has a marker dedup/ID holding "MSGID STATE MS".  The
 * commit point of a first send is the exclusive create of the marker
 * (O_CREAT|O_EXCL): the file system, the server of a shared one, lets
 * exactly one sender make it.  Its maker locks it (flock(2)) at once and
 * holds the lock for the whole send, so senders of one ID take turns,
 * and the kernel frees the lock if one crashes.  The marker says
 * "pending" before the message is published and "sent" after.  A sender
 * that finds the marker there locks it and judges what it says:
 *   sent, within the window      -> a duplicate: dropped;
 *   pending (its sender crashed)  -> if its body is still in tmp/, it was
 *                                    never published: publish it now (the
 *                                    first message is never lost) and drop
 *                                    ours; else it was published: drop ours;
 *   older than window             -> void: ours is the first, written
 *                                    into it under the lock;
 *   empty (or damaged)            -> void too (its maker crashed before
 *                                    writing it, or has not locked it
 *                                    yet): removed under the lock and
 *                                    made anew, never written into, so
 *                                    that its maker, locking it late,
 *                                    finds the name gone and does not
 *                                    take it for its own.
 * Only the maker of a marker writes into it while it is empty: a maker
 * counts as one only if, once it holds the lock, the name still leads to
 * the file it made.
 * A send is decided by the create or under the lock, never by a lookup
 * alone.  A client of a shared file system (fs_remote) may answer a read
 * from its caches, for about a second, with what the file held before
 * another host wrote it; of the judgements only "void" lets a send
 * through, so on such a file system a void marker is read again, through
 * a new descriptor, after the lock has been held for MARKER_SETTLE_MS,
 * longer than the caches keep anything: what it says then was written
 * before our lock, by its last holder.  A marker made by us and locked at
 * once is empty without a second look.
 * A sender whose publication failed empties its marker and removes it,
 * so that the producer's retry makes it anew.
 * A name taken by an entry that is not a regular file (a symlink, FIFO,
 * socket, device or directory) is no marker: it is never opened, locked,
 * followed or waited for, and never replaced (that is qadmin check
 * --repair's, into quarantine/).  Such a send is neither first nor a
 * duplicate: dedup_begin says so at once and leaves the body to send.c,
 * which fails it or sets it aside into dead/ (sq_batch_set_aside).
 * Markers expire by time; qadmin gc removes them.
 *
 * The publication itself is send.c's: dedup_begin judges and writes
 * "pending", send.c commits the batch, dedup_end writes "sent".  A batch
 * may hold many sends pending at once (deferred, one marker each, each
 * locked until the batch is committed): their "pending" is made durable
 * with the batch's bodies, by one flush before any is published, and
 * "sent" is never written into them: a "pending" marker whose body has
 * left tmp/ says the same, and the rename was flushed before.
 * On a local file system the markers of such a batch are one file: the
 * first made is the batch's (its line ends with its dedup ID), and each
 * next one is a hard link to it, made by linkat(2) (which, like the
 * exclusive create, fails when the name exists: the commit point), its
 * line appended, with the ID at its end, while the batch holds the lock,
 * which covers every name of the file.  A reader takes the line of its
 * ID.  A link costs a name, where a marker of its own costs a file, a
 * page, a lock and five more calls.  A file shared so is never written
 * into by another sender (that would overwrite the others' lines): a
 * void one is removed under the lock and made anew, a "pending" one is
 * left "pending".  On a shared file system, where a link may let two
 * clients win, each marker is a file of its own.  This module calls
 * nothing of send.c; the names it publishes an orphan under are move.c's
 * rules.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEDUP_DIR	SQ_DIR_DEDUP
#define MARKER_WAIT_MS	5000		/* or the lease; then EBUSY */
#define MW_CUT		1		/* marker_write: cut after the record */
#define MW_SYNC		2		/* and fsync it (durability) */
/*
 * Twice the 1 s that a GlusterFS client keeps attributes and small
 * contents (md-cache, quick-read: whole-second clocks), which nothing
 * forces it to read past, and a last write behind its writer's unlock
 * (write-behind).  A marker's mtime comes from the same caches, so it
 * cannot shorten the wait (spoolq(5), Deduplication markers).
 */
#define MARKER_SETTLE_MS 2000
/* The most of a marker read: a batch's lines (SQ_DEDUP_BATCH of them). */
#define MARKER_READ_MAX	(256 * 1024)
#define RECORD_MAX	(SQ_ID_MAX + SQ_NAME_MAX + SQ_DEDUP_MAX + 64)

struct marker {
	char	id[SQ_ID_MAX];
	char	state[16];
	int64_t	ms;
	char	dir[16];		/* pending: where it was going */
	char	name[SQ_NAME_MAX + 1];	/* and under which name */
	int	shared;			/* the file has other names (a batch's) */
};

/*
 * Parse line, the first of its marker (first) or not, for the marker of
 * key into m.  A line that ends with a dedup ID is that ID's; one without
 * is the ID's whose name the file has, and is only ever the first.
 * Returns 1 when the line is key's (m filled, or zeroed when damaged),
 * 0 when it is another's.
 */
static int
record_parse(char *line, const char *key, int first, struct marker *m)
{
	char owner[SQ_DEDUP_MAX + 1];
	long long ms;
	int k;

	k = sscanf(line, "%159s %15s %lld %15s %255s %128s", m->id, m->state,
	    &ms, m->dir, m->name, owner);
	if (k == 6 ? strcmp(owner, key) != 0 : !first) {
		memset(m, 0, sizeof(*m));
		return 0;
	}
	if (k < 3 || strchr(m->id, '/') != NULL || m->id[0] == '.' || ms < 0)
		memset(m, 0, sizeof(*m));	/* damaged: as if absent */
	else
		m->ms = ms;
	if (k < 5)
		m->dir[0] = m->name[0] = '\0';	/* no target: new/ID */
	return 1;
}

/*
 * Read the record of key in the marker fd into m: zeroed when there is
 * none (empty, damaged, or a batch's file without a line of key's, left
 * so by a crash between its link and its line).  Returns 0 or -1.
 */
static int
marker_read(int fd, const char *key, struct marker *m)
{
	char small[RECORD_MAX], *buf = small, *line, *nl;
	struct stat st;
	size_t size = sizeof(small), got = 0;
	ssize_t n;
	int first, rc = -1;

	memset(m, 0, sizeof(*m));
	if (fstat(fd, &st) == -1)
		return -1;
	for (;;) {
		if ((n = pread(fd, buf + got, size - 1 - got, (off_t)got)) ==
		    -1)
			goto out;
		if (n == 0)
			break;
		got += (size_t)n;
		if (got < size - 1)
			continue;
		if (size == MARKER_READ_MAX)
			break;
		/* A batch's file: read it whole. */
		size = MARKER_READ_MAX;
		if ((buf = malloc(size)) == NULL)
			return -1;
		memcpy(buf, small, got);
	}
	buf[got] = '\0';
	for (line = buf, first = 1; *line != '\0'; line = nl, first = 0) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		if (record_parse(line, key, first, m) || nl == NULL)
			break;
	}
	m->shared = st.st_nlink > 1;
	rc = 0;
out:
	if (buf != small)
		free(buf);
	return rc;
}

/* Format a marker's line; with key, as one of a batch's file.  Its length. */
static int
record_format(char *buf, size_t size, const char *id, const char *state,
    const char *dir, const char *name, const char *key)
{
	return snprintf(buf, size, "%s %s %lld%s%s%s%s%s%s\n", id, state,
	    (long long)sq_now_ms(), dir ? " " : "", dir ? dir : "",
	    name ? " " : "", name ? name : "", key ? " " : "", key ? key : "");
}

/* Write the marker's line (see record_format).  Its length, or -1. */
static int
marker_write(struct sq_queue *q, int fd, const char *id, const char *state,
    const char *dir, const char *name, const char *key, int how)
{
	char buf[RECORD_MAX];
	int len;

	len = record_format(buf, sizeof(buf), id, state, dir, name, key);
	/*
	 * Overwrite, then cut: a crash in between leaves the new record
	 * with old bytes after it, never an empty marker (which would let a
	 * retry through as a first send).
	 */
	if (pwrite(fd, buf, (size_t)len, 0) != len || ((how & MW_CUT) &&
	    ftruncate(fd, len) == -1))
		return -1;
	if ((how & MW_SYNC) && q->conf.durability == SQ_DURABILITY_FSYNC &&
	    fsync(fd) == -1)
		return -1;
	return len;
}

/*
 * A marker lets a send through when it says nothing (empty, damaged) or
 * was written longer than dedup_window ago.
 */
static int
marker_void(const struct sq_queue *q, const struct marker *m)
{
	return m->id[0] == '\0' ||
	    sq_now_ms() - m->ms >= q->conf.dedup_window_ms;
}

/* Drop our tmp/ID (and its sidecar): a duplicate. */
static void
drop(struct sq_batch *b, const char *id)
{
	unlinkat(b->q->tmpfd, id, 0);
	attr_remove(b->q, id);
	b->dropped++;
}

/*
 * The rename that publishes an orphan decides whether it was still
 * unpublished: a lookup of tmp/ID may be answered from a shared file
 * system's cache after another sender published it, and then the rename
 * finds nothing (ENOENT), as good as done.
 */
static int
orphan_rename(int fromfd, const char *id, int tofd, const char *name)
{
	if (move_rename(fromfd, id, tofd, name) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

/*
 * Publish a crashed sender's complete body from tmp/ under the name and
 * in the state it was going to, as its pending marker recorded, so that
 * its delay and expiry are kept.  A marker without them (written by an
 * older sender) takes those of this send, the retry of the same one.
 */
static int
publish_orphan(struct sq_batch *b, const struct marker *m)
{
	struct sq_queue *q = b->q;
	char name[SQ_NAME_MAX + 1];
	struct sq_name n;
	int afd, tofd;

	if (m->name[0] != '\0' && sq_name_parse(&n, m->name) == 0 &&
	    strcmp(n.id, m->id) == 0)
		return orphan_rename(q->tmpfd, m->id, strcmp(m->dir,
		    SQ_DIR_RETRY) == 0 ? q->retryfd : q->newfd, m->name);
	/* The flag h says what is on disk, not what this send has. */
	afd = attr_dir(q);
	if (publish_name_h(q, b->opts, m->id, afd != -1 && faccessat(afd,
	    m->id, F_OK, AT_SYMLINK_NOFOLLOW) == 0, name, &tofd) == -1)
		return -1;
	return orphan_rename(q->tmpfd, m->id, tofd, name);
}

/* The marker fd is still the file named key in dfd. */
static int
same_file(int dfd, const char *key, int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstatat(dfd, key, &b,
	    AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
	    a.st_dev == b.st_dev;
}

/* Sleep ms milliseconds (a signal cuts it short). */
static void
pause_ms(int64_t ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/*
 * Make, or open, and lock the marker of key.  The commit point of a
 * first send is the exclusive create: *made is set when it is ours and
 * we locked it before anyone else could, so that nobody has written it.
 * Else the lock is waited for, and after it is ours the name must still
 * lead to the file we locked: qadmin gc may have removed an expired
 * marker meanwhile, or a sender whose publication failed its own, and a
 * sender on a removed file would not exclude the next one.  A marker
 * that goes between the create and the open (EEXIST, then ENOENT) is
 * made again, after a pause: a shared file system's client may still
 * know the name for a second.  A lock held for wait_ms (by a sender
 * that was stopped) gives EBUSY, and so does a name that stays in that
 * state.  share is dir_share(dfd).  Returns the descriptor or -1.
 */
static int
marker_lock(int dfd, const char *key, mode_t share, int64_t wait_ms,
    int *made)
{
	struct sq_backoff bo;
	int64_t until = sq_mono_ms() + wait_ms;
	int fd, rc;

	sq_backoff_init(&bo, 5, 200);
	for (;;) {
		*made = 0;
		/*
		 * An exclusive create makes a new regular file or fails
		 * (EEXIST for any entry there, a symlink too): no check of
		 * what it opened is needed.
		 */
		fd = openat(dfd, key, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0666);
		if (fd != -1) {
			share_file(share, fd);
			if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
				/*
				 * Another sender may have locked it between
				 * our create and our lock, found it empty and
				 * removed it (marker_judge): then it is not
				 * the marker any more.
				 */
				if (same_file(dfd, key, fd)) {
					*made = 1;
					return fd;
				}
				close(fd);
				continue;
			}
			if (errno != EWOULDBLOCK) {
				close(fd);
				return -1;
			}
			/* Locked by another sender already: take turns. */
		} else if (errno != EEXIST ||
		    (fd = sq_open_regular(dfd, key, O_RDWR, 0, NULL)) == -1) {
			if (errno != ENOENT)
				return -1;
			if (sq_mono_ms() >= until) {
				errno = EBUSY;
				return -1;
			}
			pause_ms(sq_backoff_next(&bo));
			continue;	/* gone meanwhile: make it */
		}
		/* Bounded: a stopped sender must not hold the others. */
		if ((rc = sq_backoff_lock(fd, LOCK_EX, wait_ms)) != 0) {
			close(fd);
			if (rc == 1)
				errno = EBUSY;
			return -1;
		}
		if (same_file(dfd, key, fd))
			return fd;
		close(fd);		/* removed under us: again */
	}
}

/*
 * Read the marker fd of key, locked by us, into m.  When what it says
 * would let a send through (void: empty, damaged or expired) on a file
 * system that other hosts write to, and it was not made by us (made),
 * read it again once the lock has been ours for MARKER_SETTLE_MS, through
 * a descriptor opened then: a read before may have come from a cache
 * filled before its last holder wrote.  An empty or damaged marker not
 * made by us is removed (its maker may lock it after us).  Returns 0, 1
 * when the marker was removed meanwhile or by us (make or open it
 * again), or -1 with errno.
 */
static int
marker_judge(struct sq_queue *q, int dfd, const char *key, int fd,
    int made, struct marker *m)
{
	struct stat a, b;
	int nfd, rc;

	if (made) {
		/* Made and locked by us at once: nobody wrote it. */
		memset(m, 0, sizeof(*m));
		return 0;
	}
	if (marker_read(fd, key, m) == -1)
		return -1;
	if (marker_void(q, m) && fs_remote(fd)) {
		pause_ms(MARKER_SETTLE_MS);
		if ((nfd = sq_open_regular(dfd, key, O_RDONLY, 0, &b)) == -1)
			return errno == ENOENT ? 1 : -1;
		if (fstat(fd, &a) == -1)
			rc = -1;
		else if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
			rc = 1;		/* another marker now */
		else
			rc = marker_read(nfd, key, m);
		close(nfd);
		if (rc != 0)
			return rc;
	}
	if (m->id[0] != '\0' && !(m->shared && marker_void(q, m)))
		return 0;
	/*
	 * Empty (or damaged), and not made by us: its maker may be between
	 * its create and its lock, and would take it for its own, unwritten,
	 * once we unlock.  So it is never written into by another: it is
	 * removed, under our lock, and made anew; a maker that then locks
	 * it finds the name gone (marker_lock).  So is a void one of a
	 * batch's file: writing into it would overwrite the others' lines.
	 */
	if (unlinkat(dfd, key, 0) == -1 && errno != ENOENT)
		return -1;
	return 1;
}

/* The file fd has other names. */
static int
shared(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_nlink > 1;
}

/*
 * The name key in dfd is an entry that is not a regular file: no marker
 * can be made under it, nor one opened (sq_open_regular refused it,
 * SQ_ENOTREG, which is EINVAL and so says nothing alone).
 */
static int
planted(int dfd, const char *key)
{
	struct stat st;

	return dfd != -1 && fstatat(dfd, key, &st, AT_SYMLINK_NOFOLLOW) ==
	    0 && !S_ISREG(st.st_mode);
}

/* Unlock the marker; when nothing was published, take tmp/id back too. */
static void
finish(struct dedup *d, struct sq_batch *b, const char *id, int rc)
{
	struct sq_queue *q = b->q;
	int saved = errno;

	if (rc == -1 && (d->defer || b->committed == d->before)) {
		/*
		 * Ours was not published: no marker may claim it was, or the
		 * producer's retry would be dropped and the message lost.
		 * A name of a batch's file goes, the file is not cut (the
		 * lines of the others): a name that does not go leaves the
		 * body in tmp/, for the next sender to publish.
		 */
		if (d->pending && (d->linked || (d->base && shared(d->fd)))) {
			if (unlinkat(d->dfd, d->key, 0) == -1 &&
			    errno != ENOENT)
				goto close;
		} else if (d->pending && d->fd != -1 &&
		    ftruncate(d->fd, 0) == 0) {
			if (q->conf.durability == SQ_DURABILITY_FSYNC)
				fsync(d->fd);
			/*
			 * Ours, and locked: nobody else removes it.  Gone,
			 * it lets the retry make it anew at once.
			 */
			unlinkat(d->dfd, d->key, 0);
		}
		unlinkat(q->tmpfd, id, 0);
		attr_remove(q, id);
	}
close:
	if (d->fd != -1)
		close(d->fd);
	if (d->dfd != -1 && !d->keep_dfd)
		close(d->dfd);
	errno = saved;
}

int
dedup_begin(struct dedup *d, struct sq_batch *b, const char *id)
{
	struct sq_queue *q = b->q;
	struct marker m;
	struct stat st;
	int made, rc, len;

	d->fd = -1;
	d->pending = 0;
	d->before = b->committed;
	strlcpy(d->keybuf, b->opts->dedup_id, sizeof(d->keybuf));
	d->key = d->keybuf;
	if (!d->keep_dfd) {
		if ((d->dfd = subdir_open(q->fd, DEDUP_DIR, 1)) == -1)
			goto fail;
		d->share = dir_share(d->dfd);
	}
	do {
		if (d->fd != -1)
			close(d->fd);
		if ((d->fd = marker_lock(d->dfd, d->key, d->share,
		    q->conf.lease_ms < MARKER_WAIT_MS ? q->conf.lease_ms :
		    MARKER_WAIT_MS, &made)) == -1 ||
		    (rc = marker_judge(q, d->dfd, d->key, d->fd, made,
		    &m)) == -1)
			goto fail;
	} while (rc == 1);
	if (!marker_void(q, &m)) {
		if (strcmp(m.state, "pending") == 0 &&
		    fstatat(q->tmpfd, m.id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && publish_orphan(b, &m) == -1)
			goto fail;
		/*
		 * A batch's file stays "pending": that says "sent" too now,
		 * its body gone from tmp/, and "sent" would overwrite the
		 * lines of the others.
		 */
		if (strcmp(m.state, "sent") != 0 && !m.shared &&
		    marker_write(q, d->fd, m.id, "sent", NULL, NULL, NULL,
		    MW_CUT | MW_SYNC) == -1)
			goto fail;
		drop(b, id);
		finish(d, b, id, 0);
		return 1;
	}
	/*
	 * An empty marker, one we made, needs no cut after the write.  A
	 * deferred send's line names its ID: a file made by us on a local
	 * file system becomes the batch's, and the next sends of the batch
	 * link to it (dedup_link).
	 */
	if (publish_name(q, b->opts, id, d->name, &d->tofd) == -1 ||
	    (len = marker_write(q, d->fd, id, "pending", d->tofd ==
	    q->retryfd ? SQ_DIR_RETRY : SQ_DIR_NEW, d->name, d->defer ?
	    d->key : NULL, (made ? 0 : MW_CUT) | (d->defer ? 0 :
	    MW_SYNC))) == -1)
		goto fail;
	d->pending = 1;
	if (d->defer && made && !fs_remote(d->dfd)) {
		d->base = 1;
		d->end = len;
	}
	return 0;
fail:
	/*
	 * A name that is no marker and never will be: waiting or trying
	 * again cannot help, and only the caller knows whether its message
	 * may go elsewhere (send.c).  Nothing is pending, nothing locked.
	 */
	if (errno == SQ_ENOTREG && !d->pending && planted(d->dfd, d->key)) {
		finish(d, b, id, 0);
		errno = SQ_ENOTREG;
		return 2;
	}
	finish(d, b, id, -1);
	return -1;
}

int
dedup_end(struct dedup *d, struct sq_batch *b, const char *id, int rc)
{
	/*
	 * A deferred send's marker stays "pending": its body has left tmp/,
	 * which says "sent" as well, and a batch saves a write and a cut
	 * per message.
	 */
	if (rc == 0 && !d->defer)
		rc = marker_write(b->q, d->fd, id, "sent", NULL, NULL, NULL,
		    MW_CUT | MW_SYNC) == -1 ? -1 : 0;
	finish(d, b, id, rc);
	return rc;
}

int
dedup_link(struct dedup *d, struct dedup *base, struct sq_batch *b,
    const char *id)
{
	struct sq_queue *q = b->q;
	char buf[RECORD_MAX];
	ssize_t n;
	int len;

	d->fd = -1;
	d->pending = d->linked = d->base = 0;
	d->before = b->committed;
	strlcpy(d->keybuf, b->opts->dedup_id, sizeof(d->keybuf));
	d->key = d->keybuf;
	/* Taken, or no links here: the marker of its own decides. */
	if (linkat(d->dfd, base->key, d->dfd, d->key, 0) == -1)
		return 1;
	d->linked = d->pending = 1;
	/*
	 * Its line after the link: nobody reads the name before the batch
	 * unlocks, and a crash in between leaves a name without a line,
	 * void (its body was not published).
	 */
	if (publish_name(q, b->opts, id, d->name, &d->tofd) == -1)
		goto fail;
	len = record_format(buf, sizeof(buf), id, "pending", d->tofd ==
	    q->retryfd ? SQ_DIR_RETRY : SQ_DIR_NEW, d->name, d->key);
	if ((n = pwrite(base->fd, buf, (size_t)len, base->end)) != len) {
		if (n != -1)
			errno = EIO;
		goto fail;
	}
	base->end += len;
	return 0;
fail:
	finish(d, b, id, -1);
	return -1;
}
