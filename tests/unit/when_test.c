/*
 * when_test.c - points in time as --at and --since take them: @EPOCH,
 * local dates and times, and the times that do not exist.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "spoolq.h"
#include "tap.h"

int
main(void)
{
	static const struct {
		const char	*s;
		int64_t		 ms;
	} good[] = {
		{ "@0", 0 }, { "@1700000000", 1700000000000LL },
		{ "@4102444800", 4102444800000LL },
		{ "2026-01-15T10:30:05", 1768469405000LL },
		{ "2026-01-15 10:30:05", 1768469405000LL },
		{ "2026-01-15T10:30", 1768469400000LL },
		{ "2026-01-15 10:30", 1768469400000LL },
		{ "2028-02-29T00:00", 1835391600000LL },
		/* Summer time (UTC+2), and the hour repeated in October. */
		{ "2026-07-01T12:00", 1782900000000LL },
		{ "2026-03-29T03:00", 1774746000000LL },
	};
	static const char *bad[] = {
		"", "@", "@-1", "@4102444801", "@1x", "tomorrow",
		"2026-01-15", "2026-01-15T10", "2026-01-15T10:30:05Z",
		"2027-02-30T10:00", "2027-02-29T10:00", "2026-04-31T00:00",
		"2026-01-15T24:00", "2026-01-15T10:60", "2027-02-28T10:00:60",
		/* Skipped when clocks went forward at 02:00 on Mar 29 2026. */
		"2026-03-29T02:00", "2026-03-29T02:30:00",
		/* strptime alone would take these for other shapes. */
		"2027-02-030:00", "2027-02-0310:00", "2026-1-15T10:30",
		"2026-01-15T1:30", " 2026-01-15T10:30", "2026-01-15  10:30",
		"2026-01-15T10:30:5", "+2026-01-15T10:30",
	};
	int64_t ms;
	size_t i;

	/* Central European Time, with no need for the tz database. */
	setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
	tzset();
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -1;
		ok(sq_time_parse(good[i].s, &ms) == 0 && ms == good[i].ms,
		    "%s is %lld ms", good[i].s, (long long)good[i].ms);
		if (ms != good[i].ms)
			printf("#   got %lld\n", (long long)ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(sq_time_parse(bad[i], &ms) == -1 && (errno == EINVAL ||
		    errno == ERANGE), "refuses \"%s\"", bad[i]);
	return tap_done();
}
