/*
 * index_fuzz.c - the claim index of this host, run/index.HOST (a header
 * line with cursors and checksums, a side list, then blocks of the names
 * of ready messages, NUL-terminated), which every consumer of the host
 * reads and anyone who may write run/ can leave damaged or forged.
 *
 * Invariant: whatever the index holds, the one ready message of the
 * queue is claimed by the next claim, under its own ID, and only it:
 * names the index makes up are skipped, and nothing outside new/ is
 * claimed.
 */
#include "fuzz.h"
#include "internal.h"

static struct sq_queue q;
static int ready;

static void
setup(void)
{
	static const char *const keys[] = { "durability" };
	static const char *const values[] = { "none" };

	if (ready)
		return;
	fuzz_queue(&q, keys, values, 1);
	ready = 1;
}

static void
sent(const char *id, void *arg)
{
	strlcpy(arg, id, SQ_ID_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sq_claim out[2];
	struct sq_batch b;
	char id[SQ_ID_MAX] = "", path[PATH_MAX];
	int64_t next;
	size_t got;

	setup();
	sq_batch_begin(&b, &q, sent, id);
	fuzz_check(sq_batch_add(&b, "body", 4) == 0 && sq_batch_end(&b) == 0,
	    "send: %s", strerror(errno));
	fuzz_check(index_path(path, sizeof(path)) == 0, "index path");
	fuzz_write(q.fd, path, data, size);
	fuzz_check(sq_claim(&q, 0, NULL, out, 2, &got, &next) == 0,
	    "claim: %s", strerror(errno));
	fuzz_check(got == 1 && strcmp(out[0].n.id, id) == 0,
	    "%zu claimed, %s, sent %s", got, got ? out[0].n.id : "-", id);
	fuzz_check(sq_ack(&q, out[0].name) == 0, "ack: %s", strerror(errno));
	return 0;
}
