/*
 * consumer.c - claim every ready message, print its body on a line, ack it;
 * a body that cannot be printed goes back to retry/ for a later attempt.
 *	cc -o consumer consumer.c $(pkg-config --cflags --libs spoolq)
 *	./consumer jobs
 */
#include <spoolq.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	char root[PATH_MAX], path[PATH_MAX], err[256] = "", buf[8192];
	char retried[SQ_NAME_MAX + 1];
	struct sq_queue q;
	struct sq_claim c;
	size_t got;
	ssize_t n;
	int64_t next_ms;
	int fd, dead;

	if (argc != 2) {
		fprintf(stderr, "usage: consumer QUEUE\n");
		return 64;
	}
	if (sq_spool_root(root, sizeof(root), NULL) == -1 ||
	    sq_queue_path(path, sizeof(path), root, argv[1]) == -1 ||
	    sq_queue_open(&q, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "consumer: %s: %s\n", argv[1],
		    *err ? err : strerror(errno));
		return 66;
	}
	for (;;) {
		if (sq_claim(&q, 0, NULL, &c, 1, &got, &next_ms) == -1) {
			fprintf(stderr, "consumer: %s: %s\n", argv[1],
			    strerror(errno));
			return 74;
		}
		if (got == 0)
			break;
		/* The receipt is cur/NAME: read the body from there. */
		if ((fd = sq_open_regular(q.curfd, c.name, O_RDONLY, 0,
		    NULL)) == -1) {
			sq_retry(&q, c.name, -1, NULL, retried, &dead);
			continue;
		}
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, n, stdout);
		close(fd);
		if (n == -1 || putchar('\n') == EOF || fflush(stdout) == EOF)
			sq_retry(&q, c.name, -1, NULL, retried, &dead);
		else if (sq_ack(&q, c.name) == -1)
			fprintf(stderr, "consumer: %s: %s\n", c.name,
			    strerror(errno));
	}
	sq_queue_close(&q);
	return 0;
}
