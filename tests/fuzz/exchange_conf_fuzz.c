/*
 * exchange_conf_fuzz.c - exchange.conf as anyone who may write the
 * exchange directory leaves it: read by every send through the exchange
 * (sq_exchange_open, sq_exchange_route) and edited by `qadmin bind` and
 * `qadmin unbind`.  The input's first byte picks a binding to add and
 * remove; the rest is the file.
 *
 * Invariants: a file that does not load says where, with errno EINVAL;
 * one that loads has a type, valid queue names, patterns of at most
 * SQ_PATTERN_MAX bytes without control bytes, and each binding points at
 * its queue's first binding; routing calls each queue at most once and
 * returns the number of calls; under direct and topic a key equal to a
 * binding's pattern reaches that binding's queue; a bind keeps the file
 * loading with the new binding added and the others unchanged, and the
 * unbind that follows brings back the bindings of before.
 */
#include "fuzz.h"

static const struct {
	const char	*queue, *pattern;
} edits[] = {
	{ "fz", "a.*.c" },
	{ "fz", NULL },
	{ "audit", "#" },
	{ "eu-orders", "orders.eu.#" },
	{ "q", "q" },
};
#define NEDITS	(sizeof(edits) / sizeof(edits[0]))

static char xpath[PATH_MAX];
static int xfd = -1;

struct seen {
	const struct sq_exchange *x;
	const char	*want;		/* a queue that must come, or NULL */
	int		 found;
	size_t		 calls;
	char		 names[64][SQ_QUEUE_NAME_MAX + 1];
};

static int
on_route(const char *queue, void *arg)
{
	struct seen *s = arg;
	size_t i, n = s->calls < 64 ? s->calls : 64;

	for (i = 0; i < n; i++)
		fuzz_check(strcmp(s->names[i], queue) != 0, "%s twice", queue);
	if (s->calls < 64)
		strlcpy(s->names[s->calls], queue, sizeof(s->names[0]));
	s->calls++;
	if (s->want != NULL && strcmp(queue, s->want) == 0)
		s->found = 1;
	return 0;
}

static void
route(const struct sq_exchange *x, const char *key, const char *want)
{
	struct seen s;
	int n;

	memset(&s, 0, sizeof(s));
	s.x = x;
	s.want = want;
	n = sq_exchange_route(x, key, on_route, &s);
	if (key != NULL && strlen(key) > SQ_KEY_MAX) {
		fuzz_check(n == -1 && errno == EINVAL, "key of %zu bytes",
		    strlen(key));
		return;
	}
	fuzz_check(n >= 0 && (size_t)n == s.calls, "%d, %zu calls", n,
	    s.calls);
	if (want != NULL)
		fuzz_check(s.found, "key \"%s\" does not reach %s", key, want);
}

static void
check_loaded(const struct sq_exchange *x)
{
	const struct sq_binding *b;
	size_t i, j;

	fuzz_check(x->type == SQ_EXCHANGE_FANOUT ||
	    x->type == SQ_EXCHANGE_DIRECT || x->type == SQ_EXCHANGE_TOPIC,
	    "type %d", (int)x->type);
	fuzz_check(x->alternate == NULL || sq_queue_name_valid(x->alternate),
	    "alternate \"%s\"", x->alternate);
	for (i = 0; i < x->nbindings; i++) {
		b = &x->bindings[i];
		fuzz_check(sq_queue_name_valid(b->queue), "\"%s\"", b->queue);
		if (b->pattern != NULL) {
			fuzz_check(strlen(b->pattern) <= SQ_PATTERN_MAX,
			    "pattern of %zu bytes", strlen(b->pattern));
			for (j = 0; b->pattern[j] != '\0'; j++) {
				unsigned char c = (unsigned char)b->pattern[j];

				fuzz_check(c >= 0x20 && c != 0x7f,
				    "control byte");
			}
		}
		fuzz_check(b->first <= i && strcmp(x->bindings[b->first].queue,
		    b->queue) == 0, "binding %zu: first %zu", i, b->first);
		for (j = 0; j < b->first; j++)
			fuzz_check(strcmp(x->bindings[j].queue, b->queue) != 0,
			    "binding %zu: %s bound before %zu", i, b->queue,
			    b->first);
	}
	route(x, NULL, NULL);
	route(x, "a.b.c", NULL);
	for (i = 0; i < x->nbindings && i < 16; i++) {
		b = &x->bindings[i];
		route(x, b->pattern, x->type != SQ_EXCHANGE_FANOUT &&
		    b->pattern != NULL ? b->queue : NULL);
	}
}

/* 1 when a and b hold the same bindings in the same order. */
static int
same_bindings(const struct sq_exchange *a, const struct sq_exchange *b)
{
	const struct sq_binding *x, *y;
	size_t i;

	if (a->nbindings != b->nbindings || a->type != b->type)
		return 0;
	for (i = 0; i < a->nbindings; i++) {
		x = &a->bindings[i];
		y = &b->bindings[i];
		if (strcmp(x->queue, y->queue) != 0 ||
		    (x->pattern == NULL) != (y->pattern == NULL) ||
		    (x->pattern != NULL && strcmp(x->pattern, y->pattern) != 0))
			return 0;
	}
	return 1;
}

static int
has_binding(const struct sq_exchange *x, const char *queue,
    const char *pattern)
{
	size_t i;

	for (i = 0; i < x->nbindings; i++)
		if (strcmp(x->bindings[i].queue, queue) == 0 &&
		    (pattern == NULL || (x->bindings[i].pattern != NULL &&
		    strcmp(x->bindings[i].pattern, pattern) == 0)))
			return 1;
	return 0;
}

static void
check_edit(const struct sq_exchange *x, size_t e)
{
	const char *queue = edits[e].queue, *pattern = edits[e].pattern;
	struct sq_exchange y;
	char err[PATH_MAX + 512];
	size_t i;

	if (has_binding(x, queue, pattern))
		return;		/* bind would do nothing, unbind too much */
	fuzz_check(sq_exchange_bind(xpath, queue, pattern) == 0,
	    "bind %s %s: %s", queue, pattern, strerror(errno));
	fuzz_check(sq_exchange_open(&y, xpath, err, sizeof(err)) == 0,
	    "after bind %s %s: %s", queue, pattern, err);
	/* A keyless [bind] of the queue takes the key line instead. */
	fuzz_check(has_binding(&y, queue, pattern) && (y.nbindings ==
	    x->nbindings + 1 || (y.nbindings == x->nbindings &&
	    has_binding(x, queue, NULL))), "bind %s %s: %zu bindings, were "
	    "%zu", queue, pattern, y.nbindings, x->nbindings);
	for (i = 0; i < x->nbindings; i++)
		fuzz_check(x->bindings[i].pattern == NULL ||
		    has_binding(&y, x->bindings[i].queue,
		    x->bindings[i].pattern), "bind %s %s lost %s %s", queue,
		    pattern, x->bindings[i].queue, x->bindings[i].pattern);
	sq_exchange_close(&y);
	if (has_binding(x, queue, NULL))
		return;		/* unbind of the pattern would keep the rest */
	fuzz_check(sq_exchange_unbind(xpath, queue, pattern) == 0,
	    "unbind %s %s: %s", queue, pattern, strerror(errno));
	fuzz_check(sq_exchange_open(&y, xpath, err, sizeof(err)) == 0,
	    "after unbind %s %s: %s", queue, pattern, err);
	fuzz_check(same_bindings(x, &y), "bind and unbind %s %s changed the "
	    "bindings", queue, pattern);
	sq_exchange_close(&y);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sq_exchange x;
	char err[PATH_MAX + 512];
	size_t e;

	if (size < 1)
		return 0;
	if (xfd == -1) {
		snprintf(xpath, sizeof(xpath), "%s/x", fuzz_dir());
		if (mkdir(xpath, 0755) == -1 || (xfd = open(xpath, O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC)) == -1)
			abort();
	}
	e = data[0] % NEDITS;
	fuzz_write(xfd, SQ_EXCHANGE_FILE, data + 1, size - 1);
	err[0] = '\0';
	if (sq_exchange_open(&x, xpath, err, sizeof(err)) == -1) {
		fuzz_check(errno == EINVAL, "errno %d: %s", errno, err);
		fuzz_check(strncmp(err, xpath, strlen(xpath)) == 0, "\"%s\"",
		    err);
		return 0;
	}
	check_loaded(&x);
	check_edit(&x, e);
	sq_exchange_close(&x);
	return 0;
}
