/*
 * fsutil.c - the few file-system primitives every module shares.
 *
 * sq_rename is the only way a message changes state: one rename that
 * never replaces an existing file (SPEC 2).  Where the file system does
 * not know RENAME_NOREPLACE it answers EINVAL, and we fall back to a plain
 * rename and rely on names being unique by construction; never link(2)
 * plus unlink(2), which a crash can leave as two copies.
 */
#include <errno.h>
#include <stdio.h>
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
