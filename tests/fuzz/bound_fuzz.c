/*
 * bound_fuzz.c - the usage record run/usage ("COUNT BYTES MS") that
 * senders to a bounded queue read and write under flock(2), and that
 * anyone who may write run/ can leave damaged or forged.
 *
 * Invariant: an empty queue bounded at 1000 messages and 1 MiB admits a
 * message whatever the record says (a wrong record is recounted, not
 * believed into a refusal), and the record written after reads back.
 */
#include "fuzz.h"

static struct sq_queue q;
static int ready;

static void
setup(void)
{
	static const char *const keys[] = {
		"durability", "max_messages", "max_bytes",
	};
	static const char *const values[] = { "none", "1000", "1M" };

	if (ready)
		return;
	fuzz_queue(&q, keys, values, 3);
	ready = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned long long c, b;
	long long ms;
	char buf[128];
	ssize_t n;
	int lockfd, fd;

	setup();
	fuzz_write(q.fd, "run/usage", data, size);
	fuzz_check(sq_bound_admit(&q, 1, 100, 0, &lockfd) == 0,
	    "not admitted: %s", strerror(errno));
	sq_bound_release(lockfd);
	if ((fd = openat(q.fd, "run/usage", O_RDONLY | O_CLOEXEC)) == -1 ||
	    (n = read(fd, buf, sizeof(buf) - 1)) < 0)
		abort();
	close(fd);
	buf[n] = '\0';
	fuzz_check(sscanf(buf, "%llu %llu %lld", &c, &b, &ms) == 3 && ms >= 0,
	    "record \"%s\"", buf);
	return 0;
}
