/*
 * qsend - producer: put messages into a queue, or into every queue an
 * exchange routes the key to.
 *
 * Operands are messages; without any, standard input is one message, or
 * one per line (-l) or NUL-terminated record (-0); with -f the operands
 * are files.  Messages are committed in batches; before a read that
 * would block, what is pending is committed, so a slow pipeline's
 * messages are not held back.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "exchange.h"
#include "tool.h"

static int	print_ids;

/* As in the SYNOPSIS of qsend(1). */
static const char synopsis[] =
    "usage: qsend [-0clpqv] [-d root] [-g group] [-H name=value] "
    "[-k key] [--at time]\n"
    "             [--dedup-id id] [--delay duration] "
    "[--timeout duration]\n"
    "             [--ttl duration] queue [message ...]\n"
    "       qsend [-cpqv] [-d root] [-g group] [-H name=value] "
    "[-k key] [--at time]\n"
    "             [--dedup-id id] [--delay duration] "
    "[--timeout duration]\n"
    "             [--ttl duration] -f queue file ...\n";

static const char options[] =
    "  -0                  stdin holds messages ended by NUL\n"
    "  -c                  create the queue (and the spool root) if "
    "missing\n"
    "  -d root             the spool root (default $SPOOLQ_DIR; "
    "spoolq(7))\n"
    "  -f                  the operands after queue are files, one "
    "message each\n"
    "  -g group            deliver in group: one at a time, in order "
    "(default\n"
    "                      $SPOOLQ_GROUP)\n"
    "  -H name=value       an attribute of each message (repeatable)\n"
    "  -h, --help          this help\n"
    "  -k key              the routing key (exchanges route by it)\n"
    "  -l                  stdin holds one message per line\n"
    "  -p                  print the ID of each message sent\n"
    "  -q                  quiet: print less on standard error\n"
    "  -v                  verbose: print more on standard error\n"
    "  --at time           ready at time: @EPOCH or "
    "YYYY-MM-DDTHH:MM[:SS]\n"
    "  --dedup-id id       drop the message if id was sent within "
    "dedup_window\n"
    "  --delay duration    ready after duration, like 30s, 5m, 2h\n"
    "  --timeout duration  wait at most duration for room in a full "
    "queue\n"
    "  --ttl duration      dead-letter the message if unclaimed after "
    "duration\n"
    "  --version           print the version\n"
    "Without messages or -f, stdin is one message.\n";

static void __attribute__((noreturn))
usage(const char *why)
{
	tool_usage(synopsis, why == NULL ? NULL : "%s", why);
}

/*
 * -p: each message once, though a fan-out publishes it in several
 * queues.  Every queue's batch publishes the same messages in the same
 * order, so the batch that is first to reach a position prints it; a
 * queue that dropped a duplicate (one message per --dedup-id send) leaves
 * the printing to another.
 */
struct counter {
	size_t	 n;		/* messages this batch published */
	size_t	*printed;	/* positions printed, of all batches */
};

static void
sent(const char *id, void *arg)
{
	struct counter *c = arg;

	if (++c->n <= *c->printed)
		return;
	*c->printed = c->n;
	if (print_ids)
		puts(id);
}

/*
 * Where messages go: one queue, or the queues an exchange routed the key
 * to (one batch each; the first one prints the IDs).
 */
struct sender {
	struct sq_queue	*queues;
	struct sq_batch	*b;
	size_t		 n;
	const char	*name;		/* the queue or exchange, as given */
	const char	*dedup_id;	/* --dedup-id, or NULL */
	const char	*group;		/* the group's key (-g), or NULL */
};

/*
 * Whether dir/name of a queue - the --dedup-id marker in dedup/ (want a
 * regular file: the send refused it, SQ_ENOTREG) or the directory of the
 * message's group in groups/ (want a directory: the send could not open
 * it) - is something planted there of another kind; if so, buf says
 * which and what it is.  name NULL: none.
 */
static int
planted(const struct sender *s, const char *dir, const char *name,
    mode_t want, char *buf, size_t size)
{
	char rel[PATH_MAX];
	struct stat st;
	size_t i;

	if (name == NULL)
		return 0;
	snprintf(rel, sizeof(rel), "%s/%s", dir, name);
	for (i = 0; i < s->n; i++)
		if (fstatat(s->queues[i].fd, rel, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) != want)
			/* Cut short, it still names the entry's queue. */
			return snprintf(buf, size, "%s/%s: not a %s (%s)",
			    s->n == 1 ? s->name : s->queues[i].path, rel,
			    want == S_IFDIR ? "directory" : "regular file",
			    sq_mode_name(st.st_mode)) > 0;
	return 0;
}

static int
sender_add(struct sender *s, const void *body, size_t len)
{
	size_t done;

	if (s->n == 1)
		return sq_batch_add(&s->b[0], body, len);
	return sq_fanout_add(s->b, s->n, body, len, &done);
}

static int
sender_add_fd(struct sender *s, int fd)
{
	size_t done;

	if (s->n == 1)
		return sq_batch_add_fd(&s->b[0], fd);
	return sq_fanout_add_fd(s->b, s->n, fd, &done);
}

static int
sender_commit(struct sender *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (sq_batch_commit(&s->b[i]) == -1)
			return -1;
	return 0;
}

static size_t
sender_pending(const struct sender *s)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		n += s->b[i].npending;
	return n;
}

/*
 * Report a failed send: what was committed stays, the rest is gone.  The
 * error comes first, then what was sent before it.
 */
static void __attribute__((noreturn))
fail(struct sender *s, const char *what)
{
	char buf[PATH_MAX + 256];
	size_t i;
	int e = errno, code = tool_exit_code(e);

	fflush(stdout);
	for (i = 0; i < s->n; i++)
		sq_batch_abort(&s->b[i]);
	if (e == EAGAIN) {
		code = EX_TEMPFAIL;
		warnx("%s: queue full (max_messages or max_bytes in "
		    "queue.conf)", what);
	} else if (e == EFBIG) {
		code = EX_DATAERR;
		warnx("%s: message larger than the queue's max_bytes", what);
	} else if ((e == SQ_ENOTREG && planted(s, SQ_DIR_DEDUP, s->dedup_id,
	    S_IFREG, buf, sizeof(buf))) || ((e == ENOTDIR || e == ELOOP) &&
	    planted(s, SQ_DIR_GROUPS, s->group, S_IFDIR, buf, sizeof(buf)))) {
		code = EX_DATAERR;
		warnx("%s; qadmin check --repair moves it to quarantine/", buf);
	} else {
		/* A directory of a queue that refuses us: name it. */
		for (i = 0; what == s->name && i < s->n; i++)
			if ((e == EACCES || e == EPERM) &&
			    sq_queue_blame(&s->queues[i], R_OK | W_OK | X_OK) !=
			    NULL) {
				what = tool_queue_what(buf, sizeof(buf),
				    &s->queues[i], s->n == 1 ? s->name :
				    s->queues[i].path, NULL, e);
				break;
			}
		errno = e;
		warn("%s", what);
	}
	for (i = 0; i < s->n; i++)
		warnx("%s: %zu message%s sent before the error",
		    s->n == 1 ? s->name : s->b[i].q->path, s->b[i].committed,
		    s->b[i].committed == 1 ? "" : "s");
	exit(code);
}

/* What a failed read of fd (named what) or a write to the queues was. */
static const char *
blame(const struct sender *s, const char *what)
{
	return s->n > 0 && s->b[0].input_failed ? what : s->name;
}

struct route {
	struct sender	*s;
	const char	*root;
};

/* Open every queue the exchange routes the key to. */
static int
add_route(const char *queue, void *arg)
{
	struct route *r = arg;
	struct sender *s = r->s;
	void *p;

	if ((p = reallocarray(s->queues, s->n + 1, sizeof(*s->queues))) ==
	    NULL)
		err(EX_OSERR, NULL);
	s->queues = p;
	tool_open(&s->queues[s->n++], r->root, queue, 0);
	return 0;
}

static void
open_exchange(struct sender *s, const char *path, const char *key)
{
	struct sq_exchange x;
	struct route r = { s, NULL };
	char msg[PATH_MAX + 256];
	int n;

	if (sq_exchange_open(&x, path, msg, sizeof(msg)) == -1)
		errx(errno == EINVAL ? EX_CONFIG : tool_exit_code(errno),
		    "%s", msg);
	r.root = x.root;
	if ((n = sq_exchange_route(&x, key, add_route, &r)) == -1)
		err(EX_DATAERR, "%s: route", s->name);
	if (n == 0)
		errx(EX_UNAVAILABLE, "%s: unroutable: no binding matches "
		    "key \"%s\" and there is no alternate queue", s->name,
		    key ? key : "");
	sq_exchange_close(&x);
}

/*
 * Records of stdin split at sep, read with our own buffer.  0, or -1
 * when a send failed, -2 when reading stdin did.
 */
static int
send_records(struct sender *s, int sep)
{
	char *buf = NULL, *p;
	size_t size = 64 * 1024, len = 0, start;
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	ssize_t n;
	int inerr = 0;

	if ((buf = malloc(size)) == NULL)
		return -1;
	for (;;) {
		/* A read that would block: commit what is pending first. */
		if (sender_pending(s) > 0 && poll(&pfd, 1, 0) == 0 &&
		    sender_commit(s) == -1)
			goto fail;
		if (len == size) {
			if ((p = realloc(buf, size * 2)) == NULL)
				goto fail;
			buf = p;
			size *= 2;
		}
		n = read(STDIN_FILENO, buf + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			inerr = 1;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		for (start = 0; (p = memchr(buf + start, sep, len - start)) !=
		    NULL; start = (size_t)(p - buf) + 1)
			if (sender_add(s, buf + start, (size_t)(p - buf) -
			    start) == -1)
				goto fail;
		memmove(buf, buf + start, len - start);
		len -= start;
	}
	if (len > 0 && sender_add(s, buf, len) == -1)
		goto fail;
	free(buf);
	return 0;
fail:
	free(buf);
	return inerr ? -2 : -1;
}

/* -H NAME=VALUE, kept in order. */
static void
add_attr(struct sq_attr **attrs, size_t *n, char *arg)
{
	char *eq = strchr(arg, '=');
	void *p;

	if (eq == NULL || eq == arg)
		tool_bad("-H %s: not name=value", tool_echo(arg));
	*eq = '\0';
	if (!sq_attr_name_valid(arg))
		tool_bad("-H %s: name must match [A-Za-z0-9_-]{1,64}",
		    tool_echo(arg));
	if ((p = reallocarray(*attrs, *n + 1, sizeof(**attrs))) == NULL)
		err(EX_OSERR, NULL);
	*attrs = p;
	(*attrs)[*n].name = arg;
	(*attrs)[(*n)++].value = eq + 1;
}

int
main(int argc, char *argv[])
{
	enum { OPT_AT = 256, OPT_DEDUP, OPT_DELAY, OPT_TIMEOUT, OPT_TTL,
	    OPT_VERSION };
	static const struct option longopts[] = {
		{ "at", required_argument, NULL, OPT_AT },
		{ "dedup-id", required_argument, NULL, OPT_DEDUP },
		{ "delay", required_argument, NULL, OPT_DELAY },
		{ "help", no_argument, NULL, 'h' },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct sender s;
	struct sq_msgopts o;
	char path[PATH_MAX];
	struct counter *counters;
	size_t j, dropped = 0, printed = 0;
	struct sq_attr *attrs = NULL;
	const char *root = NULL, *group = getenv(SQ_GROUP_ENV);
	char gkey[SQ_GROUP_MAX];
	int64_t delay = -1, at = -1, ttl = -1, timeout = -1;
	int ch, create = 0, files = 0, sep = -1, fd, i, rc, verbose = 0;

	tool_init();
	tool_args(argv, getprogname());
	tool_synopsis(synopsis, NULL);
	memset(&o, 0, sizeof(o));
	while ((ch = getopt_long(argc, argv, "0cd:fg:H:hk:lpqv", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case '0':
			sep = '\0';
			break;
		case 'c':
			create = 1;
			break;
		case 'd':
			root = optarg;
			break;
		case 'f':
			files = 1;
			break;
		case 'g':
			if (optarg[0] == '\0')
				tool_bad("-g: a group name may not be empty");
			group = optarg;
			break;
		case 'H':
			add_attr(&attrs, &o.nattrs, optarg);
			break;
		case 'h':
			tool_help(synopsis, options, "qsend(1)");
		case 'k':
			if (strlen(optarg) > SQ_KEY_MAX ||
			    strchr(optarg, '\n') != NULL)
				tool_bad("-k: a routing key is at most "
				    "%d bytes, without newlines", SQ_KEY_MAX);
			o.key = optarg;
			break;
		case 'l':
			sep = '\n';
			break;
		case 'p':
			print_ids = 1;
			break;
		case 'q':
			break;
		case 'v':
			verbose = 1;
			break;
		case OPT_AT:
			at = tool_time("--at", optarg);
			break;
		case OPT_DEDUP:
			o.dedup_id = optarg;
			break;
		case OPT_DELAY:
			delay = tool_duration("--delay", optarg);
			break;
		case OPT_TIMEOUT:
			timeout = tool_duration("--timeout", optarg);
			break;
		case OPT_TTL:
			ttl = tool_duration("--ttl", optarg);
			if (ttl == 0)
				tool_bad("--ttl 0: a message must live "
				    "a while");
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
	if (files && sep != -1)
		usage("-f and -l or -0: choose one");
	if (files && argc < 2)
		usage("-f: missing file");
	if (sep != -1 && argc > 1)
		usage(sep == '\n' ? "-l: messages come from stdin, not operands" :
		    "-0: messages come from stdin, not operands");
	if (delay >= 0 && at >= 0)
		tool_bad("--delay and --at: choose one");
	if (o.dedup_id != NULL && (sep != -1 || argc > 2))
		tool_bad("--dedup-id: one message per send");
	o.attrs = attrs;
	if (group != NULL && group[0] != '\0') {
		if (strchr(group, '\n') != NULL || strlen(group) > SQ_KEY_MAX)
			tool_bad("-g: a group is at most %d bytes, without "
			    "newlines", SQ_KEY_MAX);
		(void)sq_group_key(group, gkey);
		o.group = gkey;
	}
	o.due_ms = delay > 0 ? sq_now_ms() + delay : at > 0 ? at : 0;
	o.expires_ms = ttl > 0 ? sq_now_ms() + ttl : 0;
	/* Check everything before anything is made (-c) or written. */
	if (sq_attr_check(&o) == -1)
		tool_bad("-k/-H: a key is at most %d bytes, at most %d "
		    "attributes of at most %d bytes, none with a newline",
		    SQ_KEY_MAX, SQ_ATTRS_MAX, SQ_ATTR_VALUE_MAX);
	if (o.dedup_id != NULL && !sq_dedup_id_valid(o.dedup_id))
		tool_bad("--dedup-id %s: must match "
		    "[A-Za-z0-9._:@+=-]{1,128}, not starting with '.'",
		    tool_echo(o.dedup_id));
	memset(&s, 0, sizeof(s));
	s.name = argv[0];
	s.dedup_id = o.dedup_id;
	s.group = o.group;
	tool_queue_path(path, root, argv[0], create);
	if (sq_exchange_is(path))
		open_exchange(&s, path, o.key);
	else {
		if ((s.queues = calloc(1, sizeof(*s.queues))) == NULL)
			err(EX_OSERR, NULL);
		tool_open(&s.queues[0], root, argv[0], create);
		s.n = 1;
	}
	if ((s.b = calloc(s.n, sizeof(*s.b))) == NULL ||
	    (counters = calloc(s.n, sizeof(*counters))) == NULL)
		err(EX_OSERR, NULL);
	for (j = 0; j < s.n; j++) {
		counters[j].printed = &printed;
		sq_batch_begin(&s.b[j], &s.queues[j], sent, &counters[j]);
		s.b[j].wait_ms = timeout;
		if (sq_batch_options(&s.b[j], &o) == -1)
			err(EX_SOFTWARE, "options");	/* checked above */
	}
	if (files) {
		for (i = 1; i < argc; i++) {
			if ((fd = open(argv[i], O_RDONLY | O_CLOEXEC)) == -1)
				fail(&s, argv[i]);
			if (sender_add_fd(&s, fd) == -1)
				fail(&s, blame(&s, argv[i]));
			close(fd);
		}
	} else if (argc > 1) {
		for (i = 1; i < argc; i++)
			if (sender_add(&s, argv[i], strlen(argv[i])) == -1)
				fail(&s, s.name);
	} else if (sep != -1) {
		if ((rc = send_records(&s, sep)) != 0)
			fail(&s, rc == -2 ? "stdin" : s.name);
	} else if (sender_add_fd(&s, STDIN_FILENO) == -1)
		fail(&s, blame(&s, "stdin"));
	for (j = 0; j < s.n; j++) {
		if (sq_batch_end(&s.b[j]) == -1)
			fail(&s, s.name);
		dropped += s.b[j].dropped;
	}
	if (verbose && dropped > 0)
		warnx("%s: dropped %zu duplicate%s (--dedup-id %s)", argv[0],
		    dropped, dropped == 1 ? "" : "s", o.dedup_id);
	free(attrs);
	/* The messages are sent; only their IDs (-p) may be lost. */
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EX_IOERR, "stdout");
	for (j = 0; j < s.n; j++) {
		/* Pushed out by overflow = drop-oldest, kept in dead/. */
		tool_dead_letter_warn(&s.queues[j]);
		sq_queue_close(&s.queues[j]);
	}
	free(s.queues);
	free(s.b);
	free(counters);
	return 0;
}
