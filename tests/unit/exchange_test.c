/*
 * exchange_test.c - topic matching against RabbitMQ's own table, routing
 * through fanout, direct and topic exchanges, exchange.conf loading, its
 * errors, and bind/unbind edits.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exchange.h"
#include "tap.h"

static char root[64];

/* ------------------------------------------------------------ topics */

/*
 * RabbitMQ's topic exchange test (rabbitmq-server, test_topic_matching:
 * 26 bindings t1..t26 and the bindings each routing key must reach).
 * "" is zero words there (split_topic_key(<<>>) -> []), so "*" and "*.#"
 * do not match it, while "#", "#.#", "#.#.#" and "" do.
 */
static const char *const rabbit_bindings[] = {
	"a.b.c", "a.*.c", "a.#.b", "a.b.b.c", "#", "#.#", "#.b", "*.*",
	"a.*", "*.b.c", "a.#", "a.#.#", "b.b.c", "a.b.b", "a.b", "b.c", "",
	"*.*.*", "vodka.martini", "a.b.c", "*.#", "#.*.#", "*.#.#", "#.#.#",
	"*", "#.b.#",
};

static const struct {
	const char	*key;
	int		 t[27];		/* binding numbers, 0-terminated */
} rabbit_routes[] = {
	{ "a.b.c", { 1, 2, 5, 6, 10, 11, 12, 18, 20, 21, 22, 23, 24, 26 } },
	{ "a.b", { 3, 5, 6, 7, 8, 9, 11, 12, 15, 21, 22, 23, 24, 26 } },
	{ "a.b.b", { 3, 5, 6, 7, 11, 12, 14, 18, 21, 22, 23, 24, 26 } },
	{ "", { 5, 6, 17, 24 } },
	{ "b.c.c", { 5, 6, 18, 21, 22, 23, 24, 26 } },
	{ "a.a.a.a.a", { 5, 6, 11, 12, 21, 22, 23, 24 } },
	{ "vodka.gin", { 5, 6, 8, 21, 22, 23, 24 } },
	{ "vodka.martini", { 5, 6, 8, 19, 21, 22, 23, 24 } },
	{ "b.b.c", { 5, 6, 10, 13, 18, 21, 22, 23, 24, 26 } },
	{ "nothing.here.at.all", { 5, 6, 21, 22, 23, 24 } },
	{ "oneword", { 5, 6, 21, 22, 23, 24, 25 } },
};

static void
test_rabbit_table(void)
{
	size_t i, j, k;
	int want, got, bad;

	for (i = 0; i < sizeof(rabbit_routes) / sizeof(rabbit_routes[0]);
	    i++) {
		bad = 0;
		for (j = 0; j < sizeof(rabbit_bindings) /
		    sizeof(rabbit_bindings[0]); j++) {
			want = 0;
			for (k = 0; rabbit_routes[i].t[k] != 0; k++)
				if ((size_t)rabbit_routes[i].t[k] == j + 1)
					want = 1;
			got = sq_topic_match(rabbit_bindings[j],
			    rabbit_routes[i].key);
			if (got != want) {
				printf("#   t%zu \"%s\": got %d, want %d\n",
				    j + 1, rabbit_bindings[j], got, want);
				bad++;
			}
		}
		ok(bad == 0, "RabbitMQ table: key \"%s\" reaches its bindings",
		    rabbit_routes[i].key);
	}
}

static void
test_topic_cases(void)
{
	static const struct {
		const char	*pattern, *key;
		int		 match;
	} cases[] = {
		{ "#", "", 1 },			/* zero words */
		{ "#", "a.b", 1 },
		{ "#", ".", 1 },
		{ "*", "", 0 },			/* "" is no word at all */
		{ "*", ".", 0 },		/* two empty words */
		{ "*.*", ".", 1 },
		{ "*", "a", 1 },
		{ "a.*", "a.", 1 },		/* an empty last word */
		{ "a.*", "a", 0 },
		{ "*.a", ".a", 1 },		/* an empty first word */
		{ ".a", "a", 0 },
		{ "#.", "a.", 1 },
		{ "#.#", "a", 1 },
		{ "#.#", "", 1 },
		{ "a.#.b", "a.b", 1 },
		{ "a.#.b", "a.x.b", 1 },
		{ "a.#.b", "a.x.y.b", 1 },
		{ "a.#.b", "a.b.c", 0 },
		{ "a.#.b", "a..b", 1 },
		{ "a.*.b", "a..b", 1 },
		{ "*.*", "a", 0 },
		{ "#.a", "a", 1 },
		{ "#.a", "x.a", 1 },
		{ "#.a", "a.x", 0 },
		{ "a.#", "a", 1 },
		{ "a.#", "b", 0 },
		{ "a.*.#", "a", 0 },
		{ "a.*.#", "a.b", 1 },
		{ "a.*.#", "a.b.c.d", 1 },
		{ "#.*.#", "", 0 },
		{ "#.#.#.#.a", "a", 1 },
		{ "#.#.#.#.a", "b.b.b.b.b", 0 },
		{ "a.b", "a.b", 1 },		/* words are compared exactly */
		{ "a.b", "a.bc", 0 },
		{ "a.b", "ab", 0 },
		{ "ab", "a.b", 0 },
		{ "A.b", "a.b", 0 },
		{ "a*", "ab", 0 },		/* wildcards are whole words */
		{ "a*", "a*", 1 },
		{ "a#", "a.b", 0 },
		{ "*", "*", 1 },
		{ "", "", 1 },
		{ "", "a", 0 },
		{ "a", "", 0 },
		{ "a..b", "a..b", 1 },
		{ "a..b", "a.b", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(sq_topic_match(cases[i].pattern, cases[i].key) ==
		    cases[i].match, "\"%s\" %s \"%s\"", cases[i].pattern,
		    cases[i].match ? "matches" : "does not match",
		    cases[i].key);
}

/* Words joined by '.' into buf: n words, each w (n * (len + 1) - 1). */
static char *
repeat(char *buf, const char *w, size_t n)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(buf, ".");
		strcat(buf, w);
	}
	return buf;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
test_topic_long(void)
{
	char key[512], pat[512], bad[512];
	double t0, dt;
	int i, n = 0;

	memset(key, 'x', 255);
	key[255] = '\0';
	ok(sq_topic_match("#", key) && sq_topic_match("*", key) &&
	    sq_topic_match(key, key), "a 255-byte one-word key");
	repeat(key, "a", 128);		/* 255 bytes, 128 words */
	ok(strlen(key) == 255, "128 words make 255 bytes");
	ok(sq_topic_match("*.#", key) && sq_topic_match("#.*", key) &&
	    sq_topic_match("#.a", key) && !sq_topic_match("*", key),
	    "a 128-word key against short patterns");
	ok(sq_topic_match(repeat(pat, "*", 128), key),
	    "128 stars match 128 words");
	ok(!sq_topic_match(repeat(pat, "*", 127), key),
	    "127 stars do not match 128 words");
	memset(key, '.', 255);		/* 256 empty words */
	key[255] = '\0';
	ok(sq_topic_match("#", key) && sq_topic_match("#.*", key) &&
	    !sq_topic_match("*", key), "256 empty words");

	/* Backtracking patterns: each "#" could take any number of words. */
	repeat(pat, "#", 127);
	strcat(pat, ".a");		/* "#.#.(...).#.a", 255 bytes */
	repeat(key, "b", 128);
	repeat(bad, "#.b", 42);		/* "#.b.#.b...": a second kind */
	t0 = now_s();
	for (i = 0; i < 200; i++)
		n += sq_topic_match(pat, key) + sq_topic_match("#.#.#.#.a", key)
		    + sq_topic_match(bad, key);
	dt = now_s() - t0;
	ok(n == 200 && dt < 2.0, "600 pathological matches (%zu-byte "
	    "pattern, 128-word key) in %.3f s", strlen(pat), dt);
}

/* A reference matcher: the definition, memoized; at most 16 words. */
struct words {
	char	w[16][8];
	int	n;
};

static void
split(struct words *w, const char *s)
{
	const char *dot;

	w->n = 0;
	if (*s == '\0')
		return;		/* zero words */
	for (;;) {
		dot = strchr(s, '.');
		snprintf(w->w[w->n++], sizeof(w->w[0]), "%.*s",
		    (int)(dot ? dot - s : (long)strlen(s)), s);
		if (dot == NULL)
			return;
		s = dot + 1;
	}
}

static int
ref(const struct words *p, const struct words *k, int i, int j,
    signed char memo[17][17])
{
	int r;

	if (memo[i][j] >= 0)
		return memo[i][j];
	if (i == p->n)
		r = j == k->n;
	else if (strcmp(p->w[i], "#") == 0)
		r = ref(p, k, i + 1, j, memo) ||
		    (j < k->n && ref(p, k, i, j + 1, memo));
	else
		r = j < k->n && (strcmp(p->w[i], "*") == 0 ||
		    strcmp(p->w[i], k->w[j]) == 0) &&
		    ref(p, k, i + 1, j + 1, memo);
	return memo[i][j] = (signed char)r;
}

static void
test_topic_reference(void)
{
	static const char *const pw[] = { "a", "b", "", "*", "#", "#" };
	static const char *const kw[] = { "a", "b", "" };
	unsigned long seed = 42;
	signed char memo[17][17];
	struct words p, k;
	char ps[128], ks[128];
	int t, i, n, bad = 0;

	/* Knuth's MMIX LCG: the same pairs on every run. */
#define RAND(m)	((seed = seed * 6364136223846793005UL +			\
	    1442695040888963407UL), (int)((seed >> 33) % (m)))
	for (t = 0; t < 50000; t++) {
		ps[0] = ks[0] = '\0';
		for (i = 0, n = RAND(7); i < n; i++)
			snprintf(ps + strlen(ps), sizeof(ps) - strlen(ps),
			    "%s%s", i ? "." : "", pw[RAND(6)]);
		for (i = 0, n = RAND(7); i < n; i++)
			snprintf(ks + strlen(ks), sizeof(ks) - strlen(ks),
			    "%s%s", i ? "." : "", kw[RAND(3)]);
		split(&p, ps);
		split(&k, ks);
		memset(memo, -1, sizeof(memo));
		if (sq_topic_match(ps, ks) != ref(&p, &k, 0, 0, memo) &&
		    bad++ < 5)
			printf("#   \"%s\" vs \"%s\": got %d\n", ps, ks,
			    sq_topic_match(ps, ks));
	}
#undef RAND
	ok(bad == 0, "50000 random pattern/key pairs agree with the "
	    "definition (%d differ)", bad);
}

/* ------------------------------------------------------------ files */

static void
put_n(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fwrite(text, 1, len, fp) != len || fclose(fp) == EOF) {
		perror(path);
		exit(2);
	}
}

static void
put(const char *path, const char *text)
{
	put_n(path, text, strlen(text));
}

static char *
get(const char *path)
{
	static char buf[64 * 1024];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (fp == NULL)
		return strcpy(buf, "(missing)");
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static char *
at(const char *name)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", root, name);
	return b;
}

static char *
conf_of(const char *name)
{
	static char b[PATH_MAX];

	snprintf(b, sizeof(b), "%s/%s/%s", root, name, SQ_EXCHANGE_FILE);
	return b;
}

/* The queues a route reached, space-separated. */
struct seen {
	char	list[1024];
	int	stop;		/* fail on this call (1-based), 0 never */
	int	calls;
};

static int
collect(const char *queue, void *arg)
{
	struct seen *s = arg;

	if (++s->calls == s->stop) {
		errno = EIO;
		return -1;
	}
	if (s->list[0] != '\0')
		strlcat(s->list, " ", sizeof(s->list));
	strlcat(s->list, queue, sizeof(s->list));
	return 0;
}

static int
route(const char *name, const char *key, char *list, size_t size)
{
	struct sq_exchange x;
	struct seen s;
	char err[PATH_MAX + 300];
	int n;

	memset(&s, 0, sizeof(s));
	if (sq_exchange_open(&x, at(name), err, sizeof(err)) == -1) {
		printf("#   %s\n", err);
		return -2;
	}
	n = sq_exchange_route(&x, key, collect, &s);
	strlcpy(list, s.list, size);
	sq_exchange_close(&x);
	return n;
}

static void
test_create(void)
{
	struct sq_exchange x;
	struct stat st;
	char err[PATH_MAX + 300], why[64];

	ok(sq_exchange_create(at("fan"), "fanout", NULL) == 0,
	    "create a fanout exchange");
	is_str(get(conf_of("fan")), "[exchange]\ntype = fanout\n",
	    "its exchange.conf");
	ok(sq_exchange_create(at("dir"), "direct", "alt") == 0,
	    "create a direct exchange with an alternate");
	is_str(get(conf_of("dir")),
	    "[exchange]\ntype = direct\nalternate = alt\n",
	    "an alternate is written");
	ok(sq_exchange_create(at("top"), "topic", NULL) == 0,
	    "create a topic exchange");
	ok(sq_exchange_create(at("fan"), "fanout", NULL) == -1 &&
	    errno == EEXIST, "an existing exchange is EEXIST");
	ok(sq_queue_create(at("q1"), NULL, NULL, 0, why, sizeof(why)) == 0 &&
	    sq_exchange_create(at("q1"), "fanout", NULL) == -1 &&
	    errno == EEXIST, "a queue's name is EEXIST");
	ok(sq_exchange_create(at("hdr"), "headers", NULL) == -1 &&
	    errno == EINVAL && stat(at("hdr"), &st) == -1,
	    "an unknown type is EINVAL, nothing made");
	ok(sq_exchange_create(at("x"), "topic", "a/b") == -1 &&
	    errno == EINVAL, "a bad alternate name is EINVAL");
	ok(sq_exchange_create(at("deep/er/ex"), "topic", NULL) == 0 &&
	    sq_exchange_is(at("deep/er/ex")), "missing parents are made");

	ok(sq_exchange_is(at("fan")) == 1, "sq_exchange_is: an exchange");
	ok(sq_exchange_is(at("q1")) == 0, "sq_exchange_is: a queue is not");
	ok(sq_exchange_is(at("none")) == 0, "sq_exchange_is: nothing is not");
	ok(symlink("fan", at("link")) == 0 && sq_exchange_is(at("link")) == 0,
	    "sq_exchange_is: a symlink to an exchange is not followed");
	ok(sq_exchange_open(&x, at("link"), err, sizeof(err)) == -1 &&
	    errno == ENOTDIR, "open refuses the symlink: %s", err);
	ok(sq_exchange_open(&x, at("q1"), err, sizeof(err)) == -1 &&
	    errno == ENOTDIR, "open of a queue is ENOTDIR: %s", err);
	ok(sq_exchange_open(&x, at("none"), err, sizeof(err)) == -1 &&
	    errno == ENOENT, "open of nothing is ENOENT: %s", err);
	ok(sq_exchange_open(&x, at("dir"), err, sizeof(err)) == 0 &&
	    x.type == SQ_EXCHANGE_DIRECT && x.alternate != NULL &&
	    strcmp(x.alternate, "alt") == 0 && x.nbindings == 0 &&
	    strcmp(x.root, root) == 0, "open: type, alternate, root");
	sq_exchange_close(&x);
	sq_exchange_close(&x);
	ok(1, "close twice is safe");
}

static void
test_route(void)
{
	struct sq_exchange x;
	struct seen s;
	char list[1024], key[300], err[PATH_MAX + 300];

	/* fanout: every queue once, in binding order, keys ignored. */
	ok(sq_exchange_bind(at("fan"), "q2", NULL) == 0 &&
	    sq_exchange_bind(at("fan"), "q1", NULL) == 0 &&
	    sq_exchange_bind(at("fan"), "q2", NULL) == 0 &&
	    sq_exchange_bind(at("fan"), "q3", "ignored") == 0,
	    "fanout bindings");
	ok(route("fan", "any.key", list, sizeof(list)) == 3, "fanout: 3 queues");
	is_str(list, "q2 q1 q3", "fanout: binding order, no repeats");
	ok(route("fan", NULL, list, sizeof(list)) == 3, "fanout: no key");

	/* direct: byte equality; the alternate when nothing matched. */
	ok(sq_exchange_bind(at("dir"), "q1", "a") == 0 &&
	    sq_exchange_bind(at("dir"), "q2", "b") == 0 &&
	    sq_exchange_bind(at("dir"), "q1", "b") == 0 &&
	    sq_exchange_bind(at("dir"), "q3", "a") == 0 &&
	    sq_exchange_bind(at("dir"), "q4", "") == 0, "direct bindings");
	is_str(get(conf_of("dir")), "[exchange]\ntype = direct\n"
	    "alternate = alt\n\n[bind \"q1\"]\nkey = a\nkey = b\n\n"
	    "[bind \"q2\"]\nkey = b\n\n[bind \"q3\"]\nkey = a\n\n"
	    "[bind \"q4\"]\nkey = \n", "a second key joins its section");
	ok(route("dir", "a", list, sizeof(list)) == 2, "direct a: 2 queues");
	is_str(list, "q1 q3", "direct a");
	ok(route("dir", "b", list, sizeof(list)) == 2, "direct b: 2 queues");
	is_str(list, "q1 q2", "direct b, in file order");
	ok(route("dir", "", list, sizeof(list)) == 1 &&
	    strcmp(list, "q4") == 0, "direct: the empty key");
	ok(route("dir", "A", list, sizeof(list)) == 1 &&
	    strcmp(list, "alt") == 0, "direct: case matters; alternate");
	ok(route("dir", "a.b", list, sizeof(list)) == 1 &&
	    strcmp(list, "alt") == 0, "direct: no wildcards; alternate");

	/* topic: duplicates collapse; no alternate: unroutable is 0. */
	ok(sq_exchange_bind(at("top"), "q1", "orders.#") == 0 &&
	    sq_exchange_bind(at("top"), "q2", "*.eu") == 0 &&
	    sq_exchange_bind(at("top"), "q1", "*.eu") == 0 &&
	    sq_exchange_bind(at("top"), "q3", "orders.*.paid") == 0,
	    "topic bindings");
	ok(route("top", "orders.eu", list, sizeof(list)) == 2,
	    "topic: orders.eu reaches 2 queues");
	is_str(list, "q1 q2", "q1 once though two of its patterns match");
	ok(route("top", "orders.x.paid", list, sizeof(list)) == 2 &&
	    strcmp(list, "q1 q3") == 0, "topic: orders.x.paid");
	ok(route("top", "refunds.us", list, sizeof(list)) == 0 &&
	    list[0] == '\0', "topic: unroutable is 0, fn not called");
	ok(route("top", "", list, sizeof(list)) == 0, "topic: the empty key");

	ok(sq_exchange_open(&x, at("top"), err, sizeof(err)) == 0,
	    "open topic");
	memset(&s, 0, sizeof(s));
	s.stop = 2;
	ok(sq_exchange_route(&x, "orders.eu", collect, &s) == -1 &&
	    errno == EIO && strcmp(s.list, "q1") == 0,
	    "a failing fn stops the route with its errno");
	memset(key, 'k', 256);
	key[256] = '\0';
	memset(&s, 0, sizeof(s));
	ok(sq_exchange_route(&x, key, collect, &s) == -1 && errno == EINVAL &&
	    s.calls == 0, "a 256-byte key is EINVAL");
	key[255] = '\0';
	ok(sq_exchange_route(&x, key, collect, &s) == 0,
	    "a 255-byte key routes");
	sq_exchange_close(&x);
}

static void
test_bind_edits(void)
{
	struct sq_exchange x;
	struct stat a, b;
	char pat[300], longq[SQ_QUEUE_NAME_MAX + 1], err[PATH_MAX + 300] = "";
	char before[4096], list[1024];

	/* Binding twice leaves the very same file. */
	strlcpy(before, get(conf_of("top")), sizeof(before));
	stat(conf_of("top"), &a);
	ok(sq_exchange_bind(at("top"), "q1", "orders.#") == 0 &&
	    sq_exchange_bind(at("top"), "q1", NULL) == 0,
	    "binding again succeeds");
	stat(conf_of("top"), &b);
	ok(a.st_ino == b.st_ino && strcmp(before, get(conf_of("top"))) == 0,
	    "and leaves the file alone");

	ok(sq_exchange_bind(at("top"), "bad/q", "a") == -1 && errno == EINVAL,
	    "a bad queue name is EINVAL");
	ok(sq_exchange_bind(at("top"), ".q", "a") == -1 && errno == EINVAL,
	    "a dot queue name is EINVAL");
	memset(pat, 'p', 256);
	pat[256] = '\0';
	ok(sq_exchange_bind(at("top"), "q1", pat) == -1 && errno == EINVAL,
	    "a 256-byte pattern is EINVAL");
	ok(sq_exchange_bind(at("top"), "q1", "a\nb") == -1 && errno == EINVAL,
	    "a newline is EINVAL");
	ok(sq_exchange_bind(at("top"), "q1", "a\tb") == -1 && errno == EINVAL,
	    "a tab is EINVAL");
	ok(sq_exchange_bind(at("top"), "q1", " a") == -1 && errno == EINVAL &&
	    sq_exchange_bind(at("top"), "q1", "a ") == -1 && errno == EINVAL,
	    "blanks at either end are EINVAL");
	ok(sq_exchange_bind(at("top"), "q1", "a ;b") == -1 &&
	    errno == EINVAL && sq_exchange_bind(at("top"), "q1", ";a") == -1 &&
	    errno == EINVAL, "an inline comment is EINVAL");
	ok(sq_exchange_bind(at("none"), "q1", "a") == -1 && errno == ENOENT,
	    "binding on no exchange is ENOENT");
	ok(sq_exchange_bind(at("q1"), "q1", "a") == -1 && errno == ENOTDIR,
	    "binding on a queue is ENOTDIR");
	is_str(get(conf_of("top")), before, "refusals change nothing");

	/* A 255-byte pattern: longer than inih's 200-byte line. */
	memset(pat, 'p', 255);
	pat[255] = '\0';
	pat[100] = ';';			/* not after a blank: no comment */
	pat[180] = ' ';
	ok(sq_exchange_bind(at("dir"), "q5", pat) == 0,
	    "bind a 255-byte pattern");
	ok(route("dir", pat, list, sizeof(list)) == 1 &&
	    strcmp(list, "q5") == 0, "it reads back whole and routes");
	/* A 128-byte queue name: longer than inih's 49-byte section. */
	memset(longq, 'Q', SQ_QUEUE_NAME_MAX);
	longq[SQ_QUEUE_NAME_MAX] = '\0';
	ok(sq_exchange_bind(at("dir"), longq, "long") == 0 &&
	    route("dir", "long", list, sizeof(list)) == 1 &&
	    strcmp(list, longq) == 0, "a 128-byte queue name reads back");

	/* unbind */
	strlcpy(before, get(conf_of("dir")), sizeof(before));
	ok(sq_exchange_unbind(at("dir"), "q1", "nope") == -1 &&
	    errno == ENOENT && strcmp(before, get(conf_of("dir"))) == 0,
	    "unbinding what is not bound is ENOENT, file untouched");
	ok(sq_exchange_unbind(at("dir"), "q9", NULL) == -1 && errno == ENOENT,
	    "unbinding an unbound queue is ENOENT");
	ok(sq_exchange_unbind(at("dir"), "q1", "a") == 0 &&
	    route("dir", "a", list, sizeof(list)) == 1 &&
	    strcmp(list, "q3") == 0, "unbind one pattern");
	ok(strstr(get(conf_of("dir")), "[bind \"q1\"]\nkey = b\n") != NULL,
	    "the queue's other key stays");
	ok(sq_exchange_unbind(at("dir"), "q1", "b") == 0 &&
	    strstr(get(conf_of("dir")), "q1") == NULL,
	    "its last key takes the section with it");
	ok(route("dir", "b", list, sizeof(list)) == 1 &&
	    strcmp(list, "q2") == 0, "direct b now reaches q2 only");
	ok(sq_exchange_unbind(at("dir"), longq, NULL) == 0 &&
	    sq_exchange_unbind(at("dir"), "q5", NULL) == 0 &&
	    sq_exchange_unbind(at("dir"), "q4", NULL) == 0 &&
	    sq_exchange_unbind(at("dir"), "q2", NULL) == 0 &&
	    sq_exchange_unbind(at("dir"), "q3", NULL) == 0,
	    "unbind every queue");
	is_str(get(conf_of("dir")),
	    "[exchange]\ntype = direct\nalternate = alt\n",
	    "back to the file as created");
	ok(sq_exchange_unbind(at("fan"), "q1", NULL) == 0 &&
	    route("fan", "k", list, sizeof(list)) == 2 &&
	    strcmp(list, "q2 q3") == 0, "fanout unbind");

	/* Hand-written files keep their comments and layout. */
	put(conf_of("top"), "# orders routing\n[exchange]\ntype = topic\n"
	    "\n; EU team\n[bind \"eu\"]\nkey = orders.eu.#   ; all EU\n"
	    "  refunds.*.eu\n\n[bind \"us\"]\nkey = orders.us.#\n");
	ok(route("top", "refunds.x.eu", list, sizeof(list)) == 1 &&
	    strcmp(list, "eu") == 0, "a continuation line is one more key");
	ok(sq_exchange_bind(at("top"), "eu", "audit.#") == 0 &&
	    sq_exchange_unbind(at("top"), "eu", "orders.eu.#") == 0,
	    "edit the hand-written file");
	is_str(get(conf_of("top")), "# orders routing\n[exchange]\n"
	    "type = topic\n\n; EU team\n[bind \"eu\"]\n"
	    "key = refunds.*.eu\nkey = audit.#\n\n[bind \"us\"]\n"
	    "key = orders.us.#\n", "comments stay, the continuation stands "
	    "alone, the new key joins its section");
	ok(sq_exchange_open(&x, at("top"), err, sizeof(err)) == 0 &&
	    x.nbindings == 3, "and it loads%s%s", *err ? ": " : "", err);
	sq_exchange_close(&x);
}

/* Write text (len bytes) as exchange.conf of "bad"; expect err. */
static void
conf_error_n(const char *text, size_t len, const char *want,
    const char *what)
{
	struct sq_exchange x;
	char err[PATH_MAX + 300], full[PATH_MAX + 300];
	int rc;

	put_n(conf_of("bad"), text, len);
	rc = sq_exchange_open(&x, at("bad"), err, sizeof(err));
	snprintf(full, sizeof(full), "%s%s", conf_of("bad"), want);
	ok(rc == -1 && errno == EINVAL && strcmp(err, full) == 0,
	    "%s: %s", what, err);
	if (rc == -1 && strcmp(err, full) != 0)
		printf("#   want %s\n", full);
	if (rc == 0)
		sq_exchange_close(&x);
}

static void
conf_error(const char *text, const char *want, const char *what)
{
	conf_error_n(text, strlen(text), want, what);
}

static void
test_conf(void)
{
	static const char nul[] = "[exchange]\ntype = direct\n"
	    "[bind \"q\"]\nkey = a\0b\n";
	struct sq_exchange x;
	char text[1024], pat[300], err[PATH_MAX + 300] = "";

	ok(sq_exchange_create(at("bad"), "fanout", NULL) == 0, "make bad");
	conf_error("[exchange]\ntype = topic\n[bind \"q\"]\nkey = a\n"
	    "foo = b\n", ":5: foo: unknown key in [bind] (want key)",
	    "an unknown key names file:line:key");
	conf_error("[exchange]\ntype = headers\n",
	    ":2: type: headers: must be fanout, direct or topic", "bad type");
	conf_error("[exchange]\ntype = topic\nalternate = a/b\n",
	    ":3: alternate: a/b: not a queue name "
	    "([A-Za-z0-9][A-Za-z0-9._-]{0,127})", "bad alternate");
	conf_error("[exchange]\ntype = topic\nlease = 5m\n",
	    ":3: lease: unknown key in [exchange] (want type or alternate)",
	    "a queue.conf key");
	conf_error("[exchange]\ntype = fanout\n[bind \"bad/q\"]\n",
	    ":3: [bind \"bad/q\"]: not a queue name "
	    "([A-Za-z0-9][A-Za-z0-9._-]{0,127})", "a bad queue in [bind]");
	conf_error("[exchange]\ntype = fanout\n[bind q]\n",
	    ":3: [bind q]: unknown section (want [exchange] or "
	    "[bind \"QUEUE\"])", "an unquoted queue");
	conf_error("[queue]\nlease = 1m\n", ":1: [queue]: unknown section "
	    "(want [exchange] or [bind \"QUEUE\"])", "an unknown section");
	conf_error("type = fanout\n", ":1: type: not in a section (want "
	    "[exchange] or [bind \"QUEUE\"] before it)", "a key before any "
	    "section");
	conf_error("[exchange]\n", ": type: missing (want [exchange] type = "
	    "fanout, direct or topic)", "no type");
	conf_error("[exchange]\ntype = fanout\ngarbage\n",
	    ":3: not a key = value line or [section]", "a syntax error");
	conf_error("[exchange]\ntype = fanout\n[bind \"q\"\n",
	    ":3: not a key = value line or [section]", "no ]");
	memset(pat, 'p', 256);
	pat[256] = '\0';
	snprintf(text, sizeof(text), "[exchange]\ntype = direct\n"
	    "[bind \"q\"]\nkey = %s\n", pat);
	conf_error(text, ":4: key: longer than 255 bytes", "a long pattern");
	conf_error("[exchange]\ntype = direct\n[bind \"q\"]\nkey = a\001b\n",
	    ":4: key: a control character in the pattern", "a control byte");
	conf_error_n(nul, sizeof(nul) - 1, ":4: a NUL byte in the line",
	    "a NUL byte");

	/* What inih accepts, long lines included. */
	pat[255] = '\0';
	snprintf(text, sizeof(text), "\xef\xbb\xbf[exchange]\r\n"
	    "type = direct ; comment\r\n[ bind   \"q\" ]\r\n"
	    "key = a.#  ; all of a\r\n    %s    ; long\r\n"
	    "key=;x\n\t#  indented comment\nkey = %s\n", pat, pat);
	put(conf_of("bad"), text);
	ok(sq_exchange_open(&x, at("bad"), err, sizeof(err)) == 0,
	    "BOM, CRLF, comments, continuation, long lines: %s",
	    x.nbindings ? "loads" : err);
	ok(x.type == SQ_EXCHANGE_DIRECT && x.nbindings == 4 &&
	    strcmp(x.bindings[0].pattern, "a.#") == 0 &&
	    strcmp(x.bindings[1].pattern, pat) == 0 &&
	    strcmp(x.bindings[2].pattern, ";x") == 0 &&
	    strcmp(x.bindings[3].pattern, pat) == 0,
	    "the values are inih's: stripped, comments cut");
	ok(x.bindings[3].first == 0 && x.bindings[1].first == 0,
	    "one queue: first binding 0");
	sq_exchange_close(&x);
	/* An empty section is a binding without key. */
	put(conf_of("bad"), "[exchange]\ntype = fanout\n[bind \"a\"]\n"
	    "[bind \"b\"]\n# none\n[bind \"a\"]\n");
	ok(sq_exchange_open(&x, at("bad"), err, sizeof(err)) == 0 &&
	    x.nbindings == 3 && x.bindings[0].pattern == NULL &&
	    strcmp(x.bindings[1].queue, "b") == 0 &&
	    x.bindings[2].first == 0, "keyless sections are bindings "
	    "without key%s%s", *err ? ": " : "", err);
	sq_exchange_close(&x);
	/*
	 * An inline comment ends a short continuation line too (inih keeps
	 * it there), so a bind, which writes that line as a key line of its
	 * own, keeps the pattern as it was.
	 */
	put(conf_of("bad"), "[exchange]\ntype = direct\n[bind \"a\"]\n"
	    "key = x\n  y.z ; why\n");
	ok(sq_exchange_open(&x, at("bad"), err, sizeof(err)) == 0 &&
	    x.nbindings == 2 && strcmp(x.bindings[1].pattern, "y.z") == 0,
	    "a continuation line's inline comment is a comment");
	sq_exchange_close(&x);
	ok(sq_exchange_bind(at("bad"), "b", "k") == 0 &&
	    sq_exchange_open(&x, at("bad"), err, sizeof(err)) == 0 &&
	    x.nbindings == 3 && strcmp(x.bindings[1].pattern, "y.z") == 0,
	    "and stays one after a bind");
	sq_exchange_close(&x);
}

static void
test_many(void)
{
	struct sq_exchange x;
	struct seen s;
	char text[64], err[PATH_MAX + 300];
	double t0, dt;
	int i, n = 0;
	FILE *fp;

	ok(sq_exchange_create(at("many"), "topic", NULL) == 0, "make many");
	if ((fp = fopen(conf_of("many"), "a")) == NULL)
		exit(2);
	for (i = 0; i < 1000; i++)
		fprintf(fp, "[bind \"q%d\"]\nkey = orders.%d.#\nkey = *.*.x\n",
		    i % 500, i);
	fclose(fp);
	ok(sq_exchange_open(&x, at("many"), err, sizeof(err)) == 0 &&
	    x.nbindings == 2000 && x.bindings[1999].first == 998,
	    "2000 bindings of 500 queues load; q499 first bound at 998");
	memset(&s, 0, sizeof(s));
	ok(sq_exchange_route(&x, "a.b.x", collect, &s) == 500,
	    "a key every queue matches twice reaches 500 queues once");
	t0 = now_s();
	for (i = 0; i < 100; i++) {
		snprintf(text, sizeof(text), "orders.%d.eu", i * 7);
		memset(&s, 0, sizeof(s));
		n += sq_exchange_route(&x, text, collect, &s);
	}
	dt = now_s() - t0;
	ok(n == 100, "100 routes through 2000 topic bindings in %.3f s "
	    "(%.0f ns per binding)", dt, dt / 100 / 2000 * 1e9);
	sq_exchange_close(&x);
}

int
main(void)
{
	char cmd[PATH_MAX + 16];

	strlcpy(root, "/tmp/exchange_test.XXXXXX", sizeof(root));
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_rabbit_table();
	test_topic_cases();
	test_topic_long();
	test_topic_reference();
	test_create();
	test_route();
	test_bind_edits();
	test_conf();
	test_many();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", root);
	return tap_done();
}
