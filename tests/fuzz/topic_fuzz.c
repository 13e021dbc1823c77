/*
 * topic_fuzz.c - routing keys against binding patterns (sq_topic_match),
 * as producers (qsend -k) and operators (qadmin bind) write them.  The
 * input is PATTERN, a NUL, then KEY (no NUL: the key is empty), at most
 * as long as bindings and sends allow.
 *
 * Invariants: the answer is the one of a plain recursive matcher of the
 * AMQP 0-9-1 rules written here from their statement (words split at
 * every '.', '*' one word, '#' zero or more), and a pattern without
 * wildcards matches exactly the key equal to it; every pattern matches
 * itself.
 */
#include "fuzz.h"

#define MAXWORDS	300

struct words {
	const char	*w[MAXWORDS];
	size_t		 len[MAXWORDS];
	size_t		 n;
};

/* Split s at every '.'; "" is zero words.  0, or -1 when too many. */
static int
split(const char *s, struct words *v)
{
	const char *dot;

	v->n = 0;
	if (*s == '\0')
		return 0;
	for (;;) {
		if (v->n == MAXWORDS)
			return -1;
		dot = strchr(s, '.');
		v->w[v->n] = s;
		v->len[v->n++] = dot != NULL ? (size_t)(dot - s) : strlen(s);
		if (dot == NULL)
			return 0;
		s = dot + 1;
	}
}

static int
is(const struct words *v, size_t i, const char *word)
{
	return v->len[i] == strlen(word) && memcmp(v->w[i], word,
	    v->len[i]) == 0;
}

/* Does p[i..] match k[j..]?  memo: 0 unknown, 1 no, 2 yes. */
static int
match(const struct words *p, size_t i, const struct words *k, size_t j,
    unsigned char *memo)
{
	unsigned char *m = &memo[i * (k->n + 1) + j];
	size_t t;
	int r = 0;

	if (*m != 0)
		return *m == 2;
	if (i == p->n)
		r = j == k->n;
	else if (is(p, i, "#")) {
		for (t = j; t <= k->n && !r; t++)
			r = match(p, i + 1, k, t, memo);
	} else if (j < k->n && (is(p, i, "*") || (p->len[i] == k->len[j] &&
	    memcmp(p->w[i], k->w[j], p->len[i]) == 0)))
		r = match(p, i + 1, k, j + 1, memo);
	*m = r ? 2 : 1;
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct words p, k;
	char *pattern = fuzz_str(data, size);
	const char *key = pattern + strlen(pattern);
	unsigned char *memo;
	int got, want;

	if (size > SQ_PATTERN_MAX + 1 + SQ_KEY_MAX) {
		free(pattern);
		return 0;	/* longer than bind and send take */
	}
	if ((size_t)(key - pattern) < size)
		key++;		/* after the NUL */
	got = sq_topic_match(pattern, key);
	fuzz_check(got == 0 || got == 1, "%d", got);
	fuzz_check(sq_topic_match(pattern, pattern) == 1, "\"%s\"", pattern);
	if (strpbrk(pattern, "*#") == NULL)
		fuzz_check(got == (strcmp(pattern, key) == 0), "\"%s\" \"%s\"",
		    pattern, key);
	if (split(pattern, &p) == 0 && split(key, &k) == 0) {
		if ((memo = calloc((p.n + 1) * (k.n + 1), 1)) == NULL)
			abort();
		want = match(&p, 0, &k, 0, memo);
		free(memo);
		fuzz_check(got == want, "\"%s\" \"%s\": %d, want %d", pattern,
		    key, got, want);
	}
	free(pattern);
	return 0;
}
