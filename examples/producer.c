/*
 * producer.c - send each argument as one message, as qsend QUEUE MSG... does.
 *	cc -o producer producer.c $(pkg-config --cflags --libs spoolq)
 *	./producer jobs 'resize photo-1.jpg' 'resize photo-2.jpg'
 */
#include <spoolq.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char *argv[])
{
	char root[PATH_MAX], path[PATH_MAX], err[256] = "";
	struct sq_queue q;
	struct sq_batch b;
	int i;

	if (argc < 3) {
		fprintf(stderr, "usage: producer QUEUE MESSAGE...\n");
		return 64;
	}
	if (sq_spool_root(root, sizeof(root), NULL) == -1 ||
	    sq_queue_path(path, sizeof(path), root, argv[1]) == -1 ||
	    sq_queue_open(&q, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "producer: %s: %s\n", argv[1],
		    *err ? err : strerror(errno));
		return 66;
	}
	sq_batch_begin(&b, &q, NULL, NULL);
	for (i = 2; i < argc; i++)
		if (sq_batch_add(&b, argv[i], strlen(argv[i])) == -1)
			break;
	if (i < argc || sq_batch_end(&b) == -1) {
		fprintf(stderr, "producer: %s: %s\n", argv[1], strerror(errno));
		sq_batch_abort(&b);
		return 74;
	}
	sq_queue_close(&q);
	return 0;
}
