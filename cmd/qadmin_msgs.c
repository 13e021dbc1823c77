/*
 * qadmin_msgs.c - commands that change messages: purge, redrive, move,
 * retry-now, hold, release, delete, and replay of an archive.
 *
 * They share one walk: for each state concerned, stream its entries
 * (sq_msg_each), keep those that pass the filters (IDs, reason, age,
 * limit), and apply one library call per message, printing one line
 * per change.  IDs named on the command line are sorted once and
 * looked up with bsearch, so a long list costs one pass, not one per ID.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "qadmin.h"

enum op { OP_MOVE, OP_DELETE };

struct walk {
	struct admin	*a;
	struct sq_queue	*q, *to;	/* to: target queue of a move */
	const char	*action;	/* printed verb */
	const char	*to_label;	/* "QUEUE/" of a move to another queue */
	const char	*qarg;		/* the queue as the user named it */
	enum op		 op;
	enum sq_state	 target;
	int		 reset;		/* redrive: attempts back to 0 */
	char		**ids;		/* sorted, or NULL */
	size_t		 nids;
	int		 byid;		/* IDs were given: only those */
	int		 follow;	/* move: follow groups through new/ */
	char		*found;		/* per ID: met */
	const char	*reason;	/* redrive --reason */
	int64_t		 older_ms;	/* redrive --older-than, or -1 */
	long long	 limit, done;
	long long	 heads;		/* grouped messages moved from new/ */
	int64_t		 now_ms;
	int		 status;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
collect_id(const char *id, void *arg)
{
	struct walk *w = arg;
	void *p;

	if ((p = reallocarray(w->ids, w->nids + 1, sizeof(*w->ids))) == NULL)
		err(EX_OSERR, NULL);
	w->ids = p;
	if ((w->ids[w->nids++] = strdup(id)) == NULL)
		err(EX_OSERR, NULL);
	return 0;
}

/*
 * Take ID operands (or "-"); no operand means every message of the
 * states, and an empty "-" none at all (a filter that matched nothing).
 */
static void
walk_ids(struct walk *w, int argc, char **argv)
{
	if (argc == 0)
		return;
	w->byid = 1;
	admin_ids(argc, argv, collect_id, w);
	if (w->nids == 0)
		return;
	qsort(w->ids, w->nids, sizeof(*w->ids), cmp_str);
	if ((w->found = calloc(w->nids, 1)) == NULL)
		err(EX_OSERR, NULL);
}

static int
visit(const struct sq_msg *m, void *arg)
{
	struct walk *w = arg;
	char **hit;
	int rc;

	if (w->limit > 0 && w->done >= w->limit)
		return 1;
	if (!m->parsed)
		return 0;		/* qadmin check reports those */
	if (!S_ISREG(m->st.st_mode)) {
		const char *id = m->n.id;

		/* Asked for by ID: say what it is, not that it is missing. */
		if (w->byid && w->nids > 0 && (hit = bsearch(&id, w->ids,
		    w->nids, sizeof(*w->ids), cmp_str)) != NULL) {
			char dir[SQ_GROUP_MAX + 16];

			w->found[hit - w->ids] = 1;
			warnx("%s/%s/%s: not a regular file (%s); qadmin "
			    "check --repair %s moves it to quarantine/",
			    w->qarg, admin_msg_dir(m, dir, sizeof(dir)),
			    m->name,
			    sq_mode_name(m->st.st_mode), w->qarg);
			if (w->status == 0)
				w->status = EX_DATAERR;
		}
		return 0;		/* qadmin check reports those */
	}
	if (w->byid) {
		const char *id = m->n.id;

		if (w->nids == 0 || (hit = bsearch(&id, w->ids, w->nids,
		    sizeof(*w->ids), cmp_str)) == NULL)
			return 0;
		w->found[hit - w->ids] = 1;
	}
	if (w->reason != NULL && strcmp(m->n.reason, w->reason) != 0)
		return 0;
	if (w->older_ms >= 0 && w->now_ms - ((int64_t)m->st.st_ctim.tv_sec *
	    1000 + m->st.st_ctim.tv_nsec / 1000000) < w->older_ms)
		return 0;
	w->done++;
	if (!w->a->dry_run) {
		rc = w->op == OP_DELETE ?
		    sq_admin_delete(w->q, m->state, m->name) :
		    sq_admin_move(w->q, m->state, m->name, w->to, w->target,
		    w->reset, NULL);
		if (rc == -1) {
			w->done--;
			if (errno == ENOENT)
				return 0;	/* a consumer was quicker */
			warn("%s: %s", w->q->path, m->name);
			w->status = tool_exit_code(errno);
			return 0;
		}
		if (m->state == SQ_STATE_READY && m->n.group[0] != '\0')
			w->heads++;
	}
	{
		char to[SQ_QUEUE_NAME_MAX + 32];

		snprintf(to, sizeof(to), "%s%s", w->to_label ? w->to_label : "",
		    w->op == OP_DELETE ? "-" : sq_state_name(w->target));
		admin_say(w->a, w->action, m->n.id, sq_state_name(m->state), to);
	}
	return 0;
}

static void
walk_state(struct walk *w, enum sq_state st)
{
	if (sq_msg_each(w->q, st, visit, w) == -1)
		err(tool_exit_code(errno), "%s: %s", w->q->path,
		    sq_state_dir(st));
}

/* Walk the given states, then report IDs that were not found. */
static int
walk_run(struct walk *w, const enum sq_state *states, size_t n)
{
	size_t i;

	w->now_ms = sq_now_ms();
	for (i = 0; i < n; i++)
		walk_state(w, states[i]);
	/*
	 * A move: each group's head that left handed the baton to the
	 * next of its group, now in new/, so new/ is walked again until no
	 * group moves on.  A group's messages thus reach the other queue
	 * in their order, one by one, and a group whose head is in flight
	 * or waiting in retry/ stays whole.  Then, when IDs were given,
	 * the messages still waiting in their groups.
	 */
	while (w->follow && w->heads > 0 && !w->a->dry_run &&
	    (w->limit == 0 || w->done < w->limit)) {
		w->heads = 0;
		walk_state(w, SQ_STATE_READY);
	}
	if (w->follow && w->byid)
		walk_state(w, SQ_STATE_GROUPED);
	for (i = 0; i < w->nids; i++) {
		if (!w->found[i]) {
			warnx("%s: no such message here",
			    tool_echo(w->ids[i]));
			if (w->status == 0)
				w->status = EX_NOINPUT;
		}
		free(w->ids[i]);
	}
	free(w->ids);
	free(w->found);
	if (!w->a->dry_run && w->done > 0 && w->op == OP_MOVE &&
	    w->target == SQ_STATE_READY && sq_queue_refresh(w->to) == -1)
		warn("%s: refresh", w->to->path);
	if (w->a->verbose)
		warnx("%lld message%s", w->done, w->done == 1 ? "" : "s");
	/* What the queues keep (a group's order buffer) goes with them. */
	if (w->to != NULL && w->to != w->q)
		sq_queue_close(w->to);
	sq_queue_close(w->q);
	return w->status;
}

static void
walk_init(struct walk *w, struct admin *a, struct sq_queue *q,
    const char *action, enum op op, enum sq_state target)
{
	memset(w, 0, sizeof(*w));
	w->a = a;
	w->q = w->to = q;
	w->action = action;
	w->op = op;
	w->target = target;
	w->older_ms = -1;
}

/* "QUEUE/" for the printed target of a move to another queue. */
static const char *
label(const char *queue)
{
	static char buf[PATH_MAX + 2];

	snprintf(buf, sizeof(buf), "%s/", queue);
	return buf;
}

/*
 * Parse "queue" and no options (commands without options of their own);
 * second, if not NULL, says what is missing when the queue is alone.
 */
static void
plain_args(int argc, char **argv, const char *second)
{
	if (getopt(argc, argv, "") != -1)
		admin_usage(NULL);
	if (argc - optind < 1)
		admin_usage("missing queue name");
	if (second != NULL && argc - optind < 2)
		admin_usage("missing %s", second);
}

/*
 * The states purge walks, in this order: the messages waiting in groups
 * first, so that a head's deletion, which hands its baton on, finds none
 * of them left to promote into new/ behind the walk.  Waiting messages
 * are ready ones: purging ready purges them too.
 */
static size_t
purge_states(int argc, char **argv, enum sq_state *states)
{
	static const enum sq_state order[] = { SQ_STATE_GROUPED,
	    SQ_STATE_READY, SQ_STATE_RETRY, SQ_STATE_DEAD, SQ_STATE_HELD };
	int want[SQ_STATE_GROUPED + 1] = { 0 };
	enum sq_state st;
	size_t i, n = 0;
	int j;

	if (argc == 0)
		want[SQ_STATE_READY] = want[SQ_STATE_RETRY] = 1;
	for (j = 0; j < argc; j++) {
		if (sq_state_parse(argv[j], &st) == -1)
			tool_bad("%s: not a state (ready, retry, dead, held, "
			    "grouped)", tool_echo(argv[j]));
		if (st == SQ_STATE_INFLIGHT)
			tool_bad("%s: in-flight messages belong to their "
			    "consumers; delete one by ID", argv[j]);
		want[st] = 1;
	}
	if (want[SQ_STATE_READY])
		want[SQ_STATE_GROUPED] = 1;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (want[order[i]])
			states[n++] = order[i];
	return n;
}

int
cmd_purge(struct admin *a, int argc, char **argv)
{
	enum sq_state states[SQ_STATE_GROUPED + 1];
	struct sq_queue q;
	struct walk w;
	size_t n;

	plain_args(argc, argv, NULL);
	n = purge_states(argc - optind - 1, argv + optind + 1, states);
	admin_open(a, &q, argv[optind]);
	walk_init(&w, a, &q, "purge", OP_DELETE, SQ_STATE_READY);
	w.qarg = argv[optind];
	return walk_run(&w, states, n);
}

int
cmd_delete(struct admin *a, int argc, char **argv)
{
	/* Waiting in groups first, as purge_states says. */
	static const enum sq_state all[] = { SQ_STATE_GROUPED,
	    SQ_STATE_READY, SQ_STATE_INFLIGHT, SQ_STATE_RETRY, SQ_STATE_DEAD,
	    SQ_STATE_HELD };
	struct sq_queue q;
	struct walk w;

	plain_args(argc, argv, "message id");
	admin_open(a, &q, argv[optind]);
	walk_init(&w, a, &q, "delete", OP_DELETE, SQ_STATE_READY);
	w.qarg = argv[optind];
	walk_ids(&w, argc - optind - 1, argv + optind + 1);
	return walk_run(&w, all, sizeof(all) / sizeof(all[0]));
}

int
cmd_redrive(struct admin *a, int argc, char **argv)
{
	enum { OPT_REASON = 256, OPT_OLDER, OPT_LIMIT, OPT_TO };
	static const struct option longopts[] = {
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "older-than", required_argument, NULL, OPT_OLDER },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "to", required_argument, NULL, OPT_TO },
		{ NULL, 0, NULL, 0 },
	};
	static const enum sq_state dead[] = { SQ_STATE_DEAD };
	struct sq_queue q, to;
	struct walk w;
	const char *reason = NULL, *toarg = NULL;
	int64_t older = -1;
	long long limit = 0;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_LIMIT:
			limit = tool_number("--limit", optarg, 1, LLONG_MAX);
			break;
		case OPT_OLDER:
			older = tool_duration("--older-than", optarg);
			break;
		case OPT_REASON:
			if (!sq_reason_valid(optarg))
				tool_bad("--reason %s: not a reason "
				    "([a-z0-9-]{1,32})", tool_echo(optarg));
			reason = optarg;
			break;
		case OPT_TO:
			toarg = optarg;
			break;
		default:
			admin_usage(NULL);
		}
	}
	if (argc - optind < 1)
		admin_usage("missing queue name");
	admin_open(a, &q, argv[optind]);
	walk_init(&w, a, &q, "redrive", OP_MOVE, SQ_STATE_READY);
	w.qarg = argv[optind];
	if (toarg != NULL) {
		admin_open(a, &to, toarg);
		w.to = &to;
		w.to_label = label(toarg);
	}
	w.reset = 1;
	w.reason = reason;
	w.older_ms = older;
	w.limit = limit;
	walk_ids(&w, argc - optind - 1, argv + optind + 1);
	return walk_run(&w, dead, 1);
}

int
cmd_move(struct admin *a, int argc, char **argv)
{
	static const enum sq_state ready[] = { SQ_STATE_READY };
	/* Then grouped: see walk_run. */
	static const enum sq_state named[] = { SQ_STATE_READY,
	    SQ_STATE_RETRY, SQ_STATE_HELD, SQ_STATE_DEAD };
	struct sq_queue q, to;
	struct stat qst, tost;
	struct walk w;

	plain_args(argc, argv, "queue to move to");
	admin_open(a, &q, argv[optind]);
	admin_open(a, &to, argv[optind + 1]);
	/* Into itself every message would collide with itself. */
	if (fstat(q.fd, &qst) == 0 && fstat(to.fd, &tost) == 0 &&
	    qst.st_dev == tost.st_dev && qst.st_ino == tost.st_ino)
		tool_bad("%s: %s is the same queue", argv[optind + 1],
		    argv[optind]);
	walk_init(&w, a, &q, "move", OP_MOVE, SQ_STATE_READY);
	w.qarg = argv[optind];
	w.to = &to;
	w.to_label = label(argv[optind + 1]);
	walk_ids(&w, argc - optind - 2, argv + optind + 2);
	w.follow = 1;
	if (!w.byid)
		return walk_run(&w, ready, 1);
	return walk_run(&w, named, sizeof(named) / sizeof(named[0]));
}

int
cmd_retry_now(struct admin *a, int argc, char **argv)
{
	static const enum sq_state retry[] = { SQ_STATE_RETRY };
	struct sq_queue q;
	struct walk w;

	plain_args(argc, argv, NULL);
	if (argc - optind > 1)
		admin_usage("%s: one queue only", tool_echo(argv[optind + 1]));
	admin_open(a, &q, argv[optind]);
	walk_init(&w, a, &q, "retry-now", OP_MOVE, SQ_STATE_READY);
	w.qarg = argv[optind];
	return walk_run(&w, retry, 1);
}

/* hold/release of a whole queue: the flag file. */
static int
hold_queue(struct admin *a, struct sq_queue *q, const char *arg, int on)
{
	struct stat st;

	if (!a->dry_run && sq_queue_hold(q, on) == -1) {
		/* Something planted at held: check --repair moves it. */
		if ((errno == SQ_ENOTREG || errno == EISDIR) &&
		    fstatat(q->fd, SQ_HELD_FILE, &st, AT_SYMLINK_NOFOLLOW) ==
		    0 && !S_ISREG(st.st_mode))
			errx(EX_DATAERR, "%s/%s: not a regular file (%s); "
			    "qadmin check --repair %s moves it to "
			    "quarantine/", arg, SQ_HELD_FILE,
			    sq_mode_name(st.st_mode), arg);
		err(tool_exit_code(errno), "%s: %s", arg, on ? "hold" :
		    "release");
	}
	if (!a->quiet)
		printf("%s%s %s\n", a->dry_run ? "would " : "",
		    on ? "hold" : "release", arg);
	return 0;
}

int
cmd_hold(struct admin *a, int argc, char **argv)
{
	static const enum sq_state from[] = { SQ_STATE_GROUPED,
	    SQ_STATE_READY, SQ_STATE_RETRY };
	struct sq_queue q;
	struct walk w;

	plain_args(argc, argv, NULL);
	admin_open(a, &q, argv[optind]);
	if (argc - optind == 1)
		return hold_queue(a, &q, argv[optind], 1);
	walk_init(&w, a, &q, "hold", OP_MOVE, SQ_STATE_HELD);
	w.qarg = argv[optind];
	walk_ids(&w, argc - optind - 1, argv + optind + 1);
	return walk_run(&w, from, sizeof(from) / sizeof(from[0]));
}

int
cmd_release(struct admin *a, int argc, char **argv)
{
	static const enum sq_state held[] = { SQ_STATE_HELD };
	struct sq_queue q;
	struct walk w;
	int rc = 0;

	plain_args(argc, argv, NULL);
	admin_open(a, &q, argv[optind]);
	if (argc - optind == 1)
		rc = hold_queue(a, &q, argv[optind], 0);
	walk_init(&w, a, &q, "release", OP_MOVE, SQ_STATE_READY);
	w.qarg = argv[optind];
	walk_ids(&w, argc - optind - 1, argv + optind + 1);
	return walk_run(&w, held, 1) != 0 ? w.status : rc;
}

struct replaying {
	struct admin	*a;
	const char	*to;	/* "OTHER/" for --to, else "" */
};

static void
replayed(const char *id, const char *new_id, void *arg)
{
	struct replaying *r = arg;

	if (!r->a->quiet)
		printf("%sreplay %s archive -> %sready\n", new_id == NULL ?
		    "would " : "", id, r->to);
}

int
cmd_replay(struct admin *a, int argc, char **argv)
{
	enum { OPT_SINCE = 256, OPT_TO };
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "to", required_argument, NULL, OPT_TO },
		{ NULL, 0, NULL, 0 },
	};
	struct sq_queue q, to;
	struct replaying r;
	const char *toarg = NULL;
	int64_t since = 0;
	size_t n;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_SINCE:
			since = tool_time("--since", optarg);
			break;
		case OPT_TO:
			toarg = optarg;
			break;
		default:
			admin_usage(NULL);
		}
	}
	if (argc - optind < 1)
		admin_usage("missing queue name");
	if (argc - optind > 1)
		admin_usage("%s: one queue only", tool_echo(argv[optind + 1]));
	admin_open(a, &q, argv[optind]);
	if (toarg != NULL)
		admin_open(a, &to, toarg);
	r.a = a;
	r.to = toarg != NULL ? label(toarg) : "";
	if (sq_archive_replay(&q, toarg ? &to : &q, since, a->dry_run,
	    replayed, &r, &n) == -1)
		err(tool_exit_code(errno), "%s: replay", argv[optind]);
	if (a->verbose)
		warnx("%zu message%s", n, n == 1 ? "" : "s");
	if (toarg != NULL)
		sq_queue_close(&to);
	sq_queue_close(&q);
	return 0;
}
