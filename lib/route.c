/*
 * route.c - routing through an exchange (SPEC 5): which bound queues a
 * routing key reaches, by the exchange's type - fanout, direct or AMQP
 * topic patterns.
 *
 * It owns the matching only: the bindings come from exchange.conf as
 * exchange.c read it, and the delivery of the one message to every
 * queue chosen is fanout.c's.  Nothing here touches a file; the result
 * depends only on the bindings and the key, so a send routes the same
 * way whoever runs it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"

/* ------------------------------------------------------------ topics */

/* The word after the one at w (in a string ending at end), or NULL. */
static const char *
word_next(const char *w, const char *end)
{
	const char *dot = memchr(w, '.', (size_t)(end - w));

	return dot != NULL ? dot + 1 : NULL;
}

static size_t
word_len(const char *w, const char *end)
{
	const char *dot = memchr(w, '.', (size_t)(end - w));

	return (size_t)((dot != NULL ? dot : end) - w);
}

int
sq_topic_match(const char *pattern, const char *key)
{
	const char *pend = pattern + strlen(pattern), *kend = key + strlen(key);
	const char *p, *k, *star = NULL, *skey = NULL;
	size_t plen;
	int hash = 0;

	/* A word cursor is the start of a word; NULL is past the last. */
	p = *pattern != '\0' ? pattern : NULL;
	k = *key != '\0' ? key : NULL;
	for (;;) {
		if (p != NULL) {
			plen = word_len(p, pend);
			if (plen == 1 && *p == '#') {
				/* Try zero words first; widen on mismatch. */
				hash = 1;
				star = p = word_next(p, pend);
				skey = k;
				continue;
			}
			if (k != NULL && ((plen == 1 && *p == '*') ||
			    (plen == word_len(k, kend) &&
			    memcmp(p, k, plen) == 0))) {
				p = word_next(p, pend);
				k = word_next(k, kend);
				continue;
			}
		} else if (k == NULL)
			return 1;
		/* Mismatch: the last '#' takes one more key word, if any. */
		if (!hash || skey == NULL)
			return 0;
		k = skey = word_next(skey, kend);
		p = star;
	}
}

/* ------------------------------------------------------------ routing */

int
sq_exchange_route(const struct sq_exchange *x, const char *key,
    sq_route_fn *fn, void *arg)
{
	const struct sq_binding *b;
	unsigned char *seen;
	size_t i;
	int n = 0, hit;

	if (key == NULL)
		key = "";
	if (strlen(key) > SQ_KEY_MAX) {
		errno = EINVAL;
		return -1;
	}
	if ((seen = calloc(x->nbindings + 1, 1)) == NULL)
		return -1;
	for (i = 0; i < x->nbindings; i++) {
		b = &x->bindings[i];
		if (seen[b->first])
			continue;	/* this queue has its copy */
		switch (x->type) {
		case SQ_EXCHANGE_FANOUT:
			hit = 1;
			break;
		case SQ_EXCHANGE_DIRECT:
			hit = b->pattern != NULL && strcmp(b->pattern, key) == 0;
			break;
		default:
			hit = b->pattern != NULL &&
			    sq_topic_match(b->pattern, key);
			break;
		}
		if (!hit)
			continue;
		seen[b->first] = 1;
		if (fn(b->queue, arg) != 0) {
			free(seen);
			return -1;
		}
		n++;
	}
	free(seen);
	if (n == 0 && x->alternate != NULL) {
		if (fn(x->alternate, arg) != 0)
			return -1;
		n = 1;
	}
	return n;
}
