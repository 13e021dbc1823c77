/*
 * value_fuzz.c - the values of queue.conf keys and of duration options
 * (--delay, --ttl, --lease, -t): durations, sizes, counts and words, as
 * users type them on a command line or into queue.conf.
 *
 * Invariants: a duration is 0 to 100 years and prints (sq_duration_format)
 * as a duration that parses to the same milliseconds; for every key, a
 * value that sq_conf_set takes reads back (sq_conf_get) as a value that
 * sets the same setting, and changes no other key; a value that is
 * refused leaves the settings as they were and says why; a size starts
 * with a digit (no sign, no blanks, no hexadecimal).
 */
#include <ctype.h>

#include "fuzz.h"

#define MAX_MS	(100LL * 365 * 86400 * 1000)

static void
check_duration(const char *s)
{
	char buf[64];
	int64_t ms, again;

	if (sq_duration_parse(s, &ms) == -1) {
		fuzz_check(errno == EINVAL || errno == ERANGE, "\"%s\": %d", s,
		    errno);
		return;
	}
	fuzz_check(ms >= 0 && ms <= MAX_MS, "\"%s\": %lld", s, (long long)ms);
	fuzz_check(isdigit((unsigned char)s[0]), "\"%s\"", s);
	sq_duration_format(ms, buf, sizeof(buf));
	fuzz_check(sq_duration_parse(buf, &again) == 0 && again == ms,
	    "\"%s\": %lld -> \"%s\"", s, (long long)ms, buf);
}

/*
 * 1 when a and b differ at most in key (NULL: not at all).  Both are
 * copies of one struct made by sq_conf_defaults, so memcmp sees padding
 * alike; key is set back to its default first.
 */
static int
conf_same(const struct sq_conf *a, const struct sq_conf *b, const char *key)
{
	struct sq_conf x = *a;
	char def[SQ_CONF_VALUE_MAX], why[256];

	if (key != NULL && (sq_conf_get(b, key, def, sizeof(def)) == -1 ||
	    sq_conf_set(&x, key, def, why, sizeof(why)) == -1))
		return 0;
	return memcmp(&x, b, sizeof(x)) == 0;
}

static int
size_key(const char *key)
{
	return strcmp(key, "max_bytes") == 0 ||
	    strcmp(key, "min_free_disk") == 0 ||
	    strcmp(key, "retention_bytes") == 0;
}

static void
check_key(const char *key, const char *s)
{
	struct sq_conf def, c, d;
	char got[SQ_CONF_VALUE_MAX], again[SQ_CONF_VALUE_MAX], why[256];

	memset(&def, 0, sizeof(def));
	sq_conf_defaults(&def);
	c = def;
	why[0] = '\0';
	if (sq_conf_set(&c, key, s, why, sizeof(why)) == -1) {
		fuzz_check(errno == EINVAL && why[0] != '\0', "%s = \"%s\"",
		    key, s);
		fuzz_check(conf_same(&c, &def, NULL), "%s = \"%s\" refused "
		    "but changed", key, s);
		return;
	}
	fuzz_check(conf_same(&c, &def, key), "%s = \"%s\" changed another "
	    "key", key, s);
	if (size_key(key)) {
		fuzz_check(isdigit((unsigned char)s[0]), "%s = \"%s\"", key, s);
		/* Digits alone are decimal bytes. */
		if (strspn(s, "0123456789") == strlen(s) && strlen(s) < 20) {
			sq_conf_get(&c, key, got, sizeof(got));
			fuzz_check(strtoull(s, NULL, 10) == strtoull(got, NULL,
			    10), "%s = \"%s\" -> %s", key, s, got);
		}
	}
	fuzz_check(sq_conf_get(&c, key, got, sizeof(got)) == 0, "%s", key);
	d = def;
	fuzz_check(sq_conf_set(&d, key, got, why, sizeof(why)) == 0,
	    "%s = \"%s\" reads back as \"%s\": %s", key, s, got, why);
	fuzz_check(conf_same(&c, &d, NULL) && sq_conf_get(&d, key, again,
	    sizeof(again)) == 0 && strcmp(got, again) == 0,
	    "%s = \"%s\" -> \"%s\" -> \"%s\"", key, s, got, again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *const *k;
	char *s = fuzz_str(data, size);

	check_duration(s);
	for (k = sq_conf_keys(); *k != NULL; k++)
		check_key(*k, s);
	check_key("no_such_key", s);
	free(s);
	return 0;
}
