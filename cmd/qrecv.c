/*
 * qrecv - consumer: claim messages and print their receipts.
 *
 * Claims up to -n messages in ID order and prints each receipt path.
 * With -w it waits for a message (inotify, and a timer for the next
 * retry due time or lease end).  With -A (at-most-once) each claimed
 * message is taken out of sight before its body is printed: a crash
 * after that loses the message rather than delivering it twice, but a
 * body that could not be written is given back.  Claims whose receipts
 * or bodies could not be written (a closed pipe, a full disk) go back to
 * new/ and qrecv exits 74.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tool.h"

#define CLAIM_CHUNK	256	/* claims per index lock hold */

/* As in the SYNOPSIS of qrecv(1). */
static const char synopsis[] =
    "usage: qrecv [-0Aqv] [--meta] [--raw] [-d root] [-n count] "
    "[-w duration]\n"
    "             [--lease duration] queue\n";

static const char options[] =
    "  -0                NUL, not newline, after each receipt (or body)\n"
    "  -A, --auto-ack    at-most-once: delete each message as claimed, "
    "print its body\n"
    "  -d root           the spool root (default $SPOOLQ_DIR; "
    "spoolq(7))\n"
    "  -h, --help        this help\n"
    "  --lease duration  hold the claims this long, not the queue's "
    "lease\n"
    "  --meta            after each receipt, its ID, attempt, key and "
    "attributes\n"
    "  -n count          claim up to count messages (default 1)\n"
    "  -q                quiet: print less on standard error\n"
    "  --raw             with -A: the bodies as stored, no separator\n"
    "  -v                verbose: say why nothing was claimed\n"
    "  --version         print the version\n"
    "  -w duration       wait that long for a message (30s; 0: "
    "forever)\n"
    "Exit 1 when no message came.\n";

static void __attribute__((noreturn))
usage(const char *why)
{
	tool_usage(synopsis, why == NULL ? NULL : "%s", why);
}

/*
 * Output goes out with write(2), so that it is known which claims reached
 * the reader whole: a claim whose receipt (or body) was not written in
 * full when stdout failed - a closed pipe (EPIPE; SIGPIPE is ignored), a
 * full disk - is given back to new/ at once instead of waiting out its
 * lease, as nobody will settle it.
 */
struct out {
	char	*buf;
	size_t	 len, size;
	int	 sep;
};

static void
out_add(struct out *o, const void *p, size_t len)
{
	size_t size;
	char *nb;

	if (o->len + len > o->size) {
		for (size = o->size ? o->size : 4096; size < o->len + len;)
			size *= 2;
		if ((nb = realloc(o->buf, size)) == NULL)
			err(EX_OSERR, NULL);
		o->buf = nb;
		o->size = size;
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
}

static void
out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void
out_sep(struct out *o)
{
	char c = (char)o->sep;

	out_add(o, &c, 1);
}

/* Write len bytes of buf to stdout; the number written (len, or less). */
static size_t
out_write(const char *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		if ((n = write(STDOUT_FILENO, buf + done, len - done)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		done += (size_t)n;
	}
	return done;
}

/* Give back the claims from..n-1 that were never shown. */
static void
give_back_rest(struct sq_queue *q, const struct sq_claim *c, size_t from,
    size_t n)
{
	for (; from < n; from++)
		sq_release(q, c[from].name);
}

/* Give back the claims from..n-1 that were never shown, and fail. */
static void
give_back(struct sq_queue *q, const struct sq_claim *c, size_t from,
    size_t n, int saved)
{
	give_back_rest(q, c, from, n);
	errno = saved;
	err(EX_IOERR, "stdout");
}

/* A step of -A on one message, as sq_settle_again runs it. */
struct take {
	enum { TAKE, TAKE_DONE, TAKE_UNDO } op;
	struct sq_queue	*q;
	const char	*name;		/* the claim, cur/name */
	char		 taken[SQ_NAME_MAX + 1];
};

static const char *const take_ops[] = { "take", "ack", "give back" };

static int
take_run(struct sq_queue *q, void *arg)
{
	struct take *t = arg;

	switch (t->op) {
	case TAKE:
		return sq_take(q, t->name, t->taken);
	case TAKE_DONE:
		return sq_take_done(q, t->taken);
	case TAKE_UNDO:
		return sq_take_undo(q, t->taken);
	}
	errno = EINVAL;
	return -1;
}

/*
 * The path of the message of t: in cur/ until taken, then in tmp/ (in
 * archive/ in an archiving queue).
 */
static const char *
take_path(struct sq_queue *q, const struct take *t)
{
	static char path[PATH_MAX + SQ_NAME_MAX + 16];

	snprintf(path, sizeof(path), "%s/%s/%s", q->path, t->op == TAKE ?
	    SQ_DIR_CUR : q->conf.archive ? SQ_DIR_ARCHIVE : SQ_DIR_TMP,
	    t->op == TAKE ? t->name : t->taken);
	return path;
}

/* One line per back-off of a step the file system failed. */
static void
take_log(int tries, int e, int64_t wait_ms, void *arg)
{
	struct take *t = arg;

	warnx("%s: %s failed %d time%s (%s); trying again in %lld ms",
	    take_path(t->q, t), take_ops[t->op], tries, tries == 1 ? "" :
	    "s", strerror(e), (long long)wait_ms);
}

/*
 * Make step op of t, again after a failure of the file system
 * (sq_settle_again).  When it still fails, say so ("PATH: OP failed N
 * times (why)", then what became of the message: then) and return -1
 * with errno.
 */
static int
take_step(struct sq_queue *q, struct take *t, int op, const char *then)
{
	int tries, e;

	t->op = op;
	if (sq_settle_again(q, take_run, t, take_log, &tries) == 0)
		return 0;
	e = errno;
	warnx("%s: %s failed %d time%s (%s)%s", take_path(q, t),
	    take_ops[op], tries, tries == 1 ? "" : "s", strerror(e), then);
	errno = e;
	return -1;
}

/*
 * -A: show the body of cur/name, at most once.  It is taken out of sight
 * first (the commit point), acknowledged once all of it was written, and
 * given back to new/ when it could not be: a body that was not delivered
 * is never lost.  A take, ack or give-back that the file system failed is
 * made again (take_step).  Returns 0; -1 (errno set) when stdout failed;
 * -2 (errno set, said) when the message could not be taken and is left
 * claimed or given back; 1 when its body was shown but its ack failed:
 * it is left taken in tmp/, for qadmin gc, never shown again.
 */
static int
print_body(struct sq_queue *q, const char *name, int sep, int raw)
{
	char buf[64 * 1024];
	const char *kept;
	struct take t;
	ssize_t n;
	size_t len;
	int fd, saved, eof = 0;

	/* Where a body not shown stays when it cannot be given back. */
	kept = q->conf.archive ? "; not shown, left in archive/" :
	    "; not shown, left taken in tmp/";
	memset(&t, 0, sizeof(t));
	t.q = q;
	t.name = name;
	if ((fd = sq_open_regular(q->curfd, name, O_RDONLY, 0, NULL)) == -1) {
		warn("%s/cur/%s", q->path, name);
		return -2;
	}
	if (take_step(q, &t, TAKE, "; not shown") == -1) {
		saved = errno;
		close(fd);
		/* Its lease need not run out: back to new/ if it can. */
		if (sq_release(q, name) == 0)
			warnx("%s/cur/%s: given back to new/", q->path, name);
		else
			warnx("%s/cur/%s: left claimed until its lease ends",
			    q->path, name);
		errno = saved;
		return -2;
	}
	while (!eof) {
		if ((n = read(fd, buf, sizeof(buf) - 1)) == -1) {
			if (errno == EINTR)
				continue;
			saved = errno;
			close(fd);
			warnx("%s/cur/%s: %s", q->path, name, strerror(saved));
			(void)take_step(q, &t, TAKE_UNDO, kept);
			errno = saved;
			return -2;
		}
		len = (size_t)n;
		if (n == 0) {
			eof = 1;
			if (raw)
				break;
			buf[len++] = (char)sep;
		}
		if (out_write(buf, len) != len) {
			saved = errno;
			close(fd);
			/* All of the body out, only the separator lost: shown. */
			if (n == 0)
				(void)take_step(q, &t, TAKE_DONE, "; shown once: "
				    "qadmin gc removes it");
			else
				(void)take_step(q, &t, TAKE_UNDO, kept);
			errno = saved;
			return -1;
		}
	}
	close(fd);
	if (take_step(q, &t, TAKE_DONE, "; shown once: qadmin gc removes "
	    "it") == -1)
		return 1;
	return 0;
}

/* --meta: "NAME=VALUE" lines after a receipt; the key as SPOOLQ_KEY. */
static int
print_attr(const char *name, const char *value, void *arg)
{
	struct out *o = arg;

	out_str(o, name ? "SPOOLQ_ATTR_" : "SPOOLQ_KEY");
	out_str(o, name ? name : "");
	out_str(o, "=");
	out_str(o, value);
	out_sep(o);
	return 0;
}

static void
print_meta(struct sq_queue *q, const struct sq_claim *c, struct out *o)
{
	char num[32];

	out_str(o, "SPOOLQ_ID=");
	out_str(o, c->n.id);
	out_sep(o);
	snprintf(num, sizeof(num), "SPOOLQ_ATTEMPT=%u", c->n.attempts);
	out_str(o, num);
	out_sep(o);
	if (c->n.has_attr && sq_attr_each(q, c->n.id, print_attr, o) == -1 &&
	    errno != ENOENT) {
		if (errno == SQ_ENOTREG)
			warnx("%s: %s: attributes: not a regular file",
			    q->path, c->n.id);
		else
			warn("%s: %s: attributes", q->path, c->n.id);
	}
	out_sep(o);
}

/*
 * Print the receipts (with --meta, the records) of the claims c[0..n-1]
 * in one go; when stdout fails, those not written whole are given back.
 */
static void
print_receipts(struct sq_queue *q, const struct sq_claim *c, size_t n,
    int meta, struct out *o, size_t *ends)
{
	size_t i, done;

	o->len = 0;
	for (i = 0; i < n; i++) {
		out_str(o, sq_queue_real(q));
		out_str(o, "/" SQ_DIR_CUR "/");
		out_str(o, c[i].name);
		out_sep(o);
		if (meta)
			print_meta(q, &c[i], o);
		ends[i] = o->len;
	}
	if ((done = out_write(o->buf, o->len)) == o->len)
		return;
	for (i = 0; i < n && ends[i] <= done; i++)
		;
	give_back(q, c, i, n, errno);
}

int
main(int argc, char *argv[])
{
	enum { OPT_LEASE = 256, OPT_META, OPT_RAW, OPT_VERSION };
	static const struct option longopts[] = {
		{ "auto-ack", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ "lease", required_argument, NULL, OPT_LEASE },
		{ "meta", no_argument, NULL, OPT_META },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct sq_claim *claims;
	struct sq_watch *w = NULL;
	struct out o;
	size_t *ends;
	struct sq_queue q;
	const char *root = NULL;
	int64_t lease_ms = 0, wait_ms = -1, until_ms, until, now, next_ms;
	long long want = 1;
	size_t total = 0, got, i, chunk;
	int ch, sep = '\n', autoack = 0, raw = 0, meta = 0, verbose = 0;
	int e, status = 0;

	tool_init();
	tool_args(argv, getprogname());
	tool_synopsis(synopsis, NULL);
	while ((ch = getopt_long(argc, argv, "0Ad:hn:qvw:", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case '0':
			sep = '\0';
			break;
		case 'A':
			autoack = 1;
			break;
		case 'd':
			root = optarg;
			break;
		case 'h':
			tool_help(synopsis, options, "qrecv(1)");
		case 'n':
			want = tool_number("-n", optarg, 1, 1000000000);
			break;
		case 'q':
			break;
		case 'v':
			verbose = 1;
			break;
		case 'w':
			wait_ms = tool_duration("-w", optarg);
			break;
		case OPT_LEASE:
			lease_ms = tool_duration("--lease", optarg);
			if (lease_ms < 1000)
				tool_bad("--lease %s: must be at least "
				    "1s", optarg);
			break;
		case OPT_META:
			meta = 1;
			break;
		case OPT_RAW:
			raw = 1;
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
	if (argc < 1)
		usage("missing queue name");
	if (argc > 1)
		tool_usage(synopsis, "%s: one queue only", argv[1]);
	if (raw && !autoack)
		usage("--raw: only with -A");
	if (meta && autoack)
		usage("--meta and -A: choose one");
	tool_open(&q, root, argv[0], 0);
	if (verbose && sq_queue_held(&q))
		warnx("%s: the queue is held: nothing is claimed until "
		    "qadmin release", argv[0]);
	chunk = want < CLAIM_CHUNK ? (size_t)want : CLAIM_CHUNK;
	if ((claims = reallocarray(NULL, chunk, sizeof(*claims))) == NULL ||
	    (ends = reallocarray(NULL, chunk, sizeof(*ends))) == NULL)
		err(EX_OSERR, NULL);
	memset(&o, 0, sizeof(o));
	o.sep = sep;
	/* Monotonic: a step of the wall clock must not stretch -w. */
	until = wait_ms < 0 ? 0 : wait_ms == 0 ? INT64_MAX :
	    sq_mono_ms() + wait_ms;
	/* The watch goes up before the first look, so nothing slips by. */
	if (wait_ms >= 0 && (w = sq_watch_open(&q)) == NULL)
		err(EX_OSERR, "%s: watch", q.path);
	for (;;) {
		chunk = (size_t)want - total < CLAIM_CHUNK ?
		    (size_t)want - total : CLAIM_CHUNK;
		if (sq_claim(&q, lease_ms, NULL, claims, chunk, &got,
		    &next_ms) == -1)
			tool_queue_err(tool_exit_code(errno), &q, argv[0],
			    "claim");
		tool_dead_letter_warn(&q);
		if (!autoack)
			print_receipts(&q, claims, got, meta, &o, ends);
		for (i = 0; autoack && i < got; i++) {
			switch (print_body(&q, claims[i].name, sep, raw)) {
			case -1:
				give_back(&q, claims, i + 1, got, errno);
				break;
			case -2:
				e = errno;
				give_back_rest(&q, claims, i + 1, got);
				exit(e == ENOENT ? EX_NOINPUT :
				    tool_exit_code(e));
			case 1:
				status = EX_IOERR;
				break;
			}
		}
		total += got;
		if (total == (size_t)want || (got < chunk && total > 0))
			break;
		if (got == chunk)
			continue;
		if (w == NULL || (now = sq_mono_ms()) >= until)
			break;
		until_ms = until == INT64_MAX ? INT64_MAX :
		    sq_now_ms() + (until - now);
		if (sq_watch_wait(w, next_ms < until_ms ? next_ms : until_ms)
		    == -1 && errno != EINTR)
			err(EX_OSERR, "%s: wait", q.path);
	}
	sq_watch_close(w);
	free(o.buf);
	free(ends);
	free(claims);
	sq_queue_close(&q);
	if (status != 0)
		return status;
	return total > 0 ? 0 : EXIT_NONE;
}
