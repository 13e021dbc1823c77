/*
 * qack - settle claimed messages by receipt: ack (delete), retry later,
 * reject to the dead letters, or extend the lease.
 *
 * Receipts are checked by the library (sq_receipt_open): only a regular
 * file directly in a queue's cur/ is touched.  Receipts of one queue
 * share one open queue.  Every receipt is tried; the exit status is that
 * of the first failure.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tool.h"

enum action { ACK, RETRY, REJECT, TOUCH };

struct settle {
	enum action	 action;
	int64_t		 delay_ms;	/* --retry --delay; -1 = backoff */
	int64_t		 lease_ms;	/* --touch */
	const char	*reason;	/* --reject */
	int		 verbose;
	struct sq_queue	 q;		/* the queue of the last receipt */
	char		 qdir[PATH_MAX];
	int		 status;	/* first failure's exit code */
};

/* As in the SYNOPSIS of qack(1). */
static const char synopsis[] =
    "usage: qack [-qv] [-d root] [--retry [--delay duration] | "
    "--reject[=reason] |\n"
    "            --touch duration] receipt ... | -\n";

static const char options[] =
    "  (none)              ack: delete each message\n"
    "  --retry             retry later, after the queue's backoff\n"
    "  --delay duration    with --retry: after duration, like 30s or 5m\n"
    "  --reject[=reason]   dead-letter at once (reason: "
    "[a-z0-9-]{1,32})\n"
    "  --touch duration    extend the lease to duration from now; "
    "print the receipt\n"
    "  -d root             the spool root, which must exist (receipts "
    "are paths)\n"
    "  -h, --help          this help\n"
    "  -q                  quiet: print less on standard error\n"
    "  -v                  verbose: say where each message went\n"
    "  --version           print the version\n"
    "  -                   read receipts from stdin, one per line\n";

static void __attribute__((noreturn))
usage(const char *why)
{
	tool_usage(synopsis, why == NULL ? NULL : "%s", why);
}

static void
failed(struct settle *s, int code, const char *fmt, const char *arg,
    const char *why)
{
	warnx(fmt, arg, why);
	if (s->status == 0)
		s->status = code;
}

/* Open the receipt's queue unless it is the one already open. */
static int
open_receipt(struct settle *s, const char *path, char *name)
{
	char qdir[PATH_MAX], msg[PATH_MAX + 256];

	if (sq_receipt_split(path, qdir, sizeof(qdir), name, SQ_NAME_MAX + 1)
	    == -1) {
		failed(s, EX_DATAERR, "%s: %s", tool_echo(path),
		    "not a receipt");
		return -1;
	}
	if (s->q.fd != -1 && strcmp(qdir, s->qdir) == 0 &&
	    strchr(path, '/') != NULL)
		return 0;
	sq_queue_close(&s->q);
	s->qdir[0] = '\0';
	if (sq_receipt_open(path, &s->q, name, msg, sizeof(msg)) == -1) {
		int e = errno;
		const char *hint;

		/* Something planted in cur/: check --repair moves it. */
		hint = e == SQ_ENOTREG && strstr(msg, ": not a regular file (")
		    != NULL ? "; qadmin check --repair moves it to "
		    "quarantine/" : "";
		failed(s, e == ENOENT ? EX_NOINPUT : e == EINVAL &&
		    strstr(msg, "queue.conf") != NULL ? EX_CONFIG :
		    tool_exit_code(e), "%s%s", msg, hint);
		if (e != ENOENT)
			sq_queue_close(&s->q);
		else
			strlcpy(s->qdir, qdir, sizeof(s->qdir));
		return -1;
	}
	strlcpy(s->qdir, qdir, sizeof(s->qdir));
	return 0;
}

/*
 * Print the new receipt of a touch with one write(2).  When it cannot be
 * written (a closed pipe: SIGPIPE is ignored; a full disk) nobody learns
 * it, so the touch is taken back: the receipt the caller holds stays
 * good.  Then exit 74; receipts not yet touched are left as they are.
 */
static void
print_receipt(struct settle *s, const char *name, const char *newname)
{
	char line[PATH_MAX + SQ_NAME_MAX + 8];
	int len, saved;

	len = snprintf(line, sizeof(line), "%s/%s/%s\n", sq_queue_real(&s->q),
	    SQ_DIR_CUR, newname);
	if (len < 0 || (size_t)len >= sizeof(line))
		errx(EX_SOFTWARE, "%s: receipt too long", newname);
	if (sq_write_all(STDOUT_FILENO, line, (size_t)len) == 0)
		return;
	saved = errno;
	if (sq_touch_undo(&s->q, newname, name) == -1)
		warn("%s/%s/%s: touch not taken back", sq_queue_real(&s->q),
		    SQ_DIR_CUR, newname);
	errno = saved;
	err(EX_IOERR, "stdout");
}

/* One settle of a receipt, as sq_settle_again runs it. */
struct step {
	struct settle	*s;
	const char	*path;		/* the receipt as given */
	const char	*name;
	char		*newname;
	int		*dead;
};

static int
step_run(struct sq_queue *q, void *arg)
{
	struct step *st = arg;

	switch (st->s->action) {
	case ACK:
		return sq_ack(q, st->name);
	case RETRY:
		return sq_retry(q, st->name, st->s->delay_ms, NULL,
		    st->newname, st->dead);
	case REJECT:
		return sq_reject(q, st->name, st->s->reason, st->newname);
	case TOUCH:
		return sq_touch(q, st->name, st->s->lease_ms, st->newname);
	}
	errno = EINVAL;
	return -1;
}

/* One line per back-off of a settle the file system failed. */
static void
step_log(int tries, int e, int64_t wait_ms, void *arg)
{
	struct step *st = arg;

	warnx("%s: settle failed %d time%s (%s); trying again in %lld ms",
	    st->path, tries, tries == 1 ? "" : "s", strerror(e),
	    (long long)wait_ms);
}

static void
settle_one(struct settle *s, const char *path)
{
	char name[SQ_NAME_MAX + 1], newname[SQ_NAME_MAX + 1];
	struct step st;
	unsigned long sent;
	int rc, dead = 0, tries;

	if (open_receipt(s, path, name) == -1)
		return;
	sent = s->q.dl_sent;
	st.s = s;
	st.path = path;
	st.name = name;
	st.newname = newname;
	st.dead = &dead;
	rc = sq_settle_again(&s->q, step_run, &st, step_log, &tries);
	if (rc == -1) {
		char where[PATH_MAX + 16];
		const char *d = NULL;
		int e = errno;

		/* A directory of the queue that refuses us: name it. */
		if (e == EACCES || e == EPERM)
			d = sq_queue_blame(&s->q, R_OK | W_OK | X_OK);
		if (d != NULL) {
			snprintf(where, sizeof(where), "%s/%s", s->qdir, d);
			failed(s, tool_exit_code(e), "%s: %s", where,
			    strerror(e));
			return;
		}
		if (sq_error_stale(e)) {
			/* Nothing done: the receipt holds as before. */
			snprintf(where, sizeof(where), "settle failed %d "
			    "time%s", tries, tries == 1 ? "" : "s");
			warnx("%s: %s (%s); left claimed: the receipt holds "
			    "until its lease ends", path, where,
			    strerror(e));
			if (s->status == 0)
				s->status = tool_exit_code(e);
			return;
		}
		failed(s, e == ENOENT ? EX_NOINPUT : tool_exit_code(e),
		    "%s: %s", path, e == ENOENT ?
		    "lease lost or message already settled" : e == EINVAL ?
		    "not a receipt" : strerror(e));
		return;
	}
	tool_dead_letter_warn(&s->q);
	if (s->action == TOUCH)
		print_receipt(s, name, newname);
	else if (s->verbose && s->q.dl_sent != sent)
		fprintf(stderr, "qack: %s: %s/%s/%s\n", name,
		    s->q.conf.dead_letter, SQ_DIR_NEW, newname);
	else if (s->verbose && s->action != ACK)
		fprintf(stderr, "qack: %s: %s/%s\n", name,
		    dead || s->action == REJECT ? SQ_DIR_DEAD : SQ_DIR_RETRY,
		    newname);
}

int
main(int argc, char *argv[])
{
	enum { OPT_DELAY = 256, OPT_REJECT, OPT_RETRY, OPT_TOUCH,
	    OPT_VERSION };
	static const struct option longopts[] = {
		{ "delay", required_argument, NULL, OPT_DELAY },
		{ "help", no_argument, NULL, 'h' },
		{ "reject", optional_argument, NULL, OPT_REJECT },
		{ "retry", no_argument, NULL, OPT_RETRY },
		{ "touch", required_argument, NULL, OPT_TOUCH },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct settle s;
	char *line = NULL;
	size_t size = 0;
	ssize_t len;
	char rootbuf[PATH_MAX];
	const char *root = NULL;
	int ch, i, actions = 0, delay_set = 0;

	tool_init();
	tool_args(argv, getprogname());
	tool_synopsis(synopsis, NULL);
	memset(&s, 0, sizeof(s));
	s.q.fd = s.q.tmpfd = s.q.newfd = s.q.curfd = s.q.retryfd =
	    s.q.deadfd = s.q.index_fd = -1;
	s.delay_ms = -1;
	while ((ch = getopt_long(argc, argv, "d:hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':		/* receipts are paths; accepted for */
			root = optarg;	/* symmetry with the other tools */
			break;
		case 'h':
			tool_help(synopsis, options, "qack(1)");
		case 'q':
			break;
		case 'v':
			s.verbose = 1;
			break;
		case OPT_DELAY:
			s.delay_ms = tool_duration("--delay", optarg);
			delay_set = 1;
			break;
		case OPT_REJECT:
			s.action = REJECT;
			s.reason = optarg;
			if (optarg != NULL && !sq_reason_valid(optarg))
				tool_bad("--reject=%s: reason must match "
				    "[a-z0-9-]{1,32}", tool_echo(optarg));
			actions++;
			break;
		case OPT_RETRY:
			s.action = RETRY;
			actions++;
			break;
		case OPT_TOUCH:
			s.action = TOUCH;
			s.lease_ms = tool_duration("--touch", optarg);
			if (s.lease_ms < 1000)
				tool_bad("--touch %s: must be at least "
				    "1s", tool_echo(optarg));
			actions++;
			break;
		case OPT_VERSION:
			tool_version();
			break;
		default:
			usage(NULL);
		}
	}
	argc -= optind;
	argv += optind;
	if (actions > 1)
		usage("--retry, --reject and --touch: choose one");
	if (delay_set && s.action != RETRY)
		usage("--delay: only with --retry");
	if (argc < 1)
		usage("missing receipt (or - to read receipts from stdin)");
	if (root != NULL)
		tool_root(rootbuf, root, 0);
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-") != 0) {
			settle_one(&s, argv[i]);
			continue;
		}
		while ((len = getline(&line, &size, stdin)) != -1) {
			if (len > 0 && line[len - 1] == '\n')
				line[--len] = '\0';
			if (len > 0)
				settle_one(&s, line);
		}
		if (ferror(stdin))
			err(EX_IOERR, "stdin");
	}
	free(line);
	sq_queue_close(&s.q);
	if (fflush(stdout) == EOF)
		err(EX_IOERR, "stdout");
	return s.status;
}
