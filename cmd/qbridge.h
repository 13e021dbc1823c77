/*
 * qbridge.h - what the core of qbridge (qbridge.c) and its brokers
 * (qbridge_redis.c, qbridge_nats.c, qbridge_amqp.c) share.
 *
 * The core owns the local queue: it claims, settles and sends through
 * libspoolq, keeps the worker lock and heartbeat, the back-off and the
 * signals.  A broker owns one connection and speaks its client library:
 * it publishes a batch and says, per message, whether the broker took
 * it durably; it fetches a batch and acks it once the core has made it
 * durable locally.  No queue logic in a broker, no wire protocol in the
 * core.
 */
#ifndef QBRIDGE_H
#define QBRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "spoolq.h"

/* What a broker call returns. */
#define BR_OK		0	/* done */
#define BR_DOWN		1	/* connection lost or refused: back off */
#define BR_AUTH		2	/* credentials refused: exit 77 */
#define BR_CONFIG	3	/* the URL names nothing usable: exit 78 */

/* The outcome of one published message (struct br_out.status). */
#define BR_SENT		10	/* confirmed durably: ack locally */
#define BR_REFUSED	11	/* refused for good: dead-letter, r=reason */
#define BR_PENDING	12	/* not confirmed: publish again later */

#define BR_ERR_MAX	512	/* bytes of an error message */
#define BR_BATCH_MAX	1000	/* messages per batch (--batch) */
#define DRAIN_WAIT_MS	1000	/* --drain: in ends after this long with none */

/* The URL, split.  Strings are "" when absent. */
struct br_url {
	char		 scheme[16];	/* redis, rediss, nats, tls, amqp, amqps */
	char		 host[256];
	int		 port;		/* 0: the scheme's default */
	char		 path[512];	/* after the first '/' of the path */
	char		 query[1024];	/* after '?', unparsed */
	char		 shown[2048];	/* for messages: no credentials */
};

/* Credentials, from --credentials FILE or the environment. */
struct br_cred {
	char		 user[256];
	char		 password[1024];
};

/* One message going out: read from the queue by the core. */
struct br_out {
	const char	*id;		/* spoolq ID */
	const char	*key;		/* routing key, or NULL */
	char		*body;
	size_t		 len;
	struct sq_attr	*attrs;
	size_t		 nattrs;
	int64_t		 expires_ms;	/* 0: never */
	const char	*group;		/* group key (g=), or NULL */
	int		 status;	/* BR_SENT, BR_REFUSED, BR_PENDING */
	char		 reason[SQ_REASON_MAX];	/* with BR_REFUSED */
};

/* One message coming in: filled by the broker, sent by the core. */
struct br_in {
	char		*body;		/* malloc'ed by the broker */
	size_t		 len;
	char		 key[SQ_KEY_MAX + 1];
	struct sq_attr	 attrs[SQ_ATTRS_MAX];	/* strings owned by the broker */
	size_t		 nattrs;
	char		 dedup[SQ_DEDUP_MAX + 1];	/* "": none */
	int64_t		 expires_ms;	/* 0: never */
	char		 group[SQ_GROUP_MAX];	/* group key, "": none */
	int		 dead;		/* set by the core: 0, or set aside
					   into dead/ with this r= (IN_DEAD_*),
					   not sent again with its batch */
};

struct bridge;

/*
 * A broker.  Every call gets the bridge (its url, cred, options and the
 * broker's own state in b->conn) and an error buffer it fills when it
 * returns anything but BR_OK.
 *
 * check: the URL names what the broker needs (before anything starts).
 * connect: open the connection (and, for in, the consumer); for out,
 *	set b->body_max where the server tells its limit.
 * send: publish n messages in order without waiting for their
 *	confirmations (out[] must stay in place until confirm); a message
 *	refused at once gets BR_REFUSED.  None has a body over b->body_max:
 *	the core refused those.  It may stop before the end on purpose
 *	(AMQP: a body the server may refuse, see held_back), the rest left
 *	BR_PENDING.  BR_DOWN when the connection failed (confirm is still
 *	called for what went out).
 * confirm: wait for the confirmations of the last send (the same out[]
 *	and n), setting out[i].status; those not confirmed stay BR_PENDING,
 *	to go out again first, after a BR_OK too (AMQP: a channel closed on
 *	one message, dead-lettered, and opened again).  BR_DOWN when the
 *	connection failed.  One send is confirmed before the next: the
 *	core works on its queue in between.
 * fetch: wait up to wait_ms for up to max messages into in[], *got of
 *	them; re-delivered unacked messages of this consumer come first.
 * ack: acknowledge the last fetch to the broker (all *got of them).
 * hold: the last fetch (and any batch fetched ahead) is still held, not
 *	acknowledged, while the queue does not take it: tell the broker it
 *	is being worked on, so that it does not deliver it again to another
 *	consumer meanwhile (NATS: +WPI, which restarts the ack wait).
 *	Called every b->hold_ms during such a wait; NULL when the broker
 *	has no such timer.
 * fetched: whether the broker delivered messages to this bridge ahead
 *	of the next fetch that a stop would leave delivered and not acked
 *	(Redis: pending to this consumer, read again by its name only).
 *	The core then takes them in before it stops, with b->stopping set:
 *	fetch then reads nothing more ahead and does not wait.  NULL where
 *	the close gives them back (NATS: Nak; AMQP: requeued).
 * done: free what fetch allocated for its messages; those not acked
 *	(the local send or the ack failed) are given back where the broker
 *	would otherwise keep them until a timeout (NATS: Nak, in order).
 * close: drop the connection (after an error, or at the end).
 */
struct br_ops {
	const char	*scheme, *tls_scheme;
	int		 default_port, tls_port;
	int	(*check)(struct bridge *, char *, size_t);
	int	(*connect)(struct bridge *, char *, size_t);
	int	(*send)(struct bridge *, struct br_out *, size_t, char *,
		    size_t);
	int	(*confirm)(struct bridge *, struct br_out *, size_t, char *,
		    size_t);
	int	(*fetch)(struct bridge *, struct br_in *, size_t, int64_t,
		    size_t *, char *, size_t);
	int	(*ack)(struct bridge *, char *, size_t);
	int	(*hold)(struct bridge *, char *, size_t);
	int	(*fetched)(struct bridge *);
	void	(*done)(struct bridge *, struct br_in *, size_t);
	void	(*close)(struct bridge *);
};

struct bridge {
	const struct br_ops *ops;
	struct br_url	 url;
	struct br_cred	 cred;
	int		 in;		/* 1: qbridge in; 0: out */
	int		 tls;		/* the TLS scheme was given */
	const char	*cacert;	/* --cacert: the CAs to trust, or NULL:
					   the system's (OpenSSL's default paths) */
	size_t		 batch;		/* messages per batch / prefetch */
	int64_t		 timeout_ms;	/* connect and reply timeout */
	int		 stopping;	/* in: the last fetches before a stop
					   (see fetched) */
	int64_t		 hold_ms;	/* in: hold a held fetch this often
					   (below the broker's redelivery
					   timer), set by connect; 0: never */
	uint64_t	 body_max;	/* out: the largest body the broker
					   takes, 0: not known.  The core
					   refuses (r=refused) a larger one
					   unsent.  Told at each connect
					   (Redis: proto-max-bulk-len, NATS:
					   max_payload), or learned from the
					   refusal of a larger one (AMQP: the
					   smallest so learned, kept across
					   connections) */
	uint64_t	 body_ok;	/* out: the largest body it confirmed
					   (AMQP), kept across connections.
					   Both forgotten by SIGHUP */
	void		*conn;		/* the broker's state */
};

extern const struct br_ops br_redis, br_nats, br_amqp;

/*
 * br_query - the value of name in the URL's query ("a=1&b=2") into buf
 * (size bytes), percent-decoded.  Returns 1 when found, 0 when absent,
 * -1 when it does not fit.
 */
int	br_query(const struct br_url *u, const char *name, char *buf,
	    size_t size);

/*
 * br_query_check - every name in the URL's query is one of names
 * (NULL-terminated).  Returns 0, or -1 with the bad name in err.
 */
int	br_query_check(const struct br_url *u, const char *const *names,
	    char *err, size_t errsize);

/* The name of the header (NATS, AMQP) or field (Redis) of a group. */
#define BR_HDR_GROUP	"Spoolq-Group"
#define BR_FIELD_GROUP	"group"

/*
 * br_in_group - the group named value (a key as out sends it, or any
 * name another producer gave) as in's group key, by sq_group_key.
 */
void	br_in_group(struct br_in *in, const char *value);

/*
 * br_tls_refused - the broker's certificate was refused (host: for its
 * names, else for its chain): append to the message in err what was
 * checked against (--cacert or the system's CAs, the URL's host).
 * Returns BR_CONFIG: retrying would not make the server trusted.
 */
int	br_tls_refused(const struct bridge *b, int host, char *err,
	    size_t errsize);

/*
 * br_attrs_format - attributes as "NAME=VALUE\n" lines into a malloc'ed
 * string (for brokers with no header map); *len gets its length.
 * Returns NULL when out of memory.
 */
char	*br_attrs_format(const struct sq_attr *a, size_t n, size_t *len);

/*
 * br_attrs_parse - split "NAME=VALUE\n" lines (s, modified in place)
 * into in->attrs after those already there, skipping lines that are not
 * valid attributes.
 */
void	br_attrs_parse(struct br_in *in, char *s);

/*
 * br_in_attr - add one attribute to in when name and value are valid
 * and there is room; the strings must outlive the send.  Returns 1 when
 * added, 0 when skipped.
 */
int	br_in_attr(struct br_in *in, const char *name, const char *value);

#endif
