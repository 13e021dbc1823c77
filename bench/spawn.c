/*
 * spawn: the bare baseline that bench/worker measures qworker against.
 *
 *	spawn [-j jobs] count path [arg ...]
 *
 * Runs path (with execv(3): no PATH search, no shell) count times and
 * waits for each run, doing nothing else: fork(2), execv(3) in the child,
 * waitpid(2) in the parent.  With -j 1 (the default) the runs are in
 * sequence, the floor of "qworker --drain -- path"; with -j N up to N
 * run at a time, a new one starting as soon as one ends, the floor of
 * "qworker -j N --drain -- path".
 *
 * Exit status: 0 when every run exited 0; 1 when one did not (it is
 * reported and the loop goes on); 64 usage; 71 fork failed.
 */

#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void	usage(void) __attribute__((noreturn));
static long	parse_count(const char *, long, long);
static pid_t	start(char **);
static int	reaped(int);

static void
usage(void)
{
	fprintf(stderr, "usage: spawn [-j jobs] count path [arg ...]\n");
	exit(64);
}

static long
parse_count(const char *s, long min, long max)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < min || n > max)
		errx(64, "%s: bad count", s);
	return n;
}

/* fork, then execv in the child; the child never returns. */
static pid_t
start(char **argv)
{
	pid_t pid;

	if ((pid = fork()) == -1)
		err(71, "fork");
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(errno == ENOENT ? 127 : 126);
	}
	return pid;
}

/* Whether a run that ended with status failed; reports it. */
static int
reaped(int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		warnx("a run exited %d", WEXITSTATUS(status));
	else
		warnx("a run was killed by signal %d", WTERMSIG(status));
	return 1;
}

int
main(int argc, char *argv[])
{
	long count, jobs = 1, started = 0, running = 0;
	int c, status, failed = 0;
	pid_t pid;

	while ((c = getopt(argc, argv, "+j:")) != -1) {
		switch (c) {
		case 'j':
			jobs = parse_count(optarg, 1, 1024);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		usage();
	count = parse_count(argv[0], 0, 100000000);
	argv++;

	while (started < count || running > 0) {
		while (started < count && running < jobs) {
			start(argv);
			started++;
			running++;
		}
		if ((pid = waitpid(-1, &status, 0)) == -1) {
			if (errno == EINTR)
				continue;
			err(71, "waitpid");
		}
		running--;
		failed |= reaped(status);
	}
	return failed;
}
