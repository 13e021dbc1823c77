/*
 * name_fuzz.c - message names and receipts (spoolq(5) NAMES), and the
 * other names users and files give: queue names, deduplication IDs,
 * attribute names, dead-letter reasons, states.  Anyone who can write
 * into new/ or hand qack a path chooses these bytes.
 *
 * Invariants: a name that parses has an ID as spoolq(5) defines it, no
 * '/' or control byte anywhere (names read from run/index, dedup
 * markers and receipts are used as file names in a state directory), and
 * formats back into a name no longer than itself that parses to the same
 * fields, and formatting is canonical (a formatted name formats to
 * itself); sq_id_time reads the seconds an ID starts with; a receipt that
 * splits ends in its parsed name and has no ".." component; each name
 * validator agrees with its grammar, written out here as a reference.
 */
#include <ctype.h>

#include "fuzz.h"

static int
same_name(const struct sq_name *a, const struct sq_name *b)
{
	return strcmp(a->id, b->id) == 0 && a->attempts == b->attempts &&
	    a->lease == b->lease && strcmp(a->token, b->token) == 0 &&
	    a->due == b->due && a->expires == b->expires &&
	    strcmp(a->reason, b->reason) == 0 && a->has_attr == b->has_attr;
}

static void
check_name(const char *s)
{
	struct sq_name n, m;
	char buf[SQ_NAME_MAX + 1], again[SQ_NAME_MAX + 1];
	size_t i, idlen;

	if (sq_name_parse(&n, s) == -1) {
		fuzz_check(errno == EINVAL, "errno %d", errno);
		return;
	}
	idlen = strlen(n.id);
	fuzz_check(idlen > 0 && n.id[0] != '.' && strlen(s) <= SQ_NAME_MAX,
	    "\"%s\"", s);
	fuzz_check(strncmp(s, n.id, idlen) == 0 &&
	    (s[idlen] == '\0' || s[idlen] == ','), "\"%s\"", s);
	/* Names from an index, a marker or a receipt never leave their dir. */
	for (i = 0; s[i] != '\0'; i++)
		fuzz_check(s[i] != '/' && !iscntrl((unsigned char)s[i]),
		    "\"%s\"", s);
	fuzz_check(n.reason[0] == '\0' || sq_reason_valid(n.reason),
	    "\"%s\"", s);
	fuzz_check(sq_name_format(buf, sizeof(buf), &n) == 0,
	    "\"%s\" does not format: %s", s, strerror(errno));
	fuzz_check(strlen(buf) <= strlen(s), "\"%s\" -> \"%s\"", s, buf);
	fuzz_check(sq_name_parse(&m, buf) == 0, "\"%s\" -> \"%s\"", s, buf);
	fuzz_check(same_name(&n, &m), "\"%s\" -> \"%s\"", s, buf);
	fuzz_check(sq_name_format(again, sizeof(again), &m) == 0 &&
	    strcmp(buf, again) == 0, "\"%s\" -> \"%s\"", buf, again);
}

static void
check_id_time(const char *s)
{
	int64_t t = sq_id_time(s), v = 0;
	int i;

	if (t < 0)
		return;
	for (i = 0; i < 10; i++) {
		fuzz_check(isdigit((unsigned char)s[i]), "\"%s\"", s);
		v = v * 10 + (s[i] - '0');
	}
	fuzz_check(v == t && s[10] == '.', "\"%s\": %lld", s, (long long)t);
}

/* The receipt grammar of qack(1): DIR/cur/NAME, cur/NAME or NAME. */
static void
check_receipt(const char *s)
{
	char qdir[PATH_MAX], name[SQ_NAME_MAX + 1];
	struct sq_name n;
	size_t len = strlen(s), nlen;
	const char *p;

	if (sq_receipt_split(s, qdir, sizeof(qdir), name, sizeof(name)) == -1)
		return;
	nlen = strlen(name);
	fuzz_check(sq_name_parse(&n, name) == 0 && n.lease >= 0, "\"%s\"", s);
	fuzz_check(nlen <= len && strcmp(s + len - nlen, name) == 0 &&
	    (nlen == len || s[len - nlen - 1] == '/'), "\"%s\"", s);
	for (p = s; (p = strstr(p, "..")) != NULL; p += 2)
		fuzz_check(!((p == s || p[-1] == '/') &&
		    (p[2] == '\0' || p[2] == '/')), "\"%s\"", s);
	if (nlen == len) {
		fuzz_check(strcmp(qdir, "..") == 0, "\"%s\" -> %s", s, qdir);
		return;
	}
	/* The queue directory is what comes before "/cur/NAME". */
	if (strcmp(qdir, ".") != 0 && strcmp(qdir, "/") != 0)
		fuzz_check(strncmp(s, qdir, strlen(qdir)) == 0 &&
		    strncmp(s + strlen(qdir), "/cur/", 5) == 0,
		    "\"%s\" -> %s", s, qdir);
}

/* Reference: 1 when s is min..max bytes of set, not starting with notfirst. */
static int
grammar(const char *s, const char *set, size_t min, size_t max,
    const char *notfirst)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, set) == n &&
	    (n == 0 || strchr(notfirst, s[0]) == NULL);
}

#define LOWER	"abcdefghijklmnopqrstuvwxyz"
#define UPPER	"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGIT	"0123456789"

static void
check_validators(const char *s)
{
	char path[PATH_MAX + 1];
	enum sq_state st;
	int valid;

	valid = grammar(s, LOWER UPPER DIGIT "._-", 1, SQ_QUEUE_NAME_MAX,
	    "._-");
	fuzz_check(sq_queue_name_valid(s) == valid, "queue \"%s\"", s);
	if (sq_queue_path(path, sizeof(path), "/spool", s) == 0) {
		if (strchr(s, '/') != NULL)
			fuzz_check(strcmp(path, s) == 0, "\"%s\"", s);
		else
			fuzz_check(valid && strncmp(path, "/spool/", 7) == 0 &&
			    strcmp(path + 7, s) == 0, "\"%s\"", s);
	} else
		fuzz_check(!valid, "\"%s\": %s", s, strerror(errno));
	fuzz_check(sq_dedup_id_valid(s) == grammar(s, LOWER UPPER DIGIT
	    "._:@+=-", 1, SQ_DEDUP_MAX, "."), "dedup \"%s\"", s);
	fuzz_check(sq_attr_name_valid(s) == grammar(s, LOWER UPPER DIGIT "_-",
	    1, SQ_ATTR_NAME_MAX, ""), "attribute \"%s\"", s);
	fuzz_check(sq_reason_valid(s) == grammar(s, LOWER DIGIT "-", 1,
	    SQ_REASON_MAX - 1, ""), "reason \"%s\"", s);
	if (sq_state_parse(s, &st) == 0)
		fuzz_check(strcmp(s, sq_state_name(st)) == 0 ||
		    strcmp(s, sq_state_dir(st)) == 0, "state \"%s\"", s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);

	check_name(s);
	check_id_time(s);
	check_receipt(s);
	check_validators(s);
	free(s);
	return 0;
}
