/*
 * qrecv - consumer: claim messages and print their receipts.
 *
 * Claims up to -n messages in ID order and prints each receipt path.
 * With -w it waits for a message (inotify, and a timer for the next
 * retry due time or lease end).  With -A (at-most-once) each claimed
 * message is unlinked before its body is printed: a crash after that
 * loses the message rather than delivering it twice.
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
    "[-w seconds]\n"
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
    "  -w seconds        wait that long for a message; 0: forever\n"
    "Exit 1 when no message came.\n";

static void __attribute__((noreturn))
usage(const char *why)
{
	tool_usage(synopsis, why == NULL ? NULL : "%s", why);
}

/* Copy the body of cur/name to stdout, acking it first. */
static void
print_body(struct sq_queue *q, const char *name, int sep, int raw)
{
	char buf[64 * 1024];
	ssize_t n;
	int fd;

	if ((fd = openat(q->curfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
	    -1)
		err(EX_IOERR, "%s/cur/%s", q->path, name);
	/* The ack: unlinked (or archived) with its sidecars, then shown. */
	if (sq_ack(q, name) == -1)
		err(EX_IOERR, "%s/cur/%s", q->path, name);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			err(EX_IOERR, "%s/cur/%s", q->path, name);
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			err(EX_IOERR, "stdout");
	}
	close(fd);
	if (!raw)
		putchar(sep);
}

/* --meta: "NAME=VALUE" lines after a receipt; the key as SPOOLQ_KEY. */
static int
print_attr(const char *name, const char *value, void *arg)
{
	int sep = *(int *)arg;

	printf("%s%s=%s%c", name ? "SPOOLQ_ATTR_" : "SPOOLQ_KEY",
	    name ? name : "", value, sep);
	return 0;
}

static void
print_meta(struct sq_queue *q, const struct sq_claim *c, int sep)
{
	printf("SPOOLQ_ID=%s%cSPOOLQ_ATTEMPT=%u%c", c->n.id, sep,
	    c->n.attempts, sep);
	if (c->n.has_attr && sq_attr_each(q, c->n.id, print_attr, &sep) == -1 &&
	    errno != ENOENT)
		warn("%s: %s: attributes", q->path, c->n.id);
	putchar(sep);
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
	struct sq_queue q;
	const char *root = NULL;
	int64_t lease_ms = 0, wait_ms = -1, until_ms, next_ms;
	long long want = 1;
	size_t total = 0, got, i, chunk;
	int ch, sep = '\n', autoack = 0, raw = 0, meta = 0, verbose = 0;

	tool_init();
	tool_args(argv, getprogname());
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
				errx(EX_USAGE, "--lease %s: must be at least "
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
	if ((claims = reallocarray(NULL, chunk, sizeof(*claims))) == NULL)
		err(EX_OSERR, NULL);
	until_ms = wait_ms < 0 ? 0 : wait_ms == 0 ? INT64_MAX :
	    sq_now_ms() + wait_ms;
	/* The watch goes up before the first look, so nothing slips by. */
	if (wait_ms >= 0 && (w = sq_watch_open(&q)) == NULL)
		err(EX_OSERR, "%s: watch", q.path);
	for (;;) {
		chunk = (size_t)want - total < CLAIM_CHUNK ?
		    (size_t)want - total : CLAIM_CHUNK;
		if (sq_claim(&q, lease_ms, NULL, claims, chunk, &got,
		    &next_ms) == -1)
			err(tool_exit_code(errno), "%s: claim", q.path);
		for (i = 0; i < got; i++) {
			if (autoack)
				print_body(&q, claims[i].name, sep, raw);
			else
				printf("%s/%s/%s%c", sq_queue_real(&q),
				    SQ_DIR_CUR, claims[i].name, sep);
			if (meta)
				print_meta(&q, &claims[i], sep);
		}
		/*
		 * Receipts nobody could read are claims nobody will settle:
		 * give them back rather than let them wait out the lease.
		 */
		if (!autoack && got > 0 && fflush(stdout) == EOF) {
			for (i = 0; i < got; i++)
				sq_release(&q, claims[i].name);
			err(EX_IOERR, "stdout");
		}
		total += got;
		if (total == (size_t)want || (got < chunk && total > 0))
			break;
		if (got == chunk)
			continue;
		if (w == NULL || sq_now_ms() >= until_ms)
			break;
		if (sq_watch_wait(w, next_ms < until_ms ? next_ms : until_ms)
		    == -1 && errno != EINTR)
			err(EX_OSERR, "%s: wait", q.path);
	}
	if (fflush(stdout) == EOF)
		err(EX_IOERR, "stdout");
	sq_watch_close(w);
	free(claims);
	sq_queue_close(&q);
	return total > 0 ? 0 : EXIT_NONE;
}
