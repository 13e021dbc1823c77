/*
 * floor: the bare baselines that bench/run measures spoolq against.
 *
 * Each mode does the least work a queue on a directory tree can do, with
 * no library, no locking and no checks beyond the system calls' results,
 * so that its time is the floor for the same job done by the tools:
 *
 *	floor send DIR N	N times: openat(tmp/NAME, O_CREAT|O_EXCL),
 *				write, close, renameat to new/NAME
 *				(the floor of "seq N | qsend -l")
 *	floor cycle DIR N	N times: the send above, then renameat from
 *				new/NAME to cur/NAME,a=1,l=DEADLINE, then
 *				unlinkat (the floor of send + claim + ack)
 *	floor true		does nothing (the floor of one process per
 *				shell-loop iteration)
 *
 * DIR/tmp, DIR/new and DIR/cur are created when missing.  Names have the
 * shape and length of spoolq's IDs (SECONDS.NANOSECONDS.PID_COUNTER.HOST)
 * and bodies are the decimal counter, as "seq N" gives to qsend.  No fsync:
 * the queues it is compared with use durability = none.
 */

#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NAMELEN	128

static void	usage(void) __attribute__((noreturn));
static int	opendir_fd(int, const char *);
static long	parse_count(const char *);
static void	name_make(char *, size_t, unsigned long);
static void	put(int, int, const char *, unsigned long);
static int	floor_send(const char *, long);
static int	floor_cycle(const char *, long);

static void
usage(void)
{
	fprintf(stderr, "usage: floor send dir count\n"
	    "       floor cycle dir count\n"
	    "       floor true\n");
	exit(64);
}

/* Open (creating if missing) the subdirectory name of dirfd. */
static int
opendir_fd(int dirfd, const char *name)
{
	int fd;

	if (mkdirat(dirfd, name, 0755) == -1 && errno != EEXIST)
		err(73, "mkdir %s", name);
	if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY)) == -1)
		err(66, "%s", name);
	return fd;
}

static long
parse_count(const char *s)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < 0)
		errx(64, "%s: bad count", s);
	return n;
}

/* A name shaped like a spoolq ID: 10 + 9 digits, pid, counter, host. */
static void
name_make(char *buf, size_t size, unsigned long counter)
{
	struct timespec ts;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(buf, size, "%010lld.%09ld.%ld_%lu_00000000.floor",
	    (long long)ts.tv_sec, ts.tv_nsec, (long)getpid(), counter);
	if (n < 0 || (size_t)n >= size)
		errx(70, "name too long");
}

/* Write one message tmp/name -> new/name: open, write, close, rename. */
static void
put(int tmpfd, int newfd, const char *name, unsigned long i)
{
	char body[32];
	int fd, len;

	len = snprintf(body, sizeof(body), "%lu", i);
	fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644);
	if (fd == -1)
		err(73, "tmp/%s", name);
	if (write(fd, body, len) != len)
		err(74, "tmp/%s", name);
	if (close(fd) == -1)
		err(74, "tmp/%s", name);
	if (renameat(tmpfd, name, newfd, name) == -1)
		err(74, "new/%s", name);
}

static int
floor_send(const char *dir, long count)
{
	char name[NAMELEN];
	long i;
	int dirfd, tmpfd, newfd;

	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1)
		err(66, "%s", dir);
	tmpfd = opendir_fd(dirfd, "tmp");
	newfd = opendir_fd(dirfd, "new");
	for (i = 1; i <= count; i++) {
		name_make(name, sizeof(name), i);
		put(tmpfd, newfd, name, i);
	}
	return 0;
}

static int
floor_cycle(const char *dir, long count)
{
	char name[NAMELEN], claimed[NAMELEN + 32];
	long i;
	int dirfd, tmpfd, newfd, curfd, n;

	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1)
		err(66, "%s", dir);
	tmpfd = opendir_fd(dirfd, "tmp");
	newfd = opendir_fd(dirfd, "new");
	curfd = opendir_fd(dirfd, "cur");
	for (i = 1; i <= count; i++) {
		name_make(name, sizeof(name), i);
		put(tmpfd, newfd, name, i);
		n = snprintf(claimed, sizeof(claimed), "%s,a=1,l=%lld", name,
		    (long long)time(NULL) + 300);
		if (n < 0 || (size_t)n >= sizeof(claimed))
			errx(70, "name too long");
		if (renameat(newfd, name, curfd, claimed) == -1)
			err(74, "cur/%s", claimed);
		if (unlinkat(curfd, claimed, 0) == -1)
			err(74, "cur/%s", claimed);
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	if (argc == 2 && strcmp(argv[1], "true") == 0)
		return 0;
	if (argc != 4)
		usage();
	if (strcmp(argv[1], "send") == 0)
		return floor_send(argv[2], parse_count(argv[3]));
	if (strcmp(argv[1], "cycle") == 0)
		return floor_cycle(argv[2], parse_count(argv[3]));
	usage();
}
