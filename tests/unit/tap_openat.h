/*
 * tap_openat.h - openat(2) interposed for the unit tests that count what
 * the library opens: the program's own definition, which libspoolq.a's
 * calls bind to, passes each name to tap_openat_seen (which the program
 * defines) and then makes the call.  Include after spoolq.h, in one
 * program only.
 */
#ifndef SPOOLQ_TAP_OPENAT_H
#define SPOOLQ_TAP_OPENAT_H

#include <sys/syscall.h>

#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

/* Called with the name of each openat(2); defined by the program. */
static void	tap_openat_seen(const char *);

int
openat(int dfd, const char *name, int flags, ...)
{
	va_list ap;
	mode_t mode = 0;

	if (flags & O_CREAT) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	tap_openat_seen(name);
	return (int)syscall(SYS_openat, dfd, name, flags, mode);
}

#endif
