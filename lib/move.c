/*
 * move.c - the state machine of a message: the rules that name a message
 * in each state, and the one move between states.  The modules that
 * change a message's state (send, dedup, claim, settle, admin, worker,
 * group, gc, archive, check) make names by these rules (ready_name,
 * retry_name, dead_name, claimed_name, touched_name, released_name,
 * redrive_name, publish_name) and move by move_message, move_rename or
 * move_quarantine: none of them calls sq_rename for a message or sets
 * the fields of its next state itself.  This module calls none of them,
 * only name.c and fsutil.c below it, so no two modules call each other.
 *
 * The states are the sets of paths that exist (spoolq(5) "States and
 * transitions", as qmail's INTERNALS writes its queue down):
 *
 *	state		path
 *	writing		tmp/ID
 *	ready		new/ID[,a=k]
 *	claimed		cur/ID,a=k,l=L,w=W (a worker) or ,c=NONCE
 *	waiting		retry/ID[,a=k],t=T
 *	dead		dead/ID,a=k,r=R
 *	taken		tmp/ID,a=k,l=L (qrecv -A printing it)
 *	held		hold/ID[,a=k] (parked by an operator, like ready)
 *	archived	archive/ID,a=k (acked in an archiving queue)
 *	grouped		groups/KEY/ID,g=KEY... (waiting for its turn)
 *	quarantined	quarantine/DIR/NAME[.qN] (qadmin check --repair)
 *	settled		none of these
 *
 * (e and h follow the ID in every state where they apply).  Each
 * transition has one commit point, a sq_rename (fsutil.c) or, for an
 * ack, an unlink: before it the message is wholly in its old state,
 * after it wholly in the new one, never in both and never in neither.
 * The ID never changes; only the fields after it do (sq_name_format), by
 * the rules below: a send is published as new/ID, or retry/ID,t=T when
 * delayed, with e and h from its options; back to ready keeps ID, a, e
 * and h and drops the lease, worker, due time and reason; a dead letter
 * is that plus its reason.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define QUARANTINE_ALTS	10	/* NAME, then NAME.q1 to NAME.q9 */

/* ------------------------------------------------------------ names */

void
ready_name(struct sq_name *n)
{
	n->lease = n->due = -1;
	n->token[0] = n->nonce[0] = n->reason[0] = '\0';
}

void
dead_name(struct sq_name *n, const char *reason)
{
	ready_name(n);
	strlcpy(n->reason, reason, sizeof(n->reason));
}

void
dead_letter_name(struct sq_name *n)
{
	char reason[SQ_REASON_MAX];

	strlcpy(reason, n->reason, sizeof(reason));
	redrive_name(n, 1);
	strlcpy(n->reason, reason, sizeof(n->reason));
}

void
retry_name(struct sq_name *n, int64_t due)
{
	ready_name(n);
	n->due = due;
}

void
released_name(struct sq_name *n)
{
	if (n->attempts > 0)
		n->attempts--;
	ready_name(n);
}

void
redrive_name(struct sq_name *n, int reset)
{
	ready_name(n);
	if (reset) {
		/* A redrive is a fresh start: attempts and expiry both. */
		n->attempts = 0;
		n->expires = -1;
	}
}

void
claimed_name(struct sq_name *n, int64_t lease, const char *token,
    uint32_t nonce)
{
	ready_name(n);
	n->attempts++;
	n->lease = lease;
	/*
	 * Every claim gets a name of its own: a worker's token, else a
	 * random nonce.  Two clients of a shared file system that both
	 * see the message free (one through a stale name) then rename it
	 * to different names, and the server lets one win; to one name,
	 * the kernel would take the loser's rename for a rename of the
	 * file onto itself and report success to both (rename(2)).
	 */
	if (token != NULL)
		strlcpy(n->token, token, sizeof(n->token));
	else
		snprintf(n->nonce, sizeof(n->nonce), "%08x", nonce);
}

void
touched_name(struct sq_name *n, int64_t lease)
{
	n->lease = lease;
}

/* ------------------------------------------------------------ moves */

int
move_rename(int fromfd, const char *from, int tofd, const char *to)
{
	/* Its own name in its own state: already where it is to be. */
	if (fromfd == tofd && strcmp(from, to) == 0)
		return 0;
	return sq_rename(fromfd, from, tofd, to);
}

int
move_made(int fromfd, const char *from, int tofd, const char *to)
{
	struct stat st;
	int saved = errno;

	if (fstatat(fromfd, from, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = saved;
		return 0;
	}
	if (errno != ENOENT)
		return -1;
	if (fstatat(tofd, to, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(st.st_mode))
			return 1;
		errno = ENOENT;
	}
	return -1;
}

int
move_rename_judged(int fromfd, const char *from, int tofd, const char *to)
{
	int rc, e;

	if (move_rename(fromfd, from, tofd, to) == 0)
		return 0;
	e = errno;
	if ((rc = move_made(fromfd, from, tofd, to)) == 1)
		return 0;
	if (rc == 0 || (errno != ENOENT && e != ENOENT))
		errno = e;
	return -1;
}

int
move_message(int fromfd, const char *name, int tofd, const struct sq_name *n,
    char *newname)
{
	char to[SQ_NAME_MAX + 1];

	if (sq_name_format(to, sizeof(to), n) == -1)
		return -1;
	if (move_rename(fromfd, name, tofd, to) == -1)
		return -1;
	if (newname != NULL)
		memcpy(newname, to, strlen(to) + 1);
	return 0;
}

int
move_quarantine(int dfd, const char *name, int qfd, char *to, size_t size)
{
	int n, rc;

	if (strlcpy(to, name, size) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	rc = sq_rename(dfd, name, qfd, to);
	for (n = 1; rc == -1 && errno == EEXIST && n < QUARANTINE_ALTS; n++) {
		if ((size_t)snprintf(to, size, "%s.q%d", name, n) >= size) {
			errno = ENAMETOOLONG;
			return -1;
		}
		rc = sq_rename(dfd, name, qfd, to);
	}
	return rc;
}

/* ------------------------------------------------------------ rules */

int
expired(const struct sq_queue *q, const struct sq_name *n, int64_t now_ms)
{
	int64_t sent;

	if (n->expires >= 0 && now_ms >= n->expires * 1000)
		return 1;
	if (q->conf.ttl_ms > 0 && (sent = sq_id_time_ms(n->id)) >= 0 &&
	    now_ms - sent > q->conf.ttl_ms)
		return 1;
	return 0;
}

int
has_sidecar(const struct sq_msgopts *o)
{
	return o != NULL && (o->key != NULL || o->nattrs > 0);
}

int
publish_name(struct sq_queue *q, const struct sq_msgopts *o, const char *id,
    char *name, int *dirfd)
{
	return publish_name_h(q, o, id, has_sidecar(o), name, dirfd);
}

/* The fields every state of a send with the options o (may be NULL) has. */
static int
send_name(struct sq_name *n, const struct sq_msgopts *o, const char *id,
    int has_attr)
{
	if (sq_name_init(n, id) == -1)
		return -1;
	n->has_attr = has_attr;
	if (o == NULL)
		return 0;
	if (o->expires_ms > 0)
		n->expires = SQ_MS_TO_S_CEIL(o->expires_ms);
	if (o->group != NULL && strlcpy(n->group, o->group,
	    sizeof(n->group)) >= sizeof(n->group)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
publish_name_h(struct sq_queue *q, const struct sq_msgopts *o, const char *id,
    int has_attr, char *name, int *dirfd)
{
	struct sq_name n;

	*dirfd = q->newfd;
	if (send_name(&n, o, id, has_attr) == -1)
		return -1;
	if (o != NULL && o->due_ms > sq_now_ms()) {
		n.due = SQ_MS_TO_S_CEIL(o->due_ms);
		*dirfd = q->retryfd;
	}
	return sq_name_format(name, SQ_NAME_MAX + 1, &n);
}

int
dead_send_name(const struct sq_msgopts *o, const char *id,
    const char *reason, char *name)
{
	struct sq_name n;

	if (send_name(&n, o, id, has_sidecar(o)) == -1)
		return -1;
	strlcpy(n.reason, reason, sizeof(n.reason));
	return sq_name_format(name, SQ_NAME_MAX + 1, &n);
}
