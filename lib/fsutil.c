/*
 * fsutil.c - the few file-system primitives every module shares.
 *
 * sq_rename is the one rename under every change of a message's state
 * (made through move.c) and of every other file that is published by
 * rename: it never replaces an existing file (SPEC 2).  Where the file system does
 * not know RENAME_NOREPLACE it answers EINVAL, and we fall back to a plain
 * rename and rely on names being unique by construction; never link(2)
 * plus unlink(2), which a crash can leave as two copies.
 *
 * sq_open_regular is the only way a body, sidecar, marker or settings
 * file is opened: whatever else lands in a queue (a symlink, FIFO,
 * socket, device or directory) is refused without being followed and
 * without blocking (SPEC 2, "Hostile and broken surroundings").
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spoolq.h"

int64_t
sq_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
sq_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
sq_rename(int fromfd, const char *from, int tofd, const char *to)
{
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	return renameat(fromfd, from, tofd, to);
}

int
sq_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The directory holding the entry path (relative to dfd): each component
 * before the last is opened without following a symlink, since O_NOFOLLOW
 * guards only the last one (a queue's run/ planted as a symlink must not
 * lead a write outside the queue).  Returns a descriptor to close, or -1
 * with errno (SQ_ENOTREG for a component that is not a directory); *leaf
 * is set to the last component.
 */
static int
parent_nofollow(int dfd, const char *path, const char **leaf)
{
	char comp[NAME_MAX + 1];
	struct stat st;
	const char *p = path, *slash;
	int fd = -1, next, saved;

	while ((slash = strchr(p, '/')) != NULL) {
		if ((size_t)(slash - p) >= sizeof(comp)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, p, (size_t)(slash - p));
		comp[slash - p] = '\0';
		next = openat(fd == -1 ? dfd : fd, comp, O_PATH | O_NOFOLLOW |
		    O_CLOEXEC);
		if (next == -1)
			goto fail;
		if (fd != -1)
			close(fd);
		fd = next;
		if (fstat(fd, &st) == -1)
			goto fail;
		if (!S_ISDIR(st.st_mode)) {
			errno = SQ_ENOTREG;
			goto fail;
		}
		p = slash + 1;
	}
	*leaf = p;
	return fd;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	errno = saved;
	return -1;
}

int
sq_open_regular(int dfd, const char *path, int flags, mode_t mode,
    struct stat *st)
{
	struct stat sb;
	int fd, pfd = -1, saved;

	if (st == NULL)
		st = &sb;
	if (path[0] != '/' && strchr(path, '/') != NULL) {
		if ((pfd = parent_nofollow(dfd, path, &path)) == -1)
			return -1;
		dfd = pfd;
	}
	fd = openat(dfd, path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
	    mode);
	if (pfd != -1) {
		saved = errno;
		close(pfd);
		errno = saved;
	}
	if (fd == -1) {
		/*
		 * O_NOFOLLOW refuses a symlink with ELOOP; a directory opened
		 * for writing gives EISDIR, a socket (or a FIFO without a
		 * reader, opened for writing) ENXIO.
		 */
		if (errno == ELOOP || errno == EISDIR || errno == ENXIO)
			errno = SQ_ENOTREG;
		return -1;
	}
	if (fstat(fd, st) == -1)
		goto fail;
	if (!S_ISREG(st->st_mode)) {
		errno = SQ_ENOTREG;
		goto fail;
	}
	/*
	 * Bodies go to jobs as stdin: leave them as a plain open gives,
	 * unless the caller asked for O_NONBLOCK (it reads the file itself,
	 * and on a regular file O_NONBLOCK changes nothing).
	 */
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & O_APPEND) ==
	    -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
sq_entry_regular(int dfd, const char *name, unsigned char d_type)
{
	struct stat st;

	if (d_type != DT_UNKNOWN)
		return d_type == DT_REG;
	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

const char *
sq_mode_name(mode_t mode)
{
	if (S_ISLNK(mode))
		return "symlink";
	if (S_ISFIFO(mode))
		return "FIFO";
	if (S_ISDIR(mode))
		return "directory";
	if (S_ISSOCK(mode))
		return "socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "device";
	return "regular file";
}
