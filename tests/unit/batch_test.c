/*
 * batch_test.c - the result lines of a batch job (sq_result_parse), the
 * claims of a batch found by ID (sq_jobbatch_find), and rates
 * (sq_rate_parse, sq_rate_format).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spoolq.h"
#include "tap.h"

#define ID1	"1764425000.000000001.42_0_00000000.h"
#define ID2	"1764425000.000000002.42_1_00000000.h"
#define ID3	"1764425000.000000003.42_2_00000000.h"

static void
results(void)
{
	static const struct {
		const char	*line;
		enum sq_verdict	 v;
		const char	*id, *reason;
	} good[] = {
		{ "ack " ID1, SQ_VERDICT_ACK, ID1, "" },
		{ "retry " ID1, SQ_VERDICT_RETRY, ID1, "" },
		{ "reject " ID1, SQ_VERDICT_REJECT, ID1, "" },
		{ "reject " ID1 " bad-row", SQ_VERDICT_REJECT, ID1, "bad-row" },
		{ "  ack\t" ID1 "  ", SQ_VERDICT_ACK, ID1, "" },
		{ "ack " ID1 "\r", SQ_VERDICT_ACK, ID1, "" },
		{ "ack " ID1 ",a=1,l=1764425300,w=abc", SQ_VERDICT_ACK, ID1,
		    "" },
		{ "ack /q/cur/" ID1 ",a=1,l=1764425300", SQ_VERDICT_ACK, ID1,
		    "" },
	};
	static const char *bad[] = {
		"", "ack", "ACK " ID1, "release " ID1, "ack " ID1 " x",
		"retry " ID1 " reason", "reject " ID1 " Bad", "reject " ID1
		" a b", "reject " ID1 " 0123456789012345678901234567890123",
		"ack .hidden", "ack " ID1 ",zz=1", "nack " ID1, "ack /q/cur/",
	};
	struct sq_result r;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&r, 'x', sizeof(r));
		ok(sq_result_parse(good[i].line, strlen(good[i].line), &r) ==
		    0 && r.verdict == good[i].v, "parses \"%s\"", good[i].line);
		is_str(r.id, good[i].id, "  its ID");
		is_str(r.reason, good[i].reason, "  its reason");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ok(sq_result_parse(bad[i], strlen(bad[i]), &r) == -1 &&
		    errno == EINVAL, "refuses \"%s\"", bad[i]);
	}
	ok(sq_result_parse("ack " ID1 "\0x", 4 + strlen(ID1) + 2, &r) == -1,
	    "refuses a line with a NUL byte");
	/* Only len bytes count: the rest of the buffer is not the line. */
	ok(sq_result_parse("ack " ID1 " extra", 4 + strlen(ID1), &r) == 0,
	    "reads len bytes only");
	is_str(sq_verdict_name(SQ_VERDICT_REJECT), "reject", "verdict names");
}

static void
find(void)
{
	struct sq_claim c[3];
	struct sq_jobbatch b;
	struct sq_queue q;
	size_t i = 99;

	memset(c, 0, sizeof(c));
	memset(&q, 0, sizeof(q));
	/* Not in ID order: a recovered older message may come later. */
	strcpy(c[0].n.id, ID2);
	strcpy(c[1].n.id, ID3);
	strcpy(c[2].n.id, ID1);
	ok(sq_jobbatch_init(&b, &q, c, 0) == -1 && errno == EINVAL,
	    "an empty batch is refused");
	ok(sq_jobbatch_init(&b, &q, c, 3) == 0 && b.left == 3,
	    "a batch of 3, none settled");
	ok(sq_jobbatch_find(&b, ID1, &i) == 0 && i == 2, "finds ID1 at 2");
	ok(sq_jobbatch_find(&b, ID2, &i) == 0 && i == 0, "finds ID2 at 0");
	ok(sq_jobbatch_find(&b, ID3, &i) == 0 && i == 1, "finds ID3 at 1");
	ok(sq_jobbatch_find(&b, "1764425000.000000004.42_3_00000000.h",
	    &i) == -1 && errno == ENOENT, "an ID not in the batch: ENOENT");
	sq_jobbatch_free(&b);
}

static void
rates(void)
{
	static const struct {
		const char	*s, *shown;
		unsigned	 count;
		int64_t		 ms;
	} good[] = {
		{ "50/s", "50/s", 50, 1000 }, { "100/m", "100/m", 100, 60000 },
		{ "10/h", "10/h", 10, 3600000 },
		{ "5/100ms", "5/100ms", 5, 100 }, { "3/2s", "3/2s", 3, 2000 },
		{ "7/60s", "7/m", 7, 60000 }, { "1/d", "1/1d", 1, 86400000 },
		{ "1000000/s", "1000000/s", 1000000, 1000 },
		{ "0", "0", 0, 0 },
	};
	static const char *bad[] = {
		"", "50", "/s", "0/s", "-1/s", "1000001/s", "5/x", "5/0ms",
		"5/", "5/s/s", "five/s", "5/-1s", " 5/s",
	};
	struct sq_rate r;
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ok(sq_rate_parse(good[i].s, &r) == 0 &&
		    r.count == good[i].count && r.interval_ms == good[i].ms,
		    "rate %s", good[i].s);
		sq_rate_format(&r, buf, sizeof(buf));
		is_str(buf, good[i].shown, "  shown as %s", good[i].shown);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(sq_rate_parse(bad[i], &r) == -1 && errno == EINVAL,
		    "refuses rate \"%s\"", bad[i]);
}

int
main(void)
{
	results();
	find();
	rates();
	return tap_done();
}
