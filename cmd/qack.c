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

static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: qack [-qv] [-d root] [--retry [--delay duration] | "
	    "--reject[=reason] |\n"
	    "            --touch duration] receipt ... | -\n");
	exit(status ? EX_USAGE : 0);
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
		failed(s, EX_DATAERR, "%s: %s", path, "not a receipt");
		return -1;
	}
	if (s->q.fd != -1 && strcmp(qdir, s->qdir) == 0 &&
	    strchr(path, '/') != NULL)
		return 0;
	sq_queue_close(&s->q);
	s->qdir[0] = '\0';
	if (sq_receipt_open(path, &s->q, name, msg, sizeof(msg)) == -1) {
		int e = errno;

		failed(s, e == ENOENT ? EX_NOINPUT : e == EINVAL &&
		    strstr(msg, "queue.conf") != NULL ? EX_CONFIG :
		    tool_exit_code(e), "%s%s", msg, "");
		if (e != ENOENT)
			sq_queue_close(&s->q);
		else
			strlcpy(s->qdir, qdir, sizeof(s->qdir));
		return -1;
	}
	strlcpy(s->qdir, qdir, sizeof(s->qdir));
	return 0;
}

static void
settle_one(struct settle *s, const char *path)
{
	char name[SQ_NAME_MAX + 1], newname[SQ_NAME_MAX + 1];
	int rc = -1, dead = 0;

	if (open_receipt(s, path, name) == -1)
		return;
	switch (s->action) {
	case ACK:
		rc = sq_ack(&s->q, name);
		break;
	case RETRY:
		rc = sq_retry(&s->q, name, s->delay_ms, NULL, newname, &dead);
		break;
	case REJECT:
		rc = sq_reject(&s->q, name, s->reason, newname);
		break;
	case TOUCH:
		rc = sq_touch(&s->q, name, s->lease_ms, newname);
		break;
	}
	if (rc == -1) {
		int e = errno;

		failed(s, e == ENOENT ? EX_NOINPUT : tool_exit_code(e),
		    "%s: %s", path, e == ENOENT ?
		    "lease lost or message already settled" : e == EINVAL ?
		    "not a receipt" : strerror(e));
		return;
	}
	if (s->action == TOUCH)
		printf("%s/%s/%s\n", sq_queue_real(&s->q), SQ_DIR_CUR, newname);
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
	int ch, i, actions = 0, delay_set = 0;

	tool_init();
	memset(&s, 0, sizeof(s));
	s.q.fd = s.q.tmpfd = s.q.newfd = s.q.curfd = s.q.retryfd =
	    s.q.deadfd = s.q.index_fd = -1;
	s.delay_ms = -1;
	while ((ch = getopt_long(argc, argv, "d:hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':		/* receipts are paths; accepted for */
			break;		/* symmetry with the other tools */
		case 'h':
			usage(0);
			break;
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
				errx(EX_USAGE, "--reject=%s: reason must match "
				    "[a-z0-9-]{1,32}", optarg);
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
				errx(EX_USAGE, "--touch %s: must be at least "
				    "1s", optarg);
			actions++;
			break;
		case OPT_VERSION:
			tool_version();
			break;
		default:
			usage(1);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || actions > 1 || (delay_set && s.action != RETRY))
		usage(1);
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
