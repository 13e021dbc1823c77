/*
 * ackmany_test.c - sq_ack_many, the acks of a batch of claims: each is
 * acked as sq_ack acks it, its failure record and sidecar removed with
 * it, and where attr/ holds nothing at all no unlink of a failure record
 * is tried (one listing of attr/ stands for them).
 *
 * unlinkat(2) is interposed to count the unlinks of failure records
 * (attr/ID.failure) that the library tries, and fstatfs(2) and openat(2)
 * to count what that listing costs beyond itself: attr/ is kept open
 * with the queue and its file system looked at once, not at every batch.
 */
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"
#include "tap_queue.h"
#include "tap_openat.h"

#define N	5

static int failure_unlinks;	/* unlinks of attr/ID.failure tried */
static int statfs_calls;	/* fstatfs(2) calls */
static int attr_opens;		/* openat(2) of attr/ */

int
fstatfs(int fd, struct statfs *sf)
{
	statfs_calls++;
	return (int)syscall(SYS_fstatfs, fd, sf);
}

static void
tap_openat_seen(const char *name)
{
	if (strcmp(name, SQ_DIR_ATTR) == 0)
		attr_opens++;
}

int
unlinkat(int dfd, const char *name, int flags)
{
	size_t len = strlen(name);

	if (len > sizeof(SQ_FAILURE_SUFFIX) - 1 && strcmp(name + len -
	    (sizeof(SQ_FAILURE_SUFFIX) - 1), SQ_FAILURE_SUFFIX) == 0)
		failure_unlinks++;
	return (int)syscall(SYS_unlinkat, dfd, name, flags);
}

/* Send n messages (with attributes when attrs) and claim them all. */
static int
send_claim(struct sq_queue *q, size_t n, int attrs, struct sq_claim *c,
    char (*names)[SQ_NAME_MAX + 1])
{
	struct sq_attr a = { "colour", "blue" };
	struct sq_msgopts o;
	struct sq_batch b;
	size_t i, got;
	int64_t next;

	memset(&o, 0, sizeof(o));
	o.attrs = &a;
	o.nattrs = 1;
	sq_batch_begin(&b, q, NULL, NULL);
	if (attrs && sq_batch_options(&b, &o) == -1) {
		(void)sq_batch_end(&b);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (sq_batch_add(&b, "x", 1) == -1) {
			sq_batch_abort(&b);
			(void)sq_batch_end(&b);
			return -1;
		}
	if (sq_batch_end(&b) == -1 ||
	    sq_claim(q, 60000, NULL, c, n, &got, &next) == -1 || got != n)
		return -1;
	for (i = 0; i < n; i++)
		strlcpy(names[i], c[i].name, sizeof(names[i]));
	return 0;
}

static int
all_zero(const int *errs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (errs[i] != 0)
			return 0;
	return 1;
}

int
main(void)
{
	struct tap_queue t;
	struct sq_queue q;
	struct sq_claim c[N];
	char names[N][SQ_NAME_MAX + 1], path[SQ_ID_MAX + 32];
	struct stat st;
	int errs[N], i;

	tap_queue_make(&t, &q, NULL, NULL, 0);

	/* attr/ empty: every ack made, no failure record looked for. */
	ok(send_claim(&q, N, 0, c, names) == 0, "send and claim %d", N);
	failure_unlinks = 0;
	ok(sq_ack_many(&q, names, N, errs) == 0 && all_zero(errs, N),
	    "attr/ empty: all %d acked", N);
	ok(tap_queue_count(&t, SQ_DIR_CUR) == 0, "cur/ is empty");
	ok(failure_unlinks == 0, "no unlink of a failure record tried "
	    "(%d tried)", failure_unlinks);

	/* A failure record of one: it goes with its message. */
	ok(send_claim(&q, N, 0, c, names) == 0, "send and claim %d again", N);
	ok(sq_failure_write(&q, c[2].n.id, "status=exit 1\n", 14) == 0,
	    "a failure record for the third");
	failure_unlinks = 0;
	ok(sq_ack_many(&q, names, N, errs) == 0 && all_zero(errs, N),
	    "all %d acked", N);
	snprintf(path, sizeof(path), "%s/%s%s", SQ_DIR_ATTR, c[2].n.id,
	    SQ_FAILURE_SUFFIX);
	ok(fstatat(q.fd, path, &st, AT_SYMLINK_NOFOLLOW) == -1 &&
	    errno == ENOENT, "its failure record is removed");
	ok(failure_unlinks == N, "each one's record was looked for (%d)",
	    failure_unlinks);

	/* Batch after batch: attr/ is listed, not opened or statfs'd again. */
	statfs_calls = attr_opens = 0;
	for (i = 0; i < 3; i++) {
		failure_unlinks = 0;
		ok(send_claim(&q, N, 0, c, names) == 0 &&
		    sq_ack_many(&q, names, N, errs) == 0 &&
		    all_zero(errs, N) && failure_unlinks == 0,
		    "batch %d acked, no failure record looked for", i + 1);
	}
	ok(statfs_calls == 0 && attr_opens == 0, "3 batches: attr/ opened "
	    "%d times, fstatfs %d times", attr_opens, statfs_calls);

	/* Sidecars (h): removed with their messages. */
	ok(send_claim(&q, N, 1, c, names) == 0 && c[0].n.has_attr,
	    "send and claim %d with attributes", N);
	ok(sq_ack_many(&q, names, N, errs) == 0 && all_zero(errs, N),
	    "all %d acked", N);
	ok(tap_queue_count(&t, SQ_DIR_ATTR) == 0 &&
	    tap_queue_count(&t, SQ_DIR_CUR) == 0,
	    "their sidecars are gone with them");

	/* Failures are each one's own: the rest is acked. */
	ok(send_claim(&q, 3, 0, c, names) == 0, "send and claim 3");
	strlcpy(names[1], "not-a-claim", sizeof(names[1]));
	ok(sq_ack_many(&q, names, 3, errs) == 1 && errs[0] == 0 &&
	    errs[1] == EINVAL && errs[2] == 0,
	    "a name that is no claim fails alone (EINVAL)");
	ok(sq_ack_many(&q, names, 1, errs) == 1 && errs[0] == ENOENT,
	    "an ack of a claim already acked says ENOENT");
	ok(tap_queue_count(&t, SQ_DIR_CUR) == 1, "the other claim stays");

	tap_queue_remove(&t, &q);
	return tap_done();
}
