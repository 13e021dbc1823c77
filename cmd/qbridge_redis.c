/*
 * qbridge_redis.c - qbridge's Redis Streams broker, through hiredis.
 *
 * out: one XADD per message, pipelined per batch (send writes them all,
 * confirm reads their replies), each entry with the fields body, id (the
 * spoolq ID), key, attributes ("NAME=VALUE" lines), expires (epoch ms)
 * and group (the g= key), those without a value left out.  The XADD
 * reply is the confirmation: with appendfsync always the entry is on the
 * server's disk by then.
 *
 * in: a consumer group (made at the start of the stream, with the
 * stream, when missing), read with XREADGROUP COUNT batch: first this
 * consumer's pending entries (read from ID 0: those it was given and
 * did not ack before a crash), then new ones (">").  The dedup ID of the
 * local send is the entry's id field when it has a valid one (so that a
 * message an outbox published twice arrives once), else the entry ID.
 * XACK after the local send, of the whole batch in one command, which
 * goes out with the next command (the next XREADGROUP): one round trip
 * per batch.  Its reply is read before that command's; an XACK that
 * fails fails that command, and the connection is made anew (the
 * entries not acked come again as pending ones, and the inbox drops
 * them as duplicates).  Closing, the XACK still waiting is sent and its
 * reply read.
 * A whole batch of new entries is followed at once by the XREADGROUP of
 * the next (">", COUNT, never BLOCK: an XACK behind it would wait out
 * the block), so that the server reads it while the core sends the
 * batch into the queue; the next fetch takes its reply.  The entries so
 * read ahead are this consumer's pending ones until acked: a crash or a
 * new connection reads them again from ID 0, in order, after those of
 * the batch before.  A stop takes them in first (redis_fetched), so
 * that a bridge stopped leaves nothing pending, as before.  Replies come in the order of the commands: the
 * XACKs written before the read ahead (acks_pre) are read before its
 * reply, those written after it (acks_out) after it.
 */
#include <sys/time.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "qbridge.h"

#define FIELDS_MAX	14		/* XADD arguments per message */

struct rconn {
	redisContext	*c;
	char		 group[256], consumer[256], maxlen[32];
	int		 pending_done;	/* this consumer's pending entries read */
	redisReply	*reply;		/* of the last fetch */
	const char	**ids;		/* its entry IDs, for XACK */
	size_t		 nids;
	size_t		 nsent;		/* XADDs of the last send */
	int		 acks_out;	/* XACKs written, replies not read */
	int		 ahead;		/* an XREADGROUP read ahead is out */
	int		 acks_pre;	/* XACKs written before it, not read */
};

/*
 * Redis's default proto-max-bulk-len (512 MB), for a server that will not
 * tell its own (CONFIG refused by an ACL or renamed away).
 */
#define BULK_MAX_DEFAULT	(512ULL * 1024 * 1024)

static const char *const params_in[] = { "group", "consumer", NULL };
static const char *const params_out[] = { "maxlen", NULL };

static int
redis_check(struct bridge *b, char *err, size_t errsize)
{
	char v[32];
	const char *errstr;

	if (b->tls) {
		snprintf(err, errsize, "%s: this build has no TLS for Redis "
		    "(hiredis %d.%d.%d, without hiredis_ssl); use redis:// "
		    "through a TLS tunnel", b->url.shown, HIREDIS_MAJOR,
		    HIREDIS_MINOR, HIREDIS_PATCH);
		return BR_CONFIG;
	}
	if (b->url.path[0] == '\0' || strchr(b->url.path, '/') != NULL) {
		snprintf(err, errsize, "%s: no stream (redis://HOST:PORT/"
		    "STREAM)", b->url.shown);
		return BR_CONFIG;
	}
	if (br_query_check(&b->url, b->in ? params_in : params_out, err,
	    errsize) == -1)
		return BR_CONFIG;
	if (br_query(&b->url, "maxlen", v, sizeof(v)) == 1) {
		strtonum(v, 1, 1000000000000LL, &errstr);
		if (errstr != NULL) {
			snprintf(err, errsize, "maxlen=%s: %s", v, errstr);
			return BR_CONFIG;
		}
	}
	return BR_OK;
}

#define REPLY_REFUSED	(-1)	/* reply_class: refused for good */

/*
 * An error reply: the server's passing state (BR_DOWN), credentials
 * (BR_AUTH), a key that is no stream (BR_CONFIG), or a refusal of this
 * command for good (REPLY_REFUSED).
 */
static int
reply_class(const redisReply *r)
{
	static const char *const temp[] = { "OOM", "LOADING", "BUSY ",
	    "TRYAGAIN", "READONLY", "MASTERDOWN", "CLUSTERDOWN",
	    "NOREPLICAS", "MISCONF", NULL };
	size_t i;

	if (strncmp(r->str, "NOAUTH", 6) == 0 ||
	    strncmp(r->str, "NOPERM", 6) == 0 ||
	    strncmp(r->str, "WRONGPASS", 9) == 0 ||
	    strstr(r->str, "invalid password") != NULL ||
	    strstr(r->str, "invalid username-password") != NULL)
		return BR_AUTH;
	if (strncmp(r->str, "WRONGTYPE", 9) == 0)
		return BR_CONFIG;
	for (i = 0; temp[i] != NULL; i++)
		if (strncmp(r->str, temp[i], strlen(temp[i])) == 0)
			return BR_DOWN;
	return REPLY_REFUSED;
}

/*
 * Send what waits in the output buffer and read the replies of the
 * XACKs written before.  BR_OK, or BR_DOWN with a message in err.
 */
static int
acks_read(struct rconn *rc, int *count, char *err, size_t errsize)
{
	redisReply *r;
	int st = BR_OK;

	while (*count > 0) {
		(*count)--;
		if (redisGetReply(rc->c, (void **)&r) != REDIS_OK ||
		    r == NULL) {
			snprintf(err, errsize, "%s", rc->c->errstr[0] != '\0' ?
			    rc->c->errstr : "connection lost");
			return BR_DOWN;
		}
		if (r->type == REDIS_REPLY_ERROR && st == BR_OK) {
			snprintf(err, errsize, "XACK: %s", r->str);
			st = BR_DOWN;
		}
		freeReplyObject(r);
	}
	return st;
}

/*
 * Run one command (after the XACKs written before it, in one write);
 * BR_OK with *out (freed by the caller) or an error.
 */
static int
command(struct rconn *rc, int argc, const char **argv, const size_t *lens,
    redisReply **out, char *err, size_t errsize)
{
	redisReply *r = NULL;
	int cls, st;

	*out = NULL;
	if (rc->acks_out > 0) {
		if (redisAppendCommandArgv(rc->c, argc, argv, lens) !=
		    REDIS_OK) {
			snprintf(err, errsize, "%s", rc->c->errstr[0] !=
			    '\0' ? rc->c->errstr : "connection lost");
			return BR_DOWN;
		}
		if ((st = acks_read(rc, &rc->acks_out, err, errsize)) !=
		    BR_OK)
			return st;
		if (redisGetReply(rc->c, (void **)&r) != REDIS_OK)
			r = NULL;
	} else
		r = redisCommandArgv(rc->c, argc, argv, lens);
	if (r == NULL) {
		snprintf(err, errsize, "%s", rc->c->errstr[0] != '\0' ?
		    rc->c->errstr : "connection lost");
		return BR_DOWN;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errsize, "%s: %s", argv[0], r->str);
		cls = reply_class(r);
		freeReplyObject(r);
		return cls == REPLY_REFUSED ? BR_CONFIG : cls;
	}
	*out = r;
	return BR_OK;
}

/*
 * Write the XREADGROUP of the next batch, read ahead (see the top): it
 * goes out now, with nothing behind it.  Best effort: a failure leaves
 * the next fetch to read as it would have.
 */
static void
ahead_send(struct bridge *b, struct rconn *rc, size_t max)
{
	const char *argv[9];
	char count[32];
	int done = 0;

	snprintf(count, sizeof(count), "%zu", max);
	argv[0] = "XREADGROUP";
	argv[1] = "GROUP";
	argv[2] = rc->group;
	argv[3] = rc->consumer;
	argv[4] = "COUNT";
	argv[5] = count;
	argv[6] = "STREAMS";
	argv[7] = b->url.path;
	argv[8] = ">";
	if (redisAppendCommandArgv(rc->c, 9, argv, NULL) != REDIS_OK)
		return;
	rc->acks_pre = rc->acks_out;
	rc->acks_out = 0;
	rc->ahead = 1;
	while (!done)
		if (redisBufferWrite(rc->c, &done) != REDIS_OK)
			return;		/* the reply's read fails too */
}

/*
 * The reply of the XREADGROUP read ahead, after those of the XACKs
 * before it: BR_OK with *out (freed by the caller), or an error.
 */
static int
ahead_take(struct rconn *rc, redisReply **out, char *err, size_t errsize)
{
	redisReply *r;
	int st;

	*out = NULL;
	rc->ahead = 0;
	st = acks_read(rc, &rc->acks_pre, err, errsize);
	if (redisGetReply(rc->c, (void **)&r) != REDIS_OK || r == NULL) {
		snprintf(err, errsize, "%s", rc->c->errstr[0] != '\0' ?
		    rc->c->errstr : "connection lost");
		return BR_DOWN;
	}
	if (st == BR_OK && r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errsize, "XREADGROUP: %s", r->str);
		st = reply_class(r);
		if (st == REPLY_REFUSED)
			st = BR_CONFIG;
	}
	if (st != BR_OK) {
		freeReplyObject(r);
		return st;
	}
	*out = r;
	return BR_OK;
}

static void
redis_close(struct bridge *b)
{
	struct rconn *rc = b->conn;
	char err[BR_ERR_MAX];
	redisReply *r;

	if (rc == NULL)
		return;
	if (rc->reply != NULL)
		freeReplyObject(rc->reply);
	free(rc->ids);
	if (rc->c != NULL) {
		if (rc->ahead && rc->c->err == 0 && ahead_take(rc, &r, err,
		    sizeof(err)) == BR_OK && r != NULL)
			freeReplyObject(r);
		if (rc->acks_out > 0 && rc->c->err == 0)
			(void)acks_read(rc, &rc->acks_out, err, sizeof(err));
		redisFree(rc->c);
	}
	free(rc);
	b->conn = NULL;
}

/*
 * The largest argument the server takes (proto-max-bulk-len), asked at
 * each connection, into b->body_max.  A longer one is a protocol error:
 * the server answers it and closes the connection, unread, so the XADDs
 * pipelined behind it get no reply and those before it may lose theirs,
 * to be published again.  So the core refuses a body over it, and it is
 * never sent.  A server that does not answer CONFIG GET is taken to have
 * Redis's default.  BR_OK, or BR_DOWN with a message in err.
 */
static int
bulk_max_get(struct bridge *b, char *err, size_t errsize)
{
	const char *argv[] = { "CONFIG", "GET", "proto-max-bulk-len" };
	redisReply *r;
	const char *errstr;
	long long v;
	int st;

	b->body_max = BULK_MAX_DEFAULT;
	st = command(b->conn, 3, argv, NULL, &r, err, errsize);
	if (st == BR_DOWN)
		return st;
	if (st == BR_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		v = strtonum(r->element[1]->str, 1, LLONG_MAX, &errstr);
		if (errstr == NULL)
			b->body_max = (uint64_t)v;
	}
	if (r != NULL)
		freeReplyObject(r);
	return BR_OK;
}

static int
redis_connect(struct bridge *b, char *err, size_t errsize)
{
	struct rconn *rc;
	struct timeval tv;
	redisReply *r;
	const char *argv[6];
	char host[64];
	int n = 0, st;

	if ((rc = calloc(1, sizeof(*rc))) == NULL) {
		snprintf(err, errsize, "%s", strerror(errno));
		return BR_DOWN;
	}
	b->conn = rc;
	if (br_query(&b->url, "group", rc->group, sizeof(rc->group)) != 1)
		strlcpy(rc->group, "spoolq", sizeof(rc->group));
	if (br_query(&b->url, "consumer", rc->consumer,
	    sizeof(rc->consumer)) != 1) {
		if (gethostname(host, sizeof(host)) == -1)
			strlcpy(host, "qbridge", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		strlcpy(rc->consumer, host, sizeof(rc->consumer));
	}
	if (br_query(&b->url, "maxlen", rc->maxlen, sizeof(rc->maxlen)) != 1)
		rc->maxlen[0] = '\0';
	tv.tv_sec = b->timeout_ms / 1000;
	tv.tv_usec = (b->timeout_ms % 1000) * 1000;
	rc->c = redisConnectWithTimeout(b->url.host, b->url.port, tv);
	if (rc->c == NULL || rc->c->err) {
		snprintf(err, errsize, "%s", rc->c != NULL ? rc->c->errstr :
		    "out of memory");
		redis_close(b);
		return BR_DOWN;
	}
	redisSetTimeout(rc->c, tv);
	redisEnableKeepAlive(rc->c);
	if (b->cred.password[0] != '\0') {
		argv[n++] = "AUTH";
		if (b->cred.user[0] != '\0')
			argv[n++] = b->cred.user;
		argv[n++] = b->cred.password;
	} else
		argv[n++] = "PING";
	if ((st = command(rc, n, argv, NULL, &r, err, errsize)) != BR_OK) {
		if (st != BR_DOWN && strncmp(argv[0], "AUTH", 4) == 0)
			st = BR_AUTH;	/* AUTH refused, whatever its words */
		redis_close(b);
		return st;
	}
	freeReplyObject(r);
	if (!b->in) {
		if ((st = bulk_max_get(b, err, errsize)) != BR_OK)
			redis_close(b);
		return st;
	}
	argv[0] = "XGROUP";
	argv[1] = "CREATE";
	argv[2] = b->url.path;
	argv[3] = rc->group;
	argv[4] = "0";
	argv[5] = "MKSTREAM";
	st = command(rc, 6, argv, NULL, &r, err, errsize);
	if (st != BR_OK && strstr(err, "BUSYGROUP") != NULL)
		st = BR_OK;		/* the group is there already */
	if (r != NULL)
		freeReplyObject(r);
	if (st != BR_OK)
		redis_close(b);
	return st;
}

static int
redis_send(struct bridge *b, struct br_out *out, size_t n, char *err,
    size_t errsize)
{
	struct rconn *rc = b->conn;
	const char *argv[FIELDS_MAX + 4];
	size_t lens[FIELDS_MAX + 4], i, alen;
	char *attrs, exp[32];
	int k, done = 0;

	rc->nsent = 0;
	for (i = 0; i < n; i++) {
		k = 0;
		attrs = NULL;
#define ARG(s, l)	do { argv[k] = (s); lens[k++] = (l); } while (0)
		ARG("XADD", 4);
		ARG(b->url.path, strlen(b->url.path));
		if (rc->maxlen[0] != '\0') {
			ARG("MAXLEN", 6);
			ARG("~", 1);
			ARG(rc->maxlen, strlen(rc->maxlen));
		}
		ARG("*", 1);
		ARG("body", 4);
		ARG(out[i].body, out[i].len);
		ARG("id", 2);
		ARG(out[i].id, strlen(out[i].id));
		if (out[i].key != NULL) {
			ARG("key", 3);
			ARG(out[i].key, strlen(out[i].key));
		}
		if (out[i].nattrs > 0) {
			if ((attrs = br_attrs_format(out[i].attrs,
			    out[i].nattrs, &alen)) == NULL)
				break;
			ARG("attributes", 10);
			ARG(attrs, alen);
		}
		if (out[i].expires_ms > 0) {
			snprintf(exp, sizeof(exp), "%lld",
			    (long long)out[i].expires_ms);
			ARG("expires", 7);
			ARG(exp, strlen(exp));
		}
		if (out[i].group != NULL) {
			ARG(BR_FIELD_GROUP, strlen(BR_FIELD_GROUP));
			ARG(out[i].group, strlen(out[i].group));
		}
#undef ARG
		/* The command is formatted into hiredis's buffer: args go. */
		k = redisAppendCommandArgv(rc->c, k, argv, lens);
		free(attrs);
		if (k != REDIS_OK)
			break;
	}
	rc->nsent = i;		/* what was appended gets its reply */
	/* On the wire now, so that the server works while we do. */
	while (!done)
		if (redisBufferWrite(rc->c, &done) != REDIS_OK) {
			snprintf(err, errsize, "%s", rc->c->errstr[0] != '\0' ?
			    rc->c->errstr : "connection lost");
			rc->nsent = 0;
			return BR_DOWN;
		}
	if (i < n) {
		snprintf(err, errsize, "XADD: %s", strerror(errno));
		return BR_DOWN;
	}
	return BR_OK;
}

static int
redis_confirm(struct bridge *b, struct br_out *out, size_t n, char *err,
    size_t errsize)
{
	struct rconn *rc = b->conn;
	redisReply *r;
	size_t i;
	int rv = BR_OK, cls;

	if (rc->nsent < n)
		n = rc->nsent;
	rc->nsent = 0;
	for (i = 0; i < n; i++) {
		if (redisGetReply(rc->c, (void **)&r) != REDIS_OK) {
			snprintf(err, errsize, "%s", rc->c->errstr[0] != '\0' ?
			    rc->c->errstr : "connection lost");
			return BR_DOWN;
		}
		if (r->type != REDIS_REPLY_ERROR)
			out[i].status = BR_SENT;
		else if ((cls = reply_class(r)) == REPLY_REFUSED) {
			out[i].status = BR_REFUSED;
			strlcpy(out[i].reason, "refused",
			    sizeof(out[i].reason));
		} else if (rv == BR_OK) {
			snprintf(err, errsize, "XADD: %s", r->str);
			rv = cls;
		}
		freeReplyObject(r);
	}
	return rv;
}

/* One entry [id, [field, value, ...]] into in; 0, or -1 when deleted. */
static int
entry_in(const redisReply *e, struct br_in *in)
{
	const redisReply *f, *name, *v;
	size_t i;

	memset(in, 0, sizeof(*in));
	if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		return -1;
	f = e->element[1];
	in->body = (char *)"";
	for (i = 0; i + 1 < f->elements; i += 2) {
		name = f->element[i];
		v = f->element[i + 1];
		if (name->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(name->str, "body") == 0) {
			in->body = v->str;
			in->len = v->len;
		} else if (strlen(v->str) != v->len)
			continue;	/* a NUL: not a text field */
		else if (strcmp(name->str, "id") == 0) {
			if (sq_dedup_id_valid(v->str))
				strlcpy(in->dedup, v->str, sizeof(in->dedup));
		} else if (strcmp(name->str, "key") == 0)
			strlcpy(in->key, v->str, sizeof(in->key));
		else if (strcmp(name->str, "attributes") == 0)
			br_attrs_parse(in, v->str);
		else if (strcmp(name->str, "expires") == 0)
			in->expires_ms = strtonum(v->str, 0, INT64_MAX, NULL);
		else if (strcmp(name->str, BR_FIELD_GROUP) == 0)
			br_in_group(in, v->str);
		else
			br_in_attr(in, name->str, v->str);
	}
	if (in->dedup[0] == '\0')
		strlcpy(in->dedup, e->element[0]->str, sizeof(in->dedup));
	return 0;
}

static int
redis_ack_ids(struct bridge *b, const char **ids, size_t n, char *err,
    size_t errsize)
{
	struct rconn *rc = b->conn;
	const char **argv;
	redisReply *r;
	size_t i;
	int st;

	if (n == 0)
		return BR_OK;
	if ((argv = calloc(n + 3, sizeof(*argv))) == NULL) {
		snprintf(err, errsize, "%s", strerror(errno));
		return BR_DOWN;
	}
	argv[0] = "XACK";
	argv[1] = b->url.path;
	argv[2] = rc->group;
	for (i = 0; i < n; i++)
		argv[i + 3] = ids[i];
	st = command(rc, (int)(n + 3), argv, NULL, &r, err, errsize);
	free(argv);
	if (r != NULL)
		freeReplyObject(r);
	return st == BR_CONFIG ? BR_DOWN : st;
}

/* The entries of an XREADGROUP reply, or NULL when it has none. */
static const redisReply *
stream_entries(const redisReply *r)
{
	const redisReply *e;

	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY ||
	    r->element[0]->elements < 2)
		return NULL;
	e = r->element[0]->element[1];
	return e->elements > 0 ? e : NULL;
}

static int
redis_fetch(struct bridge *b, struct br_in *in, size_t max, int64_t wait_ms,
    size_t *got, char *err, size_t errsize)
{
	struct rconn *rc = b->conn;
	const char *argv[12], **gone = NULL;
	char count[32], block[32];
	const redisReply *entries;
	redisReply *r;
	size_t i, ngone = 0;
	int k, st;

	*got = 0;
	for (;;) {
		if (rc->ahead) {
			if ((st = ahead_take(rc, &r, err, errsize)) != BR_OK)
				return st;
			if ((entries = stream_entries(r)) != NULL)
				break;
			freeReplyObject(r);
		}
		/* Stopping: only what was read ahead is taken. */
		if (b->stopping)
			return BR_OK;
		k = 0;
		snprintf(count, sizeof(count), "%zu", max);
		argv[k++] = "XREADGROUP";
		argv[k++] = "GROUP";
		argv[k++] = rc->group;
		argv[k++] = rc->consumer;
		argv[k++] = "COUNT";
		argv[k++] = count;
		if (rc->pending_done && wait_ms > 0) {
			snprintf(block, sizeof(block), "%lld",
			    (long long)wait_ms);
			argv[k++] = "BLOCK";
			argv[k++] = block;
		}
		argv[k++] = "STREAMS";
		argv[k++] = b->url.path;
		argv[k++] = rc->pending_done ? ">" : "0";
		if ((st = command(rc, k, argv, NULL, &r, err, errsize)) !=
		    BR_OK)
			return st;
		if ((entries = stream_entries(r)) == NULL) {
			freeReplyObject(r);
			if (rc->pending_done)
				return BR_OK;
			rc->pending_done = 1;
			continue;
		}
		break;
	}
	rc->reply = r;
	if ((rc->ids = calloc(entries->elements, sizeof(*rc->ids))) == NULL ||
	    (gone = calloc(entries->elements, sizeof(*gone))) == NULL) {
		snprintf(err, errsize, "%s", strerror(errno));
		return BR_DOWN;
	}
	rc->nids = 0;
	for (i = 0; i < entries->elements && *got < max; i++) {
		const redisReply *e = entries->element[i];

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		if (entry_in(e, &in[*got]) == -1)
			gone[ngone++] = e->element[0]->str;
		else {
			rc->ids[rc->nids++] = e->element[0]->str;
			(*got)++;
		}
	}
	/* Entries deleted from the stream while pending: nothing to carry. */
	st = redis_ack_ids(b, gone, ngone, err, errsize);
	free(gone);
	/* A whole batch of new ones: more may wait, read them meanwhile. */
	if (st == BR_OK && rc->pending_done && !b->stopping &&
	    entries->elements >= max)
		ahead_send(b, rc, max);
	return st;
}

/*
 * XACK the batch: written now, sent with the next command (or at the
 * close), its reply read before that command's.
 */
static int
redis_ack(struct bridge *b, char *err, size_t errsize)
{
	struct rconn *rc = b->conn;
	const char **argv;
	size_t i;
	int st;

	if (rc->nids == 0)
		return BR_OK;
	if ((argv = calloc(rc->nids + 3, sizeof(*argv))) == NULL) {
		snprintf(err, errsize, "%s", strerror(errno));
		return BR_DOWN;
	}
	argv[0] = "XACK";
	argv[1] = b->url.path;
	argv[2] = rc->group;
	for (i = 0; i < rc->nids; i++)
		argv[i + 3] = rc->ids[i];
	st = redisAppendCommandArgv(rc->c, (int)(rc->nids + 3), argv, NULL);
	free(argv);
	if (st != REDIS_OK) {
		snprintf(err, errsize, "%s", rc->c->errstr[0] != '\0' ?
		    rc->c->errstr : "connection lost");
		return BR_DOWN;
	}
	rc->acks_out++;
	return BR_OK;
}

/* A batch read ahead is out: a stop takes it in first (qbridge.h). */
static int
redis_fetched(struct bridge *b)
{
	struct rconn *rc = b->conn;

	return rc != NULL && rc->ahead;
}

static void
redis_done(struct bridge *b, struct br_in *in, size_t n)
{
	struct rconn *rc = b->conn;

	(void)in;
	(void)n;
	if (rc == NULL)
		return;
	if (rc->reply != NULL)
		freeReplyObject(rc->reply);
	rc->reply = NULL;
	free(rc->ids);
	rc->ids = NULL;
	rc->nids = 0;
}

const struct br_ops br_redis = {
	.scheme = "redis",
	.tls_scheme = "rediss",
	.default_port = 6379,
	.tls_port = 6379,
	.check = redis_check,
	.connect = redis_connect,
	.send = redis_send,
	.confirm = redis_confirm,
	.fetch = redis_fetch,
	.ack = redis_ack,
	.fetched = redis_fetched,
	.done = redis_done,
	.close = redis_close,
};
