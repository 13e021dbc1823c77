/*
 * admin.c - operator moves: between states and between queues, and deletion.
 *
 * Each move is one rename, like every other transition, so these are
 * safe while producers, consumers and workers run: if a consumer claims
 * the message first, the rename fails with ENOENT and nothing changes.
 * Between queues on different file systems a rename cannot work
 * (EXDEV); the body is then copied into the target's tmp/, made
 * durable, published, and only then removed from the source, so a crash
 * leaves at worst two copies, never none.  Sidecars in attr/ follow
 * their message: into another queue they are put in place before it
 * and removed from the source after it.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static const char *const sidecar_suffixes[] = { "", SQ_FAILURE_SUFFIX };
#define NSIDECARS	(sizeof(sidecar_suffixes) / sizeof(sidecar_suffixes[0]))

/* Remove every sidecar of id from q's attr/ (missing ones are fine). */
static void
sidecars_remove(struct sq_queue *q, const char *id)
{
	char name[SQ_ID_MAX + 32];
	size_t i;
	int afd;

	if ((afd = attr_dir(q)) == -1)
		return;
	for (i = 0; i < NSIDECARS; i++) {
		snprintf(name, sizeof(name), "%s%s", id, sidecar_suffixes[i]);
		unlinkat(afd, name, 0);
	}
}

/*
 * Give to's attr/ the sidecars of id in q's attr/, before the message
 * itself moves to to: each is linked, or where that cannot be (another
 * file system, one without hard links) copied into to's tmp/,
 * synchronized and renamed into attr/.  The message's h then never names
 * a missing sidecar, wherever a crash stops the move: what a crash
 * leaves is the same sidecar in the attr/ of both queues, and the one
 * whose queue lacks the message is an orphan that gc removes.  Best
 * effort, like the sidecar of a send: a message without its sidecar is
 * still delivered.  Returns a bit per sidecar made, for sidecars_unlink;
 * *there gets a bit per sidecar that to now has, made or found; *lost
 * gets 0, or the errno of the first sidecar q has that could not be
 * given to to (its attr/ not a directory, say), for a caller that must
 * not move the message without it.
 */
static unsigned
sidecars_make(struct sq_queue *q, struct sq_queue *to, const char *id,
    unsigned *there, int *lost)
{
	struct stat st;
	char name[SQ_ID_MAX + 32], tmp[SQ_NAME_MAX + 1];
	size_t i;
	unsigned made = 0;
	int from, dest, e;

	*there = 0;
	*lost = 0;
	if ((from = sq_state_attr(q, 0)) == -1)
		return 0;
	if ((dest = sq_state_attr(to, 1)) == -1) {
		/* A file or symlink in attr/'s place: a broken queue. */
		e = errno == ENOTDIR || errno == ELOOP || errno == ENOENT ?
		    SQ_EBROKEN : errno;
		/* Lost only if q has a sidecar to give. */
		for (i = 0; i < NSIDECARS && *lost == 0; i++) {
			snprintf(name, sizeof(name), "%s%s", id,
			    sidecar_suffixes[i]);
			if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				*lost = e != 0 ? e : EIO;
		}
		close(from);
		return 0;
	}
	for (i = 0; i < NSIDECARS; i++) {
		snprintf(name, sizeof(name), "%s%s", id, sidecar_suffixes[i]);
		if (linkat(from, name, dest, name, 0) == 0) {
			made |= 1u << i;
			continue;
		} else if (errno == EEXIST) {
			/* left by a move that crashed: the same file */
			*there |= 1u << i;
			continue;
		} else if (errno == ENOENT)
			continue;
		if (sq_id_new(tmp, sizeof(tmp)) == 0 &&
		    copy_file(from, name, to->tmpfd, tmp) == 0) {
			if (sq_rename(to->tmpfd, tmp, dest, name) == 0) {
				made |= 1u << i;
				continue;
			}
			e = errno;
			unlinkat(to->tmpfd, tmp, 0);
			errno = e;
		}
		if (*lost == 0)
			*lost = errno != 0 ? errno : EIO;
	}
	if (made != 0)
		fsync(dest);
	close(from);
	close(dest);
	*there |= made;
	return made;
}

/* Remove the sidecars of id in q's attr/ whose bits are set in which. */
static void
sidecars_unlink(struct sq_queue *q, const char *id, unsigned which)
{
	char name[SQ_ID_MAX + 32];
	size_t i;
	int afd;

	if ((afd = attr_dir(q)) == -1)
		return;
	for (i = 0; i < NSIDECARS; i++) {
		if (!(which & (1u << i)))
			continue;
		snprintf(name, sizeof(name), "%s%s", id, sidecar_suffixes[i]);
		unlinkat(afd, name, 0);
	}
}

/* The directory of name in state st of q: its group's when grouped. */
static int
state_dir(struct sq_queue *q, enum sq_state st, const char *name)
{
	return st == SQ_STATE_GROUPED ? group_dir_of(q, name) :
	    sq_state_open(q, st, 0);
}

int
sq_admin_move(struct sq_queue *q, enum sq_state from, const char *name,
    struct sq_queue *to, enum sq_state target, int reset, char *newname)
{
	struct sq_name n;
	struct stat st;
	char tmp[SQ_NAME_MAX + 1], dest[SQ_NAME_MAX + 1];
	unsigned made = 0, there = 0;
	int fromfd = -1, tofd = -1, tmpfd, rc = -1, saved, lost;

	if (from == SQ_STATE_INFLIGHT || target == SQ_STATE_INFLIGHT ||
	    target == SQ_STATE_RETRY || target == SQ_STATE_DEAD ||
	    target == SQ_STATE_GROUPED ||
	    sq_name_parse(&n, name) == -1) {
		errno = EINVAL;
		return -1;
	}
	/* Ready and held: ID,a,e,h. */
	redrive_name(&n, reset);
	if (sq_name_format(dest, sizeof(dest), &n) == -1 ||
	    (fromfd = state_dir(q, from, name)) == -1 ||
	    (tofd = sq_state_open(to, target, 1)) == -1)
		goto out;
	/* Only a regular file is a message: nothing else is ever moved. */
	if (fstatat(fromfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = SQ_ENOTREG;
		goto out;
	}
	/* Into another queue: the sidecars first, so h always holds. */
	if (q != to)
		made = sidecars_make(q, to, n.id, &there, &lost);
	if (move_rename(fromfd, name, tofd, dest) == 0) {
		rc = 0;
	} else if (errno == EXDEV) {
		/* Another file system: copy, publish, then remove. */
		tmpfd = to->tmpfd;
		if (sq_id_new(tmp, sizeof(tmp)) == -1 ||
		    copy_file(fromfd, name, tmpfd, tmp) == -1)
			goto unmake;
		if (move_rename(tmpfd, tmp, tofd, dest) == -1) {
			saved = errno;
			unlinkat(tmpfd, tmp, 0);
			errno = saved;
			goto unmake;
		}
		fsync(tofd);
		/* Published in to: its sidecars stay there, whatever now. */
		if (unlinkat(fromfd, name, 0) == -1 && errno != ENOENT)
			goto out;
		rc = 0;
	}
unmake:
	if (rc == -1) {
		saved = errno;
		sidecars_unlink(to, n.id, made);
		errno = saved;
		goto out;
	}
	/* Only what to has: a sidecar that could not follow stays. */
	if (q != to)
		sidecars_unlink(q, n.id, there);
	/*
	 * Out of a group's states: its group goes on (a redrive, in).  A
	 * grouped message that held the baton before its promotion hands
	 * it on; one that did not leaves its group as it was.
	 */
	if (q != to || target == SQ_STATE_HELD)
		sq_group_release(q, &n);
	if (newname != NULL)
		strlcpy(newname, dest, SQ_NAME_MAX + 1);
out:
	saved = errno;
	if (fromfd != -1)
		close(fromfd);
	if (tofd != -1)
		close(tofd);
	errno = saved;
	return rc;
}

int
sq_admin_delete(struct sq_queue *q, enum sq_state st, const char *name)
{
	struct sq_name n;
	int fd, rc, saved;

	if (sq_name_parse(&n, name) == -1) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = state_dir(q, st, name)) == -1)
		return -1;
	rc = unlinkat(fd, name, 0);
	saved = errno;
	close(fd);
	if (rc == 0) {
		sidecars_remove(q, n.id);
		sq_group_release(q, &n);
	}
	errno = saved;
	return rc;
}

/*
 * Dead letters into another queue (queue.conf dead_letter), as SQS's
 * redrive policy and RabbitMQ's dead-letter exchange send them: the
 * message leaves its state in q for the new/ of the queue beside q by
 * one rename, the commit point, keeping its ID; its sidecars are put in
 * place before it and removed from q after it, so a crash leaves at worst
 * a sidecar in both queues, one an orphan for gc.  The target's bounds
 * (max_messages, max_bytes) never refuse a dead letter: nothing may be
 * lost, and the move only happens where the message would otherwise
 * have gone to dead/, itself unbounded.  The target is opened without
 * its queue.conf (a broken one does not stop the move), once for the
 * life of q (dead_letter_target), and the move is made durable as q's
 * durability says.  Two kinds stay in q's dead/
 * with no warning: a fan-out copy still shared with another queue (its
 * link count above one), whose ID the target may already hold or be
 * given again from another copy, two messages of one ID and one
 * sidecar; and a dead letter forwarded into q and not yet claimed (r=
 * in its name), so queues naming each other do not pass a message that
 * expires in each back and forth for ever.
 */
/*
 * The dead_letter queue of q, at path: its directories (not its
 * queue.conf: a broken one does not stop the move), opened at the first
 * dead letter and kept in q->dl_to while path still names that very
 * directory (one fstatat(2) per dead letter, no open: a queue destroyed,
 * renamed or made anew since is opened again; one whose directories
 * were made anew, by a destroy that put it back, is opened again by
 * dead_letter_forward when a move into them fails with ENOENT).  Returns
 * it, or NULL with errno (ENOENT, ENOTDIR: no queue there; SQ_EBROKEN...).
 */
static struct sq_queue *
dead_letter_target(struct sq_queue *q, const char *path)
{
	struct sq_queue *to = q->dl_to;
	struct stat named, open;
	char err[PATH_MAX + 64];
	int saved;

	if (to != NULL && strcmp(to->path, path) == 0 &&
	    fstatat(AT_FDCWD, path, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fstat(to->fd, &open) == 0 && named.st_dev == open.st_dev &&
	    named.st_ino == open.st_ino)
		return to;
	dead_letter_close(q);
	if ((to = malloc(sizeof(*to))) == NULL)
		return NULL;
	if (sq_queue_open_dirs(to, path, err, sizeof(err)) == -1) {
		saved = errno;
		free(to);
		errno = saved;
		return NULL;
	}
	return q->dl_to = to;
}

int
dead_letter_forward(struct sq_queue *q, int fromfd, const char *name,
    const struct sq_name *n, char *newname)
{
	struct sq_queue *to;
	struct sq_name m = *n, was;
	struct stat st;
	char path[PATH_MAX], dest[SQ_NAME_MAX + 1];
	unsigned made = 0, there = 0;
	int rc = 0, e = 0, lost, retried = 0;

	if (q->conf.dead_letter[0] == '\0')
		return 0;
	/* Forwarded once already: it rests here. */
	if (sq_name_parse(&was, name) == 0 && was.reason[0] != '\0')
		return 0;
	/* Only a regular file is a message; a gone one is the caller's. */
	if (fstatat(fromfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return 0;
	/* A fan-out copy other queues still hold: its ID is not ours. */
	if (st.st_nlink != 1)
		return 0;
	dead_letter_name(&m);
	if ((size_t)snprintf(path, sizeof(path), "%s/../%s", q->path,
	    q->conf.dead_letter) >= sizeof(path)) {
		q->dl_errno = ENAMETOOLONG;
		return 0;
	}
	if (sq_name_format(dest, sizeof(dest), &m) == -1) {
		q->dl_errno = errno;
		return 0;
	}
again:
	if ((to = dead_letter_target(q, path)) == NULL) {
		q->dl_errno = errno;
		return 0;
	}
	/* Never a copy: one rename, or dead/ as ever. */
	if (to->dev != st.st_dev) {
		e = EXDEV;
		goto out;
	}
	made = sidecars_make(q, to, m.id, &there, &lost);
	if (lost != 0) {
		/* Never h without its sidecar: dead/ keeps both. */
		sidecars_unlink(to, m.id, made);
		e = lost;
		goto out;
	}
	/*
	 * The commit point, judged as a settle's: a rename the file system
	 * reported failed but made is made, and the message is not moved
	 * again into dead/.  A grouped one waits behind its group's head,
	 * as a send into the group puts it.
	 */
	if ((m.group[0] != '\0' ? group_publish_from(to, fromfd, name, dest,
	    m.group) : settle_commit(q, fromfd, name, SQ_DIR_NEW, to->newfd,
	    dest)) == -1) {
		e = errno;
		sidecars_unlink(to, m.id, made);
		dead_letter_close(q);	/* the next opens the queue afresh */
		/*
		 * The message still here: a directory of the target was
		 * removed since it was opened (a destroy that put the queue
		 * back made them anew).  Open the queue again, once.
		 */
		if (e == ENOENT && !retried && fstatat(fromfd, name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0) {
			retried = 1;
			e = 0;
			goto again;
		}
		if (e == ENOENT)
			e = 0;		/* gone: the caller's move says so */
		goto out;
	}
	rc = 1;
	q->dl_errno = 0;
	q->dl_sent++;
	if (m.group[0] == '\0' && q->conf.durability == SQ_DURABILITY_FSYNC)
		(void)fsync(to->newfd);
	sidecars_unlink(q, m.id, there);
	/* An old ID: claimed in ID order ahead of the index's snapshot. */
	if (m.group[0] == '\0')
		(void)index_offer(to, dest);
	if (newname != NULL)
		strlcpy(newname, dest, SQ_NAME_MAX + 1);
out:
	if (e != 0)
		q->dl_errno = e;
	return rc;
}

int
sq_dead_letter_failed(struct sq_queue *q)
{
	if (q->dl_errno == 0 || q->dl_errno == q->dl_told)
		return 0;
	q->dl_told = q->dl_errno;
	return q->dl_errno;
}
