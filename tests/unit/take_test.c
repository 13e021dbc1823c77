/*
 * take_test.c - the at-most-once take (qrecv -A) when the file system
 * reports an error for a move it made: an NFS server whose reply was
 * lost answers the request sent again with ENOENT, so the move made
 * again finds nothing to move.  The take, its ack and its give-back must
 * each hold what was made: the message taken, acknowledged or given
 * back, never reported lost or left where it is not.
 *
 * renameat2(2) and unlinkat(2) are interposed (tap_lie.h): they make the
 * call and then, when lie is set, say it failed with EIO.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"
#include "tap_queue.h"
#include "tap_lie.h"

static void
take(const struct tap_queue *t, struct sq_queue *q, const char *dir)
{
	char taken[SQ_NAME_MAX + 1], other[SQ_NAME_MAX + 1];
	struct sq_claim c;
	struct stat st;
	int rc;

	ok(tap_lie_send_claim(q, &c) == 0, "%s: send and claim", dir);
	lie = 1;
	rc = sq_take(q, c.name, taken);
	ok(rc == 0 && !lie, "%s: a take made but said failed is taken", dir);
	ok(tap_queue_count(t, SQ_DIR_CUR) == 0 &&
	    tap_queue_count(t, dir) == 1,
	    "%s: it is there, not in cur/", dir);
	/* Another ID: a receipt neither in cur/ nor taken. */
	strlcpy(other, c.name, sizeof(other));
	other[0] = other[0] == '1' ? '0' : '1';
	errno = 0;
	ok(sq_take(q, other, taken) == -1 && errno == ENOENT,
	    "%s: a receipt neither in cur/ nor taken still fails", dir);
	if (rc != 0)
		return;
	lie = 1;
	rc = sq_take_undo(q, taken);
	ok(rc == 0 && !lie && tap_queue_count(t, SQ_DIR_NEW) == 1 &&
	    tap_queue_count(t, dir) == 0,
	    "%s: a give-back made but said failed is given back", dir);
	ok(tap_lie_send_claim(q, &c) == 0 && sq_take(q, c.name, taken) == 0,
	    "%s: claimed and taken again", dir);
	if (strcmp(dir, SQ_DIR_TMP) != 0)
		return;
	lie = 1;
	ok(sq_take_done(q, taken) == 0 && !lie &&
	    fstatat(q->tmpfd, taken, &st, AT_SYMLINK_NOFOLLOW) == -1,
	    "tmp: an ack made but said failed, its ID nowhere, is made");
	ok(sq_take_done(q, taken) == 0,
	    "tmp: made again, it finds the message gone: acknowledged");
	ok(tap_queue_count(t, SQ_DIR_NEW) == 1 &&
	    tap_queue_count(t, SQ_DIR_CUR) == 0 &&
	    tap_queue_count(t, SQ_DIR_TMP) == 0,
	    "tmp: nothing left but the one given back");
}

int
main(void)
{
	static const char *const keys[] = { "archive" };
	static const char *const yes[] = { "yes" };
	struct tap_queue t, a;
	struct sq_queue q, qa;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	take(&t, &q, SQ_DIR_TMP);
	tap_queue_remove(&t, &q);
	tap_queue_make(&a, &qa, keys, yes, 1);
	take(&a, &qa, SQ_DIR_ARCHIVE);
	tap_queue_remove(&a, &qa);
	return tap_done();
}
