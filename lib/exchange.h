/*
 * exchange.h - exchanges: one send routed to every queue bound to it
 * (SPEC 5; spoolq(5) exchange.conf).  To be merged into spoolq.h as its
 * "exchange" module.
 *
 * An exchange is a directory beside the queues of a spool root holding
 * one file, exchange.conf (INI):
 *
 *	[exchange]
 *	type = topic			; fanout, direct or topic
 *	alternate = unrouted		; optional: gets what matches nothing
 *
 *	[bind "audit"]			; a fanout binding needs no key
 *	[bind "eu-orders"]
 *	key = orders.eu.#		; repeatable: one binding per key line
 *	key = refunds.*.eu
 *
 * Bound queues and the alternate are queue names (never paths), resolved
 * in the exchange's parent directory, the spool root.  The file is
 * replaced whole by rename(2), so a reader sees the old bindings or the
 * new ones.
 *
 * exchange.c reads and writes exchange.conf (sq_exchange_open, create,
 * bind, unbind, destroy); route.c picks the queues a routing key goes
 * to (sq_topic_match, sq_exchange_route); fanout.c delivers to them.
 */
#ifndef SPOOLQ_EXCHANGE_H
#define SPOOLQ_EXCHANGE_H

#include <limits.h>
#include <stddef.h>

#include "spoolq.h"

#define SQ_EXCHANGE_FILE	"exchange.conf"
#define SQ_PATTERN_MAX		255	/* binding pattern bytes (AMQP shortstr) */

/* How an exchange picks queues for a routing key (SPEC 5). */
enum sq_exchange_type {
	SQ_EXCHANGE_FANOUT,	/* every bound queue; the key is ignored */
	SQ_EXCHANGE_DIRECT,	/* pattern == key, byte for byte */
	SQ_EXCHANGE_TOPIC	/* AMQP 0-9-1 topic pattern: sq_topic_match */
};

/* One binding: a queue and one pattern, as one key line binds them. */
struct sq_binding {
	char	*queue;		/* queue name, under the exchange's root */
	char	*pattern;	/* NULL: a [bind] section with no key */
	size_t	 first;		/* index of this queue's first binding */
};

/* An exchange as read from its exchange.conf. */
struct sq_exchange {
	char			 path[PATH_MAX];	/* as given */
	char			 root[PATH_MAX];	/* its parent: where bound
							   queues live */
	enum sq_exchange_type	 type;
	char			*alternate;	/* queue name, or NULL */
	struct sq_binding	*bindings;	/* in file order */
	size_t			 nbindings;
};

/*
 * sq_exchange_type_name - "fanout", "direct" or "topic"; the words of
 * the type key in exchange.conf.
 */
const char	*sq_exchange_type_name(enum sq_exchange_type t);

/*
 * sq_exchange_is - 1 when path is a directory holding a regular file
 * exchange.conf, else 0.  The last component of path and exchange.conf
 * are not followed when they are symbolic links (like sq_queue_open).
 * Errors (EACCES...) answer 0 with errno set; the caller's open then
 * reports them.
 */
int	sq_exchange_is(const char *path);

/*
 * sq_exchange_open - read the exchange at path (its directory is not
 * followed when a symlink) into *x, which sq_exchange_close frees.
 * exchange.conf is checked whole: sections [exchange] and [bind "QUEUE"]
 * only; type (required) fanout, direct or topic; alternate and QUEUE
 * valid queue names (sq_queue_name_valid); key (the only key of a
 * [bind] section, repeatable) a pattern of at most SQ_PATTERN_MAX bytes
 * without control bytes.  Lines are read as inih reads INI (comments
 * ';' and '#', inline "  ; comment", indented continuation lines, each
 * of which is one more key line), with no limit on line length.
 * Returns 0, or -1 with errno ENOENT (no such directory), ENOTDIR (no
 * exchange.conf in it: not an exchange), EINVAL (a bad line; err holds
 * "FILE:LINE: KEY: reason", or "FILE: type: missing"), EFBIG (over
 * 16 MiB), ENOMEM, or the errno of open(2)/read(2).  err (errsize
 * bytes) always gets a message on failure.
 */
int	sq_exchange_open(struct sq_exchange *x, const char *path, char *err,
	    size_t errsize);

/* sq_exchange_close - free what sq_exchange_open allocated.  Safe twice. */
void	sq_exchange_close(struct sq_exchange *x);

/*
 * sq_topic_match - 1 when the routing key matches the topic pattern,
 * else 0, by the AMQP 0-9-1 topic exchange rules as RabbitMQ implements
 * them (rabbit_db_topic_exchange.erl, split_topic_key; its topic test
 * table is in tests/unit/exchange_test.c): both are split into words at
 * every '.'; the empty string is zero words, so "a." is the words "a"
 * and "" (empty words count); in the pattern "*" matches exactly one
 * word and "#" zero or more, any other word only itself.  Greedy
 * matching that backtracks to the last "#" only, as glob matching does:
 * at most (words in pattern) x (words in key) steps, no recursion, so
 * "#.#.#.#.a" costs no more than "#.a".  Any length is accepted; keys
 * and patterns are limited elsewhere (SQ_KEY_MAX, SQ_PATTERN_MAX).
 */
int	sq_topic_match(const char *pattern, const char *key);

/*
 * Called once per queue a message goes to.  Return 0 to go on; any
 * other value stops the routing, which then fails with errno as fn
 * left it.
 */
typedef int	sq_route_fn(const char *queue, void *arg);

/*
 * sq_exchange_route - call fn(queue, arg) once for every distinct queue
 * whose binding matches key (NULL means ""), in the order of each
 * queue's first matching binding: fanout, every binding; direct, the
 * pattern equals key; topic, sq_topic_match(pattern, key).  A binding
 * without a pattern matches only under fanout.  When nothing matched
 * and x has an alternate, fn is called once for it (RabbitMQ's
 * alternate exchange, here a queue).  Returns the number of calls of
 * fn (0: unroutable), or -1 with errno EINVAL (key over SQ_KEY_MAX
 * bytes), ENOMEM, or fn's errno when fn stopped it.
 */
int	sq_exchange_route(const struct sq_exchange *x, const char *key,
	    sq_route_fn *fn, void *arg);

/*
 * sq_exchange_create - create the exchange directory path with an
 * exchange.conf of the given type ("fanout", "direct" or "topic") and
 * alternate queue name (NULL: none), fsynced.  Built under a dot name
 * beside its place and renamed into place, like sq_queue_create, so it
 * appears whole or not at all; missing parents are created.  Returns 0,
 * or -1 with errno EEXIST (a queue, exchange or other file already has
 * the name), EINVAL (bad type or alternate name, or a path ending in
 * "." or ".."), or the errno of mkdir(2)/open(2)/write(2).
 */
int	sq_exchange_create(const char *path, const char *type,
	    const char *alternate);

/*
 * sq_exchange_bind - bind queue (a queue name, not checked to exist)
 * to the exchange at path with pattern (NULL: no key, as fanout
 * bindings need none).  An existing binding of queue with that pattern
 * (or, for NULL, any binding of queue) makes this a no-op that leaves
 * the file untouched.  Otherwise a key line is added to queue's [bind]
 * section, or a new section is appended.  Comments and the other lines
 * are kept.  The new exchange.conf is written to a temporary file,
 * fsynced and renamed over the old one, then the directory fsynced;
 * concurrent binds and unbinds are serialized by flock(2) on the
 * exchange directory.  A pattern must survive the INI round trip: at
 * most SQ_PATTERN_MAX bytes, no control bytes (newline, tab...), no
 * blank at either end, no ';' first or after a blank (an inline
 * comment).  Returns 0, or -1 with errno EINVAL (bad queue name or
 * pattern, or an exchange.conf that does not load), ENOENT, ENOTDIR
 * (not an exchange), or a file-system errno.
 */
int	sq_exchange_bind(const char *path, const char *queue,
	    const char *pattern);

/*
 * sq_exchange_unbind - remove queue's binding with pattern from the
 * exchange at path, or, with pattern NULL, every binding of queue.  A
 * [bind] section left without keys is removed with its last key, so a
 * direct or topic binding never turns into a fanout one.  Written as
 * sq_exchange_bind writes.  Returns 0, or -1 with errno ENOENT when no
 * such binding exists (the file is untouched), and the errors of
 * sq_exchange_bind.
 */
int	sq_exchange_unbind(const char *path, const char *queue,
	    const char *pattern);

/*
 * sq_exchange_destroy - remove the exchange at path: renamed to a dot
 * name first, so that senders stop finding it at once, then its files
 * and directory removed.  Bound queues are not touched.  The directory
 * renamed is checked to be the one judged an exchange (its device and
 * inode): what took the name in between (the exchange destroyed by
 * another, a queue made under its name) is renamed back untouched, and
 * the call fails with ENOENT.  A bind that writes into the exchange
 * after the rename is removed with it.  Returns 0, or -1 with errno
 * ENOTDIR (not an exchange), ENOENT, EBUSY (still written into after
 * 16 emptyings), or a file-system errno.
 */
int	sq_exchange_destroy(const char *path);

#endif /* SPOOLQ_EXCHANGE_H */
