/*
 * move.c - the state machine of a message: the rules that name a message
 * in each state, and the one move between states.  The modules that
 * change a message's state (send, dedup, claim, settle, admin, worker,
 * gc, archive, check) build names and move by these; this module calls
 * none of them, only name.c and fsutil.c below it.
 *
 * The states are the sets of paths that exist (spoolq(5) "States and
 * transitions", as qmail's INTERNALS writes its queue down):
 *
 *	state		path
 *	writing		tmp/ID
 *	ready		new/ID[,a=k]
 *	claimed		cur/ID,a=k,l=L[,w=W]
 *	waiting		retry/ID[,a=k],t=T
 *	dead		dead/ID,a=k,r=R
 *	taken		tmp/ID,a=k,l=L (qrecv -A printing it)
 *	held		hold/ID[,a=k] (parked by an operator, like ready)
 *	archived	archive/ID,a=k (acked in an archiving queue)
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
#include <errno.h>
#include <string.h>

#include "internal.h"

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

int
move_message(int fromfd, const char *name, int tofd, const struct sq_name *n,
    char *newname)
{
	char to[SQ_NAME_MAX + 1];

	if (sq_name_format(to, sizeof(to), n) == -1)
		return -1;
	if (sq_rename(fromfd, name, tofd, to) == -1)
		return -1;
	if (newname != NULL)
		memcpy(newname, to, strlen(to) + 1);
	return 0;
}

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
	struct sq_name n;

	*dirfd = q->newfd;
	if (sq_name_init(&n, id) == -1)
		return -1;
	if (o != NULL) {
		if (o->expires_ms > 0)
			n.expires = SQ_MS_TO_S_CEIL(o->expires_ms);
		n.has_attr = has_sidecar(o);
		if (o->group != NULL &&
		    strlcpy(n.group, o->group, sizeof(n.group)) >=
		    sizeof(n.group)) {
			errno = EINVAL;
			return -1;
		}
		if (o->due_ms > sq_now_ms()) {
			n.due = SQ_MS_TO_S_CEIL(o->due_ms);
			*dirfd = q->retryfd;
		}
	}
	return sq_name_format(name, SQ_NAME_MAX + 1, &n);
}
