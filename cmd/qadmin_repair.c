/*
 * qadmin_repair.c - recover, gc, check: upkeep of a whole queue.
 *
 * The work is done by the library (sq_queue_maintain, sq_queue_gc,
 * sq_queue_check in lib/repair.c), which reports each finding through a
 * callback; this file words the findings and maps results to exit codes.
 * Names from the disk are printed through strvis(3): a name may hold any
 * byte but '/' and NUL.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#define LIBBSD_OPENBSD_VIS	/* OpenBSD's strnvis argument order */
#include <vis.h>

#include "qadmin.h"
#include "repair.h"

#define VIS_FLAGS	(VIS_CSTYLE | VIS_TAB | VIS_NL)
#define VIS_SIZE	(4 * (SQ_NAME_MAX + 64) + 1)

/* s made printable into buf (VIS_SIZE bytes), for one line of output. */
static const char *
shown(char *buf, const char *s)
{
	if (strlen(s) >= (VIS_SIZE - 1) / 4)
		return "(too long)";
	strvis(buf, s, VIS_FLAGS);
	return buf;
}

/* Parse a command with no options but its longopts; returns the queue. */
static const char *
one_queue(int argc, char **argv, const struct option *longopts,
    void (*opt)(int, void *), void *arg)
{
	int ch;

	/*
	 * optind 0, not 1: glibc then starts afresh, and permutes options
	 * after the queue, instead of keeping main's "+" (stop at the
	 * first operand).
	 */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == '?' || opt == NULL)
			admin_usage(NULL);
		opt(ch, arg);
	}
	if (argc - optind < 1)
		admin_usage("missing queue name");
	if (argc - optind > 1)
		admin_usage("%s: one queue only", tool_echo(argv[optind + 1]));
	return argv[optind];
}

/* ------------------------------------------------------------- recover */

static void
say_move(const struct sq_move *mv, void *arg)
{
	static const char *const action[SQ_NSTATES] = {
		[SQ_STATE_READY] = "recover", [SQ_STATE_DEAD] = "dead-letter",
	};
	char buf[VIS_SIZE];

	admin_say(arg, mv->from == SQ_STATE_RETRY ? "promote" :
	    action[mv->to], shown(buf, mv->id), sq_state_name(mv->from),
	    sq_state_name(mv->to));
}

/* recover -v: the claims that a job's lock keeps after its worker. */
struct job_kept {
	struct sq_queue	*q;
	int64_t		 now;
	size_t		 n;
};

static int
count_job_kept(const struct sq_msg *m, void *arg)
{
	struct job_kept *k = arg;

	if (m->parsed && S_ISREG(m->st.st_mode) && m->n.token[0] != '\0' &&
	    sq_worker_probe(k->q, m->n.token, k->now) != SQ_WORKER_ALIVE &&
	    sq_job_probe(k->q, m->n.token, m->n.id, k->now) ==
	    SQ_WORKER_ALIVE)
		k->n++;
	return 0;
}

/*
 * recover queue: what claims do lazily, now - the claims of dead and
 * hung workers and those whose lease ended back to ready (or dead after
 * max_attempts), due retries to ready.  Prints the counts; -n prints
 * each move it would make instead.  -v also says how many claims of
 * workers that are gone a job lock still keeps (a process the job left
 * runs on): recovery leaves those, and only they explain a claim that
 * stays.
 */
int
cmd_recover(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = { { NULL, 0, NULL, 0 } };
	struct sq_queue q;
	struct sq_maint m;
	struct job_kept k;
	const char *arg;
	int64_t now;

	arg = one_queue(argc, argv, longopts, NULL, NULL);
	admin_open(a, &q, arg);
	now = sq_now_ms();
	if (a->dry_run) {
		if (sq_queue_maintain_plan(&q, now, &m, say_move, a) == -1)
			tool_queue_err(tool_exit_code(errno), &q, arg, NULL);
		if (!a->quiet)
			printf("would recover %zu, dead-letter %zu, "
			    "promote %zu\n", m.recovered, m.dead, m.promoted);
		sq_queue_close(&q);
		return 0;
	}
	/* Dead workers' lock files go first: their claims then read dead. */
	if (sq_workers_check(&q, now) == -1 ||
	    sq_queue_maintain(&q, now, &m) == -1 ||
	    sq_group_maintain(&q, now, SQ_GROUP_FORCE, NULL, NULL) == -1)
		tool_queue_err(tool_exit_code(errno), &q, arg, NULL);
	tool_dead_letter_warn(&q);
	/* What came back to new/ is offered now, not after the snapshot. */
	if (m.recovered + m.promoted > 0 && sq_queue_refresh(&q) == -1)
		warn("%s: claim index", arg);
	if (!a->quiet)
		printf("recovered %zu, dead-lettered %zu, promoted %zu\n",
		    m.recovered, m.dead, m.promoted);
	if (a->verbose) {
		memset(&k, 0, sizeof(k));
		k.q = &q;
		k.now = now;
		if (sq_msg_each(&q, SQ_STATE_INFLIGHT, count_job_kept, &k) ==
		    -1)
			warn("%s: in flight", arg);
		else
			warnx("%s: %zu claim%s kept by a job lock", arg, k.n,
			    k.n == 1 ? "" : "s");
	}
	sq_queue_close(&q);
	return 0;
}

/* ------------------------------------------------------------- gc */

struct gc_out {
	struct admin	*a;
	const char	*queue;		/* or the spool root */
	const char	*prefix;	/* of a path beside the queue: "../" */
};

static void
say_gc(const struct sq_gc_item *it, void *arg)
{
	struct gc_out *o = arg;
	char buf[VIS_SIZE];

	if (it->error != 0 && it->kept)
		warnc(it->error, "%s: %s%s (%s): left in place", o->queue,
		    o->prefix, shown(buf, it->path), it->reason);
	else if (it->error != 0)
		warnc(it->error, "%s: %s%s", o->queue, o->prefix,
		    shown(buf, it->path));
	else if (!o->a->quiet && it->dead)
		printf("%sgc %s%s dead-lettered (%s)\n", o->a->dry_run ?
		    "would " : "", o->prefix, shown(buf, it->path),
		    it->reason);
	else if (!o->a->quiet)
		printf("%sgc %s%s removed (%s)\n", o->a->dry_run ? "would " :
		    "", o->prefix, shown(buf, it->path), it->reason);
}

static void
gc_opt(int ch, void *arg)
{
	(void)ch;			/* only --tmp-age */
	*(int64_t *)arg = tool_duration("--tmp-age", optarg);
}

/*
 * The leftovers of stopped destroys in dir (sq_spool_gc), said as paths
 * with o's prefix.  Returns the exit status.
 */
static int
gc_spool(struct gc_out *o, const char *dir)
{
	int e;

	if (sq_spool_gc(dir, sq_now_ms(), o->a->dry_run, say_gc, o) == 0)
		return 0;
	/* Leftovers that could not go were named by say_gc. */
	e = errno;
	warnx("%s: %s", dir, strerror(e));
	return tool_exit_code(e);
}

/*
 * gc [--tmp-age duration] [queue]: remove tmp/ files older than 36 h (or
 * duration), sidecars of no message, dead workers' lock files and
 * leftovers of interrupted worker starts; then, beside the queue in its
 * spool root, or in the spool root alone without a queue, what a destroy
 * that was stopped left.  One line per file.
 */
int
cmd_gc(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tmp-age", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	char path[PATH_MAX], *slash;
	struct sq_queue q;
	struct gc_out o;
	int64_t age = SQ_GC_TMP_AGE_MS;
	int ch, rc = 0, src;

	optind = 0;		/* as one_queue */
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == '?')
			admin_usage(NULL);
		gc_opt(ch, &age);
	}
	if (argc - optind > 1)
		admin_usage("%s: one queue only", tool_echo(argv[optind + 1]));
	o.a = a;
	if (argc - optind == 0) {
		tool_root(path, a->root, 0);
		o.queue = path;
		o.prefix = "";
		return gc_spool(&o, path);
	}
	o.queue = argv[optind];
	o.prefix = "";
	admin_open(a, &q, o.queue);
	if (sq_queue_gc(&q, sq_now_ms(), age, a->dry_run, say_gc, &o) == -1) {
		/* Files that could not go were named by say_gc. */
		char what[PATH_MAX + 64];
		int e = errno;

		rc = tool_exit_code(e);
		warnx("%s: %s", tool_queue_what(what, sizeof(what), &q,
		    o.queue, NULL, e), strerror(e));
	}
	tool_dead_letter_warn(&q);
	sq_queue_close(&q);
	/* Its spool root: the directory that holds it. */
	tool_queue_path(path, a->root, o.queue, 0);
	while ((slash = strrchr(path, '/')) != NULL && slash != path &&
	    slash[1] == '\0')
		*slash = '\0';
	if ((slash = strrchr(path, '/')) == NULL)
		strlcpy(path, ".", sizeof(path));
	else if (slash == path)
		path[1] = '\0';
	else
		*slash = '\0';
	o.prefix = "../";
	if ((src = gc_spool(&o, path)) != 0 && rc == 0)
		rc = src;
	return rc;
}

/* ------------------------------------------------------------- check */

struct check_out {
	struct admin	*a;
	const char	*queue;
	int		 repair;
};

/*
 * Each problem on stderr as "qadmin: check: QUEUE: PROBLEM: PATH", a
 * settings file that does not load as every config error is named,
 * "qadmin: check: QUEUE: QUEUE/queue.conf:LINE: KEY: reason"; with
 * --repair, its repair as "ACTION ID FROM -> TO" on stdout ("would ..."
 * under -n, nothing under -q), or why it failed on stderr.
 */
static void
say_problem(const struct sq_problem *p, void *arg)
{
	struct check_out *o = arg;
	char path[VIS_SIZE], id[VIS_SIZE], to[VIS_SIZE];
	size_t n = strlen(p->path);

	shown(path, p->path);
	if (strncmp(p->what, p->path, n) == 0 && p->what[n] == ':')
		warnx("%s: %s/%s", o->queue, o->queue, p->what);
	else
		warnx("%s: %s: %s", o->queue, p->what, path);
	if (!o->repair || p->action == NULL)
		return;
	if (p->error != 0)
		warnc(p->error, "%s: %s: cannot %s", o->queue, path,
		    p->action);
	else if (p->repaired || o->a->dry_run)
		admin_say(o->a, p->action, p->id ? shown(id, p->id) : "-",
		    path, shown(to, p->to));
}

static void
check_opt(int ch, void *arg)
{
	(void)ch;			/* only --repair */
	*(int *)arg = 1;
}

/*
 * check [--repair] queue: report every inconsistency; with --repair mend
 * it by rename, mkdir, chmod or chown, or move it into quarantine/.
 * Exit 0 when clean or all mended, 1 when problems remain.
 */
int
cmd_check(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	char path[PATH_MAX];
	struct sq_check_result res;
	struct check_out o;
	int flags;

	memset(&o, 0, sizeof(o));
	o.a = a;
	o.queue = one_queue(argc, argv, longopts, check_opt, &o.repair);
	tool_queue_path(path, a->root, o.queue, 0);
	flags = (o.repair ? SQ_CHECK_REPAIR : 0) |
	    (a->dry_run ? SQ_CHECK_DRY_RUN : 0);
	/* Opened by the library itself: a broken queue is what it checks. */
	if (sq_queue_check(path, flags, say_problem, &o, &res) == -1) {
		if (errno == ENOENT)
			errx(EX_NOINPUT, "%s: no such queue", o.queue);
		if (errno == ENOTDIR)
			errx(EX_NOINPUT, "%s: not a queue (%s)", o.queue,
			    path);
		if (errno == EACCES || errno == EPERM) {
			/* Name the directory that refused us, if one did. */
			struct sq_queue bq;
			int e = errno;

			tool_open(&bq, a->root, o.queue, 0);
			errno = e;
			tool_queue_err(tool_exit_code(e), &bq, o.queue, NULL);
		}
		err(tool_exit_code(errno), "%s", o.queue);
	}
	if (a->verbose)
		warnx("%s: %zu problems, %zu repaired", o.queue, res.found,
		    res.repaired);
	return res.found > res.repaired ? 1 : 0;
}
