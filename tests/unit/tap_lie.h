/*
 * tap_lie.h - a file system that reports failed a move or unlink it
 * made, as NFS does when a reply is lost (the request sent again is
 * answered ENOENT), for the unit tests of settles.  Include after
 * spoolq.h, in one program only.
 *
 * renameat2(2) and unlinkat(2) are interposed: the program's own
 * definitions, which libspoolq.a's calls bind to, make the call and then,
 * when lie is set, clear it and say it failed with EIO.  tap_lie_unlink,
 * when set, is called instead of the next unlinkat (then cleared), for a
 * test to put something else in its place.  fstatfs(2) too: it says NFS,
 * where such a lie happens (the library looks for a message after an
 * unlink said failed only on a network file system), unless
 * tap_lie_local is set: then what the disk is.
 */
#ifndef SPOOLQ_TAP_LIE_H
#define SPOOLQ_TAP_LIE_H

#include <sys/syscall.h>
#include <sys/vfs.h>

#include <errno.h>
#include <unistd.h>

#define TAP_LIE_NFS	0x6969	/* statfs(2) f_type: NFS_SUPER_MAGIC */

static int lie;		/* the next move or unlink: made, said failed */
static int (*tap_lie_unlink)(int, const char *, int);
static int tap_lie_local;	/* fstatfs says the disk's own type */

int
fstatfs(int fd, struct statfs *sf)
{
	if (syscall(SYS_fstatfs, fd, sf) == -1)
		return -1;
	if (!tap_lie_local)
		sf->f_type = TAP_LIE_NFS;
	return 0;
}

/* After a call made: say it failed, when told to. */
static int
lied(long rc)
{
	if (rc == 0 && lie) {
		lie = 0;
		errno = EIO;
		return -1;
	}
	return (int)rc;
}

int
renameat2(int ofd, const char *from, int nfd, const char *to,
    unsigned int flags)
{
	return lied(syscall(SYS_renameat2, ofd, from, nfd, to, flags));
}

int
unlinkat(int dfd, const char *name, int flags)
{
	int (*instead)(int, const char *, int) = tap_lie_unlink;

	if (instead != NULL) {
		tap_lie_unlink = NULL;
		return instead(dfd, name, flags);
	}
	return lied(syscall(SYS_unlinkat, dfd, name, flags));
}

/* Claim one message of q into c, for a minute.  Returns 0 or -1. */
static inline int
tap_lie_claim(struct sq_queue *q, struct sq_claim *c)
{
	size_t got;
	int64_t next;

	if (sq_claim(q, 60000, NULL, c, 1, &got, &next) == -1 || got != 1)
		return -1;
	return 0;
}

/* Send one message and claim it into c.  Returns 0 or -1. */
static inline int
tap_lie_send_claim(struct sq_queue *q, struct sq_claim *c)
{
	struct sq_batch batch;

	sq_batch_begin(&batch, q, NULL, NULL);
	if (sq_batch_add(&batch, "x", 1) == -1 || sq_batch_end(&batch) ==
	    -1) {
		sq_batch_abort(&batch);
		return -1;
	}
	return tap_lie_claim(q, c);
}

#endif
