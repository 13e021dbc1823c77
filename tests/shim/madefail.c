/*
 * madefail.c - an LD_PRELOAD library for the tests: the first rename or
 * unlink that SPOOLQ_MADEFAIL names is made, then reported failed with
 * EIO, as a network file system reports a call whose reply was lost.
 * strace's fault injection cannot do this: it fails the call instead of
 * making it.
 *
 *	SPOOLQ_MADEFAIL=OP:DIR
 *
 * OP is renameat2 or unlinkat; DIR the last component of the directory
 * the call works in: for unlinkat the file's, for renameat2 the
 * destination's (cur, retry, dead, new, tmp, archive).  Once per process.
 * While SPOOLQ_MADEFAIL is set, fstatfs(2) says NFS, the file system that
 * does this: the library looks for a message after an unlink reported
 * failed only on a network file system, and takes a local one at its
 * word.
 * Built by the tests themselves: cc -shared -fPIC -o madefail.so
 * madefail.c.
 */
#include <sys/syscall.h>
#include <sys/vfs.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NFS_MAGIC	0x6969	/* statfs(2) f_type: NFS_SUPER_MAGIC */

static int done;

/* Whether this call of op in directory fd is the one to report failed. */
static int
chosen(const char *op, int fd)
{
	const char *want = getenv("SPOOLQ_MADEFAIL"), *dir;
	char link[64], path[PATH_MAX];
	size_t oplen = strlen(op);
	ssize_t n;

	if (done || want == NULL || strncmp(want, op, oplen) != 0 ||
	    want[oplen] != ':')
		return 0;
	dir = want + oplen + 1;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) == -1)
		return 0;
	path[n] = '\0';
	n -= (ssize_t)strlen(dir);
	if (n < 1 || path[n - 1] != '/' || strcmp(path + n, dir) != 0)
		return 0;
	done = 1;
	return 1;
}

int
renameat2(int ofd, const char *from, int nfd, const char *to,
    unsigned int flags)
{
	if (syscall(SYS_renameat2, ofd, from, nfd, to, flags) == -1)
		return -1;
	if (chosen("renameat2", nfd)) {
		errno = EIO;
		return -1;
	}
	return 0;
}

int
unlinkat(int dfd, const char *name, int flags)
{
	if (syscall(SYS_unlinkat, dfd, name, flags) == -1)
		return -1;
	if (chosen("unlinkat", dfd)) {
		errno = EIO;
		return -1;
	}
	return 0;
}

int
fstatfs(int fd, struct statfs *sf)
{
	if (syscall(SYS_fstatfs, fd, sf) == -1)
		return -1;
	if (getenv("SPOOLQ_MADEFAIL") != NULL)
		sf->f_type = NFS_MAGIC;
	return 0;
}
