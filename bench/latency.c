/*
 * latency: the wake-up latency harness of bench/worker.
 *
 *	latency stamp FIFO
 *	latency measure FIFO count gap_us[-max_us] kind ...
 *
 * stamp is the job: it reads CLOCK_REALTIME first thing, then writes
 * "NANOSECONDS ID\n" to FIFO (ID is $SPOOLQ_ID, or "-") and exits 0.
 *
 * measure takes count samples of each kind (after a few warm-up samples
 * that do not count), the kinds taking turns sample by sample so that
 * whatever else the machine does weighs on them alike, with gap_us
 * microseconds of rest before each sample so that each one finds its
 * waiter idle (with -max_us, a rest drawn at random between the two, so
 * that samples fall at every phase of a waiter that polls).  A sample is the time from a CLOCK_REALTIME reading here
 * to a stamp read from FIFO.  Then it prints one line per kind:
 * "KIND n=N min=NS median=NS p90=NS max=NS" (nanoseconds).  The kinds:
 *
 *	inotify:DIR	the raw inotify latency: a child process blocked in
 *			read(2) on an inotify descriptor watching DIR/new for
 *			IN_MOVED_TO is woken by the publication of a message
 *			(below) into DIR, and writes its wake time to FIFO.
 *			DIR, DIR/tmp and DIR/new are created when missing.
 *	exec		the start cost of a job: fork(2), then execv(3) of
 *			this program as "latency stamp FIFO" (the time until
 *			it stamps), then waitpid(2).
 *	send:QUEUEDIR	the send-to-start latency of a waiting qworker:
 *			publish one message into QUEUEDIR and read the stamp
 *			of the job that "qworker QUEUE -- latency stamp FIFO"
 *			runs for it (its $SPOOLQ_ID must be the ID sent);
 *			before each sample, wait until the queue's new/ and
 *			cur/ are empty (the last message was settled).
 *
 * Publishing a message is what qsend does for a queue with durability =
 * none, done in this process so that no process start-up is measured:
 * open tmp/ID (O_CREAT|O_EXCL), write, close, then renameat2 into new/ID
 * with RENAME_NOREPLACE.  inotify and send both start their clock before
 * the open, so their figures include the same publication work.
 *
 * Plain system calls only (no libspoolq), so that the harness is the
 * same for the baselines and for qworker.  Exit status: 0; 1 when a
 * stamp does not come within 5 seconds or comes for another message, or
 * a message is not settled within 5 seconds; 64 usage; 71 system error.
 */

#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WARMUP		5		/* samples that do not count */
#define STAMP_WAIT_MS	5000		/* a stamp must come by then */
#define SETTLE_WAIT_MS	5000		/* a message must be settled by then */
#define LINE_MAX_LEN	512
#define ID_MAX		160
#define KINDS_MAX	8

/* One kind of sample: its state and its results. */
struct kind {
	const char	*name;		/* "inotify", "exec", "send" */
	int64_t		(*sample)(struct kind *, unsigned long);
	void		(*end)(struct kind *);
	int64_t		*v;		/* the samples, ns */
	int		 rfd;		/* FIFO, read side (shared) */
	int		 dirfd, tmpfd, newfd;	/* inotify, send */
	pid_t		 pid;		/* inotify: the waiter */
	char		 self[PATH_MAX];	/* exec: this program */
	char		*argv[4];	/* exec: self stamp FIFO */
};

static void	usage(void) __attribute__((noreturn));
static int64_t	now_ns(void);
static long	parse_count(const char *, long, long);
static int	stamp(const char *);
static int	open_fifo(const char *);
static int	read_stamp(int, int64_t *, char *, size_t);
static void	rest(long);
static int	opendir_fd(int, const char *);
static void	publish(int, int, char *, size_t, unsigned long);
static int	dir_empty(int, const char *);
static void	settled(int);
static int	cmp_ns(const void *, const void *);
static void	report(const char *, int64_t *, long);
static void	inotify_setup(struct kind *, const char *);
static int64_t	inotify_sample(struct kind *, unsigned long);
static void	inotify_end(struct kind *);
static void	exec_setup(struct kind *, const char *);
static int64_t	exec_sample(struct kind *, unsigned long);
static void	send_setup(struct kind *, const char *);
static int64_t	send_sample(struct kind *, unsigned long);
static void	send_end(struct kind *);
static int	measure(const char *, long, long, long, int, char **);

static void
usage(void)
{
	fprintf(stderr, "usage: latency stamp fifo\n"
	    "       latency measure fifo count gap_us[-max_us] kind ...\n"
	    "kinds: inotify:dir exec send:queuedir\n");
	exit(64);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long
parse_count(const char *s, long min, long max)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < min || n > max)
		errx(64, "%s: bad number", s);
	return n;
}

/* The job: stamp the time, then tell it.  Never blocks on a FIFO. */
static int
stamp(const char *fifo)
{
	int64_t t = now_ns();
	const char *id = getenv("SPOOLQ_ID");
	char line[LINE_MAX_LEN];
	int fd, len;

	len = snprintf(line, sizeof(line), "%" PRId64 " %s\n", t,
	    id != NULL && *id != '\0' ? id : "-");
	if (len < 0 || (size_t)len >= sizeof(line))
		errx(1, "ID too long");
	/* O_NONBLOCK: fail (ENXIO) rather than hang when no one reads. */
	if ((fd = open(fifo, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC)) ==
	    -1)
		err(1, "%s", fifo);
	if (write(fd, line, (size_t)len) != len)	/* < PIPE_BUF: atomic */
		err(1, "%s", fifo);
	close(fd);
	return 0;
}

/* Open FIFO for reading without waiting for a writer, and never see EOF. */
static int
open_fifo(const char *path)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1)
		err(71, "%s", path);
	if (fstat(fd, &st) == -1)
		err(71, "%s", path);
	if (!S_ISFIFO(st.st_mode))
		errx(64, "%s: not a FIFO", path);
	return fd;
}

/* Read one stamp line "NS ID" from fd; 0, or -1 after STAMP_WAIT_MS. */
static int
read_stamp(int fd, int64_t *ns, char *id, size_t idsize)
{
	static char buf[4 * LINE_MAX_LEN];
	static size_t len;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char *nl, *sp, *end;
	ssize_t n;
	size_t linelen;

	while ((nl = memchr(buf, '\n', len)) == NULL) {
		if (len == sizeof(buf))
			errx(1, "FIFO: line too long");
		n = poll(&pfd, 1, STAMP_WAIT_MS);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			err(71, "poll");
		if (n == 0)
			return -1;
		if ((n = read(fd, buf + len, sizeof(buf) - len)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err(71, "read");
		}
		len += (size_t)n;
	}
	*nl = '\0';
	linelen = (size_t)(nl - buf) + 1;
	errno = 0;
	*ns = strtoll(buf, &end, 10);
	if (errno != 0 || end == buf || *end != ' ')
		errx(1, "FIFO: bad stamp \"%s\"", buf);
	sp = end + 1;
	if (strlen(sp) >= idsize)
		errx(1, "FIFO: ID too long");
	strcpy(id, sp);
	memmove(buf, buf + linelen, len - linelen);
	len -= linelen;
	return 0;
}

static void
rest(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Open (creating if missing) the subdirectory name of dirfd. */
static int
opendir_fd(int dirfd, const char *name)
{
	int fd;

	if (mkdirat(dirfd, name, 0755) == -1 && errno != EEXIST)
		err(71, "mkdir %s", name);
	if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		err(71, "%s", name);
	return fd;
}

/*
 * Publish one message as qsend does with durability = none: tmp/ID,
 * then rename into new/ID.  The ID has the shape of spoolq's IDs.
 */
static void
publish(int tmpfd, int newfd, char *id, size_t idsize, unsigned long i)
{
	struct timespec ts;
	char body[32];
	int fd, len, n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(id, idsize, "%010lld.%09ld.%ld_%lu_%08lx.latency",
	    (long long)ts.tv_sec, ts.tv_nsec, (long)getpid(), i,
	    (unsigned long)(i * 2654435761UL) & 0xffffffffUL);
	if (n < 0 || (size_t)n >= idsize)
		errx(71, "ID too long");
	len = snprintf(body, sizeof(body), "%lu\n", i);
	fd = openat(tmpfd, id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0666);
	if (fd == -1)
		err(71, "tmp/%s", id);
	if (write(fd, body, (size_t)len) != len)
		err(71, "tmp/%s", id);
	if (close(fd) == -1)
		err(71, "tmp/%s", id);
	if (renameat2(tmpfd, id, newfd, id, RENAME_NOREPLACE) == -1 &&
	    ((errno != EINVAL && errno != ENOSYS) ||
	    renameat(tmpfd, id, newfd, id) == -1))
		err(71, "new/%s", id);
}

/* Whether the subdirectory name of dirfd holds no entry. */
static int
dir_empty(int dirfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, empty = 1;

	if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		err(71, "%s", name);
	if ((d = fdopendir(fd)) == NULL)
		err(71, "%s", name);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* Wait until the queue's new/ and cur/ are empty: the job was settled. */
static void
settled(int qfd)
{
	int64_t until = now_ns() + (int64_t)SETTLE_WAIT_MS * 1000000;

	while (!dir_empty(qfd, "cur") || !dir_empty(qfd, "new")) {
		if (now_ns() > until)
			errx(1, "the message was not settled within %d ms",
			    SETTLE_WAIT_MS);
		rest(50);
	}
}

static int
cmp_ns(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Print NAME n=... min=... median=... p90=... max=... (nanoseconds). */
static void
report(const char *name, int64_t *v, long n)
{
	int64_t median;
	long p90;

	qsort(v, (size_t)n, sizeof(*v), cmp_ns);
	median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	p90 = (n * 9 + 9) / 10 - 1;		/* ceil(0.9 n) - 1 */
	printf("%s n=%ld min=%" PRId64 " median=%" PRId64 " p90=%" PRId64
	    " max=%" PRId64 "\n", name, n, v[0], median, v[p90], v[n - 1]);
}

/* inotify:DIR - a child blocked on inotify on DIR/new stamps its wake. */
static void
inotify_setup(struct kind *k, const char *dir)
{
	char ready;
	int pfd[2];

	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		err(71, "mkdir %s", dir);
	if ((k->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		err(71, "%s", dir);
	k->tmpfd = opendir_fd(k->dirfd, "tmp");
	k->newfd = opendir_fd(k->dirfd, "new");
	if (pipe2(pfd, O_CLOEXEC) == -1)
		err(71, "pipe");
	if ((k->pid = fork()) == -1)
		err(71, "fork");
	if (k->pid == 0) {
		/* The waiter: blocked in read(2) on inotify until a rename. */
		char ev[sizeof(struct inotify_event) + NAME_MAX + 1]
		    __attribute__((aligned(__alignof__(struct inotify_event))));
		char line[LINE_MAX_LEN];
		int ifd, len;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(line, sizeof(line), "/proc/self/fd/%d", k->newfd);
		if ((ifd = inotify_init1(IN_CLOEXEC)) == -1 ||
		    inotify_add_watch(ifd, line, IN_MOVED_TO | IN_ONLYDIR) ==
		    -1 || write(pfd[1], "r", 1) != 1)
			_exit(71);
		for (;;) {
			if (read(ifd, ev, sizeof(ev)) <= 0)
				_exit(71);
			len = snprintf(line, sizeof(line), "%" PRId64 " -\n",
			    now_ns());
			/* k->rfd is the FIFO, open read-write. */
			if (write(k->rfd, line, (size_t)len) != len)
				_exit(71);
		}
	}
	close(pfd[1]);
	if (read(pfd[0], &ready, 1) != 1)
		errx(71, "the inotify waiter did not start");
	close(pfd[0]);
}

static int64_t
inotify_sample(struct kind *k, unsigned long i)
{
	char id[ID_MAX], got[ID_MAX];
	int64_t t0, t1;

	t0 = now_ns();
	publish(k->tmpfd, k->newfd, id, sizeof(id), i);
	if (read_stamp(k->rfd, &t1, got, sizeof(got)) == -1)
		errx(1, "inotify: no wake-up within %d ms", STAMP_WAIT_MS);
	if (strcmp(got, "-") != 0)
		errx(1, "inotify: a stray stamp for %s", got);
	if (unlinkat(k->newfd, id, 0) == -1)
		err(71, "new/%s", id);
	return t1 - t0;
}

static void
inotify_end(struct kind *k)
{
	int status;

	kill(k->pid, SIGKILL);
	waitpid(k->pid, &status, 0);
}

/* exec - fork, execv "latency stamp FIFO", read its stamp, wait. */
static void
exec_setup(struct kind *k, const char *fifo)
{
	ssize_t n;

	if ((n = readlink("/proc/self/exe", k->self, sizeof(k->self) - 1)) ==
	    -1)
		err(71, "/proc/self/exe");
	k->self[n] = '\0';
	k->argv[0] = k->self;
	k->argv[1] = (char *)(uintptr_t)"stamp";
	k->argv[2] = (char *)(uintptr_t)fifo;
	k->argv[3] = NULL;
}

static int64_t
exec_sample(struct kind *k, unsigned long i)
{
	char got[ID_MAX];
	int64_t t0, t1;
	int status;
	pid_t pid;

	(void)i;
	t0 = now_ns();
	if ((pid = fork()) == -1)
		err(71, "fork");
	if (pid == 0) {
		execv(k->self, k->argv);
		_exit(127);
	}
	if (read_stamp(k->rfd, &t1, got, sizeof(got)) == -1)
		errx(1, "exec: no stamp within %d ms", STAMP_WAIT_MS);
	if (waitpid(pid, &status, 0) == -1)
		err(71, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		errx(1, "exec: the stamp failed");
	if (strcmp(got, "-") != 0)
		errx(1, "exec: a stray stamp for %s", got);
	return t1 - t0;
}

/* send:QUEUEDIR - publish into the queue, read the job's stamp. */
static void
send_setup(struct kind *k, const char *queue)
{
	if ((k->dirfd = open(queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		err(66, "%s", queue);
	if ((k->tmpfd = openat(k->dirfd, "tmp", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 ||
	    (k->newfd = openat(k->dirfd, "new", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		err(66, "%s: not a queue", queue);
}

static int64_t
send_sample(struct kind *k, unsigned long i)
{
	char id[ID_MAX], got[ID_MAX];
	int64_t t0, t1;

	t0 = now_ns();
	publish(k->tmpfd, k->newfd, id, sizeof(id), i);
	if (read_stamp(k->rfd, &t1, got, sizeof(got)) == -1)
		errx(1, "send: no job started within %d ms", STAMP_WAIT_MS);
	if (strcmp(got, id) != 0)
		errx(1, "send: a job started for %s, not for %s", got, id);
	return t1 - t0;
}

static void
send_end(struct kind *k)
{
	settled(k->dirfd);
}

static int
measure(const char *fifo, long count, long gap, long gapmax, int nkinds,
    char **kinds)
{
	struct kind k[KINDS_MAX];
	long i;
	int n, rfd;

	if (nkinds > KINDS_MAX)
		errx(64, "too many kinds");
	rfd = open_fifo(fifo);
	memset(k, 0, sizeof(k));
	for (n = 0; n < nkinds; n++) {
		k[n].rfd = rfd;
		if ((k[n].v = calloc((size_t)count, sizeof(*k[n].v))) == NULL)
			err(71, NULL);
		if (strncmp(kinds[n], "inotify:", 8) == 0) {
			k[n].name = "inotify";
			k[n].sample = inotify_sample;
			k[n].end = inotify_end;
			inotify_setup(&k[n], kinds[n] + 8);
		} else if (strcmp(kinds[n], "exec") == 0) {
			k[n].name = "exec";
			k[n].sample = exec_sample;
			exec_setup(&k[n], fifo);
		} else if (strncmp(kinds[n], "send:", 5) == 0) {
			k[n].name = "send";
			k[n].sample = send_sample;
			k[n].end = send_end;
			send_setup(&k[n], kinds[n] + 5);
		} else
			usage();
	}
	for (i = -WARMUP; i < count; i++)
		for (n = 0; n < nkinds; n++) {
			int64_t t;

			if (k[n].sample == send_sample)
				settled(k[n].dirfd);	/* the worker is idle */
			rest(gapmax > gap ? gap + random() % (gapmax - gap + 1) :
			    gap);
			t = k[n].sample(&k[n], (unsigned long)(i + WARMUP));
			if (i >= 0)
				k[n].v[i] = t;
		}
	for (n = 0; n < nkinds; n++) {
		if (k[n].end != NULL)
			k[n].end(&k[n]);
		report(k[n].name, k[n].v, count);
		free(k[n].v);
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	if (argc == 3 && strcmp(argv[1], "stamp") == 0)
		return stamp(argv[2]);
	if (argc >= 6 && strcmp(argv[1], "measure") == 0) {
		char *dash = strchr(argv[4], '-');
		long gap, gapmax = 0;

		if (dash != NULL) {
			*dash = '\0';
			gapmax = parse_count(dash + 1, 0, 10000000);
		}
		gap = parse_count(argv[4], 0, 10000000);
		srandom((unsigned)now_ns());
		return measure(argv[2], parse_count(argv[3], 1, 1000000), gap,
		    gapmax, argc - 5, argv + 5);
	}
	usage();
}
