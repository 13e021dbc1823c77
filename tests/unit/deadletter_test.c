/*
 * deadletter_test.c - the dead-letter move into another queue
 * (queue.conf dead_letter): a reject, a retry at max_attempts and a
 * recovered claim whose attempts are used up go into the new/ of the
 * queue beside q, by one rename, with their ID, group, sidecar and
 * reason, attempts back at 0 (one of a group that has a head there:
 * into the group's directory, behind it); when that queue is missing
 * they stay in q's dead/, and sq_dead_letter_failed tells why, once; a
 * forward whose rename NFS reports failed after making it is made.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"
#include "tap_queue.h"
#include "tap_lie.h"

/*
 * Send body with the attribute n=v in group grp (none when NULL) and,
 * when c is not NULL, claim it into c.
 */
static int
send_group_claim(struct sq_queue *q, const char *body, const char *grp,
    struct sq_claim *c)
{
	static const struct sq_attr attr = { "n", "v" };
	struct sq_msgopts o;
	struct sq_batch b;
	size_t got;
	int64_t next;

	memset(&o, 0, sizeof(o));
	o.attrs = &attr;
	o.nattrs = 1;
	o.group = grp;
	sq_batch_begin(&b, q, NULL, NULL);
	if (sq_batch_options(&b, &o) == -1 ||
	    sq_batch_add(&b, body, strlen(body)) == -1 ||
	    sq_batch_end(&b) == -1) {
		sq_batch_abort(&b);
		return -1;
	}
	if (c != NULL && (sq_claim(q, 60000, NULL, c, 1, &got, &next) ==
	    -1 || got != 1))
		return -1;
	return 0;
}

/* Send body with the attribute n=v in group grp and claim it into c. */
static int
send_claim(struct sq_queue *q, const char *body, struct sq_claim *c)
{
	return send_group_claim(q, body, "grp", c);
}

/* 1 when dir/sub/name exists as a regular file. */
static int
there(const char *dir, const char *sub, const char *name)
{
	char path[PATH_MAX * 2];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * A forward into dlq whose rename the file system reports failed after
 * making it, as NFS does when a reply is lost (tap_lie.h): made, as a
 * settle's commit is (commit.c), so the message is in dlq once, with
 * its sidecar, and not moved again into q's dead/: into dlq/new/
 * (grp NULL), and into dlq's group grp, which has a head, behind it.
 */
static void
forward_said_failed(struct tap_queue *t, struct sq_queue *q, const char *dlq,
    const char *grp)
{
	char want[SQ_NAME_MAX + 1], got[SQ_NAME_MAX + 1], sub[32];
	struct sq_claim c;
	int dead = tap_queue_count(t, SQ_DIR_DEAD);

	ok(send_group_claim(q, "said failed", grp, &c) == 0,
	    "send and claim (group %s)", grp != NULL ? grp : "none");
	snprintf(want, sizeof(want), "%s%s%s,r=rejected,h", c.n.id,
	    grp != NULL ? ",g=" : "", grp != NULL ? grp : "");
	snprintf(sub, sizeof(sub), "%s%s", grp != NULL ? SQ_DIR_GROUPS "/" :
	    SQ_DIR_NEW, grp != NULL ? grp : "");
	tap_lie_local = 0;
	lie = 1;
	ok(sq_reject(q, c.name, NULL, got) == 0 && lie == 0,
	    "NFS: the forward's rename said failed: done all the same");
	tap_lie_local = 1;
	is_str(got, want, "its name in dlq: %s", got);
	ok(there(dlq, sub, want) && there(dlq, SQ_DIR_ATTR, c.n.id),
	    "in dlq/%s/ with its sidecar", sub);
	ok(tap_queue_count(t, SQ_DIR_DEAD) == dead &&
	    tap_queue_count(t, SQ_DIR_CUR) == 0 && sq_dead_letter_failed(q) ==
	    0, "not in q's dead/ or cur/, no failure told");
}

int
main(void)
{
	const char *const keys[] = { "dead_letter", "max_attempts" };
	const char *const values[] = { "dlq", "1" };
	char dlq[PATH_MAX + 8], want[SQ_NAME_MAX + 1], got[SQ_NAME_MAX + 1];
	char why[256], id[SQ_ID_MAX], cmd[PATH_MAX + 32];
	struct tap_queue t;
	struct sq_queue q;
	struct sq_claim c;
	int dead;

	tap_lie_local = 1;	/* the disk's own type, but where told */
	tap_queue_make(&t, &q, keys, values, 2);
	snprintf(dlq, sizeof(dlq), "%s/dlq", t.dir);
	ok(sq_queue_create(dlq, NULL, NULL, 0, why, sizeof(why)) == 0,
	    "the queue dlq beside q");

	/* Reject: into dlq/new/ID,g=grp,r=no-good,h, its sidecar with it. */
	ok(send_claim(&q, "one", &c) == 0, "send and claim");
	snprintf(id, sizeof(id), "%s", c.n.id);
	snprintf(want, sizeof(want), "%s,g=grp,r=no-good,h", id);
	ok(sq_reject(&q, c.name, "no-good", got) == 0, "reject");
	is_str(got, want, "the name in dlq: %s", got);
	ok(there(dlq, SQ_DIR_NEW, want), "in dlq/new/");
	ok(there(dlq, SQ_DIR_ATTR, id), "its sidecar in dlq/attr/");
	ok(!there(t.path, SQ_DIR_ATTR, id), "and no more in q/attr/");
	ok(tap_queue_count(&t, SQ_DIR_DEAD) == 0 &&
	    tap_queue_count(&t, SQ_DIR_CUR) == 0, "nothing in q's dead/, cur/");
	ok(q.dl_sent == 1 && sq_dead_letter_failed(&q) == 0,
	    "counted as given, no failure");

	/* A retry at max_attempts: r=attempts. */
	ok(send_claim(&q, "two", &c) == 0, "send and claim again");
	snprintf(want, sizeof(want), "%s,g=grp,r=attempts,h", c.n.id);
	ok(sq_retry(&q, c.name, -1, NULL, got, &dead) == 0 && dead,
	    "retry at max_attempts dead-letters");
	is_str(got, want, "into dlq as %s", got);
	ok(there(dlq, SQ_DIR_GROUPS "/grp", want),
	    "in dlq/groups/grp/, behind the first, its group's head");

	/*
	 * Set aside at its send (qbridge in): too large for max_bytes,
	 * straight from tmp/ into dlq/new/ID,r=toolarge.
	 */
	{
		const char *const sk[] = { "dead_letter", "max_bytes" };
		const char *const sv[] = { "dlq", "4" };
		char small[PATH_MAX + 8];
		struct sq_queue s;
		struct sq_batch b;

		snprintf(small, sizeof(small), "%s/small", t.dir);
		ok(sq_queue_create(small, sk, sv, 2, why, sizeof(why)) == 0 &&
		    sq_queue_open(&s, small, why, sizeof(why)) == 0,
		    "the queue small, max_bytes = 4, beside dlq");
		sq_batch_begin(&b, &s, NULL, NULL);
		sq_batch_set_aside(&b, NULL, NULL);
		ok(sq_batch_add(&b, "too large", 9) == 0 &&
		    sq_batch_end(&b) == 0 && b.set_aside == 1,
		    "a body over max_bytes is set aside");
		ok(tap_queue_count(&t, "../small/" SQ_DIR_DEAD) == 0 &&
		    tap_queue_count(&t, "../small/" SQ_DIR_TMP) == 0 &&
		    tap_queue_count(&t, "../dlq/" SQ_DIR_NEW) == 2,
		    "into dlq/new/, not small/dead/");
		sq_queue_close(&s);
	}

	/* The dead-letter queue gone: dead/ as ever, and why, once. */
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dlq);
	ok(system(cmd) == 0, "remove dlq");
	ok(send_claim(&q, "three", &c) == 0, "send and claim a third");
	snprintf(want, sizeof(want), "%s,a=1,g=grp,r=rejected,h", c.n.id);
	ok(sq_reject(&q, c.name, NULL, got) == 0, "reject");
	is_str(got, want, "kept in q's dead/ as %s", got);
	ok(there(t.path, SQ_DIR_DEAD, want) && there(t.path, SQ_DIR_ATTR,
	    c.n.id), "in dead/ with its sidecar");
	ok(sq_dead_letter_failed(&q) == ENOENT, "why: ENOENT");
	ok(send_claim(&q, "four", &c) == 0 && sq_reject(&q, c.name, NULL,
	    got) == 0 && sq_dead_letter_failed(&q) == 0,
	    "the same cause is told once");
	ok(tap_queue_count(&t, SQ_DIR_DEAD) == 2, "both in dead/");

	/* Made anew: the same open q finds it (no stale descriptors). */
	ok(sq_queue_create(dlq, NULL, NULL, 0, why, sizeof(why)) == 0,
	    "dlq made anew");
	ok(send_claim(&q, "five", &c) == 0, "send and claim a fifth");
	snprintf(want, sizeof(want), "%s,g=grp,r=rejected,h", c.n.id);
	ok(sq_reject(&q, c.name, NULL, got) == 0, "reject");
	is_str(got, want, "into the new dlq as %s", got);
	ok(there(dlq, SQ_DIR_NEW, want), "in the new dlq/new/");
	ok(tap_queue_count(&t, SQ_DIR_DEAD) == 2, "not in q's dead/");

	/* "five" is the head of grp in dlq now. */
	forward_said_failed(&t, &q, dlq, NULL);
	forward_said_failed(&t, &q, dlq, "grp");
	ok(tap_queue_count(&t, "../dlq/" SQ_DIR_NEW) == 2,
	    "dlq/new/: the head and the one of no group, not the one behind");
	tap_queue_remove(&t, &q);
	return tap_done();
}
