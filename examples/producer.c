/*
 * producer.c - send each argument as one message, as qsend QUEUE MSG... does.
 *	cc -o producer producer.c $(pkg-config --cflags --libs spoolq)
 *	./producer jobs 'resize photo-1.jpg' 'resize photo-2.jpg'
 */
#include <spoolq.h>
#include <err.h>
#include <string.h>

int
main(int argc, char *argv[])
{
	char why[PATH_MAX + 256];
	struct sq_queue q;
	struct sq_batch b;
	int i;

	if (argc < 3)
		errx(64, "usage: producer QUEUE MESSAGE...");
	if (sq_queue_open_arg(&q, NULL, argv[1], why, sizeof(why)) == -1)
		errx(66, "%s", why);
	sq_batch_begin(&b, &q, NULL, NULL);
	for (i = 2; i < argc; i++)
		if (sq_batch_add(&b, argv[i], strlen(argv[i])) == -1)
			break;
	if (i < argc || sq_batch_end(&b) == -1) {
		warn("%s", argv[1]);
		sq_batch_abort(&b);
		return 74;
	}
	sq_queue_close(&q);
	return 0;
}
