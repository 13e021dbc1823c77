/*
 * batch.c - the claims of one batch job (qworker --batch) and their
 * settlement, message by message.
 *
 * A batch is a set of claims of one queue, all in cur/ under one
 * worker's token, handed to one run of a command.  The job may settle
 * each of them through its result stream ("ack ID", "retry ID",
 * "reject ID [REASON]", one a line); whatever it leaves unsettled is
 * settled by its exit status.  Each claim is settled at most once: the
 * set remembers which are, so a line repeated, or naming a message the
 * batch does not hold, changes nothing.  Every settlement is the one
 * rename or unlink of settle.c, and per message: max_attempts and dead
 * letters count for each message on its own.
 *
 * Message groups: the claim path never hands out a group's next message
 * while one of it is in flight, so a batch made of one sq_claim call or
 * of several holds at most one message per group, in order, without
 * anything here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const verbs[] = {
	[SQ_VERDICT_ACK] = "ack",
	[SQ_VERDICT_RETRY] = "retry",
	[SQ_VERDICT_REJECT] = "reject",
	[SQ_VERDICT_RELEASE] = "release",
};

/* The word of s (len bytes) from *pos, blanks skipped; its length. */
static size_t
word(const char *s, size_t len, size_t *pos, const char **start)
{
	size_t i = *pos, k;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	*start = s + i;
	for (k = i; k < len && s[k] != ' ' && s[k] != '\t'; k++)
		;
	*pos = k;
	return k - i;
}

int
sq_result_parse(const char *line, size_t len, struct sq_result *r)
{
	const char *w, *id, *slash;
	size_t pos = 0, n, idlen, v;
	char name[SQ_NAME_MAX + 1];
	struct sq_name parsed;

	memset(r, 0, sizeof(*r));
	if (len > 0 && line[len - 1] == '\r')
		len--;			/* a job written on another system */
	if (memchr(line, '\0', len) != NULL)
		goto bad;
	n = word(line, len, &pos, &w);
	for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
		if (v != SQ_VERDICT_RELEASE && strlen(verbs[v]) == n &&
		    memcmp(w, verbs[v], n) == 0)
			break;
	if (v == sizeof(verbs) / sizeof(verbs[0]))
		goto bad;
	r->verdict = (enum sq_verdict)v;
	if ((idlen = word(line, len, &pos, &id)) == 0 || idlen > SQ_NAME_MAX)
		goto bad;
	/* The ID, or the claim's file name or path as the job was given. */
	memcpy(name, id, idlen);
	name[idlen] = '\0';
	if ((slash = strrchr(name, '/')) != NULL)
		memmove(name, slash + 1, strlen(slash + 1) + 1);
	if (sq_name_parse(&parsed, name) == -1)
		goto bad;
	strlcpy(r->id, parsed.id, sizeof(r->id));
	n = word(line, len, &pos, &w);
	if (n > 0) {
		if (r->verdict != SQ_VERDICT_REJECT || n >= SQ_REASON_MAX)
			goto bad;
		memcpy(r->reason, w, n);
		r->reason[n] = '\0';
		if (!sq_reason_valid(r->reason))
			goto bad;
	}
	if (word(line, len, &pos, &w) != 0)
		goto bad;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

const char *
sq_verdict_name(enum sq_verdict v)
{
	return (unsigned)v < sizeof(verbs) / sizeof(verbs[0]) ? verbs[v] : "?";
}

/* Order indexes into the claims arg by the IDs of their messages. */
static int
byid_cmp(const void *a, const void *b, void *arg)
{
	const struct sq_claim *c = arg;

	return strcmp(c[*(const size_t *)a].n.id, c[*(const size_t *)b].n.id);
}

int
sq_jobbatch_init(struct sq_jobbatch *b, struct sq_queue *q,
    const struct sq_claim *c, size_t n)
{
	size_t i;

	memset(b, 0, sizeof(*b));
	if (n == 0) {
		errno = EINVAL;
		return -1;
	}
	b->c = reallocarray(NULL, n, sizeof(*b->c));
	b->byid = reallocarray(NULL, n, sizeof(*b->byid));
	b->settled = calloc(n, 1);
	if (b->c == NULL || b->byid == NULL || b->settled == NULL) {
		sq_jobbatch_free(b);
		errno = ENOMEM;
		return -1;
	}
	memcpy(b->c, c, n * sizeof(*c));
	for (i = 0; i < n; i++)
		b->byid[i] = i;
	if (n > 1)
		qsort_r(b->byid, n, sizeof(*b->byid), byid_cmp, b->c);
	b->q = q;
	b->n = b->left = n;
	b->failures = -1;
	return 0;
}

void
sq_jobbatch_free(struct sq_jobbatch *b)
{
	free(b->c);
	free(b->byid);
	free(b->settled);
	memset(b, 0, sizeof(*b));
}

int
sq_jobbatch_find(const struct sq_jobbatch *b, const char *id, size_t *i)
{
	size_t lo = 0, hi = b->n, mid;
	int d;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		d = strcmp(id, b->c[b->byid[mid]].n.id);
		if (d == 0) {
			*i = b->byid[mid];
			return 0;
		}
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	errno = ENOENT;
	return -1;
}

/* sq_verdict_apply; failures as ack_known's. */
static int
verdict_apply(struct sq_queue *q, const char *name, enum sq_verdict v,
    const char *reason, char *newname, int *dead, int failures)
{
	*dead = 0;
	newname[0] = '\0';
	switch (v) {
	case SQ_VERDICT_ACK:
		return ack_known(q, name, failures);
	case SQ_VERDICT_RETRY:
		return sq_retry(q, name, -1, reason, newname, dead);
	case SQ_VERDICT_REJECT:
		*dead = 1;
		return sq_reject(q, name, reason, newname);
	case SQ_VERDICT_RELEASE:
		return sq_release(q, name);
	}
	errno = EINVAL;
	return -1;
}

int
sq_verdict_apply(struct sq_queue *q, const char *name, enum sq_verdict v,
    const char *reason, char *newname, int *dead)
{
	return verdict_apply(q, name, v, reason, newname, dead, 1);
}

int
sq_jobbatch_apply(struct sq_jobbatch *b, struct sq_queue *q,
    const char *name, enum sq_verdict v, const char *reason, char *newname,
    int *dead)
{
	/* After the claims of b, at its first ack: once for the batch. */
	if (v == SQ_VERDICT_ACK && b->failures == -1)
		b->failures = ack_records(q, b->n);
	return verdict_apply(q, name, v, reason, newname, dead,
	    v != SQ_VERDICT_ACK || b->failures != 0);
}

int
sq_jobbatch_take(struct sq_jobbatch *b, size_t i)
{
	if (i >= b->n) {
		errno = EINVAL;
		return -1;
	}
	if (b->settled[i]) {
		errno = EALREADY;
		return -1;
	}
	b->settled[i] = 1;
	b->left--;
	return 0;
}

int
sq_jobbatch_settle(struct sq_jobbatch *b, size_t i, enum sq_verdict v,
    const char *reason, char *newname, int *dead)
{
	*dead = 0;
	newname[0] = '\0';
	/* Settled whatever comes of it: a lost claim is no one's to settle. */
	if (sq_jobbatch_take(b, i) == -1)
		return -1;
	return sq_jobbatch_apply(b, b->q, b->c[i].name, v, reason, newname,
	    dead);
}
