/*
 * qsend - producer: put messages into a queue.
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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tool.h"

static int	print_ids;

static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: qsend [-0clpqv] [-d root] queue [message ...]\n"
	    "       qsend [-cpqv] [-d root] -f queue file ...\n");
	exit(status ? EX_USAGE : 0);
}

static void
sent(const char *id, void *arg)
{
	(void)arg;
	if (print_ids)
		puts(id);
}

/* Report a failed send: what was committed stays, the rest is gone. */
static void __attribute__((noreturn))
fail(struct sq_batch *b, const char *what)
{
	int e = errno;

	sq_batch_abort(b);
	fflush(stdout);
	warnx("%s: %zu message%s sent before the error", b->q->path,
	    b->committed, b->committed == 1 ? "" : "s");
	errno = e;
	err(tool_exit_code(e), "%s", what);
}

/* Records of stdin split at sep, read with our own buffer. */
static int
send_records(struct sq_batch *b, int sep)
{
	char *buf = NULL, *p;
	size_t size = 64 * 1024, len = 0, start;
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	ssize_t n;

	if ((buf = malloc(size)) == NULL)
		return -1;
	for (;;) {
		/* A read that would block: commit what is pending first. */
		if (b->npending > 0 && poll(&pfd, 1, 0) == 0 &&
		    sq_batch_commit(b) == -1)
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
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
		for (start = 0; (p = memchr(buf + start, sep, len - start)) !=
		    NULL; start = (size_t)(p - buf) + 1)
			if (sq_batch_add(b, buf + start, (size_t)(p - buf) -
			    start) == -1)
				goto fail;
		memmove(buf, buf + start, len - start);
		len -= start;
	}
	if (len > 0 && sq_batch_add(b, buf, len) == -1)
		goto fail;
	free(buf);
	return 0;
fail:
	free(buf);
	return -1;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sq_queue q;
	struct sq_batch b;
	const char *root = NULL;
	int ch, create = 0, files = 0, sep = -1, fd, i;

	while ((ch = getopt_long(argc, argv, "0cd:fhlpqv", longopts, NULL)) !=
	    -1) {
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
		case 'h':
			usage(0);
			break;
		case 'l':
			sep = '\n';
			break;
		case 'p':
			print_ids = 1;
			break;
		case 'q':
		case 'v':
			break;
		case 'V':
			tool_version();
			break;
		default:
			usage(1);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || (files && (argc < 2 || sep != -1)) ||
	    (sep != -1 && argc > 1))
		usage(1);
	tool_open(&q, root, argv[0], create);
	sq_batch_begin(&b, &q, sent, NULL);
	if (files) {
		for (i = 1; i < argc; i++) {
			if ((fd = open(argv[i], O_RDONLY | O_CLOEXEC)) == -1)
				fail(&b, argv[i]);
			if (sq_batch_add_fd(&b, fd) == -1)
				fail(&b, argv[i]);
			close(fd);
		}
	} else if (argc > 1) {
		for (i = 1; i < argc; i++)
			if (sq_batch_add(&b, argv[i], strlen(argv[i])) == -1)
				fail(&b, q.path);
	} else if (sep != -1) {
		if (send_records(&b, sep) == -1)
			fail(&b, q.path);
	} else if (sq_batch_add_fd(&b, STDIN_FILENO) == -1)
		fail(&b, q.path);
	if (sq_batch_end(&b) == -1)
		fail(&b, q.path);
	if (fflush(stdout) == EOF)
		err(EX_IOERR, "stdout");
	sq_queue_close(&q);
	return 0;
}
