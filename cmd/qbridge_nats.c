/*
 * qbridge_nats.c - qbridge's NATS JetStream broker, through nats.c.
 *
 * The URL names a stream and a subject (default: the stream's name);
 * the stream is made when missing, on file storage, taking the subject
 * and every subject below it.  The client's own reconnection is off:
 * a lost connection is the core's to wait for and renew, one log line
 * per wait.
 *
 * out: each message is published asynchronously to SUBJECT.KEY (SUBJECT
 * without a routing key) with the header Nats-Msg-Id = its spoolq ID, so
 * that the stream drops a re-publish within its duplicate window, its
 * attributes as headers, its expiry as Spoolq-Expires and its group as
 * Spoolq-Group (send); then confirm waits for every PubAck of the batch
 * (the ack handler, on the client's thread, records each one).  A
 * subject no stream takes (no responders) is dead-lettered with
 * r=unroutable, an error the server answers (too large, limits with
 * discard new) with r=refused.  The server's max_payload, told at each
 * connection, is b->body_max: the core refuses a body over it (r=refused)
 * without sending it, and one that its headers take over it is refused
 * by the client (nats_send).
 *
 * tls:// is TLS with the server's certificate verified (tls_setup).
 *
 * in: a durable pull consumer (made when missing, explicit acks, with
 * the ack wait of the URL's ackwait= or the server's 30 s), one
 * Fetch of up to batch messages; the dedup ID of the local send is the
 * Nats-Msg-Id, else STREAM.SEQUENCE; each message is acked after the
 * local send.  The acks go out with the client's next write, without a
 * round trip of their own (a flush waits for the server's PONG): they
 * are flushed, and waited for, before a fetch that a batch before them
 * may have held back (MaxAckPending, below) is asked for again, and
 * when the connection closes; an ack lost with the connection gives a
 * message again after its ack wait, a duplicate that the local send
 * drops.  The Fetch runs on a thread of its
 * own (struct ahead), so that the next batch comes while the core sends
 * this one into the queue: one batch is fetched ahead after each batch
 * that brought messages, never more, and none after an empty one (so
 * that --drain ends at once).  A batch not acknowledged (its local send
 * failed) and the batch fetched ahead are given back at once (Nak), in
 * the stream's order, as is a batch fetched ahead and not taken when
 * closing: the server delivers them again before anything after them,
 * where the ack wait would let later messages pass them.  A batch held
 * while the queue does not take it is marked in progress (+WPI) four
 * times per ack wait (nats_hold), so that the server gives it to no
 * other client of the consumer meanwhile.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "qbridge.h"

#define HDR_EXPIRES	"Spoolq-Expires"
#define NAK_FLUSH_MS	1000		/* closing: the Naks of a batch ahead */
#define ACKWAIT_SERVER_MS 30000		/* a consumer's ack wait by default */
#define HOLD_MIN_MS	100		/* the shortest interval of nats_hold */

struct nconn {
	natsConnection	*nc;
	jsCtx		*js;
	natsSubscription *sub;
	char		 stream[256], subject[256], durable[256];
	int64_t		 ackwait_ms;	/* of a consumer we make; 0: server's */
	natsMsgList	 list;		/* the last fetch */
	int		 acked;		/* how many of list were acked */
	int		 unflushed;	/* acks written since the last flush */
	/* out: the batch being confirmed, for the ack handler */
	pthread_mutex_t	 mu;
	struct br_out	*out;
	size_t		 nout, hint;
	struct ahead	*ahead;		/* in: the fetching thread, or NULL */
};

/*
 * in: the thread that fetches the next batch ahead.  Under mu: want
 * asks it for one fetch (busy while it runs); it leaves the result in
 * list and st and sets ready, and fetches nothing more until
 * nats_fetch took it (ahead_take); early says that the fetch was asked
 * for ahead, before the batch before it was acknowledged.  stop ends it.
 */
struct ahead {
	pthread_t	 th;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	natsSubscription *sub;
	int		 max;
	int64_t		 wait_ms;
	int		 want, busy, ready, stop;
	int		 early;
	natsMsgList	 list;
	natsStatus	 st;
};

static const char *const params_in[] = { "subject", "durable", "ackwait",
    NULL };
static const char *const params_out[] = { "subject", NULL };

static int
name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

static int
nats_check(struct bridge *b, char *err, size_t errsize)
{
	char v[256];
	int64_t ms;

	if (!name_ok(b->url.path)) {
		snprintf(err, errsize, "%s: no stream name ([A-Za-z0-9_-]: "
		    "nats://HOST:PORT/STREAM)", b->url.shown);
		return BR_CONFIG;
	}
	if (br_query_check(&b->url, b->in ? params_in : params_out, err,
	    errsize) == -1)
		return BR_CONFIG;
	if (br_query(&b->url, "durable", v, sizeof(v)) == 1 && !name_ok(v)) {
		snprintf(err, errsize, "durable=%s: not a consumer name", v);
		return BR_CONFIG;
	}
	if (br_query(&b->url, "ackwait", v, sizeof(v)) == 1 &&
	    (sq_duration_parse(v, &ms) == -1 || ms < 1)) {
		snprintf(err, errsize, "ackwait=%s: not a duration", v);
		return BR_CONFIG;
	}
	if (br_query(&b->url, "subject", v, sizeof(v)) == 1 && (*v == '\0' ||
	    strpbrk(v, " \t*>") != NULL)) {
		snprintf(err, errsize, "subject=%s: not a subject", v);
		return BR_CONFIG;
	}
	return BR_OK;
}

/* A status of the client as a result of ours. */
static int
status_class(natsStatus s)
{
	switch (s) {
	case NATS_CONNECTION_AUTH_FAILED:
	case NATS_NOT_PERMITTED:
		return BR_AUTH;
	default:
		return BR_DOWN;
	}
}

static int
fail(natsStatus s, const char *what, char *err, size_t errsize)
{
	const char *last = nats_GetLastError(NULL), *p;

	/* "(conn.c:2088): No server ...": the client's source line goes. */
	if (last != NULL && *last == '(' && (p = strstr(last, "): ")) != NULL)
		last = p + 3;
	snprintf(err, errsize, "%s: %s", what, last != NULL && *last != '\0' ?
	    last : natsStatus_GetText(s));
	return status_class(s);
}

static void *
ahead_run(void *arg)
{
	struct ahead *a = arg;
	natsMsgList list;
	jsErrCode jerr;
	natsStatus st;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->stop && (!a->want || a->ready))
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		a->want = 0;
		a->busy = 1;
		pthread_mutex_unlock(&a->mu);
		memset(&list, 0, sizeof(list));
		jerr = 0;
		st = natsSubscription_Fetch(&list, a->sub, a->max, a->wait_ms,
		    &jerr);
		pthread_mutex_lock(&a->mu);
		a->list = list;
		a->st = st;
		a->busy = 0;
		a->ready = 1;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Start the fetching thread of n (signals blocked in it).  0 or -1. */
static int
ahead_start(struct nconn *n, int max, int64_t wait_ms)
{
	struct ahead *a;
	sigset_t all, old;
	int rc;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->sub = n->sub;
	a->max = max;
	a->wait_ms = wait_ms;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->th, NULL, ahead_run, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		free(a);
		errno = rc;
		return -1;
	}
	n->ahead = a;
	return 0;
}

/* Give back (Nak) the messages of list from the first'th on, in order. */
static int
nak_from(natsMsgList *list, int first)
{
	int i;

	for (i = first; i < list->Count; i++)
		(void)natsMsg_Nak(list->Msgs[i], NULL);
	return i > first;
}

/*
 * Give back what n fetched and did not acknowledge: the last fetch from
 * its n->acked'th message on, then the batch fetched ahead and not
 * taken, each in its order, so that the server delivers them again at
 * once and in the stream's order; a message waiting out the ack wait
 * instead would come after those that followed it.  The fetching
 * thread is stopped first (after the fetch it is in, at most its
 * wait): a message given back while its fetch waits would come in it,
 * ahead of the rest of its own batch.  The next fetch starts it again.
 */
static void
giveback(struct nconn *n)
{
	struct ahead *a = n->ahead;
	int naks;

	if (a != NULL) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->th, NULL);
	}
	naks = nak_from(&n->list, n->acked);
	n->acked = n->list.Count;
	if (a != NULL && a->ready) {
		naks |= nak_from(&a->list, 0);
		natsMsgList_Destroy(&a->list);
	}
	if (naks && n->nc != NULL)
		(void)natsConnection_FlushTimeout(n->nc, NAK_FLUSH_MS);
	if (a != NULL) {
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		free(a);
		n->ahead = NULL;
	}
}

/*
 * Send the acks written since the last flush and wait up to ms for the
 * server to have them (a PING's PONG).  A failure is the next call's to
 * find: the acks not made give their messages again after the ack wait.
 */
static void
acks_flush(struct nconn *n, int64_t ms)
{
	if (n->nc != NULL && natsConnection_FlushTimeout(n->nc, ms) ==
	    NATS_OK)
		n->unflushed = 0;
}

/*
 * The next batch of the fetching thread of n into n->list, and its
 * status: the one fetched ahead, else one fetched now.  A batch fetched
 * ahead is asked for before the batch before it is acknowledged, and the
 * server may hold it back for that batch (a consumer's MaxAckPending,
 * 1000 by default, counts it): one that comes back empty does not say
 * that the stream is empty, and is fetched again, now that the batch
 * before is acknowledged (else --drain would end with messages left).
 * After a batch that brought messages the next one is asked for ahead.
 */
static natsStatus
ahead_take(struct nconn *n)
{
	struct ahead *a = n->ahead;
	natsStatus s;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		if (!a->ready && !a->busy) {
			/* The server has the acks before it is asked again. */
			if (n->unflushed) {
				pthread_mutex_unlock(&a->mu);
				acks_flush(n, NAK_FLUSH_MS);
				pthread_mutex_lock(&a->mu);
			}
			/* None fetched ahead (the first, or after an empty one). */
			a->want = 1;
			a->early = 0;
			pthread_cond_broadcast(&a->cv);
		}
		while (!a->ready)
			pthread_cond_wait(&a->cv, &a->mu);
		n->list = a->list;
		s = a->st;
		memset(&a->list, 0, sizeof(a->list));
		a->ready = 0;
		if (s == NATS_OK && n->list.Count > 0) {
			/* The next batch is fetched while these are sent. */
			a->want = 1;
			a->early = 1;
			pthread_cond_broadcast(&a->cv);
			break;
		}
		if (!a->early || (s != NATS_OK && s != NATS_TIMEOUT))
			break;
		natsMsgList_Destroy(&n->list);
	}
	pthread_mutex_unlock(&a->mu);
	return s;
}

static void
nats_close(struct bridge *b)
{
	struct nconn *n = b->conn;

	if (n == NULL)
		return;
	if (n->unflushed)
		acks_flush(n, NAK_FLUSH_MS);
	giveback(n);
	natsMsgList_Destroy(&n->list);
	if (n->sub != NULL)
		natsSubscription_Destroy(n->sub);
	if (n->js != NULL)
		jsCtx_Destroy(n->js);
	if (n->nc != NULL) {
		natsConnection_Close(n->nc);
		natsConnection_Destroy(n->nc);
	}
	pthread_mutex_destroy(&n->mu);
	free(n);
	b->conn = NULL;
}

/* Find the message of id in the batch (published in order). */
static struct br_out *
find_out(struct nconn *n, const char *id)
{
	size_t i, k;

	for (k = 0; k < n->nout; k++) {
		i = (n->hint + k) % n->nout;
		if (strcmp(n->out[i].id, id) == 0) {
			n->hint = i + 1;
			return &n->out[i];
		}
	}
	return NULL;
}

static void
on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
    void *closure)
{
	struct nconn *n = closure;
	struct br_out *o;
	const char *id = NULL;

	(void)js;
	(void)pa;
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
		id = NULL;
	pthread_mutex_lock(&n->mu);
	if (id != NULL && n->out != NULL && (o = find_out(n, id)) != NULL) {
		if (pae == NULL)
			o->status = BR_SENT;
		else if (pae->Err == NATS_NO_RESPONDERS) {
			o->status = BR_REFUSED;
			strlcpy(o->reason, "unroutable", sizeof(o->reason));
		} else if (pae->ErrCode != 0) {
			o->status = BR_REFUSED;
			strlcpy(o->reason, "refused", sizeof(o->reason));
		}
		/* else a timeout: stays pending, published again */
	}
	pthread_mutex_unlock(&n->mu);
	natsMsg_Destroy(msg);
}

/* The stream, made when missing, taking SUBJECT and SUBJECT.>. */
static int
stream_ensure(struct bridge *b, char *err, size_t errsize)
{
	struct nconn *n = b->conn;
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	natsStatus s;
	char below[300];
	const char *subjects[2];

	s = js_GetStreamInfo(&si, n->js, n->stream, NULL, &jerr);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return BR_OK;
	}
	if (s != NATS_NOT_FOUND)
		return fail(s, "stream info", err, errsize);
	snprintf(below, sizeof(below), "%s.>", n->subject);
	subjects[0] = n->subject;
	subjects[1] = below;
	jsStreamConfig_Init(&sc);
	sc.Name = n->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 2;
	sc.Storage = js_FileStorage;
	if ((s = js_AddStream(&si, n->js, &sc, NULL, &jerr)) != NATS_OK) {
		if (jerr != 0) {
			snprintf(err, errsize, "stream %s: %s", n->stream,
			    nats_GetLastError(NULL));
			return BR_CONFIG;
		}
		return fail(s, "stream create", err, errsize);
	}
	jsStreamInfo_Destroy(si);
	return BR_OK;
}

static int
consumer_ensure(struct bridge *b, char *err, size_t errsize)
{
	struct nconn *n = b->conn;
	jsConsumerInfo *ci = NULL;
	jsConsumerConfig cc;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;
	int64_t wait_ms;

	s = js_GetConsumerInfo(&ci, n->js, n->stream, n->durable, NULL,
	    &jerr);
	if (s == NATS_NOT_FOUND) {
		jsConsumerConfig_Init(&cc);
		cc.Durable = n->durable;
		cc.AckPolicy = js_AckExplicit;
		cc.DeliverPolicy = js_DeliverAll;
		cc.AckWait = n->ackwait_ms * 1000000;	/* nanoseconds */
		s = js_AddConsumer(&ci, n->js, n->stream, &cc, NULL, &jerr);
	}
	if (s != NATS_OK)
		return fail(s, "consumer", err, errsize);
	/*
	 * A batch held while the queue is full is kept in progress well
	 * within the consumer's ack wait (the server's 30 s when it has
	 * none of its own): one keep may be late by a fetch's wait.
	 */
	wait_ms = ci->Config != NULL && ci->Config->AckWait > 0 ?
	    ci->Config->AckWait / 1000000 : ACKWAIT_SERVER_MS;
	b->hold_ms = wait_ms / 4 > HOLD_MIN_MS ? wait_ms / 4 : HOLD_MIN_MS;
	jsConsumerInfo_Destroy(ci);
	jsSubOptions_Init(&so);
	so.Stream = n->stream;
	so.Consumer = n->durable;
	s = js_PullSubscribe(&n->sub, n->js, NULL, n->durable, NULL, &so,
	    &jerr);
	if (s != NATS_OK)
		return fail(s, "pull subscribe", err, errsize);
	return BR_OK;
}

/*
 * TLS verified both ways: the chain against --cacert or the system's
 * CAs (nats.c loads OpenSSL's default paths), and the host name of the
 * URL against the certificate (nats.c checks it only when told).  For
 * tls://, and for nats:// when the server requires TLS (nats.c then
 * goes TLS by itself).
 */
static natsStatus
tls_setup(struct bridge *b, natsOptions *opts)
{
	natsStatus s;

	/* nats:// goes TLS too when the server asks for it: verified. */
	if ((b->tls && (s = natsOptions_SetSecure(opts, true)) != NATS_OK) ||
	    (s = natsOptions_SkipServerVerification(opts, false)) != NATS_OK ||
	    (s = natsOptions_SetExpectedHostname(opts, b->url.host)) !=
	    NATS_OK)
		return s;
	if (b->cacert != NULL)
		s = natsOptions_LoadCATrustedCertificates(opts, b->cacert);
	return s;
}

static int
nats_connect(struct bridge *b, char *err, size_t errsize)
{
	struct nconn *n;
	natsOptions *opts = NULL;
	jsOptions jo;
	natsStatus s;
	char url[600];
	int64_t max;
	int rc;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		snprintf(err, errsize, "%s", strerror(errno));
		return BR_DOWN;
	}
	pthread_mutex_init(&n->mu, NULL);
	b->conn = n;
	strlcpy(n->stream, b->url.path, sizeof(n->stream));
	if (br_query(&b->url, "subject", n->subject, sizeof(n->subject)) != 1)
		strlcpy(n->subject, n->stream, sizeof(n->subject));
	if (br_query(&b->url, "durable", n->durable, sizeof(n->durable)) != 1)
		strlcpy(n->durable, "spoolq", sizeof(n->durable));
	if (br_query(&b->url, "ackwait", url, sizeof(url)) == 1)
		sq_duration_parse(url, &n->ackwait_ms);
	snprintf(url, sizeof(url), "nats://%s:%d", b->url.host, b->url.port);
	if ((s = natsOptions_Create(&opts)) != NATS_OK ||
	    (s = natsOptions_SetURL(opts, url)) != NATS_OK ||
	    (s = natsOptions_SetTimeout(opts, b->timeout_ms)) != NATS_OK ||
	    (s = natsOptions_SetAllowReconnect(opts, false)) != NATS_OK ||
	    (s = tls_setup(b, opts)) != NATS_OK ||
	    (b->cred.user[0] != '\0' && (s = natsOptions_SetUserInfo(opts,
	    b->cred.user, b->cred.password)) != NATS_OK) ||
	    (b->cred.user[0] == '\0' && b->cred.password[0] != '\0' &&
	    (s = natsOptions_SetToken(opts, b->cred.password)) != NATS_OK)) {
		natsOptions_Destroy(opts);
		rc = fail(s, "options", err, errsize);
		if (s == NATS_SSL_ERROR)	/* --cacert: not certificates */
			rc = BR_CONFIG;
		nats_close(b);
		return rc;
	}
	s = natsConnection_Connect(&n->nc, opts);
	natsOptions_Destroy(opts);
	if (s != NATS_OK) {
		rc = fail(s, "connect", err, errsize);
		if (strstr(err, "uthoriz") != NULL)
			rc = BR_AUTH;
		/*
		 * A certificate refused (nats.c's verify callback writes
		 * "CODE:REASON:depth=N:..."): no retrying makes it trusted.
		 */
		if (s == NATS_SSL_ERROR && (strstr(err, ":depth=") != NULL ||
		    strstr(err, "expected hostname") != NULL))
			rc = br_tls_refused(b, strstr(err, "mismatch") !=
			    NULL || strstr(err, "hostname") != NULL, err,
			    errsize);
		nats_close(b);
		return rc;
	}
	max = natsConnection_GetMaxPayload(n->nc);
	b->body_max = max > 0 ? (uint64_t)max : 0;
	jsOptions_Init(&jo);
	jo.Wait = b->timeout_ms;
	jo.PublishAsync.AckHandler = on_puback;
	jo.PublishAsync.AckHandlerClosure = n;
	jo.PublishAsync.MaxPending = (int64_t)b->batch;
	if ((s = natsConnection_JetStream(&n->js, n->nc, &jo)) != NATS_OK) {
		rc = fail(s, "jetstream", err, errsize);
		nats_close(b);
		return rc;
	}
	if ((rc = stream_ensure(b, err, errsize)) != BR_OK ||
	    (b->in && (rc = consumer_ensure(b, err, errsize)) != BR_OK)) {
		nats_close(b);
		return rc;
	}
	return BR_OK;
}

/* One message as a natsMsg with its headers. */
static natsStatus
msg_make(struct nconn *n, const struct br_out *o, natsMsg **m)
{
	char subj[600], exp[32];
	natsStatus s;
	size_t i;

	if (o->key != NULL && *o->key != '\0')
		snprintf(subj, sizeof(subj), "%s.%s", n->subject, o->key);
	else
		strlcpy(subj, n->subject, sizeof(subj));
	if ((s = natsMsg_Create(m, subj, NULL, o->body, (int)o->len)) !=
	    NATS_OK)
		return s;
	s = natsMsgHeader_Set(*m, "Nats-Msg-Id", o->id);
	for (i = 0; s == NATS_OK && i < o->nattrs; i++)
		s = natsMsgHeader_Add(*m, o->attrs[i].name, o->attrs[i].value);
	if (s == NATS_OK && o->expires_ms > 0) {
		snprintf(exp, sizeof(exp), "%lld", (long long)o->expires_ms);
		s = natsMsgHeader_Set(*m, HDR_EXPIRES, exp);
	}
	if (s == NATS_OK && o->group != NULL)
		s = natsMsgHeader_Set(*m, BR_HDR_GROUP, o->group);
	if (s != NATS_OK)
		natsMsg_Destroy(*m);
	return s;
}

static int
nats_send(struct bridge *b, struct br_out *out, size_t cnt, char *err,
    size_t errsize)
{
	struct nconn *n = b->conn;
	natsMsg *m;
	natsStatus s = NATS_OK;
	size_t i;

	pthread_mutex_lock(&n->mu);
	n->out = out;
	n->nout = cnt;
	n->hint = 0;
	pthread_mutex_unlock(&n->mu);
	for (i = 0; i < cnt; i++) {
		if ((s = msg_make(n, &out[i], &m)) != NATS_OK)
			break;
		if ((s = js_PublishMsgAsync(n->js, &m, NULL)) != NATS_OK) {
			natsMsg_Destroy(m);
			/*
			 * Over max_payload with its headers: the core
			 * refused the bodies over it alone.
			 */
			if (s == NATS_MAX_PAYLOAD) {
				pthread_mutex_lock(&n->mu);
				out[i].status = BR_REFUSED;
				strlcpy(out[i].reason, "refused",
				    sizeof(out[i].reason));
				pthread_mutex_unlock(&n->mu);
				s = NATS_OK;
				continue;
			}
			break;
		}
	}
	if (s != NATS_OK)
		return fail(s, "publish", err, errsize);
	return BR_OK;
}

static int
nats_confirm(struct bridge *b, struct br_out *out, size_t cnt, char *err,
    size_t errsize)
{
	struct nconn *n = b->conn;
	jsPubOptions po;
	natsStatus s;
	size_t i;
	int rc = BR_OK;

	jsPubOptions_Init(&po);
	po.MaxWait = b->timeout_ms;
	s = js_PublishAsyncComplete(n->js, &po);
	if (s != NATS_OK)
		rc = fail(s, "PubAck", err, errsize);
	pthread_mutex_lock(&n->mu);
	n->out = NULL;
	n->nout = 0;
	pthread_mutex_unlock(&n->mu);
	if (rc == BR_OK)
		for (i = 0; i < cnt; i++)
			if (out[i].status == BR_PENDING) {
				snprintf(err, errsize, "PubAck: none came");
				rc = BR_DOWN;
			}
	return rc;
}

static int
nats_fetch(struct bridge *b, struct br_in *in, size_t max, int64_t wait_ms,
    size_t *got, char *err, size_t errsize)
{
	struct nconn *n = b->conn;
	jsMsgMetaData *meta;
	natsStatus s;
	const char *subj, *v, **keys;
	size_t plen = strlen(n->subject);
	int i, k, nkeys;

	*got = 0;
	natsMsgList_Destroy(&n->list);
	n->acked = 0;
	if (n->ahead == NULL && ahead_start(n, (int)max, wait_ms > 0 ?
	    wait_ms : DRAIN_WAIT_MS) == -1) {
		snprintf(err, errsize, "fetch: %s", strerror(errno));
		return BR_DOWN;
	}
	s = ahead_take(n);
	(void)max;
	if (s == NATS_TIMEOUT)
		return BR_OK;
	if (s != NATS_OK)
		return fail(s, "fetch", err, errsize);
	for (i = 0; i < n->list.Count; i++) {
		natsMsg *m = n->list.Msgs[i];
		struct br_in *p = &in[*got];

		memset(p, 0, sizeof(*p));
		p->body = (char *)(uintptr_t)natsMsg_GetData(m);
		p->len = (size_t)natsMsg_GetDataLength(m);
		if (p->body == NULL)
			p->body = (char *)"";
		subj = natsMsg_GetSubject(m);
		if (strncmp(subj, n->subject, plen) == 0 && subj[plen] == '.')
			strlcpy(p->key, subj + plen + 1, sizeof(p->key));
		if (natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK &&
		    sq_dedup_id_valid(v))
			strlcpy(p->dedup, v, sizeof(p->dedup));
		else if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
			snprintf(p->dedup, sizeof(p->dedup), "%.100s.%llu",
			    n->stream,
			    (unsigned long long)meta->Sequence.Stream);
			jsMsgMetaData_Destroy(meta);
		}
		if (natsMsgHeader_Get(m, HDR_EXPIRES, &v) == NATS_OK)
			p->expires_ms = strtonum(v, 0, INT64_MAX, NULL);
		if (natsMsgHeader_Get(m, BR_HDR_GROUP, &v) == NATS_OK)
			br_in_group(p, v);
		if (natsMsgHeader_Keys(m, &keys, &nkeys) == NATS_OK) {
			for (k = 0; k < nkeys; k++) {
				if (strncmp(keys[k], "Nats-", 5) == 0 ||
				    strcmp(keys[k], HDR_EXPIRES) == 0 ||
				    strcmp(keys[k], BR_HDR_GROUP) == 0 ||
				    natsMsgHeader_Get(m, keys[k], &v) !=
				    NATS_OK)
					continue;
				br_in_attr(p, keys[k], v);
			}
			free(keys);
		}
		(*got)++;
	}
	return BR_OK;
}

static int
nats_ack(struct bridge *b, char *err, size_t errsize)
{
	struct nconn *n = b->conn;
	natsStatus s;
	int i;

	for (i = n->acked; i < n->list.Count; i++) {
		if ((s = natsMsg_Ack(n->list.Msgs[i], NULL)) != NATS_OK)
			return fail(s, "ack", err, errsize);
		n->acked = i + 1;
		n->unflushed = 1;
	}
	return BR_OK;
}

/* Mark the messages of list from the first'th on as in progress. */
static natsStatus
wpi_from(natsMsgList *list, int first)
{
	natsStatus s;
	int i;

	for (i = first; i < list->Count; i++)
		if ((s = natsMsg_InProgress(list->Msgs[i], NULL)) != NATS_OK)
			return s;
	return i > first ? NATS_OK : NATS_NOT_FOUND;
}

/*
 * The batch held while the queue is full, and the one fetched ahead of
 * it, are being worked on (+WPI): each restarts its ack wait, so the
 * server delivers none of them again, here or to another client of the
 * durable consumer, while the bridge holds them.  A message of a fetch
 * still under way is kept by the next call, once it is in.
 */
static int
nats_hold(struct bridge *b, char *err, size_t errsize)
{
	struct nconn *n = b->conn;
	struct ahead *a;
	natsStatus s, s2 = NATS_NOT_FOUND;

	if (n == NULL || n->nc == NULL)
		return BR_OK;
	s = wpi_from(&n->list, n->acked);
	if ((a = n->ahead) != NULL) {
		pthread_mutex_lock(&a->mu);
		if (a->ready && a->st == NATS_OK)
			s2 = wpi_from(&a->list, 0);
		pthread_mutex_unlock(&a->mu);
	}
	if (s != NATS_OK && s != NATS_NOT_FOUND)
		return fail(s, "in progress", err, errsize);
	if (s2 != NATS_OK && s2 != NATS_NOT_FOUND)
		return fail(s2, "in progress", err, errsize);
	if ((s = natsConnection_FlushTimeout(n->nc, NAK_FLUSH_MS)) != NATS_OK)
		return fail(s, "in progress", err, errsize);
	return BR_OK;
}

/*
 * A batch not acknowledged (its local send failed, or its ack) is given
 * back at once with the batch fetched ahead, in order (giveback).
 */
static void
nats_done(struct bridge *b, struct br_in *in, size_t cnt)
{
	struct nconn *n = b->conn;

	(void)in;
	(void)cnt;
	if (n == NULL)
		return;
	if (n->acked < n->list.Count)
		giveback(n);
	natsMsgList_Destroy(&n->list);
	n->acked = 0;
}

const struct br_ops br_nats = {
	.scheme = "nats",
	.tls_scheme = "tls",
	.default_port = 4222,
	.tls_port = 4222,
	.check = nats_check,
	.connect = nats_connect,
	.send = nats_send,
	.confirm = nats_confirm,
	.fetch = nats_fetch,
	.ack = nats_ack,
	.hold = nats_hold,
	.done = nats_done,
	.close = nats_close,
};
