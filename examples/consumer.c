/*
 * consumer.c - claim every ready message, print its body on a line, ack it;
 * a body that cannot be read goes to retry/ for a later attempt, and one
 * that cannot be printed (a closed pipe, a full disk) goes back to new/ at
 * once and ends the consumer with 74.
 *	cc -o consumer consumer.c $(pkg-config --cflags --libs spoolq)
 */
#include <spoolq.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	char why[PATH_MAX + 256], buf[8192], newname[SQ_NAME_MAX + 1];
	struct sq_queue q;
	struct sq_claim c;
	size_t got;
	ssize_t n = 0;
	int64_t t;		/* next retry or lease end (unused) */
	int fd, dead, r, e;

	if (argc != 2)
		errx(64, "usage: consumer QUEUE");
	signal(SIGPIPE, SIG_IGN);	/* a closed pipe is EPIPE, not death */
	if (sq_queue_open_arg(&q, NULL, argv[1], why, sizeof(why)) == -1)
		errx(66, "%s", why);
	while ((r = sq_claim(&q, 0, NULL, &c, 1, &got, &t)) == 0 && got > 0) {
		/* The receipt is cur/NAME: read the body from there. */
		fd = sq_open_regular(q.curfd, c.name, O_RDONLY, 0, NULL);
		while (fd != -1 && (n = read(fd, buf, sizeof(buf))) > 0 &&
		    fwrite(buf, 1, n, stdout) == (size_t)n)
			;
		if (fd == -1 || close(fd) == -1 || n < 0)
			sq_retry(&q, c.name, -1, NULL, newname, &dead);
		else if (n > 0 || putchar('\n') == EOF || fflush(stdout) == EOF) {
			e = errno;
			sq_release(&q, c.name);
			errno = e;
			err(74, "standard output");
		} else if (sq_ack(&q, c.name) == -1)
			warn("%s", c.name);
	}
	if (r == -1)
		err(74, "%s", argv[1]);
	sq_queue_close(&q);
	return 0;
}
