/*
 * qbridge_amqp.c - qbridge's AMQP 0-9-1 broker (RabbitMQ), through
 * rabbitmq-c.
 *
 * The URL names the virtual host (its path, "/" when empty), and in its
 * parameters the exchange (default: the default exchange), a routing
 * key and a queue; a queue named is declared durable when missing.
 * amqps:// is TLS with the server's certificate verified (tls_setup).
 *
 * out: channel 1 in confirm mode (confirm.select); each message is
 * published persistent (delivery mode 2) and mandatory, with message_id
 * = its spoolq ID, its attributes as headers, its expiry as expiration
 * and as the header Spoolq-Expires, its group as Spoolq-Group; routing
 * key: the message's when an exchange is named, else key=, else queue=
 * (the default exchange routes by queue name: the message's key then
 * travels as Spoolq-Key).  The batch then waits for the confirms (delivery
 * tags count from 1 on the channel; an ack may be "multiple"): a
 * basic.return before the ack is an unroutable message (r=unroutable),
 * a basic.nack a refusal (r=refused).  A body over the server's
 * max_message_size closes the channel instead (too_large): that message
 * is refused, the limit kept and bodies over it refused before they go
 * (b->body_max, by the core), the rest published again on the next
 * channel; until the limit is known, a body larger than any confirmed
 * waits for the confirms of those before it (held_back).
 *
 * in: basic.qos with prefetch = two batches (one is on its way while the
 * other is written locally), basic.consume with manual acks;
 * the dedup ID of the local send is the message_id (a message without
 * one is sent without: delivery tags are numbers of one channel, the
 * same on the next connection, so they cannot tell messages apart);
 * after the local send one basic.ack with multiple for the batch.
 */
#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/ssl.h>

#include "qbridge.h"

#define CHANNEL		1
#define HDR_EXPIRES	"Spoolq-Expires"
#define HDR_KEY		"Spoolq-Key"
#define FRAME_MAX	131072
#define PREFETCH_BATCHES 2		/* in: basic.qos prefetch, in batches */

struct aconn {
	amqp_connection_state_t c;
	amqp_channel_t	 ch;		/* CHANNEL, one more at each reopen */
	char		 vhost[256], exchange[256], key[256], queue[256];
	uint64_t	 next_tag;	/* delivery tag of the next publish */
	uint64_t	*tags;		/* per message of the last send: its
					   delivery tag, 0: not published */
	size_t		 atags;
	size_t		 nsent;		/* messages the last send went through */
	size_t		 npub;		/* of them published */
	int		 cut;		/* it stopped before a body held back */
	amqp_envelope_t	*env;		/* the last fetch */
	size_t		 nenv, aenv;
	char		 (*strs)[2][SQ_ATTR_VALUE_MAX + 1];	/* headers, as C */
};

static const char *const params[] = { "exchange", "key", "queue", NULL };

static int
amqp_check(struct bridge *b, char *err, size_t errsize)
{
	char q[256];

	if (br_query_check(&b->url, params, err, errsize) == -1)
		return BR_CONFIG;
	if (b->in && br_query(&b->url, "queue", q, sizeof(q)) != 1) {
		snprintf(err, errsize, "%s: no queue (amqp://HOST/VHOST?"
		    "queue=QUEUE)", b->url.shown);
		return BR_CONFIG;
	}
	return BR_OK;
}

/* The result of a failed RPC, as ours, with its words in err. */
static int
rpc_fail(amqp_rpc_reply_t r, const char *what, char *err, size_t errsize)
{
	amqp_connection_close_t *cc;
	amqp_channel_close_t *ch;

	switch (r.reply_type) {
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(err, errsize, "%s: %s", what,
		    amqp_error_string2(r.library_error));
		return BR_DOWN;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			cc = r.reply.decoded;
			snprintf(err, errsize, "%s: %.*s", what,
			    (int)cc->reply_text.len,
			    (char *)cc->reply_text.bytes);
			return cc->reply_code == AMQP_ACCESS_REFUSED ||
			    cc->reply_code == 530 ? BR_AUTH :
			    cc->reply_code == AMQP_CONNECTION_FORCED ? BR_DOWN :
			    BR_CONFIG;
		}
		if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			ch = r.reply.decoded;
			snprintf(err, errsize, "%s: %.*s", what,
			    (int)ch->reply_text.len,
			    (char *)ch->reply_text.bytes);
			return ch->reply_code == AMQP_ACCESS_REFUSED ? BR_AUTH :
			    BR_CONFIG;
		}
		snprintf(err, errsize, "%s: server error", what);
		return BR_DOWN;
	default:
		snprintf(err, errsize, "%s: no reply", what);
		return BR_DOWN;
	}
}

static int
rpc_check(struct aconn *a, const char *what, char *err, size_t errsize)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(a->c);

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return BR_OK;
	return rpc_fail(r, what, err, errsize);
}

static void
env_free(struct aconn *a)
{
	size_t i;

	for (i = 0; i < a->nenv; i++)
		amqp_destroy_envelope(&a->env[i]);
	a->nenv = 0;
}

static void
amqp_close(struct bridge *b)
{
	struct aconn *a = b->conn;

	if (a == NULL)
		return;
	env_free(a);
	free(a->env);
	free(a->strs);
	free(a->tags);
	if (a->c != NULL) {
		amqp_connection_close(a->c, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(a->c);
	}
	free(a);
	b->conn = NULL;
}

/* Why OpenSSL refused the last chain it verified (one thread). */
static char verify_why[128];

static int
verify_note(int ok, X509_STORE_CTX *x)
{
	if (!ok && verify_why[0] == '\0')
		strlcpy(verify_why, X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(x)), sizeof(verify_why));
	return ok;
}

/*
 * TLS verified both ways: the chain against --cacert or the system's
 * CAs (rabbitmq-c loads none by itself), and the host name of the URL
 * against the certificate.
 */
static int
tls_setup(struct bridge *b, amqp_socket_t *sock, char *err, size_t errsize)
{
	SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);

	amqp_ssl_socket_set_verify_peer(sock, 1);
	amqp_ssl_socket_set_verify_hostname(sock, 1);
	/* rabbitmq-c looks at the result after the handshake: note why. */
	verify_why[0] = '\0';
	if (ctx != NULL)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, verify_note);
	if (b->cacert != NULL) {
		if (amqp_ssl_socket_set_cacert(sock, b->cacert) !=
		    AMQP_STATUS_OK) {
			snprintf(err, errsize, "%s: not a PEM certificate file",
			    b->cacert);
			return BR_CONFIG;
		}
	} else if (ctx == NULL || SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errsize, "TLS: the system's CA certificates "
		    "cannot be loaded");
		return BR_CONFIG;
	}
	return BR_OK;
}

static int
amqp_connect(struct bridge *b, char *err, size_t errsize)
{
	struct aconn *a;
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	struct timeval tv;
	int st;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errsize, "%s", strerror(errno));
		return BR_DOWN;
	}
	b->conn = a;
	a->ch = CHANNEL;
	strlcpy(a->vhost, b->url.path[0] != '\0' ? b->url.path : "/",
	    sizeof(a->vhost));
	br_query(&b->url, "exchange", a->exchange, sizeof(a->exchange));
	br_query(&b->url, "key", a->key, sizeof(a->key));
	br_query(&b->url, "queue", a->queue, sizeof(a->queue));
	tv.tv_sec = b->timeout_ms / 1000;
	tv.tv_usec = (b->timeout_ms % 1000) * 1000;
	if ((a->c = amqp_new_connection()) == NULL ||
	    (sock = b->tls ? amqp_ssl_socket_new(a->c) :
	    amqp_tcp_socket_new(a->c)) == NULL) {
		snprintf(err, errsize, "out of memory");
		amqp_close(b);
		return BR_DOWN;
	}
	if (b->tls && (st = tls_setup(b, sock, err, errsize)) != BR_OK) {
		amqp_close(b);
		return st;
	}
	if ((st = amqp_socket_open_noblock(sock, b->url.host, b->url.port,
	    &tv)) != AMQP_STATUS_OK) {
		snprintf(err, errsize, "connect: %s", amqp_error_string2(st));
		amqp_close(b);
		if (st == AMQP_STATUS_SSL_PEER_VERIFY_FAILED &&
		    verify_why[0] != '\0')
			snprintf(err + strlen(err), errsize - strlen(err),
			    ": %s", verify_why);
		if (st == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ||
		    st == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)
			return br_tls_refused(b,
			    st == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED, err,
			    errsize);
		return BR_DOWN;
	}
	amqp_set_rpc_timeout(a->c, &tv);
	r = amqp_login(a->c, a->vhost, 0, FRAME_MAX, 0, AMQP_SASL_METHOD_PLAIN,
	    b->cred.user[0] != '\0' ? b->cred.user : "guest",
	    b->cred.password[0] != '\0' ? b->cred.password : "guest");
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		st = rpc_fail(r, "login", err, errsize);
		/* RabbitMQ closes the socket on bad credentials. */
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_CONNECTION_CLOSED) {
			snprintf(err, errsize, "login: refused (user, password "
			    "or virtual host)");
			st = BR_AUTH;
		}
		amqp_destroy_connection(a->c);
		a->c = NULL;
		amqp_close(b);
		return st;
	}
	amqp_channel_open(a->c, a->ch);
	if ((st = rpc_check(a, "channel", err, errsize)) != BR_OK)
		goto fail;
	if (a->queue[0] != '\0') {
		amqp_queue_declare(a->c, a->ch, amqp_cstring_bytes(a->queue),
		    0, 1, 0, 0, amqp_empty_table);
		if ((st = rpc_check(a, a->queue, err, errsize)) != BR_OK)
			goto fail;
	}
	if (b->in) {
		/*
		 * Two batches: the next one comes while one is written
		 * into the queue, and a fetch finds it whole.
		 */
		amqp_basic_qos(a->c, a->ch, 0, (uint16_t)(PREFETCH_BATCHES *
		    b->batch), 0);
		if ((st = rpc_check(a, "basic.qos", err, errsize)) != BR_OK)
			goto fail;
		amqp_basic_consume(a->c, a->ch, amqp_cstring_bytes(a->queue),
		    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
		st = rpc_check(a, "basic.consume", err, errsize);
	} else {
		amqp_confirm_select(a->c, a->ch);
		st = rpc_check(a, "confirm.select", err, errsize);
		a->next_tag = 1;
	}
	if (st == BR_OK)
		return BR_OK;
fail:
	amqp_close(b);
	return st;
}

/* The publish of one message; 0 or an amqp status. */
static int
publish_one(struct aconn *a, const struct br_out *o)
{
	amqp_basic_properties_t p;
	amqp_table_entry_t ent[SQ_ATTRS_MAX + 3];
	char exp[32], expms[32];
	const char *key;
	size_t i;
	int64_t left;

	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
	p.delivery_mode = 2;		/* persistent */
	p.message_id = amqp_cstring_bytes(o->id);
	for (i = 0; i < o->nattrs && i < SQ_ATTRS_MAX; i++) {
		ent[i].key = amqp_cstring_bytes(o->attrs[i].name);
		ent[i].value.kind = AMQP_FIELD_KIND_UTF8;
		ent[i].value.value.bytes = amqp_cstring_bytes(o->attrs[i].value);
	}
	if (o->expires_ms > 0) {
		left = o->expires_ms - sq_now_ms();
		snprintf(exp, sizeof(exp), "%lld", (long long)(left > 0 ?
		    left : 1));
		snprintf(expms, sizeof(expms), "%lld",
		    (long long)o->expires_ms);
		p._flags |= AMQP_BASIC_EXPIRATION_FLAG;
		p.expiration = amqp_cstring_bytes(exp);
		ent[i].key = amqp_cstring_bytes(HDR_EXPIRES);
		ent[i].value.kind = AMQP_FIELD_KIND_UTF8;
		ent[i].value.value.bytes = amqp_cstring_bytes(expms);
		i++;
	}
	if (o->group != NULL) {
		ent[i].key = amqp_cstring_bytes(BR_HDR_GROUP);
		ent[i].value.kind = AMQP_FIELD_KIND_UTF8;
		ent[i].value.value.bytes = amqp_cstring_bytes(o->group);
		i++;
	}
	/* The default exchange routes by queue name: the key rides along. */
	if (o->key != NULL && a->exchange[0] == '\0') {
		ent[i].key = amqp_cstring_bytes(HDR_KEY);
		ent[i].value.kind = AMQP_FIELD_KIND_UTF8;
		ent[i].value.value.bytes = amqp_cstring_bytes(o->key);
		i++;
	}
	if (i > 0) {
		p._flags |= AMQP_BASIC_HEADERS_FLAG;
		p.headers.num_entries = (int)i;
		p.headers.entries = ent;
	}
	key = o->key != NULL && a->exchange[0] != '\0' ? o->key :
	    a->key[0] != '\0' ? a->key : a->queue;
	return amqp_basic_publish(a->c, a->ch, amqp_cstring_bytes(a->exchange),
	    amqp_cstring_bytes(key), 1, 0, &p, (amqp_bytes_t){ o->len, o->body });
}

/*
 * A confirm of tag (and, with multiple, of every tag before): ack (st
 * BR_SENT) or nack (BR_REFUSED).  An ack of a message that came back
 * (basic.return) settles it as unroutable.  Either way the server took
 * its size: b->body_ok grows to it.
 */
static void
confirm(struct bridge *b, struct br_out *out, size_t n, uint64_t tag,
    int multiple, int st, size_t *left)
{
	struct aconn *a = b->conn;
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t t = a->tags[i];

		if (t == 0 || t > tag || (!multiple && t != tag) ||
		    out[i].status != BR_PENDING)
			continue;
		if (st == BR_REFUSED)
			strlcpy(out[i].reason, "refused",
			    sizeof(out[i].reason));
		out[i].status = st == BR_REFUSED || out[i].reason[0] != '\0' ?
		    BR_REFUSED : BR_SENT;
		if (out[i].len > b->body_ok)
			b->body_ok = out[i].len;
		(*left)--;
	}
}

/* A basic.return: the message (by its message_id) came back. */
static int
returned(struct aconn *a, struct br_out *out, size_t n, char *err,
    size_t errsize)
{
	amqp_message_t m;
	amqp_rpc_reply_t r;
	size_t i;

	r = amqp_read_message(a->c, a->ch, &m, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		return rpc_fail(r, "basic.return", err, errsize);
	for (i = 0; i < n; i++)
		if ((m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
		    m.properties.message_id.len == strlen(out[i].id) &&
		    memcmp(m.properties.message_id.bytes, out[i].id,
		    m.properties.message_id.len) == 0) {
			/* Its ack follows: settled as unroutable then. */
			strlcpy(out[i].reason, "unroutable",
			    sizeof(out[i].reason));
			break;
		}
	amqp_destroy_message(&m);
	return BR_OK;
}

/*
 * The frame f, met where a confirmation or a delivery was awaited, as the
 * server's end of the channel or connection: BR_DOWN (or BR_CONFIG for a
 * channel closed with NOT_FOUND: what the URL names is gone) with the
 * server's words in err, e.g. "channel closed: PRECONDITION_FAILED -
 * delivery acknowledgement on channel 1 timed out" when a batch was held
 * past its consumer_timeout; BR_OK for any other frame, to be passed over.
 */
static int
closed_by_server(const amqp_frame_t *f, char *err, size_t errsize)
{
	const amqp_channel_close_t *ch;
	const amqp_connection_close_t *cc;

	if (f->frame_type != AMQP_FRAME_METHOD)
		return BR_OK;
	switch (f->payload.method.id) {
	case AMQP_CHANNEL_CLOSE_METHOD:
		ch = f->payload.method.decoded;
		snprintf(err, errsize, "channel closed: %.*s",
		    (int)ch->reply_text.len, (char *)ch->reply_text.bytes);
		return ch->reply_code == AMQP_NOT_FOUND ? BR_CONFIG : BR_DOWN;
	case AMQP_CONNECTION_CLOSE_METHOD:
		cc = f->payload.method.decoded;
		snprintf(err, errsize, "connection closed by the broker: %.*s",
		    (int)cc->reply_text.len, (char *)cc->reply_text.bytes);
		return BR_DOWN;
	case AMQP_BASIC_CANCEL_METHOD:
		snprintf(err, errsize, "consumer cancelled by the broker "
		    "(the queue deleted?)");
		return BR_DOWN;
	default:
		return BR_OK;
	}
}

/* The number after the first word in s, or 0 when none follows it. */
static uint64_t
number_after(const char *s, const char *word)
{
	const char *p;
	char *end;
	unsigned long long v;

	if ((p = strstr(s, word)) == NULL)
		return 0;
	p += strlen(word);
	if (*p < '0' || *p > '9')
		return 0;
	errno = 0;
	v = strtoull(p, &end, 10);
	return errno == 0 ? (uint64_t)v : 0;
}

/*
 * Whether the server closed the channel ch on a body over its
 * max_message_size: RabbitMQ's PRECONDITION_FAILED "message size N is
 * larger than configured max size M" ("larger than max size M" at its
 * own bound of 512 MiB).  *size and *max get N and M, 0 where its words
 * hold no number.
 */
static int
too_large(const amqp_channel_close_t *ch, uint64_t *size, uint64_t *max)
{
	char text[256];
	const char *p;

	if (ch->reply_code != AMQP_PRECONDITION_FAILED)
		return 0;
	snprintf(text, sizeof(text), "%.*s", (int)ch->reply_text.len,
	    (char *)ch->reply_text.bytes);
	if ((p = strstr(text, "larger than")) == NULL ||
	    strstr(text, "size") == NULL)
		return 0;
	*size = number_after(text, "size ");
	*max = number_after(p, "size ");
	return 1;
}

/*
 * Whether a body of len bytes waits, unpublished, for the confirms of
 * those before it in its send.  While the server's max_message_size is
 * not known, one larger than any it took may be over it, and then the
 * channel it closes takes with it the confirms still due before it:
 * those messages, which the server kept, would be published twice.
 * The limit may be set as low as one byte, so the size of a frame says
 * nothing: any body larger than all the server confirmed waits (for
 * bodies of one size, the second of the first send after a start or
 * SIGHUP).
 */
static int
held_back(const struct bridge *b, size_t len)
{
	return b->body_max == 0 && len > b->body_ok;
}

/*
 * After the server closed the channel: its close-ok, and the next
 * channel in confirm mode (a number not used before: the server may not
 * be done with the old one).  BR_OK, or BR_DOWN with a message in err.
 */
static int
channel_again(struct aconn *a, char *err, size_t errsize)
{
	amqp_channel_close_ok_t ok = { 0 };
	int max = amqp_get_channel_max(a->c), st;

	if ((st = amqp_send_method(a->c, a->ch, AMQP_CHANNEL_CLOSE_OK_METHOD,
	    &ok)) != AMQP_STATUS_OK) {
		snprintf(err, errsize, "channel.close-ok: %s",
		    amqp_error_string2(st));
		return BR_DOWN;
	}
	if (a->ch >= (max > 0 ? max : 65535)) {
		snprintf(err, errsize, "channel.open: no channel left");
		return BR_DOWN;
	}
	a->ch++;
	amqp_channel_open(a->c, a->ch);
	if ((st = rpc_check(a, "channel", err, errsize)) != BR_OK)
		return BR_DOWN;
	amqp_confirm_select(a->c, a->ch);
	if ((st = rpc_check(a, "confirm.select", err, errsize)) != BR_OK)
		return BR_DOWN;
	a->next_tag = 1;
	return BR_OK;
}

/* Whether out[i] of the last send was published and not confirmed. */
static int
unconfirmed(const struct aconn *a, const struct br_out *out, size_t i)
{
	return a->tags[i] != 0 && out[i].status == BR_PENDING;
}

/*
 * The message the server refused as too large (see too_large for size
 * and max, 0 when not known), among those of the last send (n): the
 * first not confirmed of size bytes, else the first over max, else the
 * largest.  n when none was published.
 */
static size_t
offender(const struct aconn *a, const struct br_out *out, size_t n,
    uint64_t size, uint64_t max)
{
	size_t i, k = n;

	for (i = 0; i < n && size > 0; i++)
		if (unconfirmed(a, out, i) && out[i].len == size)
			return i;
	for (i = 0; i < n && max > 0; i++)
		if (unconfirmed(a, out, i) && out[i].len > max)
			return i;
	for (i = 0; i < n; i++)
		if (unconfirmed(a, out, i) && out[i].len > 0 &&
		    (k == n || out[i].len > out[k].len))
			k = i;
	return k;
}

/*
 * The channel closed on a body over the server's max_message_size: the
 * server took the messages published before it and drops those after.
 * The offender gets BR_REFUSED, and the limit (max, or one byte less
 * than the body) is kept in b->body_max, the smallest so learned across
 * connections, so that the core refuses a body over it without sending
 * it.  Those not confirmed stay BR_PENDING, to go out again on the next
 * channel.  BR_OK; BR_DOWN (err) when none was published or no channel
 * opens.
 */
static int
refuse_large(struct bridge *b, struct br_out *out, size_t n, uint64_t size,
    uint64_t max, char *err, size_t errsize)
{
	struct aconn *a = b->conn;
	size_t k;
	uint64_t lim;

	if ((k = offender(a, out, n, size, max)) == n)
		return BR_DOWN;
	out[k].status = BR_REFUSED;
	strlcpy(out[k].reason, "refused", sizeof(out[k].reason));
	lim = max > 0 && max < out[k].len ? max : out[k].len - 1;
	if (b->body_max == 0 || lim < b->body_max)
		b->body_max = lim;
	return channel_again(a, err, errsize);
}

static int
amqp_send(struct bridge *b, struct br_out *out, size_t n, char *err,
    size_t errsize)
{
	struct aconn *a = b->conn;
	uint64_t *np;
	size_t i;
	int st;

	if (n > a->atags) {
		if ((np = reallocarray(a->tags, n, sizeof(*np))) == NULL) {
			snprintf(err, errsize, "%s", strerror(errno));
			return BR_DOWN;
		}
		a->tags = np;
		a->atags = n;
	}
	a->nsent = a->npub = 0;
	a->cut = 0;
	for (i = 0; i < n; i++) {
		out[i].reason[0] = '\0';
		a->tags[i] = 0;
		if (a->npub > 0 && held_back(b, out[i].len)) {
			a->cut = 1;
			break;
		}
		if ((st = publish_one(a, &out[i])) != AMQP_STATUS_OK) {
			snprintf(err, errsize, "publish: %s",
			    amqp_error_string2(st));
			return BR_DOWN;
		}
		a->tags[i] = a->next_tag++;
		a->nsent++;
		a->npub++;
	}
	return BR_OK;
}

static int
amqp_confirm(struct bridge *b, struct br_out *out, size_t n, char *err,
    size_t errsize)
{
	struct aconn *a = b->conn;
	amqp_frame_t f;
	struct timeval tv;
	size_t sent = a->nsent < n ? a->nsent : n, left = a->npub;
	uint64_t size, max;
	int st;

	a->nsent = a->npub = 0;
	tv.tv_sec = b->timeout_ms / 1000;
	tv.tv_usec = (b->timeout_ms % 1000) * 1000;
	while (left > 0) {
		st = amqp_simple_wait_frame_noblock(a->c, &f, &tv);
		if (st != AMQP_STATUS_OK) {
			snprintf(err, errsize, "confirms: %s",
			    amqp_error_string2(st));
			return BR_DOWN;
		}
		if (f.frame_type != AMQP_FRAME_METHOD ||
		    (f.channel != 0 && f.channel != a->ch))
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *ack = f.payload.method.decoded;

			confirm(b, out, sent, ack->delivery_tag,
			    ack->multiple, BR_SENT, &left);
			break;
		}
		case AMQP_BASIC_NACK_METHOD: {
			amqp_basic_nack_t *nack = f.payload.method.decoded;

			confirm(b, out, sent, nack->delivery_tag,
			    nack->multiple, BR_REFUSED, &left);
			break;
		}
		case AMQP_BASIC_RETURN_METHOD:
			if ((st = returned(a, out, sent, err, errsize)) !=
			    BR_OK)
				return st;
			break;
		default:
			if ((st = closed_by_server(&f, err, errsize)) == BR_OK)
				break;
			if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD &&
			    too_large(f.payload.method.decoded, &size, &max) &&
			    refuse_large(b, out, sent, size, max, err,
			    errsize) == BR_OK)
				return BR_OK;
			return st;
		}
	}
	if (sent < n && !a->cut) {
		snprintf(err, errsize, "publish: not all sent");
		return BR_DOWN;
	}
	return BR_OK;
}

/*
 * Read the frame that came instead of a delivery (amqp_consume_message's
 * AMQP_STATUS_UNEXPECTED_STATE): the server closing the channel (a
 * batch held past the server's consumer_timeout), the connection, or
 * the consumer.  Returns BR_OK when it was none of those (passed over),
 * else closed_by_server's status with the words in err.
 */
static int
other_frame(struct aconn *a, char *err, size_t errsize)
{
	amqp_frame_t f;
	struct timeval tv = { 1, 0 };
	int st;

	if ((st = amqp_simple_wait_frame_noblock(a->c, &f, &tv)) !=
	    AMQP_STATUS_OK) {
		snprintf(err, errsize, "consume: %s", amqp_error_string2(st));
		return BR_DOWN;
	}
	if ((st = closed_by_server(&f, err, errsize)) != BR_OK)
		return st;
	return BR_OK;
}

static int
amqp_fetch(struct bridge *b, struct br_in *in, size_t max, int64_t wait_ms,
    size_t *got, char *err, size_t errsize)
{
	struct aconn *a = b->conn;
	amqp_rpc_reply_t r;
	amqp_envelope_t *e;
	amqp_basic_properties_t *p;
	struct timeval tv;
	size_t k;
	int j, st;
	void *np;

	*got = 0;
	env_free(a);
	amqp_maybe_release_buffers(a->c);
	if (a->aenv < max) {
		if ((np = reallocarray(a->env, max, sizeof(*a->env))) == NULL)
			goto nomem;
		a->env = np;
		if ((np = reallocarray(a->strs, max * SQ_ATTRS_MAX,
		    sizeof(*a->strs))) == NULL)
			goto nomem;
		a->strs = np;
		a->aenv = max;
	}
	while (a->nenv < max) {
		/* The first waits; the rest take what has come. */
		tv.tv_sec = a->nenv == 0 ? (wait_ms > 0 ? wait_ms : DRAIN_WAIT_MS) / 1000 :
		    0;
		tv.tv_usec = a->nenv == 0 ? ((wait_ms > 0 ? wait_ms : DRAIN_WAIT_MS) %
		    1000) * 1000 : 1000;
		e = &a->env[a->nenv];
		r = amqp_consume_message(a->c, e, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT)
			break;
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
			/* Not a delivery: the frame waits to be read. */
			if ((st = other_frame(a, err, errsize)) != BR_OK)
				return st;
			continue;
		}
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return rpc_fail(r, "consume", err, errsize);
		a->nenv++;
	}
	for (k = 0; k < a->nenv; k++) {
		struct br_in *m = &in[k];

		e = &a->env[k];
		p = &e->message.properties;
		memset(m, 0, sizeof(*m));
		m->body = e->message.body.len > 0 ? e->message.body.bytes :
		    (char *)"";
		m->len = e->message.body.len;
		if (e->routing_key.len > 0 && e->routing_key.len <= SQ_KEY_MAX &&
		    (e->routing_key.len != strlen(a->queue) ||
		    memcmp(e->routing_key.bytes, a->queue,
		    e->routing_key.len) != 0))
			snprintf(m->key, sizeof(m->key), "%.*s",
			    (int)e->routing_key.len,
			    (char *)e->routing_key.bytes);
		if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
		    p->message_id.len <= SQ_DEDUP_MAX) {
			snprintf(m->dedup, sizeof(m->dedup), "%.*s",
			    (int)p->message_id.len,
			    (char *)p->message_id.bytes);
			if (!sq_dedup_id_valid(m->dedup))
				m->dedup[0] = '\0';
		}
		if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
			continue;
		for (j = 0; j < p->headers.num_entries; j++) {
			amqp_table_entry_t *t = &p->headers.entries[j];
			char (*s)[SQ_ATTR_VALUE_MAX + 1] =
			    a->strs[k * SQ_ATTRS_MAX + m->nattrs];

			if ((t->value.kind != AMQP_FIELD_KIND_UTF8 &&
			    t->value.kind != AMQP_FIELD_KIND_BYTES) ||
			    t->key.len > SQ_ATTR_NAME_MAX ||
			    t->value.value.bytes.len > SQ_ATTR_VALUE_MAX ||
			    m->nattrs >= SQ_ATTRS_MAX)
				continue;
			snprintf(s[0], sizeof(s[0]), "%.*s", (int)t->key.len,
			    (char *)t->key.bytes);
			snprintf(s[1], sizeof(s[1]), "%.*s",
			    (int)t->value.value.bytes.len,
			    (char *)t->value.value.bytes.bytes);
			if (strcmp(s[0], HDR_EXPIRES) == 0)
				m->expires_ms = strtonum(s[1], 0, INT64_MAX,
				    NULL);
			else if (strcmp(s[0], HDR_KEY) == 0)
				strlcpy(m->key, s[1], sizeof(m->key));
			else if (strcmp(s[0], BR_HDR_GROUP) == 0)
				br_in_group(m, s[1]);
			else
				br_in_attr(m, s[0], s[1]);
		}
	}
	*got = a->nenv;
	return BR_OK;
nomem:
	snprintf(err, errsize, "%s", strerror(errno));
	return BR_DOWN;
}

static int
amqp_ack(struct bridge *b, char *err, size_t errsize)
{
	struct aconn *a = b->conn;
	int st;

	if (a->nenv == 0)
		return BR_OK;
	if ((st = amqp_basic_ack(a->c, a->ch,
	    a->env[a->nenv - 1].delivery_tag, 1)) != AMQP_STATUS_OK) {
		snprintf(err, errsize, "basic.ack: %s", amqp_error_string2(st));
		return BR_DOWN;
	}
	return BR_OK;
}

static void
amqp_done(struct bridge *b, struct br_in *in, size_t n)
{
	struct aconn *a = b->conn;

	(void)in;
	(void)n;
	if (a != NULL)
		env_free(a);
}

const struct br_ops br_amqp = {
	.scheme = "amqp",
	.tls_scheme = "amqps",
	.default_port = 5672,
	.tls_port = 5671,
	.check = amqp_check,
	.connect = amqp_connect,
	.send = amqp_send,
	.confirm = amqp_confirm,
	.fetch = amqp_fetch,
	.ack = amqp_ack,
	.done = amqp_done,
	.close = amqp_close,
};
