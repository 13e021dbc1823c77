/*
 * commit.c - the commit point of a settle, and whether a commit that the
 * file system reported failed was made all the same.
 *
 * A settle (ack, retry, dead letter, reject, touch, release, take, the
 * ack of an archiving queue) is one rename or unlink of the message
 * (move.c's rules).  A network file system may report an error for one
 * it made: on NFS the reply is lost and the request sent again is
 * answered ENOENT, or the call says EIO or ESTALE.  Made again, the
 * settle would find its message gone and report a lost lease.  Here the
 * disk decides instead (settle_made): a rename by the name it chose, an
 * unlink by the message's ID being under no other name (looked for only
 * on a network or FUSE file system: a local one never reports failed a
 * call it made).  When even the look fails, the settle stays in doubt in
 * its struct sq_queue, and the next try of the same settle
 * (sq_settle_again) decides first, by the names of the first.  Only the failure path looks; the fast path is the
 * one call it always was.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* What settle_made found. */
enum made { THERE, MADE, LOST };

/*
 * After the commit of a settle of from (in fromfd) failed: whether it was
 * made all the same.  A file system may report an error for a rename or
 * unlink it made (NFS: the reply is lost and the request sent again is
 * answered ENOENT, or the call says EIO or ESTALE), and the settle made
 * again then finds nothing to move: it must count as made, not as a lost
 * lease.  Only when from is gone does it look further.  A rename (to not
 * NULL) was made when to, the name this settle chose, is a regular file
 * in tofd: names are unique, so no one else put it there.  An unlink (to
 * NULL) was made unless the ID lives under another name: recovered into
 * new/, claimed again in cur/, in retry/, dead/, hold/ or a group
 * (sq_msg_find: one listing of each state, only on this rare path, and
 * only on a network or FUSE file system, fs_remote: on a local one an
 * unlink reported failed was not made, and its name gone is a lost lease).
 * Returns THERE (from is still there: nothing was made; errno kept),
 * MADE, LOST (gone, not where this settle puts it: errno ENOENT), or -1
 * when it cannot tell (errno from the look).
 */
static int
settle_made(struct sq_queue *q, int fromfd, const char *from, int tofd,
    const char *to)
{
	char other[SQ_NAME_MAX + 1];
	struct sq_name n;
	struct sq_msg m;
	struct stat st;
	int saved = errno;

	if (to != NULL) {
		switch (move_made(fromfd, from, tofd, to)) {
		case 1:
			return MADE;
		case 0:
			return THERE;
		default:
			return errno == ENOENT ? LOST : -1;
		}
	}
	if (fstatat(fromfd, from, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = saved;
		return THERE;
	}
	if (errno != ENOENT)
		return -1;
	/*
	 * A local file system makes a call or reports it failed, never
	 * both: the name is gone because another process moved the
	 * message (recovered it, claimed it again), and no look is needed.
	 */
	if (!fs_remote(fromfd)) {
		errno = ENOENT;
		return LOST;
	}
	if (sq_name_parse(&n, from) == -1) {
		errno = EINVAL;
		return -1;
	}
	if (sq_msg_find(q, n.id, &m, other) == 0) {
		errno = ENOENT;
		return LOST;
	}
	/* Only something planted with its ID: not the message. */
	return errno == ENOENT || errno == SQ_ENOTREG ? MADE : -1;
}

int
settle_doubted(const struct sq_queue *q, const char *from, const char *dir,
    int unlink)
{
	if (q->doubt_from[0] == '\0' || strcmp(q->doubt_from, from) != 0 ||
	    q->doubt_dir == NULL || strcmp(q->doubt_dir, dir) != 0)
		return 0;
	return unlink == -1 || unlink == (q->doubt_to[0] == '\0');
}

void
settle_doubt_clear(struct sq_queue *q)
{
	q->doubt_from[0] = '\0';
	q->doubt_dir = NULL;
	q->doubt_to[0] = '\0';
}

/* The settle first decides one in doubt, then commits (internal.h). */
int
settle_commit(struct sq_queue *q, int fromfd, const char *from,
    const char *dir, int tofd, char *to)
{
	int rc, e;

	if (settle_doubted(q, from, dir, to == NULL)) {
		if (to != NULL)
			strlcpy(to, q->doubt_to, SQ_NAME_MAX + 1);
		if ((rc = settle_made(q, fromfd, from, tofd, to)) == -1)
			return -1;
		settle_doubt_clear(q);
		if (rc != THERE)
			return rc == MADE ? 0 : -1;
	}
	rc = to != NULL ? move_rename(fromfd, from, tofd, to) :
	    unlinkat(fromfd, from, 0);
	if (rc == 0)
		return 0;
	e = errno;
	if ((rc = settle_made(q, fromfd, from, tofd, to)) == -1) {
		strlcpy(q->doubt_from, from, sizeof(q->doubt_from));
		q->doubt_dir = dir;
		strlcpy(q->doubt_to, to != NULL ? to : "",
		    sizeof(q->doubt_to));
		/* ENOENT unjudged is no lost lease: the look's error then. */
		if (e != ENOENT)
			errno = e;
		return -1;
	}
	if (rc == MADE)
		return 0;
	if (rc == THERE)
		errno = e;
	return -1;
}

int
settle_move(struct sq_queue *q, int fromfd, const char *from,
    const char *dir, int tofd, struct sq_name *n, char *newname)
{
	char to[SQ_NAME_MAX + 1];

	if (sq_name_format(to, sizeof(to), n) == -1 ||
	    settle_commit(q, fromfd, from, dir, tofd, to) == -1)
		return -1;
	(void)sq_name_parse(n, to);	/* the name chosen first, in doubt */
	if (newname != NULL)
		strlcpy(newname, to, SQ_NAME_MAX + 1);
	return 0;
}
