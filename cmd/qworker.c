/*
 * qworker - run a command per message, with concurrency, timeouts,
 * retries, dead letters and crash recovery.
 *
 * One process, one poll(2) loop over a signalfd (SIGCHLD, SIGTERM,
 * SIGINT, SIGHUP), the inotify watches of the queues, and the stderr
 * pipes of the running jobs.  A job gets the message file itself as
 * stdin, so no body size and no child behaviour can block the loop;
 * its stderr is drained continuously and its tail kept for the failure
 * record.  Each job runs in its own process group, so a timeout can
 * stop the job and everything it started.
 *
 * The worker holds a lock in every queue's run/ for its whole life
 * (sq_worker_register) and marks its claims with its token: if it dies,
 * the next consumer returns its claims at once.  Each job holds a lock
 * of its own (sq_job_lock), open in the job and all it starts, so that
 * its claims are not returned while a process the job left behind still
 * runs (for at most a lease, a stopped one included).
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "qworker_batch.h"

#define JOBS_MAX	1024
#define KILL_GRACE_MS	5000		/* TERM, then KILL after this */
#define TAIL_MAX	4096		/* bytes of stderr kept per job */
#define LINE_MAX_COPY	4096		/* a longer stderr line is cut */
#define LOG_PREFIX_MAX	(SQ_ID_MAX + 24)	/* "ID+N: " */
#define HEARTBEAT_MAX_MS 10000		/* at least this often */
#define EXIT_NOSLOT	EX_TEMPFAIL	/* --slots: every slot busy */
#define PAUSE_MIN_MS	100		/* first back-off after a failed start */
#define PAUSE_MAX_MS	30000		/* longest back-off */
#define DRAIN_TRIES	6		/* --drain gives up after these */
#define BROKEN_MIN_MS	1000		/* first wait before a broken queue */
#define BROKEN_MAX_MS	60000		/* longest wait before it */
#define EXIT_NOEXEC	EX_UNAVAILABLE	/* the command cannot be executed */
#define EXEC_FD		3		/* in the job: execve's errno pipe */
#define LOCK_FD_MAX	(RESULT_FD + 1)	/* the job lock goes on no higher */
#define JOB_FDS		3		/* a running job: stderr, stdout pipes,
					   its job lock */
#define JOB_FILE_FDS	2		/* --output: its .out and .err files */
#define START_FDS	5		/* a start: body, write ends, exec pipe */
#define SPARE_FDS	4		/* settling: sidecar, queue.conf, lists */
#define QUEUE_FDS	10		/* a queue held open: its directory, tmp/,
					   new/, cur/, retry/, dead/, inotify,
					   run/worker lock, run/index, run/ (the
					   job locks) */
#define SIGNAL_FDS	1		/* the signalfd */
#define FDS_PROBE_MAX	65536		/* descriptors looked at for the count */
#define STUCK_MAX	16		/* unsettled claims kept per queue */

/* job_start results */
#define JOB_STARTED	0
#define JOB_FAILED	(-1)
#define JOB_NOEXEC	(-2)
#define JOB_NOOUTPUT	(-3)

struct wqueue {
	const char	*arg;		/* as given: SPOOLQ_QUEUE, logs */
	struct sq_queue	 q;
	struct sq_watch	*watch;
	int		 lockfd;	/* run/worker.TOKEN */
	int		 slotfd;	/* run/slot.N, or -1 */
	int64_t		 next_ms;	/* next retry due / lease end */
	int64_t		 poll_at;	/* look then (sq_mono_ms; 0: never) */
	/* Claims neither settled nor given back: again at each heartbeat. */
	char		 stuck[STUCK_MAX][SQ_NAME_MAX + 1];
	size_t		 nstuck;
	struct sq_backoff broken;	/* claims failed: the queue's fault */
	int64_t		 broken_until;	/* no claims before (sq_mono_ms; 0) */
};

/* A queue named on the command line that could not be opened (yet). */
struct pending {
	const char	*arg;
	char		 path[PATH_MAX];
	struct sq_backoff b;
	int64_t		 at;		/* try again then (sq_mono_ms) */
	char		 why[PATH_MAX * 2 + 256];	/* at start */
};

struct job {
	pid_t		 pid;		/* 0: free slot */
	int		 errfd;		/* read end of the stderr pipe */
	struct wqueue	*wq;
	struct sq_claim	 c;
	int64_t		 start_ms;	/* wall clock, for --output */
	int64_t		 started;	/* sq_mono_ms, for how long it took */
	/* Timers are times of sq_mono_ms: a wall clock step moves none. */
	int64_t		 term_ms;	/* send TERM then (0: no timeout) */
	int64_t		 kill_ms;	/* send KILL then (0: not yet) */
	int		 timed_out;
	int		 release;	/* stopped by us: give it back */
	int		 reaped;
	int		 status;
	char		 tail[TAIL_MAX];	/* ring of the last stderr */
	size_t		 tailpos, taillen;
	char		 line[LINE_MAX_COPY];	/* stderr line being copied */
	size_t		 linelen;
	uint64_t	 linecut;	/* bytes of it beyond line[] */
	int		 linebegun;	/* a line is being copied */
	/* --output: [0] standard output, [1] standard error */
	int		 outfd;		/* read end of the stdout pipe */
	int		 file[2];	/* .ID.TOKEN.out/.err, or -1 */
	uint64_t	 bytes[2];	/* what the job wrote */
	uint64_t	 kept[2];	/* of it, in the file */
	int		 ferr[2];	/* errno of a failed write */
	char		 lastc[2];	/* last byte kept */
	struct wbatch	*batch;		/* --batch: its claims, or NULL */
	int		 resfd;		/* --batch: the result pipe, or -1 */
	int		 lockfd;	/* run/job.TOKEN.ID (job_lock), or -1 */
};

struct worker {
	struct wqueue	*queues;	/* those served, room for all */
	size_t		 nqueues;
	struct pending	*pending;	/* the broken ones, tried again */
	size_t		 npending, allqueues;
	unsigned	 slots;		/* --slots */
	struct job	*jobs;
	size_t		 maxjobs, running;
	char		 token[SQ_TOKEN_MAX];
	char		**cmd;
	char		*path;		/* cmd[0] found in $PATH */
	int64_t		 timeout_ms;	/* -t; -1: from queue.conf */
	int64_t		 grace_ms;
	long long	 limit, taken;	/* -n */
	int		 drain, verbose, quiet;
	int		 stopping;	/* 1: no more claims; 2: killed */
	int64_t		 grace_end_ms;
	int		 sigfd;
	sigset_t	 oldmask;
	int		 failures;	/* any outcome but ack */
	struct sq_backoff pause;	/* the worker's own failures */
	int64_t		 pause_until;	/* no claims before (0: none) */
	int64_t		 beat_ms;	/* heartbeat interval, as recorded */
	int64_t		 beat_tried;	/* last heartbeat, sq_mono_ms */
	int		 exec_errno;	/* execve of the command failed */
	int		 exit_code;	/* why we stopped, if not 0 or 1 */
	size_t		 registered;	/* queues whose lock file we made */
	int		 outdir;	/* --output directory, or -1 */
	char		*outpath;	/* its absolute path */
	uint64_t	 outmax;	/* --output-max: bytes per stream */
	int64_t		 outage_ms;	/* --output-age: gc after (0: never) */
	int64_t		 outgc_at;	/* next look for old output */
	pid_t		 pid;		/* our own, for the jobs to check */
	size_t		 batch;		/* --batch: claims per job (0: one) */
	int64_t		 batch_wait_ms;	/* --batch-wait: fill this long */
	struct sq_claim	*pend;		/* the batch being filled */
	size_t		 npend;
	int64_t		 pend_until;	/* start it then at the latest */
	struct sq_rate	 rate;		/* --rate (rate_set), else queue.conf */
	int		 rate_set;
	int		 rate_wait;	/* the last round found no token */
	int		 lock_warned;	/* a job ran without its job lock */
};

/* As in the SYNOPSIS of qworker(1). */
static const char synopsis[] =
    "usage: qworker [-qv] [-d root] [-j jobs] [-n count] "
    "[-t duration] [--drain]\n"
    "               [--grace duration] [--slots count] "
    "[--output dir [--output-max size]\n"
    "               [--output-age duration]] "
    "[--batch count [--batch-wait duration]]\n"
    "               [--rate count/interval] queue ... -- command "
    "[arg ...]\n";

static const char options[] =
    "  --batch count     run the command once for up to count messages, "
    "their\n"
    "                    paths as arguments (one queue; results on "
    "$SPOOLQ_RESULT_FD)\n"
    "  --batch-wait duration\n"
    "                    wait this long for a batch to fill (default 0)\n"
    "  -d root           the spool root (default $SPOOLQ_DIR; "
    "spoolq(7))\n"
    "  --drain           exit once no message is ready and the jobs "
    "have ended\n"
    "  --grace duration  after SIGTERM, let jobs run this long (default "
    "30s)\n"
    "  -h, --help        this help\n"
    "  -j jobs           run up to jobs jobs at a time (default 1)\n"
    "  -n count          stop after count messages\n"
    "  --output dir      keep each job's stdout, stderr and status in "
    "dir/ID.*\n"
    "  --output-age duration\n"
    "                    remove output older than this (default 7d)\n"
    "  --output-max size keep this much of each stream (default 1M)\n"
    "  -q                quiet: log only errors\n"
    "  --rate count/interval\n"
    "                    start at most count jobs (batches: messages) "
    "per interval\n"
    "                    across the queue's workers: 50/s, 100/m, 10/h "
    "(default: rate)\n"
    "  --slots count     at most count workers per queue, system-wide\n"
    "  -t duration       kill a job running longer (default: "
    "job_timeout)\n"
    "  -v                verbose: log each claim, and a held queue\n"
    "  --version         print the version\n"
    "Queues are served in the order given.  The command gets the body on "
    "stdin;\n"
    "exit 0 acks, 75 or 111 retries, 100 or 65 dead-letters.\n";

static void __attribute__((noreturn))
usage(const char *why)
{
	tool_usage(synopsis, why == NULL ? NULL : "%s", why);
}

/* ------------------------------------------------------------- jobs */

/*
 * The job's environment: ours, minus any SPOOLQ_ variable we set, plus
 * the message's.  Built in the parent, so that the child between vfork
 * and execve makes system calls only.
 */
struct env {
	char	**v;
	size_t	  n, alloc;
};

static void
env_add(struct env *e, const char *name, const char *value)
{
	void *p;

	if (e->n + 2 > e->alloc) {
		e->alloc = e->alloc ? e->alloc * 2 : 64;
		if ((p = reallocarray(e->v, e->alloc, sizeof(*e->v))) == NULL)
			err(EX_OSERR, NULL);
		e->v = p;
	}
	if (asprintf(&e->v[e->n++], "%s=%s", name, value) == -1)
		err(EX_OSERR, NULL);
	e->v[e->n] = NULL;
}

/* The message's routing key and attributes into the environment. */
static int
attr_env(const char *name, const char *value, void *arg)
{
	char var[sizeof("SPOOLQ_ATTR_") + SQ_ATTR_NAME_MAX], *p;

	if (name == NULL) {
		env_add(arg, "SPOOLQ_KEY", value);
		return 0;
	}
	snprintf(var, sizeof(var), "SPOOLQ_ATTR_%s", name);
	for (p = var; *p != '\0'; p++)
		if (*p == '-')
			*p = '_';	/* a shell variable name */
	env_add(arg, var, value);
	return 0;
}

/* A variable describing a message: set per job, never inherited. */
static int
ours(const char *var)
{
	static const char *const names[] = {
		"SPOOLQ_ID=", "SPOOLQ_QUEUE=", "SPOOLQ_ATTEMPT=", "SPOOLQ_PATH=",
		"SPOOLQ_RECEIPT=", "SPOOLQ_KEY=", "SPOOLQ_ATTR_",
		"SPOOLQ_BATCH=", "SPOOLQ_RESULT_FD=",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(var, names[i], strlen(names[i])) == 0)
			return 1;
	return 0;
}

static void
env_build(struct env *e, struct job *j)
{
	extern char **environ;
	char path[PATH_MAX + SQ_NAME_MAX + 8], attempt[16], **ep, *eq;

	memset(e, 0, sizeof(*e));
	for (ep = environ; *ep != NULL; ep++) {
		if (ours(*ep))
			continue;	/* ours to set, not to inherit */
		if ((eq = strchr(*ep, '=')) == NULL)
			continue;
		*eq = '\0';
		env_add(e, *ep, eq + 1);
		*eq = '=';
	}
	if (j->batch != NULL) {
		snprintf(attempt, sizeof(attempt), "%zu", j->batch->b.n);
		env_add(e, "SPOOLQ_QUEUE", j->wq->arg);
		env_add(e, "SPOOLQ_BATCH", attempt);
		snprintf(attempt, sizeof(attempt), "%d", RESULT_FD);
		env_add(e, "SPOOLQ_RESULT_FD", attempt);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", sq_queue_real(&j->wq->q),
	    SQ_DIR_CUR, j->c.name);
	snprintf(attempt, sizeof(attempt), "%u", j->c.n.attempts);
	env_add(e, "SPOOLQ_ID", j->c.n.id);
	env_add(e, "SPOOLQ_QUEUE", j->wq->arg);
	env_add(e, "SPOOLQ_ATTEMPT", attempt);
	env_add(e, "SPOOLQ_PATH", path);
	env_add(e, "SPOOLQ_RECEIPT", path);
	if (j->c.n.has_attr && sq_attr_each(&j->wq->q, j->c.n.id, attr_env,
	    e) == -1 && errno != ENOENT)
		warn("%s: %s: attributes", j->wq->arg, j->c.n.id);
}

static void
env_free(struct env *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
}

/*
 * In the child, between vfork and execve: system calls only.  Become a
 * process group, die with the worker, wire stdio, close the rest.  The
 * close-on-exec descriptor xfd becomes 3 and stays open until execve:
 * if execve fails, its errno goes through it to the worker, which then
 * knows that the command, not the message, failed (an exit status of
 * 126 or 127 may as well come from a real program).  A batch job's
 * result pipe resfd (above RESULT_FD, or -1) becomes RESULT_FD, open
 * across execve.  The job lock lockfd (above LOCK_FD_MAX, or -1) comes
 * next, on the lowest descriptor free after those, open across execve:
 * the job and whatever it starts hold the lock (job_lock).
 */
static void __attribute__((noreturn))
job_exec(struct worker *w, char **argv, char **envp, int bodyfd, int outfd,
    int errfd, int xfd, int resfd, int lockfd)
{
	int e;

	setpgid(0, 0);
	/* If the worker is killed outright, its job must not run on. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != w->pid)
		_exit(EX_OSERR);
	signal(SIGPIPE, SIG_DFL);	/* ignored by the worker, not the job */
	sigprocmask(SIG_SETMASK, &w->oldmask, NULL);
	if (dup2(bodyfd, STDIN_FILENO) == -1 ||
	    (outfd != -1 && dup2(outfd, STDOUT_FILENO) == -1) ||
	    dup2(errfd, STDERR_FILENO) == -1 ||
	    (xfd != EXEC_FD && dup3(xfd, EXEC_FD, O_CLOEXEC) == -1) ||
	    (resfd != -1 && dup2(resfd, RESULT_FD) == -1))
		_exit(EX_OSERR);
	e = resfd != -1 ? RESULT_FD + 1 : EXEC_FD + 1;
	if (lockfd != -1 && dup2(lockfd, e++) == -1)
		_exit(EX_OSERR);
	if (syscall(SYS_close_range, e, ~0U, 0) == -1)
		for (; e < 1024; e++)
			close(e);
	execve(w->path, argv, envp);
	e = errno;
	(void)write(EXEC_FD, &e, sizeof(e));
	_exit(127);
}

/*
 * vfork: no copy of our memory to fault in per job (SPEC 6: a worker
 * within 1.3x of a bare fork+exec loop).  Kept apart so that no local of
 * the caller lives across the vfork.
 */
static pid_t
spawn(struct worker *w, char **argv, char **envp, int bodyfd, int outfd,
    int errfd, int xfd, int resfd, int lockfd)
{
	pid_t pid;

	if ((pid = vfork()) == 0)
		job_exec(w, argv, envp, bodyfd, outfd, errfd, xfd, resfd,
		    lockfd);
	return pid;
}

/*
 * Whether execve(2) could run path: an existing regular file that we may
 * execute.  Returns 0, or -1 with errno (ENOENT, EACCES...).
 */
static int
executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EACCES;		/* as execve(2) says of a directory */
		return -1;
	}
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS);
}

/*
 * The interpreter named by the "#!" line of the script at path, when it
 * cannot be run: execve(2) then fails with an errno (ENOENT, EACCES) that
 * names neither, as for a script with DOS line ends ("/bin/sh\r").
 * Reads what execve(2) reads of the file (256 bytes, BINPRM_BUF_SIZE in
 * Linux).  Returns the interpreter (a static buffer) with errno set, or
 * NULL: not a script, a file we may not read, or an interpreter that runs.
 */
static const char *
bad_interpreter(const char *path)
{
	static char line[256];
	char *p, *end;
	ssize_t n;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) ==
	    -1)
		return NULL;
	while ((n = read(fd, line, sizeof(line) - 1)) == -1 && errno == EINTR)
		;
	close(fd);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return NULL;
	line[n] = '\0';
	for (p = line + 2; *p == ' ' || *p == '\t'; p++)
		;
	end = p + strcspn(p, " \t\n");
	/* None named, or a line longer than what is read: execve's say. */
	if (end == p || (*end == '\0' && (size_t)n == sizeof(line) - 1))
		return NULL;
	*end = '\0';
	if (executable(p) == 0)
		return NULL;
	e = errno;
	errno = e;
	return p;
}

/*
 * Say why the command cannot be executed: execve's errno e, or the
 * interpreter of a script that cannot be run.
 */
static void
noexec_warn(const char *path, int e)
{
	const char *interp;

	if ((e == ENOENT || e == EACCES) &&
	    (interp = bad_interpreter(path)) != NULL)
		warnx("%s: %s: bad interpreter: %s", path, tool_echo(interp),
		    strerror(errno));
	else
		warnc(e, "%s", path);
}

/*
 * Find the command once, as execvp(3) would: a name with a slash as it
 * is, else the first executable file of that name in $PATH (an empty
 * entry is the current directory).  Returns 0 with w->path set, or -1
 * with errno ENOENT (found nowhere) or EACCES (found, not executable).
 */
static int
resolve_command(struct worker *w)
{
	const char *path = getenv("PATH");
	char *dirs, *dir, *rest, buf[PATH_MAX];
	int e = ENOENT;

	w->path = w->cmd[0];
	if (strchr(w->cmd[0], '/') != NULL)
		return executable(w->path);
	if (w->cmd[0][0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	if ((dirs = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin")) ==
	    NULL)
		err(EX_OSERR, NULL);
	for (rest = dirs; (dir = strsep(&rest, ":")) != NULL;) {
		if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", *dir ? dir :
		    ".", w->cmd[0]) >= sizeof(buf))
			continue;
		if (executable(buf) == 0) {
			if ((w->path = strdup(buf)) == NULL)
				err(EX_OSERR, NULL);
			free(dirs);
			return 0;
		}
		if (errno == EACCES)
			e = EACCES;	/* execvp(3): unless found later */
	}
	free(dirs);
	errno = e;
	return -1;
}

/* Close the descriptors of fds[0..n-1] that are open, keeping errno. */
static void
close_all(int *fds, size_t n)
{
	int saved = errno;
	size_t i;

	for (i = 0; i < n; i++)
		if (fds[i] != -1) {
			close(fds[i]);
			fds[i] = -1;
		}
	errno = saved;
}

/* --output: close and remove the files of a job that never ran. */
static void
job_output_discard(struct worker *w, struct job *j)
{
	static const char *const suffix[2] = { SQ_OUTPUT_OUT, SQ_OUTPUT_ERR };
	int k;

	for (k = 0; k < 2; k++)
		if (j->file[k] != -1) {
			close_all(&j->file[k], 1);
			sq_output_discard(w->outdir, j->c.n.id, w->token,
			    suffix[k]);
		}
}

/* --output: the job's two files, under their dot names. */
static int
job_output_create(struct worker *w, struct job *j)
{
	if ((j->file[0] = sq_output_create(w->outdir, j->c.n.id, w->token,
	    SQ_OUTPUT_OUT)) == -1 ||
	    (j->file[1] = sq_output_create(w->outdir, j->c.n.id, w->token,
	    SQ_OUTPUT_ERR)) == -1)
		return -1;
	return 0;
}

static void job_record_failure(struct worker *, struct job *, const char *);

static int settle(struct worker *, struct wqueue *, struct sq_jobbatch *,
    const char *, enum sq_verdict, const char *, char *, int *);

/* --batch: settle claim name of the batch b, as any claim of w. */
static int
batch_settle_one(struct sq_jobbatch *b, const char *name, enum sq_verdict v,
    const char *reason, char *newname, int *dead, void *arg)
{
	struct worker *w = arg;

	return settle(w, &w->queues[0], b, name, v, reason, newname, dead);
}

/* --batch: a failure record for claim c of a batch job of w (arg). */
static void
batch_failure(const struct sq_claim *c, const char *status, void *arg)
{
	struct worker *w = arg;
	struct sq_claim keep;
	size_t i;

	for (i = 0; i < w->maxjobs; i++) {
		struct job *j = &w->jobs[i];

		if (j->batch == NULL || c < j->batch->b.c ||
		    c >= j->batch->b.c + j->batch->b.n)
			continue;
		keep = j->c;
		j->c = *c;
		job_record_failure(w, j, status);
		j->c = keep;
		return;
	}
}

/*
 * --batch: the job j gets the nc claims c as arguments, and a result
 * pipe, whose write end (in res[1]) lies above RESULT_FD so that the
 * child can move it there.  Returns 0 or -1 with errno.
 */
static int
batch_prepare(struct worker *w, struct wqueue *wq, struct job *j,
    const struct sq_claim *c, size_t nc, int res[2])
{
	int fd;

	if ((j->batch = malloc(sizeof(*j->batch))) == NULL)
		return -1;
	if (wbatch_init(j->batch, &wq->q, wq->arg, c, nc, w->cmd,
	    w->quiet) == -1) {
		free(j->batch);
		j->batch = NULL;
		return -1;
	}
	j->batch->fail = batch_failure;
	j->batch->settle = batch_settle_one;
	j->batch->arg = w;
	if (pipe2(res, O_CLOEXEC) == -1)
		return -1;
	if (res[1] <= RESULT_FD) {
		if ((fd = fcntl(res[1], F_DUPFD_CLOEXEC, RESULT_FD + 1)) == -1)
			return -1;
		close(res[1]);
		res[1] = fd;
	}
	return 0;
}

/* --batch: forget the batch of a job that did not start. */
static void
batch_discard(struct job *j)
{
	if (j->batch == NULL)
		return;
	wbatch_free(j->batch);
	free(j->batch);
	j->batch = NULL;
}

/*
 * The job lock of job j, for its claim or the nc claims c of its batch
 * (sq_job_lock; a batch's one file gets a name per claim), moved above
 * LOCK_FD_MAX, so that job_exec can put it just after the descriptors it
 * sets up.  Without one (a full disk, a file system without hard links)
 * the job runs all the same, its claims then living as long as the
 * worker only; said once until a job gets one again.  Returns the
 * descriptor or -1.
 */
static int
job_lock(struct worker *w, struct job *j, const struct sq_claim *c,
    size_t nc)
{
	struct sq_queue *q = &j->wq->q;
	size_t i;
	int fd, up, e;

	if ((fd = sq_job_lock(q, w->token, c[0].n.id, w->beat_ms,
	    q->conf.lease_ms)) == -1)
		goto fail;
	for (i = 1; i < nc; i++)
		if (sq_job_lock_link(q, w->token, c[0].n.id, c[i].n.id) == -1)
			break;
	if (i == nc && fd <= LOCK_FD_MAX &&
	    (up = fcntl(fd, F_DUPFD_CLOEXEC, LOCK_FD_MAX + 1)) != -1) {
		close(fd);
		fd = up;
	}
	if (i < nc || fd <= LOCK_FD_MAX) {
		e = errno;
		while (i-- > 0)
			sq_job_unlock(q, w->token, c[i].n.id);
		close(fd);
		errno = e;
		goto fail;
	}
	w->lock_warned = 0;
	return fd;
fail:
	if (!w->lock_warned && errno == SQ_ENOTREG)
		warnx("%s: %s/%s%s.%s: not a regular file; qadmin check "
		    "--repair %s moves it to quarantine/; jobs run without a "
		    "job lock", j->wq->arg, SQ_DIR_RUN, SQ_JOB_PREFIX,
		    w->token, c[0].n.id, j->wq->arg);
	else if (!w->lock_warned)
		warn("%s: %s: job lock; jobs run without one", j->wq->arg,
		    c[0].n.id);
	w->lock_warned = 1;
	return -1;
}

/* Remove every name of the job lock of j, then close it (job_lock). */
static void
job_unlock(struct worker *w, struct job *j)
{
	size_t i;

	if (j->lockfd == -1)
		return;
	if (j->batch != NULL)
		for (i = 0; i < j->batch->b.n; i++)
			sq_job_unlock(&j->wq->q, w->token,
			    j->batch->b.c[i].n.id);
	else
		sq_job_unlock(&j->wq->q, w->token, j->c.n.id);
	close(j->lockfd);
	j->lockfd = -1;
}

/*
 * Start a job for the claim c, or with --batch for the nc claims c.
 * Returns JOB_STARTED, JOB_FAILED (errno: no job, the claims are the
 * caller's), JOB_NOOUTPUT (errno: the --output files cannot be made, the
 * worker's fault) or JOB_NOEXEC (the command could not be executed:
 * w->exec_errno says why).
 */
static int
job_start(struct worker *w, struct wqueue *wq, const struct sq_claim *c,
    size_t nc)
{
	struct job *j = NULL;
	struct env env;
	int64_t timeout;
	ssize_t n;
	size_t i;
	/* body, stderr pipe, stdout pipe, exec pipe, result pipe */
	int fds[9] = { -1, -1, -1, -1, -1, -1, -1, -1, -1 }, e;
	int rc = JOB_FAILED;
	enum { BODY, ERR_R, ERR_W, OUT_R, OUT_W, X_R, X_W, RES_R, RES_W };

	for (i = 0; i < w->maxjobs && j == NULL; i++)
		if (w->jobs[i].pid == 0)
			j = &w->jobs[i];
	memset(j, 0, sizeof(*j));
	j->wq = wq;
	j->c = *c;
	j->errfd = j->outfd = j->file[0] = j->file[1] = j->resfd = -1;
	j->lockfd = -1;
	if (w->batch > 0 && batch_prepare(w, wq, j, c, nc, fds + RES_R) == -1)
		goto fail;
	fds[BODY] = w->batch > 0 ? open("/dev/null", O_RDONLY | O_CLOEXEC) :
	    sq_open_regular(wq->q.curfd, c->name, O_RDONLY, 0, NULL);
	if (fds[BODY] == -1)
		goto fail;
	if (pipe2(fds + ERR_R, O_CLOEXEC) == -1 ||
	    (w->outdir != -1 && pipe2(fds + OUT_R, O_CLOEXEC) == -1) ||
	    pipe2(fds + X_R, O_CLOEXEC) == -1)
		goto fail;
	if (w->outdir != -1 && job_output_create(w, j) == -1) {
		rc = JOB_NOOUTPUT;
		goto fail;
	}
	j->lockfd = job_lock(w, j, c, nc);
	j->start_ms = sq_now_ms();
	j->started = sq_mono_ms();
	env_build(&env, j);
	j->pid = spawn(w, j->batch != NULL ? j->batch->argv : w->cmd, env.v,
	    fds[BODY], fds[OUT_W], fds[ERR_W], fds[X_W], fds[RES_W],
	    j->lockfd);
	e = errno;
	env_free(&env);
	errno = e;
	if (j->pid == -1) {
		j->pid = 0;
		goto fail;
	}
	close(fds[BODY]);
	close(fds[ERR_W]);
	close(fds[X_W]);
	close_all(fds + OUT_W, 1);
	close_all(fds + RES_W, 1);
	/* End of file: the command runs.  An errno: execve failed. */
	while ((n = read(fds[X_R], &e, sizeof(e))) == -1 && errno == EINTR)
		;
	close(fds[X_R]);
	if (n == sizeof(e)) {
		while (waitpid(j->pid, NULL, 0) == -1 && errno == EINTR)
			;
		j->pid = 0;
		close(fds[ERR_R]);
		close_all(fds + OUT_R, 1);
		close_all(fds + RES_R, 1);
		job_output_discard(w, j);
		job_unlock(w, j);
		batch_discard(j);
		w->exec_errno = e;
		return JOB_NOEXEC;
	}
	setpgid(j->pid, j->pid);	/* either side may win the race */
	j->errfd = fds[ERR_R];
	fcntl(j->errfd, F_SETFL, O_NONBLOCK);
	if ((j->outfd = fds[OUT_R]) != -1)
		fcntl(j->outfd, F_SETFL, O_NONBLOCK);
	if ((j->resfd = fds[RES_R]) != -1)
		fcntl(j->resfd, F_SETFL, O_NONBLOCK);
	timeout = w->timeout_ms >= 0 ? w->timeout_ms :
	    wq->q.conf.job_timeout_ms;
	j->term_ms = timeout > 0 ? sq_mono_ms() + timeout : 0;
	w->running++;
	for (i = 0; w->verbose && i < nc; i++)
		fprintf(stderr, "qworker: %s %s %u claimed\n", c[i].n.id,
		    wq->arg, c[i].n.attempts);
	return JOB_STARTED;
fail:
	close_all(fds, sizeof(fds) / sizeof(fds[0]));
	job_output_discard(w, j);
	job_unlock(w, j);
	batch_discard(j);
	return rc;
}

/*
 * What the lines of job j are logged under: the message ID, or for a
 * batch of more than one the first message's ID and "+N", N the number
 * of the batch's other messages.  Into buf (LOG_PREFIX_MAX bytes).
 */
static void
job_log_prefix(const struct job *j, char *buf)
{
	if (j->batch != NULL && j->batch->b.n > 1)
		snprintf(buf, LOG_PREFIX_MAX, "%s+%zu", j->c.n.id,
		    j->batch->b.n - 1);
	else
		strlcpy(buf, j->c.n.id, LOG_PREFIX_MAX);
}

/*
 * Write the job's pending stderr line to ours, in one write(2), as one
 * line whatever the job wrote: "ID: " (job_log_prefix), the line made
 * visible by tool_vis (escape, carriage return, NUL, any control or
 * non-ASCII byte and a backslash as \ooo, as qadmin cat --meta shows
 * it), and for a line longer than LINE_MAX_COPY bytes its start, then
 * "...[qworker: N more bytes cut]".  A job can thus neither drive the
 * terminal of whoever reads the log nor write a line that passes for
 * another one, and a line of one job is never torn by another's.
 */
static void
job_flush_line(struct job *j)
{
	char out[LOG_PREFIX_MAX + 2 + 4 * LINE_MAX_COPY + 64];
	size_t len;

	if (!j->linebegun)
		return;
	job_log_prefix(j, out);
	len = strlen(out);
	out[len++] = ':';
	out[len++] = ' ';
	len += tool_vis(out + len, j->line, j->linelen, TOOL_VIS_LINE);
	if (j->linecut > 0)
		len += (size_t)snprintf(out + len, sizeof(out) - len,
		    "...[qworker: %llu more bytes cut]",
		    (unsigned long long)j->linecut);
	out[len++] = '\n';
	/* If our stderr is gone, keep draining all the same. */
	(void)sq_write_all(STDERR_FILENO, out, len);
	j->linelen = 0;
	j->linecut = 0;
	j->linebegun = 0;
}

/*
 * Copy n bytes of the job's stderr to ours, line by line: a line is
 * logged when its newline comes (or the job's stderr ends), what goes
 * beyond LINE_MAX_COPY bytes of it counted, not kept.
 */
static void
job_copy_lines(struct job *j, const char *buf, size_t n)
{
	const char *nl;
	size_t k, take;

	while (n > 0) {
		nl = memchr(buf, '\n', n);
		k = nl != NULL ? (size_t)(nl - buf) : n;
		take = sizeof(j->line) - j->linelen;
		if (take > k)
			take = k;
		memcpy(j->line + j->linelen, buf, take);
		j->linelen += take;
		j->linecut += k - take;
		j->linebegun = 1;
		if (nl != NULL) {
			job_flush_line(j);
			k++;
		}
		buf += k;
		n -= k;
	}
}

/*
 * --output: keep n more bytes of stream k (0 stdout, 1 stderr) in its
 * file, up to the cap; what is beyond is counted, not kept.
 */
static void
job_save(struct worker *w, struct job *j, int k, const char *buf, size_t n)
{
	uint64_t room = w->outmax - j->kept[k];

	j->bytes[k] += n;
	if (j->file[k] == -1 || j->ferr[k] != 0)
		return;
	if (n > room)
		n = (size_t)room;
	if (n == 0)
		return;
	if (sq_write_all(j->file[k], buf, n) == -1) {
		j->ferr[k] = errno;
		return;
	}
	j->kept[k] += n;
	j->lastc[k] = buf[n - 1];
}

/*
 * Read a job's non-blocking pipe *fd into buf.  Returns the bytes read,
 * 0 when nothing more is there for now, or -1 when the pipe has ended
 * (end of file or an error: no more to read), *fd then closed and -1.
 */
static ssize_t
pipe_read(int *fd, char *buf, size_t size)
{
	ssize_t n;

	while ((n = read(*fd, buf, size)) == -1 && errno == EINTR)
		;
	if (n > 0)
		return n;
	if (n == -1 && errno == EAGAIN)
		return 0;
	close(*fd);
	*fd = -1;
	return -1;
}

/* --output: read what the job wrote to stdout into its file. */
static void
job_read_stdout(struct worker *w, struct job *j)
{
	char buf[8192];
	ssize_t n;

	while ((n = pipe_read(&j->outfd, buf, sizeof(buf))) > 0)
		job_save(w, j, 0, buf, (size_t)n);
}

/*
 * Copy what the job wrote to stderr to ours (or, with --output, to its
 * file), keeping its tail.
 */
static void
job_read_stderr(struct worker *w, struct job *j)
{
	char buf[8192];
	ssize_t n;
	size_t i;

	while ((n = pipe_read(&j->errfd, buf, sizeof(buf))) > 0) {
		if (w->outdir != -1)
			job_save(w, j, 1, buf, (size_t)n);
		else
			job_copy_lines(j, buf, (size_t)n);
		for (i = 0; i < (size_t)n; i++) {
			j->tail[j->tailpos] = buf[i];
			j->tailpos = (j->tailpos + 1) % TAIL_MAX;
		}
		j->taillen = j->taillen + (size_t)n > TAIL_MAX ? TAIL_MAX :
		    j->taillen + (size_t)n;
	}
	if (n == -1)
		job_flush_line(j);
}

/*
 * --output: the job has ended.  Mark what went beyond the cap, put both
 * files in place, then ID.status, saying how it ended (status "exit 3",
 * outcome as logged).
 */
static void
job_output_finish(struct worker *w, struct job *j, const char *status,
    const char *outcome)
{
	static const char *const suffix[2] = { SQ_OUTPUT_OUT, SQ_OUTPUT_ERR };
	char text[SQ_ID_MAX + PATH_MAX + 512], mark[128];
	int64_t end = sq_now_ms();
	int k, len;

	for (k = 0; k < 2; k++) {
		if (j->file[k] == -1)
			continue;
		if (j->bytes[k] > j->kept[k] && j->ferr[k] == 0) {
			len = snprintf(mark, sizeof(mark), "%s[qworker: %llu "
			    "more bytes dropped: over --output-max %llu]\n",
			    j->kept[k] > 0 && j->lastc[k] != '\n' ? "\n" : "",
			    (unsigned long long)(j->bytes[k] - j->kept[k]),
			    (unsigned long long)w->outmax);
			if (sq_write_all(j->file[k], mark, (size_t)len) == -1)
				j->ferr[k] = errno;
		}
		if (close(j->file[k]) == -1 && j->ferr[k] == 0)
			j->ferr[k] = errno;
		j->file[k] = -1;
		if (j->ferr[k] != 0)
			warnc(j->ferr[k], "%s/%s%s", w->outpath, j->c.n.id,
			    suffix[k]);
		/* What could be written is kept all the same. */
		if (sq_output_commit(w->outdir, j->c.n.id, w->token,
		    suffix[k]) == -1)
			warn("%s/%s%s", w->outpath, j->c.n.id, suffix[k]);
	}
	len = snprintf(text, sizeof(text), "id=%s\nqueue=%s\nattempt=%u\n"
	    "status=%s\noutcome=%s\nstart=%lld.%03lld\nend=%lld.%03lld\n"
	    "stdout=%llu\nstderr=%llu\n", j->c.n.id, j->wq->arg,
	    j->c.n.attempts, status, outcome,
	    (long long)(j->start_ms / 1000), (long long)(j->start_ms % 1000),
	    (long long)(end / 1000), (long long)(end % 1000),
	    (unsigned long long)j->bytes[0], (unsigned long long)j->bytes[1]);
	if (len >= (int)sizeof(text) || sq_output_status(w->outdir,
	    j->c.n.id, w->token, text, (size_t)len) == -1)
		warn("%s/%s%s", w->outpath, j->c.n.id, SQ_OUTPUT_STATUS);
}

/* The failure record: status, then the last lines of stderr. */
static void
job_record_failure(struct worker *w, struct job *j, const char *status)
{
	/* Room for two paths of PATH_MAX and two IDs, the tail, the rest. */
	char text[TAIL_MAX + 2 * (PATH_MAX + SQ_ID_MAX + 32) + 256];
	char shown[32], *eq;
	size_t len, start, i;

	/* "exit=3" of the log line reads "status=exit 3" here. */
	strlcpy(shown, status, sizeof(shown));
	if ((eq = strchr(shown, '=')) != NULL)
		*eq = ' ';
	len = (size_t)snprintf(text, sizeof(text),
	    "attempt=%u\nstatus=%s\ntime=%lld\n", j->c.n.attempts, shown,
	    (long long)(sq_now_ms() / 1000));
	/* --output: where the whole of it is. */
	if (w->outdir != -1)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "stdout_file=%s/%s%s\nstderr_file=%s/%s%s\n", w->outpath,
		    j->c.n.id, SQ_OUTPUT_OUT, w->outpath, j->c.n.id,
		    SQ_OUTPUT_ERR);
	len += strlcpy(text + len, "stderr:\n", sizeof(text) - len);
	start = (j->tailpos + TAIL_MAX - j->taillen) % TAIL_MAX;
	for (i = 0; i < j->taillen; i++)
		text[len++] = j->tail[(start + i) % TAIL_MAX];
	if (sq_failure_write(&j->wq->q, j->c.n.id, text, len) == -1)
		warn("%s: %s: failure record", j->wq->arg, j->c.n.id);
}

/*
 * After tries settles of the claim name failed (errno e): give it back
 * to new/ or keep it for the heartbeat, and say which.
 */
static void
give_back(struct worker *w, struct wqueue *wq, const char *name, int e,
    int tries)
{
	struct sq_name n;

	if (e == ENOENT || sq_name_parse(&n, name) == -1)
		return;		/* lost: another consumer has it */
	if (sq_unclaim(&wq->q, name) == 0) {
		warnx("%s: %s: settle failed %d time%s (%s); given back to "
		    "new/", wq->arg, n.id, tries, tries == 1 ? "" : "s",
		    strerror(e));
		return;
	}
	warnx("%s: %s: settle failed %d time%s (%s), giving back too (%s); "
	    "kept claimed until given back", wq->arg, n.id, tries,
	    tries == 1 ? "" : "s", strerror(e), strerror(errno));
	if (wq->nstuck < STUCK_MAX)
		strlcpy(wq->stuck[wq->nstuck++], name, SQ_NAME_MAX + 1);
	w->failures = 1;
}

/* A settle by verdict, as sq_settle_again makes it. */
struct verdict {
	struct wqueue	*wq;
	struct sq_jobbatch *b;		/* the claim's batch, or NULL */
	const char	*name;
	enum sq_verdict	 v;
	const char	*reason;
	char		*newname;
	int		*dead;
};

static int
verdict_step(struct sq_queue *q, void *arg)
{
	struct verdict *vs = arg;

	if (vs->b != NULL)
		return sq_jobbatch_apply(vs->b, q, vs->name, vs->v, vs->reason,
		    vs->newname, vs->dead);
	return sq_verdict_apply(q, vs->name, vs->v, vs->reason, vs->newname,
	    vs->dead);
}

/* One line per back-off of a settle the file system failed (SPEC 2). */
static void
verdict_log(int tries, int e, int64_t wait_ms, void *arg)
{
	struct verdict *vs = arg;

	warnx("%s: %.*s: settle failed %d time%s (%s); trying again in "
	    "%lld ms", vs->wq->arg, (int)strcspn(vs->name, ","), vs->name,
	    tries, tries == 1 ? "" : "s", strerror(e), (long long)wait_ms);
}

/*
 * Settle the claim name of wq by verdict v (sq_verdict_apply, or
 * sq_jobbatch_apply for a claim of the batch b; reason: the dead-letter
 * reason, NULL for the default).  A failure of the file
 * system rather than of the claim (sq_error_stale: GlusterFS gave EBADFD
 * for an open directory) is tried again SQ_SETTLE_TRIES times in all
 * with a back-off and one line per wait, on directories opened anew
 * (sq_settle_again, as qack and qrecv -A do).  A claim that still cannot be settled is given back
 * to new/ at once (sq_unclaim), or, failing that, kept to be given back
 * at each heartbeat: it never waits for its lease with the token of a
 * worker that may have exited.  Returns 0, or -1 with errno (ENOENT: the
 * claim was lost).
 */
static int
settle(struct worker *w, struct wqueue *wq, struct sq_jobbatch *b,
    const char *name, enum sq_verdict v, const char *reason, char *newname,
    int *dead)
{
	struct verdict vs = { wq, b, name, v, reason, newname, dead };
	int tries, e;

	if (sq_settle_again(&wq->q, verdict_step, &vs, verdict_log, &tries) ==
	    0) {
		tool_dead_letter_warn(&wq->q);
		return 0;
	}
	e = errno;
	if (tries > 1 || sq_error_stale(e))
		give_back(w, wq, name, e, tries);
	errno = e;
	return -1;
}

/* At a heartbeat: give back the claims no settle could end. */
static void
give_back_stuck(struct wqueue *wq)
{
	size_t i = 0;

	while (i < wq->nstuck) {
		if (sq_unclaim(&wq->q, wq->stuck[i]) == -1 && errno != ENOENT) {
			if (sq_error_stale(errno))
				(void)sq_queue_reopen(&wq->q);
			i++;
			continue;
		}
		memmove(wq->stuck[i], wq->stuck[i + 1],
		    (wq->nstuck - i - 1) * sizeof(wq->stuck[0]));
		wq->nstuck--;
	}
}

/*
 * --batch: settle what the job left unsettled by the outcome table, one
 * line per message.
 */
static void
batch_settle(struct worker *w, struct job *j)
{
	if (j->errfd != -1)
		job_read_stderr(w, j);
	if (j->resfd != -1)
		wbatch_read(j->batch, &j->resfd);
	/* A grandchild still holds a pipe: stop listening. */
	close_all(&j->errfd, 1);
	close_all(&j->resfd, 1);
	job_flush_line(j);
	wbatch_end(j->batch, j->status, j->timed_out, j->release);
	if (j->batch->failed)
		w->failures = 1;
	job_unlock(w, j);
	batch_discard(j);
	j->pid = 0;
	w->running--;
}

/* Settle a finished job by the outcome table; log one line. */
static void
job_settle(struct worker *w, struct job *j)
{
	struct sq_queue *q = &j->wq->q;
	char newname[SQ_NAME_MAX + 1], status[32], outcome[48], *eq;
	int rc, dead = 0, st = j->status;
	int64_t took = sq_mono_ms() - j->started;

	if (j->batch != NULL) {
		batch_settle(w, j);
		return;
	}
	if (j->errfd != -1)
		job_read_stderr(w, j);
	if (j->outfd != -1)
		job_read_stdout(w, j);
	/* A grandchild still holds a pipe: stop listening. */
	close_all(&j->errfd, 1);
	close_all(&j->outfd, 1);
	job_flush_line(j);
	if (WIFSIGNALED(st))
		snprintf(status, sizeof(status), "signal=%d", WTERMSIG(st));
	else
		snprintf(status, sizeof(status), "exit=%d", WEXITSTATUS(st));
	/*
	 * A claim recovered while we were stopped gets no failure record
	 * and no settle: looked for before a record is written, as a batch
	 * does; an ack or a release of a lost claim fails by itself, with
	 * ENOENT, without the look.
	 */
	strlcpy(outcome, "lost", sizeof(outcome));
	if (!j->release && !(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    !j->timed_out) && sq_receipt_check(q, j->c.name) == -1 &&
	    errno == ENOENT) {
		rc = -1;
	} else if (j->release) {
		rc = settle(w, j->wq, NULL, j->c.name, SQ_VERDICT_RELEASE,
		    NULL, newname, &dead);
		strlcpy(outcome, "released", sizeof(outcome));
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !j->timed_out) {
		rc = settle(w, j->wq, NULL, j->c.name, SQ_VERDICT_ACK, NULL,
		    newname, &dead);
		strlcpy(outcome, "ack", sizeof(outcome));
	} else if (WIFEXITED(st) && IS_PERMFAIL(WEXITSTATUS(st)) &&
	    !j->timed_out) {
		job_record_failure(w, j, status);
		rc = settle(w, j->wq, NULL, j->c.name, SQ_VERDICT_REJECT,
		    NULL, newname, &dead);
		strlcpy(outcome, "dead:rejected", sizeof(outcome));
	} else {
		if (j->timed_out)
			strlcpy(status, "timeout", sizeof(status));
		job_record_failure(w, j, status);
		rc = settle(w, j->wq, NULL, j->c.name, SQ_VERDICT_RETRY,
		    j->timed_out ? SQ_REASON_TIMEOUT : NULL, newname, &dead);
		snprintf(outcome, sizeof(outcome), "%s:%s", dead ? "dead" :
		    "retry", dead ? (j->timed_out ? SQ_REASON_TIMEOUT :
		    SQ_REASON_ATTEMPTS) : status);
	}
	if (strcmp(outcome, "ack") != 0)
		w->failures = 1;
	if (rc == -1) {
		warn("%s: %s: %s", j->wq->arg, j->c.n.id, errno == ENOENT ?
		    "claim lost (settled by someone else)" : "settle");
		w->failures = 1;
		strlcpy(outcome, "lost", sizeof(outcome));
	}
	if (w->outdir != -1) {
		if ((eq = strchr(status, '=')) != NULL)
			*eq = ' ';	/* "exit 3", as in the failure record */
		job_output_finish(w, j, status, outcome);
	}
	if (rc == 0 && !w->quiet)
		fprintf(stderr, "qworker: %s %s %u %s %lld.%03llds\n",
		    j->c.n.id, j->wq->arg, j->c.n.attempts, outcome,
		    (long long)(took / 1000), (long long)(took % 1000));
	job_unlock(w, j);
	j->pid = 0;
	w->running--;
}

/* Signal a job's whole process group. */
static void
job_signal(struct job *j, int sig)
{
	if (kill(-j->pid, sig) == -1)
		kill(j->pid, sig);
}

static void
reap(struct worker *w)
{
	pid_t pid;
	size_t i;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		for (i = 0; i < w->maxjobs; i++)
			if (w->jobs[i].pid == pid && !w->jobs[i].reaped) {
				w->jobs[i].reaped = 1;
				w->jobs[i].status = st;
			}
}

/* Timeouts and the stop grace: TERM, then KILL. */
static void
enforce_deadlines(struct worker *w, int64_t now)
{
	struct job *j;
	size_t i;

	for (i = 0; i < w->maxjobs; i++) {
		j = &w->jobs[i];
		if (j->pid == 0 || j->reaped)
			continue;
		if (w->stopping && (w->stopping == 2 || now >= w->grace_end_ms) &&
		    !j->release) {
			j->release = 1;
			j->kill_ms = now;
		}
		if (j->term_ms > 0 && now >= j->term_ms && !j->timed_out) {
			j->timed_out = 1;
			job_signal(j, SIGTERM);
			j->kill_ms = now + KILL_GRACE_MS;
		}
		if (j->kill_ms > 0 && now >= j->kill_ms) {
			job_signal(j, SIGKILL);
			j->kill_ms = INT64_MAX;		/* once */
		}
	}
}

/* ------------------------------------------------------------- loop */

/*
 * Whether a failure (errno e) is the worker's own: out of descriptors,
 * memory or processes.  Any other failure to open a body is the
 * message's.
 */
static int
worker_fault(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM || e == EAGAIN ||
	    e == ENOBUFS || e == EINTR;
}

/* Stop claiming; exit with code (if not 0) once the jobs have ended. */
static void
stop(struct worker *w, int code)
{
	if (w->stopping == 0) {
		w->stopping = 1;
		w->grace_end_ms = sq_mono_ms() + w->grace_ms;
	}
	if (code != 0)
		w->exit_code = code;
	w->failures = 1;
}

/*
 * The worker cannot start jobs or claim (descriptors, memory or processes
 * ran out): no claims for a bounded exponential back-off, one log line
 * each, while running jobs are still reaped and settled.  --drain gives
 * up (exit 75) after DRAIN_TRIES with no job running.
 */
static void
pause_claims(struct worker *w, const char *what, int e)
{
	int64_t d = sq_backoff_next(&w->pause);

	w->pause_until = sq_mono_ms() + d;
	if (w->drain && w->running == 0 && w->pause.tries >= DRAIN_TRIES) {
		warnx("%s: %s; giving up", what, strerror(e));
		stop(w, EX_TEMPFAIL);
		return;
	}
	warnx("%s: %s; no claims for %lld.%03llds", what, strerror(e),
	    (long long)(d / 1000), (long long)(d % 1000));
}

/*
 * Claims from wq failed by the queue's fault (a state directory removed
 * or refused, a file system gone): skip it, serving the others, and try
 * it again after a back-off, saying so once per wait.
 */
static void
queue_broken(struct wqueue *wq, const char *what, int e)
{
	int64_t d = sq_backoff_next(&wq->broken);

	wq->broken_until = sq_mono_ms() + d;
	warnx("%s: %s; not served, trying again in %lld.%03llds", what,
	    strerror(e), (long long)(d / 1000), (long long)(d % 1000));
}

/*
 * Whether the state directories of wq are still where their names lead:
 * one removed, renamed or replaced while served would be listed and
 * claimed from unseen.  Opened again when they are all there again
 * (with a fresh watch), else the queue is skipped, said once per wait.
 * Returns 1 when wq can be served.
 */
static int
queue_layout(struct worker *w, struct wqueue *wq)
{
	char what[PATH_MAX + 64];
	struct sq_watch *watch;
	const char *moved;
	int fd;

	if ((moved = sq_queue_moved(&wq->q)) == NULL)
		return 1;
	/* The queue itself ("."): named as the user named it. */
	if (strcmp(moved, ".") == 0)
		strlcpy(what, wq->arg, sizeof(what));
	else
		snprintf(what, sizeof(what), "%s/%s", wq->arg, moved);
	if (sq_queue_reopen(&wq->q) == -1 ||
	    (watch = sq_watch_open(&wq->q)) == NULL) {
		queue_broken(wq, what, errno == SQ_EBROKEN ? ENOENT : errno);
		return 0;
	}
	sq_watch_close(wq->watch);
	wq->watch = watch;
	warnx("%s: moved or replaced while served; opened again", what);
	/* Another queue directory: the worker's lock goes into it. */
	if (strcmp(moved, ".") == 0) {
		if ((fd = sq_worker_relock(&wq->q, w->token,
		    wq->q.conf.lease_ms)) == -1)
			warn("%s: worker lock cannot be made", wq->arg);
		else
			wq->lockfd = fd;
	}
	return 1;
}

/*
 * A body that cannot be opened is the message's failure: it counts as an
 * attempt (retry with back-off, at max_attempts a dead letter with
 * r=unreadable), with a failure record saying why.
 */
static void
start_refused(struct worker *w, struct wqueue *wq, const struct sq_claim *c,
    int e)
{
	char text[512], newname[SQ_NAME_MAX + 1];
	int dead = 0, len;

	w->failures = 1;
	if (e == ENOENT) {
		warnx("%s: %s: claim lost (settled by someone else)", wq->arg,
		    c->n.id);
		return;
	}
	len = snprintf(text, sizeof(text), "attempt=%u\nstatus=%s\n"
	    "time=%lld\nstderr:\nqworker: the body cannot be opened: %s\n",
	    c->n.attempts, SQ_REASON_UNREADABLE,
	    (long long)(sq_now_ms() / 1000), strerror(e));
	if (sq_failure_write(&wq->q, c->n.id, text, (size_t)len) == -1)
		warn("%s: %s: failure record", wq->arg, c->n.id);
	if (sq_retry(&wq->q, c->name, -1, SQ_REASON_UNREADABLE, newname,
	    &dead) == -1) {
		e = errno;
		warn("%s: %s: settle", wq->arg, c->n.id);
		give_back(w, wq, c->name, e, 1);
		return;
	}
	if (!w->quiet)
		fprintf(stderr, "qworker: %s %s %u %s:%s 0.000s\n", c->n.id,
		    wq->arg, c->n.attempts, dead ? "dead" : "retry",
		    SQ_REASON_UNREADABLE);
}

/*
 * Give back a claim no job ran for, uncounted; one that cannot be is
 * given back counted, or kept for the heartbeat (give_back).  Returns 0
 * or -1 (said).
 */
static int
release(struct worker *w, struct wqueue *wq, const struct sq_claim *c)
{
	int e;

	if (sq_release(&wq->q, c->name) == 0)
		return 0;
	e = errno;
	warn("%s: %s: release", wq->arg, c->n.id);
	give_back(w, wq, c->name, e, 1);
	return -1;
}

/* Give back a claim no job ran for, uncounted, with an outcome line. */
static void
job_release(struct worker *w, struct wqueue *wq, const struct sq_claim *c)
{
	if (release(w, wq, c) == 0 && !w->quiet)
		fprintf(stderr, "qworker: %s %s %u released 0.000s\n",
		    c->n.id, wq->arg, c->n.attempts);
}

/*
 * --output: remove what is older than --output-age, about once an hour
 * (sq_output_gc keeps the time in the directory, for all workers).
 */
static void
output_gc(struct worker *w, int64_t now)
{
	size_t removed;

	if (sq_output_gc(w->outdir, now, w->outage_ms, 0, &removed) == -1)
		warn("%s: removing old output", w->outpath);
	if (w->verbose && removed > 0)
		fprintf(stderr, "qworker: %s: removed %zu old files\n",
		    w->outpath, removed);
	w->outgc_at = sq_mono_ms() + SQ_OUTPUT_GC_EVERY_MS;
}

/*
 * The rate limit of wq (--rate, else its queue.conf): cut *want to the
 * tokens taken from its bucket.  With none, its next look is due when
 * one comes, and the round is not idle (--drain waits).  Returns *want.
 */
static size_t
rate_take(struct worker *w, struct wqueue *wq, size_t *want)
{
	const struct sq_rate *r = w->rate_set ? &w->rate : &wq->q.conf.rate;
	char what[PATH_MAX + 32];
	int64_t next;
	size_t got;
	int e;

	if (r->count == 0 || *want == 0)
		return *want;
	if (sq_rate_take(&wq->q, r, *want, &got, &next) == -1) {
		e = errno;
		snprintf(what, sizeof(what), "%s/%s", wq->arg, SQ_RATE_FILE);
		pause_claims(w, what, e);
		return *want = 0;
	}
	if (got == 0) {
		w->rate_wait = 1;
		if (next < wq->next_ms)
			wq->next_ms = next;
	}
	return *want = got;
}

/* Put back the tokens of wq's rate that a claim did not use. */
static void
rate_give(struct worker *w, struct wqueue *wq, size_t unused)
{
	const struct sq_rate *r = w->rate_set ? &w->rate : &wq->q.conf.rate;

	if (r->count > 0 && unused > 0 && sq_rate_give(&wq->q, r, unused) ==
	    -1 && !w->quiet)
		warn("%s/%s", wq->arg, SQ_RATE_FILE);
}

static size_t batch_fill(struct worker *);
static int batch_start(struct worker *);

/* --batch: give back the claims of the batch being filled. */
static void
batch_release(struct worker *w)
{
	size_t i;

	for (i = 0; i < w->npend; i++)
		job_release(w, &w->queues[0], &w->pend[i]);
	w->npend = 0;
}

/*
 * --batch: claim into the batch being filled (w->pend) and start it as
 * one job once it is full, at -n, or once nothing more is ready and
 * --batch-wait is over since its first claim (at once with --drain).
 * Until then the queue's next look is due when the wait ends.  Returns
 * the claims made.
 */
static size_t
batch_round(struct worker *w)
{
	size_t total = batch_fill(w);

	/*
	 * Started: claim the next batch while this one runs, and start it
	 * too while job slots are free (-j), not at the next look.
	 */
	while (batch_start(w))
		total += batch_fill(w);
	return total;
}

/* --batch: claim into the batch being filled.  Returns the claims made. */
static size_t
batch_fill(struct worker *w)
{
	struct wqueue *wq = &w->queues[0];
	char what[PATH_MAX + 32];
	size_t want, got, total = 0;
	int e;

	while (!w->stopping && w->npend < w->batch) {
		want = w->batch - w->npend;
		if (w->limit > 0 && (long long)want > w->limit - w->taken)
			want = (size_t)(w->limit - w->taken);
		if (want == 0 || rate_take(w, wq, &want) == 0)
			break;
		if (sq_claim(&wq->q, 0, w->token, w->pend + w->npend, want,
		    &got, &wq->next_ms) == -1) {
			e = errno;
			rate_give(w, wq, want);
			tool_queue_what(what, sizeof(what), &wq->q, wq->arg,
			    "claim", e);
			pause_claims(w, what, e);
			break;
		}
		tool_dead_letter_warn(&wq->q);
		rate_give(w, wq, want - got);
		if (got > 0 && w->npend == 0)
			w->pend_until = sq_now_ms() + w->batch_wait_ms;
		w->npend += got;
		w->taken += got;
		total += got;
		if (got < want)
			break;
	}
	return total;
}

/*
 * --batch: start the batch being filled, if a job slot is free and it is
 * full, -n is reached, or nothing more is ready and --batch-wait is over
 * (at once with --drain).  Returns 1 when it started.
 */
static int
batch_start(struct worker *w)
{
	struct wqueue *wq = &w->queues[0];
	char what[PATH_MAX + 32];
	int e;

	if (w->npend == 0 || w->stopping || w->running >= w->maxjobs)
		return 0;
	if (w->npend < w->batch && !w->drain && (w->limit == 0 ||
	    w->taken < w->limit) && sq_now_ms() < w->pend_until) {
		if (w->pend_until < wq->next_ms)
			wq->next_ms = w->pend_until;
		return 0;
	}
	switch (job_start(w, wq, w->pend, w->npend)) {
	case JOB_STARTED:
		sq_backoff_reset(&w->pause);
		w->npend = 0;
		return 1;
	case JOB_NOEXEC:
		noexec_warn(w->path, w->exec_errno);
		stop(w, EXIT_NOEXEC);
		batch_release(w);
		break;
	default:
		/* No body is opened: a start that fails is the worker's. */
		e = errno;
		snprintf(what, sizeof(what), "%s: batch of %zu: start", wq->arg,
		    w->npend);
		batch_release(w);
		pause_claims(w, what, e);
	}
	return 0;
}

/* Claim for free job slots, queues in priority order.  Returns claims. */
static size_t
claim_round(struct worker *w)
{
	struct sq_claim c[16];
	char what[PATH_MAX + SQ_ID_MAX + 16];
	size_t qi, i, got, total = 0, want;
	int e, rc;

	w->rate_wait = 0;
	if (w->batch > 0)
		return batch_round(w);
	for (qi = 0; qi < w->nqueues; qi++) {
		struct wqueue *wq = &w->queues[qi];

		if (wq->broken_until > 0)
			continue;	/* tried again when its wait is over */
		while (!w->stopping) {
			want = w->maxjobs - w->running;
			if (w->limit > 0 && (long long)want > w->limit - w->taken)
				want = (size_t)(w->limit - w->taken);
			if (want > sizeof(c) / sizeof(c[0]))
				want = sizeof(c) / sizeof(c[0]);
			if (want == 0)
				return total;
			if (rate_take(w, wq, &want) == 0)
				break;
			if (sq_claim(&wq->q, 0, w->token, c, want, &got,
			    &wq->next_ms) == -1) {
				e = errno;
				rate_give(w, wq, want);
				tool_queue_what(what, sizeof(what), &wq->q,
				    wq->arg, "claim", e);
				if (!worker_fault(e)) {
					queue_broken(wq, what, e);
					break;		/* the next queue */
				}
				pause_claims(w, what, e);
				return total;
			}
			tool_dead_letter_warn(&wq->q);
			rate_give(w, wq, want - got);
			if (wq->broken.tries > 0) {
				warnx("%s: claims work again", wq->arg);
				sq_backoff_reset(&wq->broken);
			}
			for (i = 0; i < got; i++) {
				if (w->stopping) {
					/* The command cannot run: give back. */
					job_release(w, wq, &c[i]);
					continue;
				}
				switch (rc = job_start(w, wq, &c[i], 1)) {
				case JOB_STARTED:
					sq_backoff_reset(&w->pause);
					w->taken++;
					total++;
					continue;
				case JOB_NOEXEC:
					noexec_warn(w->path, w->exec_errno);
					stop(w, EXIT_NOEXEC);
					job_release(w, wq, &c[i]);
					continue;
				}
				e = errno;
				/* Output files that cannot be made: ours. */
				if (rc != JOB_NOOUTPUT && !worker_fault(e)) {
					start_refused(w, wq, &c[i], e);
					continue;
				}
				/* Ours: give back this claim and the rest. */
				snprintf(what, sizeof(what), "%s: %s: start",
				    wq->arg, c[i].n.id);
				for (; i < got; i++)
					(void)release(w, wq, &c[i]);
				pause_claims(w, what, e);
				return total;
			}
			if (got < want)
				break;
		}
	}
	return total;
}

/* Whether a claim could start a job now. */
static int
can_claim(const struct worker *w)
{
	/* --batch: the next batch is claimed while the last ones run. */
	return !w->stopping && (w->batch > 0 ? w->npend < w->batch ||
	    w->running < w->maxjobs : w->running < w->maxjobs) &&
	    (w->limit == 0 || w->taken < w->limit) && w->pause_until == 0;
}

/*
 * Milliseconds until the next heartbeat is due (0: now), by the monotonic
 * clock, so that a step of the wall clock neither skips nor hastens it.
 */
static int64_t
beat_left(const struct worker *w)
{
	int64_t left = w->beat_ms, l;
	size_t i;

	for (i = 0; i < w->registered && i < w->nqueues; i++)
		if ((l = w->beat_ms - sq_worker_since(&w->queues[i].q)) < left)
			left = l;
	/* A beat that failed is tried again, but not in a busy loop. */
	l = w->beat_tried + (w->beat_ms < 1000 ? w->beat_ms : 1000) -
	    sq_mono_ms();
	if (left < l)
		left = l;
	return left > 0 ? left : 0;
}

/*
 * An epoch time of the library (a due time, a lease end) as a time of
 * sq_mono_ms, given now of both clocks.
 */
static int64_t
mono_at(int64_t epoch_ms, int64_t now, int64_t wall)
{
	if (epoch_ms == INT64_MAX)
		return INT64_MAX;
	return now + (epoch_ms > wall ? epoch_ms - wall : 0);
}

/*
 * When the loop must wake up next, in ms from now (sq_mono_ms; the
 * library's epoch times are taken from wall, the wall clock now).
 */
static int
next_timeout(struct worker *w, int64_t now, int64_t wall)
{
	int64_t at = now + beat_left(w), t;
	size_t i;

	for (i = 0; i < w->npending; i++)
		if (w->pending[i].at < at)
			at = w->pending[i].at;
	for (i = 0; i < w->nqueues && can_claim(w); i++) {
		if (w->queues[i].broken_until > 0) {
			if (w->queues[i].broken_until < at)
				at = w->queues[i].broken_until;
			continue;
		}
		if ((t = mono_at(w->queues[i].next_ms, now, wall)) < at)
			at = t;
		if (w->queues[i].poll_at > 0 && w->queues[i].poll_at < at)
			at = w->queues[i].poll_at;
		if ((t = mono_at(sq_watch_due_ms(w->queues[i].watch), now,
		    wall)) < at)
			at = t;
	}
	for (i = 0; i < w->maxjobs; i++) {
		struct job *j = &w->jobs[i];

		if (j->pid == 0 || j->reaped)
			continue;
		if (j->term_ms > 0 && !j->timed_out && j->term_ms < at)
			at = j->term_ms;
		if (j->kill_ms > 0 && j->kill_ms < at)
			at = j->kill_ms;
	}
	if (w->stopping == 1 && w->grace_end_ms < at)
		at = w->grace_end_ms;
	if (w->pause_until > 0 && w->pause_until < at)
		at = w->pause_until;
	if (at <= now)
		return 0;
	return at - now > 60000 ? 60000 : (int)(at - now);
}

/* The queue directory was removed (qadmin destroy) under us. */
static int
queue_gone(struct sq_queue *q)
{
	struct stat st;

	return fstat(q->fd, &st) == 0 && st.st_nlink == 0;
}

/*
 * The heartbeat interval: a third of the shortest lease (SPEC 2), and
 * often enough to notice a removed queue.
 */
static int64_t
heartbeat_ms(const struct worker *w)
{
	int64_t lease = INT64_MAX;
	size_t i;

	for (i = 0; i < w->nqueues; i++)
		if (w->queues[i].q.conf.lease_ms < lease)
			lease = w->queues[i].q.conf.lease_ms;
	return lease / 3 < HEARTBEAT_MAX_MS ? lease / 3 : HEARTBEAT_MAX_MS;
}

/*
 * A full disk left no room for the lock file's record: the worker runs,
 * judged by others from the queue's lease as they read it (spoolq(5)).
 */
static void
warn_unrecorded(const struct wqueue *wq)
{
	warnx("%s: no room in run/ to record this worker's heartbeat and "
	    "lease (a full disk): others judge its claims by the queue's "
	    "lease; do not shorten it while the disk is full", wq->arg);
}

/*
 * After (re)loading the settings: record the heartbeat interval and each
 * queue's lease in the lock files, before the new interval is used, so
 * that others judge this worker by what it now does (sq_worker_record).
 */
static void
record_liveness(struct worker *w)
{
	char what[PATH_MAX + 64];
	size_t i;
	int e, rc;

	w->beat_ms = heartbeat_ms(w);
	for (i = 0; i < w->nqueues; i++)
		if ((rc = sq_worker_record(w->queues[i].lockfd, w->beat_ms,
		    w->queues[i].q.conf.lease_ms)) == -1) {
			e = errno;
			warnx("%s: %s", tool_queue_what(what, sizeof(what),
			    &w->queues[i].q, w->queues[i].arg, "worker lock",
			    e), strerror(e));
		} else {
			if (rc == 1)
				warn_unrecorded(&w->queues[i]);
			sq_worker_bind(&w->queues[i].q, w->queues[i].lockfd,
			    w->beat_ms);
		}
}

/*
 * The lock file of wq was removed or its descriptor dropped by the file
 * system: make it again, or others take this worker's claims.
 */
static void
relock(struct worker *w, struct wqueue *wq)
{
	int fd;

	if ((fd = sq_worker_relock(&wq->q, w->token, wq->q.conf.lease_ms)) ==
	    -1) {
		warn("%s: worker lock lost, and cannot be made again",
		    wq->arg);
		return;
	}
	wq->lockfd = fd;
	warnx("%s: worker lock lost (removed, or dropped by the file "
	    "system); made again", wq->arg);
}

/*
 * The heartbeat, and a look for removed queues.  A worker that was away
 * (stopped, suspended) for longer than a lease says so: others may have
 * recovered its claims, whose settles then fail as lost.
 */
static void
heartbeat(struct worker *w, int64_t now)
{
	struct sq_queue *q;
	int64_t away;
	size_t i;
	int e;

	w->beat_tried = sq_mono_ms();
	for (i = 0; i < w->nqueues; i++) {
		q = &w->queues[i].q;
		if ((away = sq_worker_since(q)) > q->conf.lease_ms &&
		    away > 3 * w->beat_ms && w->running > 0)
			warnx("%s: this worker was stopped for %lld.%03llds, "
			    "longer than the lease: its claims may have been "
			    "recovered", w->queues[i].arg,
			    (long long)(away / 1000), (long long)(away % 1000));
		e = sq_worker_beat(q) == -1 ? errno : 0;
		if (queue_gone(q)) {
			if (!w->stopping) {
				warnx("%s: the queue was removed; stopping",
				    w->queues[i].arg);
				w->stopping = 1;
				w->grace_end_ms = now + w->grace_ms;
				w->failures = 1;
			}
			continue;
		}
		if (sq_worker_lost(q, e))
			relock(w, &w->queues[i]);
		else if (e != 0)
			warnc(e, "%s: heartbeat", w->queues[i].arg);
		give_back_stuck(&w->queues[i]);
		if (w->queues[i].broken_until == 0)
			(void)queue_layout(w, &w->queues[i]);
	}
	/* The job locks carry the worker's heartbeat (sq_job_lock). */
	for (i = 0; i < w->maxjobs; i++)
		if (w->jobs[i].pid != 0 && w->jobs[i].lockfd != -1)
			(void)sq_worker_heartbeat(w->jobs[i].lockfd);
}

static void
handle_signals(struct worker *w, int *want_claim)
{
	struct signalfd_siginfo si;
	char msg[PATH_MAX + 256], shown[4 * sizeof(msg) + 1];
	size_t i;

	while (read(w->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(w);
			break;
		case SIGHUP:
			for (i = 0; i < w->nqueues; i++) {
				struct sq_conf conf = w->queues[i].q.conf;
				char path[PATH_MAX + 16];

				snprintf(path, sizeof(path), "%s/%s",
				    w->queues[i].q.path, SQ_CONF_FILE);
				sq_conf_defaults(&conf);
				if (sq_conf_load(&conf, w->queues[i].q.fd, path,
				    msg, sizeof(msg)) == -1) {
					/* It echoes the file: made visible. */
					tool_vis(shown, msg, strlen(msg),
					    TOOL_VIS_LINE);
					warnx("%s (keeping the old settings)",
					    shown);
				} else
					w->queues[i].q.conf = conf;
			}
			record_liveness(w);
			*want_claim = 1;
			break;
		case SIGINT:
		case SIGTERM:
			if (w->stopping == 0) {
				w->stopping = 1;
				w->grace_end_ms = sq_mono_ms() + w->grace_ms;
			} else
				w->stopping = 2;
			break;
		}
	}
}

/*
 * Where inotify does not see every arrival (sq_watch_poll_ms), look
 * again a poll_interval after each look, whether an event came or not.
 */
static void
arm_polls(struct worker *w, int64_t now)
{
	size_t i;
	int ms;

	for (i = 0; i < w->nqueues; i++)
		if ((ms = sq_watch_poll_ms(w->queues[i].watch)) > 0)
			w->queues[i].poll_at = now + ms;
}

static size_t	retry_pending(struct worker *, int64_t);

static void
run(struct worker *w)
{
	struct pollfd *pfds;
	size_t npfds = 1 + w->allqueues + 3 * w->maxjobs, n, i;
	int64_t now, wall;
	int want_claim = 1, idle;

	if ((pfds = reallocarray(NULL, npfds, sizeof(*pfds))) == NULL)
		err(EX_OSERR, NULL);
	for (;;) {
		idle = 0;
		/*
		 * A heartbeat that is due goes first: a worker resumed after
		 * SIGSTOP must not make fresh claims that read as hung.
		 */
		now = sq_mono_ms();
		if (beat_left(w) == 0) {
			heartbeat(w, now);
			want_claim = 1;		/* a periodic look, too */
		}
		if (w->outdir != -1 && now >= w->outgc_at)
			output_gc(w, sq_now_ms());
		if (w->npending > 0 && !w->stopping &&
		    retry_pending(w, now) > 0)
			want_claim = 1;
		if (want_claim && can_claim(w)) {
			idle = claim_round(w) == 0 && w->pause_until == 0 &&
			    !w->rate_wait;
			arm_polls(w, sq_mono_ms());
		}
		want_claim = 0;
		if (w->running == 0 && (w->stopping ||
		    (w->limit > 0 && w->taken >= w->limit) ||
		    (w->drain && idle)))
			break;
		now = sq_mono_ms();
		n = 0;
		pfds[n++] = (struct pollfd){ .fd = w->sigfd, .events = POLLIN };
		for (i = 0; i < w->nqueues; i++)
			pfds[n++] = (struct pollfd){ .events = POLLIN,
			    .fd = can_claim(w) ?
			    sq_watch_fd(w->queues[i].watch) : -1 };
		for (i = 0; i < w->maxjobs; i++)
			pfds[n++] = (struct pollfd){ .events = POLLIN,
			    .fd = w->jobs[i].pid ? w->jobs[i].errfd : -1 };
		for (i = 0; i < w->maxjobs; i++)
			pfds[n++] = (struct pollfd){ .events = POLLIN,
			    .fd = w->jobs[i].pid ? w->jobs[i].outfd : -1 };
		for (i = 0; i < w->maxjobs; i++)
			pfds[n++] = (struct pollfd){ .events = POLLIN,
			    .fd = w->jobs[i].pid ? w->jobs[i].resfd : -1 };
		if (poll(pfds, n, next_timeout(w, now, sq_now_ms())) == -1 &&
		    errno != EINTR)
			err(EX_OSERR, "poll");
		if (pfds[0].revents)
			handle_signals(w, &want_claim);
		for (i = 0; i < w->nqueues; i++)
			if (pfds[1 + i].revents) {
				sq_watch_drain(w->queues[i].watch);
				want_claim = 1;
			}
		for (i = 0; i < w->maxjobs; i++) {
			if (w->jobs[i].pid == 0)
				continue;
			if (pfds[1 + w->nqueues + i].revents &&
			    w->jobs[i].errfd != -1)
				job_read_stderr(w, &w->jobs[i]);
			if (pfds[1 + w->nqueues + w->maxjobs + i].revents &&
			    w->jobs[i].outfd != -1)
				job_read_stdout(w, &w->jobs[i]);
			if (pfds[1 + w->nqueues + 2 * w->maxjobs + i].revents &&
			    w->jobs[i].resfd != -1)
				wbatch_read(w->jobs[i].batch, &w->jobs[i].resfd);
		}
		now = sq_mono_ms();
		wall = sq_now_ms();
		if (w->pause_until > 0 && now >= w->pause_until) {
			w->pause_until = 0;
			want_claim = 1;
		}
		enforce_deadlines(w, now);
		/*
		 * A beat that is due goes before the settles too: a worker
		 * resumed after a stop says so while the jobs that ended
		 * meanwhile still count as its claims.
		 */
		if (beat_left(w) == 0) {
			heartbeat(w, now);
			want_claim = 1;		/* a periodic look, too */
		}
		for (i = 0; i < w->maxjobs; i++)
			if (w->jobs[i].pid && w->jobs[i].reaped) {
				job_settle(w, &w->jobs[i]);
				want_claim = 1;
			}
		for (i = 0; i < w->nqueues; i++) {
			struct wqueue *wq = &w->queues[i];

			if (wq->broken_until > 0 && now >= wq->broken_until) {
				wq->broken_until = 0;
				if (queue_layout(w, wq))
					want_claim = 1;
			}
			/* A due time seen arriving in retry/ came: look. */
			if (wall >= sq_watch_due_ms(wq->watch)) {
				sq_watch_due_clear(wq->watch);
				want_claim = 1;
			}
			if (wall >= wq->next_ms ||
			    (wq->poll_at > 0 && now >= wq->poll_at))
				want_claim = 1;
		}
	}
	free(pfds);
}

/* ------------------------------------------------------------- setup */

/*
 * --output DIR: open (or make) the directory before anything else is
 * made, so that a refusal leaves nothing behind; collect old output.
 */
static void
output_open(struct worker *w, const char *dir)
{
	if ((w->outdir = sq_output_open(dir, 1)) == -1) {
		if (errno == ELOOP)
			errx(EX_CANTCREAT, "%s: a symbolic link; give the "
			    "directory itself", dir);
		err(errno == ENOENT || errno == ENOTDIR ? EX_NOINPUT :
		    EX_CANTCREAT, "%s", dir);
	}
	/* Absolute: failure records name the files for any reader. */
	if ((w->outpath = realpath(dir, NULL)) == NULL)
		err(EX_OSERR, "%s", dir);
	output_gc(w, sq_now_ms());
}

/* For unlock_all: the worker whose lock files exist. */
static struct worker *locked;

/*
 * At exit, by any path: remove the lock files made so far, so that a
 * worker that failed to start, or died of an error, leaves none behind.
 */
static void
unlock_all(void)
{
	struct worker *w = locked;

	if (w == NULL)
		return;
	while (w->registered > 0) {
		struct wqueue *wq = &w->queues[--w->registered];

		sq_worker_unregister(&wq->q, w->token, wq->lockfd);
	}
}

/*
 * Open the queue arg (at path) into wq with its slot (--slots) and its
 * watch, the watch before the first claim.  Returns 0, or an exit code
 * with why (size bytes) saying what failed, as tool_open says it;
 * EXIT_NOSLOT when every slot is busy.  Nothing is left open then.
 */
static int
queue_open(struct worker *w, struct wqueue *wq, const char *arg,
    const char *path, char *why, size_t size)
{
	char msg[PATH_MAX + 256];
	int rc, e;

	memset(wq, 0, sizeof(*wq));
	wq->arg = arg;
	wq->slotfd = -1;
	wq->lockfd = -1;
	if (sq_queue_open(&wq->q, path, msg, sizeof(msg)) == -1)
		return tool_open_why(why, size, arg, path, msg, errno);
	if (w->slots > 0 && (rc = sq_slot_take(&wq->q, w->slots,
	    &wq->slotfd)) != 0) {
		e = errno;
		if (rc == 1)
			snprintf(why, size, "%s: all %u slots busy", arg,
			    w->slots);
		else
			snprintf(why, size, "%s: slot: %s", arg, strerror(e));
		sq_queue_close(&wq->q);
		return rc == 1 ? EXIT_NOSLOT : EX_IOERR;
	}
	if ((wq->watch = sq_watch_open(&wq->q)) == NULL) {
		snprintf(why, size, "%s: watch: %s", arg, strerror(errno));
		if (wq->slotfd != -1)
			close(wq->slotfd);
		sq_queue_close(&wq->q);
		return EX_OSERR;
	}
	wq->next_ms = INT64_MAX;
	sq_backoff_init(&wq->broken, BROKEN_MIN_MS, BROKEN_MAX_MS);
	return 0;
}

/*
 * Make the worker lock file of wq, the next queue served; its record
 * holds the current heartbeat interval.  Returns 0, or -1 with errno.
 */
static int
queue_register(struct worker *w, struct wqueue *wq)
{
	if ((wq->lockfd = sq_worker_register(&wq->q, w->token, w->beat_ms,
	    wq->q.conf.lease_ms)) == -1)
		return -1;
	if (sq_worker_recorded(wq->lockfd) == 0)
		warn_unrecorded(wq);
	sq_worker_bind(&wq->q, wq->lockfd, w->beat_ms);
	w->registered++;
	return 0;
}

/* Say why p is not served, and when it is tried again. */
static void
pending_wait(struct pending *p, const char *why)
{
	int64_t d = sq_backoff_next(&p->b);

	p->at = sq_mono_ms() + d;
	warnx("%s; not served, trying again in %lld.%03llds", why,
	    (long long)(d / 1000), (long long)(d % 1000));
}

/*
 * Try again the broken queues whose wait is over: a queue that opens now
 * is served from now on (its lock file made, the heartbeat interval
 * recorded again, as it may be shorter now).  Returns how many joined.
 */
static size_t
retry_pending(struct worker *w, int64_t now)
{
	char why[PATH_MAX * 2 + 256];
	struct wqueue *wq;
	size_t i = 0, joined = 0;

	while (i < w->npending) {
		struct pending *p = &w->pending[i];

		if (now < p->at) {
			i++;
			continue;
		}
		wq = &w->queues[w->nqueues];
		if (queue_open(w, wq, p->arg, p->path, why, sizeof(why)) != 0) {
			pending_wait(p, why);
			i++;
			continue;
		}
		if (queue_register(w, wq) == -1) {
			snprintf(why, sizeof(why), "%s: worker lock: %s",
			    p->arg, strerror(errno));
			sq_watch_close(wq->watch);
			if (wq->slotfd != -1)
				close(wq->slotfd);
			sq_queue_close(&wq->q);
			pending_wait(p, why);
			i++;
			continue;
		}
		w->nqueues++;
		warnx("%s: can be read now; served", p->arg);
		*p = w->pending[--w->npending];
		joined++;
	}
	if (joined > 0)
		record_liveness(w);
	return joined;
}

/*
 * Everything that can fail at start is checked before the first lock
 * file is made, and the lock files go again at any exit (unlock_all):
 * a worker that did not start leaves nothing in run/ behind.
 */
static void
setup(struct worker *w, const char *root, char **queues, size_t nqueues,
    unsigned slots)
{
	char why[sizeof(w->pending->why)];
	sigset_t mask;
	size_t i;
	int rc, code = 0;

	if (sq_worker_token(w->token, sizeof(w->token)) == -1)
		err(EX_SOFTWARE, "token");
	w->queues = calloc(nqueues, sizeof(*w->queues));
	w->pending = calloc(nqueues, sizeof(*w->pending));
	w->jobs = calloc(w->maxjobs, sizeof(*w->jobs));
	if (w->queues == NULL || w->pending == NULL || w->jobs == NULL)
		err(EX_OSERR, NULL);
	w->allqueues = nqueues;
	w->slots = slots;
	for (i = 0; i < nqueues; i++) {
		struct pending *p = &w->pending[w->npending];

		p->arg = queues[i];
		tool_queue_path(p->path, root, queues[i], 0);
		if ((rc = queue_open(w, &w->queues[w->nqueues], p->arg,
		    p->path, why, sizeof(why))) == 0) {
			w->nqueues++;
			continue;
		}
		if (rc == EXIT_NOSLOT) {
			if (!w->quiet)
				warnx("%s", why);
			exit(EXIT_NOSLOT);
		}
		/* Broken: served once mended, if others can be now. */
		if (code == 0)
			code = rc;
		if (nqueues == 1)
			errx(code, "%s", why);
		sq_backoff_init(&p->b, BROKEN_MIN_MS, BROKEN_MAX_MS);
		strlcpy(p->why, why, sizeof(p->why));
		w->npending++;
	}
	for (i = 0; i < w->npending; i++)
		if (w->nqueues > 0)
			pending_wait(&w->pending[i], w->pending[i].why);
		else
			warnx("%s", w->pending[i].why);
	if (w->nqueues == 0)
		errx(code, "none of the queues can be served");
	/* A vanished reader of our log must not kill us mid-settlement. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &w->oldmask) == -1 ||
	    (w->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		err(EX_OSERR, "signalfd");
	locked = w;
	if (atexit(unlock_all) != 0)
		err(EX_OSERR, "atexit");
	/* Our promise of liveness is in the lock file from the start. */
	w->beat_ms = heartbeat_ms(w);
	for (i = 0; i < w->nqueues; i++)
		if (queue_register(w, &w->queues[i]) == -1)
			tool_queue_err(tool_exit_code(errno), &w->queues[i].q,
			    w->queues[i].arg, "worker lock");
}

/*
 * Descriptors open now below limit (standard ones, --output, inherited):
 * one listing of /proc/self/fd, else a probe of each number.
 */
static int
fds_open(rlim_t limit)
{
	struct dirent *e;
	const char *errstr;
	DIR *d;
	long long fd;
	int n = 0, top;

	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((e = readdir(d)) != NULL) {
			fd = strtonum(e->d_name, 0, INT_MAX, &errstr);
			if (errstr == NULL && fd != dirfd(d) &&
			    (limit == RLIM_INFINITY || (rlim_t)fd < limit))
				n++;
		}
		closedir(d);
		return n;
	}
	top = limit > FDS_PROBE_MAX ? FDS_PROBE_MAX : (int)limit;
	for (fd = 0; fd < top; fd++)
		if (fcntl((int)fd, F_GETFD) != -1)
			n++;
	return n;
}

/*
 * What the queues hold open and -j jobs need must fit under the
 * descriptor limit, or the start runs out half-way, or every job start
 * runs out and backs off for ever.  Counted before anything is opened,
 * from what is open now (standard descriptors, --output, inherited
 * ones): raise the soft limit towards the hard one when it is lower (as
 * daemons do), else refuse to start, exit 71 with one line, whatever
 * the limit.
 */
static void
fd_budget(struct worker *w, size_t nqueues, unsigned slots)
{
	struct rlimit rl;
	rlim_t need;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(EX_OSERR, "getrlimit");
	need = (rlim_t)fds_open(rl.rlim_cur) + (rlim_t)nqueues *
	    (QUEUE_FDS + (slots > 0)) + SIGNAL_FDS + (rlim_t)w->maxjobs *
	    (JOB_FDS + (w->outdir != -1 ? JOB_FILE_FDS : 0)) + START_FDS +
	    (w->batch > 0 ? BATCH_START_FDS : 0) + SPARE_FDS;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need &&
	    (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur)) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		errx(EX_OSERR, "descriptor limit %llu is too low for -j %zu "
		    "(need %llu)", (unsigned long long)rl.rlim_cur, w->maxjobs,
		    (unsigned long long)need);
}

static void
teardown(struct worker *w)
{
	size_t i;

	unlock_all();
	locked = NULL;		/* w lives on main's stack */
	for (i = 0; i < w->nqueues; i++) {
		struct wqueue *wq = &w->queues[i];

		sq_watch_close(wq->watch);
		if (wq->slotfd != -1)
			close(wq->slotfd);
		sq_queue_close(&wq->q);
	}
	close(w->sigfd);
	free(w->queues);
	free(w->pending);
	free(w->jobs);
}

int
main(int argc, char *argv[])
{
	enum { OPT_BATCH = 256, OPT_BATCH_WAIT, OPT_DRAIN, OPT_GRACE,
	    OPT_OUTPUT, OPT_OUTPUT_AGE, OPT_OUTPUT_MAX, OPT_RATE, OPT_SLOTS,
	    OPT_VERSION };
	static const struct option longopts[] = {
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "batch-wait", required_argument, NULL, OPT_BATCH_WAIT },
		{ "drain", no_argument, NULL, OPT_DRAIN },
		{ "grace", required_argument, NULL, OPT_GRACE },
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "output-age", required_argument, NULL, OPT_OUTPUT_AGE },
		{ "output-max", required_argument, NULL, OPT_OUTPUT_MAX },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "slots", required_argument, NULL, OPT_SLOTS },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct worker w;
	const char *root = NULL, *output = NULL, *outopt = NULL;
	const char *batchopt = NULL;
	unsigned slots = 0;
	int ch, i, dashes = -1;

	tool_init();
	tool_args(argv, getprogname());
	tool_synopsis(synopsis, NULL);
	memset(&w, 0, sizeof(w));
	w.maxjobs = 1;
	w.timeout_ms = -1;
	w.grace_ms = 30000;
	w.pid = getpid();
	w.outdir = -1;
	w.outmax = SQ_OUTPUT_MAX;
	w.outage_ms = SQ_OUTPUT_AGE_MS;
	sq_backoff_init(&w.pause, PAUSE_MIN_MS, PAUSE_MAX_MS);
	/* Options stop at "--": what follows is the command. */
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			dashes = i;
			break;
		}
	if (dashes == -1) {
		for (i = 1; i < argc; i++)
			if (strcmp(argv[i], "-h") == 0 ||
			    strcmp(argv[i], "--help") == 0)
				tool_help(synopsis, options, "qworker(1)");
			else if (strcmp(argv[i], "--version") == 0)
				tool_version();
		usage("missing -- before the command");
	}
	argv[dashes] = NULL;
	while ((ch = getopt_long(dashes, argv, "d:hj:n:qt:v", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'd':
			root = optarg;
			break;
		case 'h':
			tool_help(synopsis, options, "qworker(1)");
		case 'j':
			w.maxjobs = (size_t)tool_number("-j", optarg, 1,
			    JOBS_MAX);
			break;
		case 'n':
			w.limit = tool_number("-n", optarg, 1, 1000000000);
			break;
		case 'q':
			w.quiet = 1;
			break;
		case 't':
			w.timeout_ms = tool_duration("-t", optarg);
			break;
		case 'v':
			w.verbose = 1;
			break;
		case OPT_BATCH:
			w.batch = (size_t)tool_number("--batch", optarg, 1,
			    BATCH_MAX);
			break;
		case OPT_BATCH_WAIT:
			w.batch_wait_ms = tool_duration("--batch-wait", optarg);
			batchopt = "--batch-wait";
			break;
		case OPT_DRAIN:
			w.drain = 1;
			break;
		case OPT_GRACE:
			w.grace_ms = tool_duration("--grace", optarg);
			break;
		case OPT_OUTPUT:
			output = optarg;
			break;
		case OPT_OUTPUT_AGE:
			w.outage_ms = tool_duration("--output-age", optarg);
			outopt = "--output-age";
			break;
		case OPT_OUTPUT_MAX:
			w.outmax = tool_size("--output-max", optarg);
			outopt = "--output-max";
			break;
		case OPT_RATE:
			if (sq_rate_parse(optarg, &w.rate) == -1)
				tool_bad("--rate: %s: not a rate (like 50/s, "
				    "100/m, 10/h, 5/100ms; 0 = none)", optarg);
			w.rate_set = 1;
			break;
		case OPT_SLOTS:
			slots = (unsigned)tool_number("--slots", optarg, 1,
			    10000);
			break;
		case OPT_VERSION:
			tool_version();
			break;
		default:
			usage(NULL);
		}
	}
	if (optind >= dashes)
		usage("missing queue name before --");
	if (dashes + 1 >= argc)
		usage("missing command after --");
	if (outopt != NULL && output == NULL)
		tool_usage(synopsis, "%s: only with --output", outopt);
	if (batchopt != NULL && w.batch == 0)
		tool_usage(synopsis, "%s: only with --batch", batchopt);
	if (w.batch > 0 && output != NULL)
		usage("--output: not with --batch (a batch job's output is "
		    "not one message's)");
	if (w.batch > 0 && dashes - optind > 1)
		usage("--batch: one queue only");
	w.cmd = argv + dashes + 1;
	for (i = optind; i < dashes; i++)
		for (int k = optind; k < i; k++)
			if (strcmp(argv[i], argv[k]) == 0)
				tool_bad("%s: queue named twice",
				    tool_echo(argv[i]));
	if (resolve_command(&w) == -1)
		err(EXIT_NOEXEC, "%s", w.cmd[0]);
	if (bad_interpreter(w.path) != NULL) {
		noexec_warn(w.path, errno);
		exit(EXIT_NOEXEC);
	}
	if (output != NULL)
		output_open(&w, output);
	fd_budget(&w, (size_t)(dashes - optind), slots);
	setup(&w, root, argv + optind, (size_t)(dashes - optind), slots);
	for (i = 0; w.verbose && i < (int)w.nqueues; i++)
		if (sq_queue_held(&w.queues[i].q))
			warnx("%s: the queue is held: nothing is claimed until "
			    "qadmin release", w.queues[i].arg);
	if (w.batch > 0 && (w.pend = calloc(w.batch, sizeof(*w.pend))) ==
	    NULL)
		err(EX_OSERR, NULL);
	run(&w);
	batch_release(&w);
	free(w.pend);
	teardown(&w);
	if (w.path != w.cmd[0])
		free(w.path);
	if (w.outdir != -1) {
		close(w.outdir);
		free(w.outpath);
	}
	if (w.exit_code != 0)
		return w.exit_code;
	return w.failures ? EXIT_NONE : 0;
}
