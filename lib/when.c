/*
 * when.c - points in time and durations as users give them: times
 * (qsend --at, qadmin replay --since) as "@EPOCH" seconds or a local
 * date and time; durations (queue.conf, --delay, --lease, rates) as
 * digits and a unit, "500ms", "30s" (or bare seconds), "5m", "2h", "4d",
 * up to 100 years.  A bottom module: queue.conf (config.c) and rates
 * (rate.c) both read and write durations by it.
 *
 * A local time is read with strptime(3) and made a time with mktime(3),
 * which would quietly turn a day or hour that does not exist (Feb 30,
 * an hour skipped by a daylight saving change) into another: such times
 * are refused, not guessed.  strptime itself is lenient (a blank in its
 * format matches none, a number may have fewer digits), so the shape is
 * checked first: "2027-02-030:00" is not Feb 3 at midnight.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spoolq.h"

#define MS_PER_S	1000LL
#define MAX_DURATION_MS	(100LL * 365 * 86400 * MS_PER_S)	/* 100 y */

#define EPOCH_MAX	4102444800LL	/* 2100-01-01T00:00:00Z */

/* 1 when s is YYYY-MM-DD, 'T' or a space, HH:MM, and maybe :SS. */
static int
shape_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i, n = strlen(s);

	if (n != 16 && n != 19)
		return 0;
	for (i = 0; i < n; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) :
		    shape[i] == 'T' ? s[i] != 'T' && s[i] != ' ' :
		    s[i] != shape[i])
			return 0;
	return 1;
}

int
sq_time_parse(const char *s, int64_t *ms)
{
	static const char *const formats[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
		"%Y-%m-%d %H:%M",
	};
	struct tm tm, given;
	const char *end, *errstr;
	long long sec;
	size_t i;
	time_t t;

	if (s[0] == '@') {
		sec = strtonum(s + 1, 0, EPOCH_MAX, &errstr);
		if (errstr != NULL) {
			errno = errno == ERANGE ? ERANGE : EINVAL;
			return -1;
		}
		*ms = sec * 1000;
		return 0;
	}
	for (i = 0; i < sizeof(formats) / sizeof(formats[0]) && shape_ok(s);
	    i++) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_isdst = -1;
		if ((end = strptime(s, formats[i], &tm)) == NULL ||
		    *end != '\0')
			continue;
		given = tm;
		if ((t = mktime(&tm)) != -1 && tm.tm_year == given.tm_year &&
		    tm.tm_mon == given.tm_mon && tm.tm_mday == given.tm_mday &&
		    tm.tm_hour == given.tm_hour && tm.tm_min == given.tm_min &&
		    tm.tm_sec == given.tm_sec) {
			*ms = (int64_t)t * 1000;
			return 0;
		}
	}
	errno = EINVAL;
	return -1;
}

int
sq_duration_parse(const char *s, int64_t *ms)
{
	static const struct {
		const char	*suffix;
		long long	 ms;
	} units[] = {
		{ "ms", 1 }, { "s", MS_PER_S }, { "", MS_PER_S },
		{ "m", 60 * MS_PER_S }, { "h", 3600 * MS_PER_S },
		{ "d", 86400 * MS_PER_S },
	};
	char digits[24];
	const char *errstr;
	size_t n = strspn(s, "0123456789"), i;
	long long v;

	if (n == 0 || n >= sizeof(digits)) {
		errno = n == 0 ? EINVAL : ERANGE;
		return -1;
	}
	memcpy(digits, s, n);
	digits[n] = '\0';
	v = strtonum(digits, 0, MAX_DURATION_MS, &errstr);
	if (errstr != NULL) {
		errno = ERANGE;
		return -1;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].suffix) != 0)
			continue;
		if (v > MAX_DURATION_MS / units[i].ms) {
			errno = ERANGE;
			return -1;
		}
		*ms = v * units[i].ms;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

void
sq_duration_format(int64_t ms, char *buf, size_t size)
{
	static const struct {
		const char	*suffix;
		int64_t		 ms;
	} units[] = {
		{ "d", 86400 * MS_PER_S }, { "h", 3600 * MS_PER_S },
		{ "m", 60 * MS_PER_S }, { "s", MS_PER_S },
	};
	size_t i;

	if (ms == 0) {
		strlcpy(buf, "0", size);
		return;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ms % units[i].ms == 0) {
			snprintf(buf, size, "%lld%s", (long long)(ms /
			    units[i].ms), units[i].suffix);
			return;
		}
	snprintf(buf, size, "%lldms", (long long)ms);
}
