/*
 * dedup_fuzz.c - the deduplication marker dedup/KEY ("MSGID STATE MS
 * [DIR NAME]"), which every sender of that --dedup-id reads and anyone
 * who may write the queue can leave damaged or forged.
 *
 * Invariants: a send with the key succeeds whatever the marker holds;
 * it is either published (once, into new/) or counted as a duplicate,
 * and nothing else appears in new/ or retry/ (tmp/ holds no orphan to
 * publish); afterwards the marker reads "ID sent MS".
 */
#include <dirent.h>

#include "fuzz.h"

#define KEY	"k1"

static struct sq_queue q;
static int ready, dedupfd = -1;

static void
setup(void)
{
	static const char *const keys[] = { "durability" };
	static const char *const values[] = { "none" };

	if (ready)
		return;
	fuzz_queue(&q, keys, values, 1);
	if (mkdirat(q.fd, "dedup", 0755) == -1 || (dedupfd = openat(q.fd,
	    "dedup", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		abort();
	ready = 1;
}

/* Count and remove the entries of the directory fd. */
static size_t
empty(int fd)
{
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	if ((fd = dup(fd)) == -1 || (d = fdopendir(fd)) == NULL)
		abort();
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
	return n;
}

static void
sent(const char *id, void *arg)
{
	strlcpy(arg, id, SQ_ID_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sq_msgopts o;
	struct sq_batch b;
	char id[SQ_ID_MAX] = "", buf[512], mid[SQ_ID_MAX], state[16];
	long long ms;
	size_t published;
	ssize_t n;
	int fd;

	setup();
	fuzz_write(dedupfd, KEY, data, size);
	memset(&o, 0, sizeof(o));
	o.dedup_id = KEY;
	sq_batch_begin(&b, &q, sent, id);
	fuzz_check(sq_batch_options(&b, &o) == 0, "%s", strerror(errno));
	fuzz_check(sq_batch_add(&b, "body", 4) == 0 && sq_batch_end(&b) == 0,
	    "send: %s", strerror(errno));
	published = empty(q.newfd);
	fuzz_check(published + b.dropped == 1 && (published == 0 ||
	    id[0] != '\0'), "%zu published, %zu dropped", published,
	    b.dropped);
	fuzz_check(empty(q.retryfd) == 0 && empty(q.tmpfd) == 0,
	    "retry/ or tmp/ not empty");
	if ((fd = openat(dedupfd, KEY, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (n = read(fd, buf, sizeof(buf) - 1)) < 0)
		abort();
	close(fd);
	buf[n] = '\0';
	fuzz_check(sscanf(buf, "%159s %15s %lld", mid, state, &ms) == 3 &&
	    strcmp(state, "sent") == 0 && (published == 0 ||
	    strcmp(mid, id) == 0), "marker \"%s\" after sending %s", buf, id);
	return 0;
}
