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
 *	floor drain DIR N	sends N messages as above, untimed, then
 *				N times: renameat from new/NAME to
 *				cur/NAME,a=1,l=DEADLINE, openat, read
 *				and close of the body, unlinkat (the floor
 *				of qbridge out: claim, read, ack); prints
 *				the seconds of that drain alone
 *	floor dedup DIR N	N times: openat(tmp/NAME, O_CREAT|O_EXCL),
 *				write, close, the marker dedup/KEY, then
 *				renameat to new/NAME (the floor of
 *				qbridge in's deduplicated send).  As
 *				spoolq's batches do on a local file
 *				system (spoolq(5), Deduplication
 *				markers), the first marker of every
 *				BATCH messages is made by openat(O_RDWR|
 *				O_CREAT|O_EXCL) and flock, each next one
 *				is a linkat to it, and each gets its line
 *				by one pwrite; the file is closed, which
 *				unlocks it, at the end of its batch
 *	floor true		does nothing (the floor of one process per
 *				shell-loop iteration)
 *
 * DIR/tmp, DIR/new, DIR/cur and DIR/dedup are created when missing.
 * Names have the shape and length of spoolq's IDs
 * (SECONDS.NANOSECONDS.PID_COUNTER.HOST).  Bodies are the decimal counter,
 * as "seq N" gives to qsend; drain and dedup pad it with zeros to
 * BODYLEN bytes, the messages of bench/bridge.  No fsync: the queues it
 * is compared with use durability = none.
 */

#include <sys/file.h>
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
#define BODYLEN	100	/* drain and dedup: bench/bridge's messages */
#define BATCH	100	/* dedup: messages per marker file (qbridge --batch) */

static void	usage(void) __attribute__((noreturn));
static int	opendir_fd(int, const char *);
static long	parse_count(const char *);
static void	name_make(char *, size_t, unsigned long);
static void	body_write(int, const char *, unsigned long, int);
static void	put(int, int, const char *, unsigned long, int);
static int	floor_send(const char *, long);
static int	floor_cycle(const char *, long);
static int	floor_drain(const char *, long);
static int	floor_dedup(const char *, long);

static void
usage(void)
{
	fprintf(stderr, "usage: floor send dir count\n"
	    "       floor cycle dir count\n"
	    "       floor dedup dir count\n"
	    "       floor drain dir count\n"
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

/*
 * Write the body of message i into tmp/name: open, write, close.  The
 * body is i in decimal, padded with zeros to width bytes (0: unpadded).
 */
static void
body_write(int tmpfd, const char *name, unsigned long i, int width)
{
	char body[BODYLEN + 1];
	int fd, len;

	len = snprintf(body, sizeof(body), "%0*lu", width, i);
	if (len < 0 || (size_t)len >= sizeof(body))
		errx(70, "body too long");
	fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644);
	if (fd == -1)
		err(73, "tmp/%s", name);
	if (write(fd, body, len) != len)
		err(74, "tmp/%s", name);
	if (close(fd) == -1)
		err(74, "tmp/%s", name);
}

/* Write one message tmp/name -> new/name: open, write, close, rename. */
static void
put(int tmpfd, int newfd, const char *name, unsigned long i, int width)
{
	body_write(tmpfd, name, i, width);
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
		put(tmpfd, newfd, name, i, 0);
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
		put(tmpfd, newfd, name, i, 0);
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

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
floor_drain(const char *dir, long count)
{
	char *names, claimed[NAMELEN + 32], body[BODYLEN + 1];
	double t0;
	long i;
	int dirfd, tmpfd, newfd, curfd, fd, n;

	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1)
		err(66, "%s", dir);
	tmpfd = opendir_fd(dirfd, "tmp");
	newfd = opendir_fd(dirfd, "new");
	curfd = opendir_fd(dirfd, "cur");
	if ((names = calloc(count + 1, NAMELEN)) == NULL)
		err(71, NULL);
	for (i = 1; i <= count; i++) {
		name_make(names + i * NAMELEN, NAMELEN, i);
		put(tmpfd, newfd, names + i * NAMELEN, i, BODYLEN);
	}
	t0 = now();
	for (i = 1; i <= count; i++) {
		n = snprintf(claimed, sizeof(claimed), "%s,a=1,l=%lld",
		    names + i * NAMELEN, (long long)time(NULL) + 300);
		if (n < 0 || (size_t)n >= sizeof(claimed))
			errx(70, "name too long");
		if (renameat(newfd, names + i * NAMELEN, curfd, claimed) == -1)
			err(74, "cur/%s", claimed);
		fd = openat(curfd, claimed, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd == -1)
			err(74, "cur/%s", claimed);
		if (read(fd, body, sizeof(body)) != BODYLEN)
			err(74, "cur/%s", claimed);
		if (close(fd) == -1)
			err(74, "cur/%s", claimed);
		if (unlinkat(curfd, claimed, 0) == -1)
			err(74, "cur/%s", claimed);
	}
	printf("%.6f\n", now() - t0);
	free(names);
	return 0;
}

static int
floor_dedup(const char *dir, long count)
{
	char name[NAMELEN], key[NAMELEN], first[NAMELEN], line[3 * NAMELEN];
	off_t end = 0;
	long i;
	int dirfd, tmpfd, newfd, dedupfd, fd = -1, n;

	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1)
		err(66, "%s", dir);
	tmpfd = opendir_fd(dirfd, "tmp");
	newfd = opendir_fd(dirfd, "new");
	dedupfd = opendir_fd(dirfd, "dedup");
	for (i = 1; i <= count; i++) {
		name_make(name, sizeof(name), i);
		body_write(tmpfd, name, i, BODYLEN);
		/* A broker's message ID, as qbridge in's dedup ID. */
		n = snprintf(key, sizeof(key), "%lld-%ld",
		    (long long)time(NULL) * 1000, i);
		if (n < 0 || (size_t)n >= sizeof(key))
			errx(70, "key too long");
		if (fd == -1) {
			fd = openat(dedupfd, key, O_RDWR | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0666);
			if (fd == -1)
				err(73, "dedup/%s", key);
			if (flock(fd, LOCK_EX | LOCK_NB) == -1)
				err(74, "dedup/%s", key);
			memcpy(first, key, sizeof(first));
			end = 0;
		} else if (linkat(dedupfd, first, dedupfd, key, 0) == -1)
			err(73, "dedup/%s", key);
		n = snprintf(line, sizeof(line), "%s pending %lld new %s %s\n",
		    name, (long long)time(NULL) * 1000, name, key);
		if (n < 0 || (size_t)n >= sizeof(line))
			errx(70, "line too long");
		if (pwrite(fd, line, n, end) != n)
			err(74, "dedup/%s", key);
		end += n;
		if (renameat(tmpfd, name, newfd, name) == -1)
			err(74, "new/%s", name);
		if (i % BATCH == 0 || i == count) {
			if (close(fd) == -1)
				err(74, "dedup/%s", first);
			fd = -1;
		}
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
	if (strcmp(argv[1], "dedup") == 0)
		return floor_dedup(argv[2], parse_count(argv[3]));
	if (strcmp(argv[1], "drain") == 0)
		return floor_drain(argv[2], parse_count(argv[3]));
	usage();
}
