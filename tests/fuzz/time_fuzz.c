/*
 * time_fuzz.c - points in time as `qsend --at` and `qadmin replay
 * --since` take them (sq_time_parse), in a time zone with daylight
 * saving changes (CET/CEST, as a POSIX TZ rule: no tz database needed).
 *
 * Invariants: a time is whole seconds; "@N" is N seconds, 0 to the year
 * 2100; a local time names a time whose local date and time are the
 * ones written (none is moved to another day or hour), and that time
 * printed as YYYY-MM-DDTHH:MM:SS parses back to itself.
 */
#include <ctype.h>
#include <time.h>

#include "fuzz.h"

int	LLVMFuzzerInitialize(int *, char ***);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
	tzset();
	return 0;
}

/* The numbers of s in order (at most max), skipping other bytes. */
static size_t
numbers(const char *s, long *v, size_t max)
{
	size_t n = 0;
	char *end;

	while (*s != '\0' && n < max) {
		if (!isdigit((unsigned char)*s)) {
			s++;
			continue;
		}
		v[n++] = strtol(s, &end, 10);
		s = end;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), buf[64];
	int64_t ms, again;
	struct tm tm;
	time_t t;
	long v[6];
	size_t n;

	if (sq_time_parse(s, &ms) == -1) {
		fuzz_check(errno == EINVAL || errno == ERANGE, "\"%s\": %d", s,
		    errno);
		free(s);
		return 0;
	}
	fuzz_check(ms % 1000 == 0, "\"%s\": %lld", s, (long long)ms);
	if (s[0] == '@') {
		fuzz_check(ms >= 0 && ms <= 4102444800000LL && ms / 1000 ==
		    strtoll(s + 1, NULL, 10), "\"%s\": %lld", s, (long long)ms);
		free(s);
		return 0;
	}
	t = (time_t)(ms / 1000);
	fuzz_check(localtime_r(&t, &tm) != NULL, "\"%s\"", s);
	n = numbers(s, v, 6);
	fuzz_check(n >= 5 && v[0] == tm.tm_year + 1900 &&
	    v[1] == tm.tm_mon + 1 && v[2] == tm.tm_mday &&
	    v[3] == tm.tm_hour && v[4] == tm.tm_min &&
	    (n == 5 ? tm.tm_sec == 0 : v[5] == tm.tm_sec),
	    "\"%s\" is %04d-%02d-%02dT%02d:%02d:%02d", s, tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	fuzz_check(sq_time_parse(buf, &again) == 0 && again == ms,
	    "\"%s\" -> %s -> %lld", s, buf, (long long)again);
	free(s);
	return 0;
}
