/*
 * name_test.c - message names and IDs: parse, format, order, uniqueness.
 */
#include <sys/wait.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define LIBBSD_OPENBSD_VIS
#include <vis.h>

#include "spoolq.h"
#include "tap.h"

static void
test_parse(void)
{
	struct sq_name n;

	ok(sq_name_parse(&n, "1764425000.000000001.42_0_0a0b0c0d.host") == 0,
	    "plain ID parses");
	ok(n.attempts == 0 && n.lease == -1 && n.due == -1 &&
	    n.expires == -1 && n.token[0] == '\0' && !n.has_attr,
	    "plain ID has no fields");
	ok(sq_name_parse(&n, "ID,a=3,l=1700000000,w=tok9,t=17,e=99,r=attempts,h")
	    == 0, "every field parses");
	is_str(n.id, "ID", "ID before the first comma");
	ok(n.attempts == 3 && n.lease == 1700000000 && n.due == 17 &&
	    n.expires == 99 && n.has_attr, "numeric fields and flag");
	is_str(n.token, "tok9", "worker token");
	is_str(n.reason, "attempts", "reason");
	ok(sq_name_parse(&n, "hand-made") == 0, "a hand-delivered name is an ID");
	ok(sq_name_parse(&n, "ID,a=1,l=1700000000,c=5f1e9a2b") == 0 &&
	    strcmp(n.nonce, "5f1e9a2b") == 0, "claim nonce");

	static const char *bad[] = {
		"", ".hidden", ",a=1", "ID,", "ID,a=", "ID,a=x", "ID,a=1,a=2",
		"ID,z=1", "ID,a", "ID,h=1", "ID,w=bad!", "ID,r=UPPER",
		"ID,l=-1", "ID,h,h", "I\nD", "ID,t=1234567890123456789",
		"ID,c=5f1e9a2b0", "ID,c=5F1E", "ID,c=1,c=2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char shown[4 * 64 + 1];

		strvis(shown, bad[i], VIS_CSTYLE | VIS_NL);
		ok(sq_name_parse(&n, bad[i]) == -1 && errno == EINVAL,
		    "refuses \"%s\"", shown);
	}
}

static void
test_format(void)
{
	struct sq_name n, m;
	char buf[SQ_NAME_MAX + 1];

	sq_name_init(&n, "X");
	ok(sq_name_format(buf, sizeof(buf), &n) == 0, "format bare");
	is_str(buf, "X", "bare name has no fields (a=0 left out)");
	n.attempts = 2;
	n.lease = 1700000300;
	strlcpy(n.token, "w1", sizeof(n.token));
	n.has_attr = 1;
	ok(sq_name_format(buf, sizeof(buf), &n) == 0, "format claim");
	is_str(buf, "X,a=2,l=1700000300,w=w1,h", "fields in grammar order");
	ok(sq_name_parse(&m, buf) == 0 && m.attempts == 2 &&
	    m.lease == 1700000300 && strcmp(m.token, "w1") == 0 && m.has_attr,
	    "format and parse round-trip");
	n.token[0] = '\0';
	strlcpy(n.nonce, "0a1b2c3d", sizeof(n.nonce));
	ok(sq_name_format(buf, sizeof(buf), &n) == 0 &&
	    strcmp(buf, "X,a=2,l=1700000300,c=0a1b2c3d,h") == 0,
	    "a claim without a worker carries its nonce after l=");
	ok(sq_name_format(buf, 4, &n) == -1 && errno == ENAMETOOLONG,
	    "too small a buffer is ENAMETOOLONG");
	char longid[SQ_ID_MAX + 10];
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	ok(sq_name_init(&n, longid) == -1 && errno == ENAMETOOLONG,
	    "an over-long ID is refused");
}

static void
test_ids(void)
{
	char a[SQ_ID_MAX], b[SQ_ID_MAX];
	struct sq_name n;
	int i, sorted = 1, parses = 1;

	ok(sq_id_new(a, sizeof(a)) == 0, "new ID");
	ok(strlen(a) > 21 && a[10] == '.' && a[20] == '.',
	    "seconds and nanoseconds are zero-padded: %s", a);
	ok(strchr(a, ',') == NULL && strchr(a, '/') == NULL, "no , or / in ID");
	ok(sq_id_time(a) > 1700000000, "ID time is the send time");
	ok(sq_id_time("hand-made") == -1, "hand-made ID has no time");
	for (i = 0; i < 10000; i++) {
		if (sq_id_new(b, sizeof(b)) == -1 || strcmp(a, b) >= 0)
			sorted = 0;
		if (sq_name_parse(&n, b) == -1 || strcmp(n.id, b) != 0)
			parses = 0;
		memcpy(a, b, sizeof(a));
	}
	ok(sorted, "10000 IDs in a row sort strictly in creation order");
	ok(parses, "every ID parses as a name");
}

/* Children share pid-independent state after fork: IDs must differ. */
static void
test_fork_unique(void)
{
	int fds[2], i, dup = 0;
	char ids[8][SQ_ID_MAX];

	if (pipe(fds) == -1)
		return;
	sq_id_new(ids[0], sizeof(ids[0]));	/* prime the static state */
	for (i = 0; i < 8; i++) {
		if (fork() == 0) {
			char id[SQ_ID_MAX];

			sq_id_new(id, sizeof(id));
			write(fds[1], id, sizeof(id));
			_exit(0);
		}
	}
	close(fds[1]);
	for (i = 0; i < 8; i++)
		if (read(fds[0], ids[i], SQ_ID_MAX) != SQ_ID_MAX)
			ids[i][0] = '\0';
	while (wait(NULL) > 0)
		;
	for (i = 0; i < 8; i++)
		for (int j = i + 1; j < 8; j++)
			if (strcmp(ids[i], ids[j]) == 0)
				dup = 1;
	ok(!dup, "8 forked children make 8 different IDs");
}

static void
test_reason(void)
{
	ok(sq_reason_valid("timeout") && sq_reason_valid("bad-input-2"),
	    "reasons [a-z0-9-]");
	ok(!sq_reason_valid("") && !sq_reason_valid("Bad") &&
	    !sq_reason_valid("a,b") && !sq_reason_valid("a/b") &&
	    !sq_reason_valid("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	    "bad reasons refused (empty, upper case, comma, slash, 33 bytes)");
}

static void
test_group(void)
{
	struct sq_name n;
	char buf[SQ_NAME_MAX + 1], key[SQ_GROUP_MAX], key2[SQ_GROUP_MAX];

	ok(sq_name_parse(&n, "ID,a=2,e=9,g=customer-17,h") == 0 &&
	    strcmp(n.group, "customer-17") == 0 && n.attempts == 2 &&
	    n.has_attr, "g= parses beside the other fields");
	ok(sq_name_format(buf, sizeof(buf), &n) == 0, "format grouped");
	is_str(buf, "ID,a=2,e=9,g=customer-17,h", "g= after e=, before h");
	ok(sq_name_parse(&n, "ID,g=") == -1 && sq_name_parse(&n, "ID,g=a.b")
	    == -1 && sq_name_parse(&n, "ID,g=a,g=b") == -1 &&
	    sq_name_parse(&n, "ID,g=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") == -1,
	    "bad g= refused (empty, dot, twice, 33 bytes)");
	ok(sq_group_key("customer-17", key) == 0 &&
	    strcmp(key, "customer-17") == 0, "a key-shaped group is its key");
	ok(sq_group_key("customer 17@example.com", key) == 0 &&
	    strlen(key) == 17 && key[0] == 'h' &&
	    sq_group_key_valid(key, strlen(key)), "another name is hashed");
	ok(sq_group_key("customer 17@example.com", key2) == 0 &&
	    strcmp(key, key2) == 0, "one name, one key");
	ok(sq_group_key("", key) == -1 && errno == EINVAL, "empty refused");
	ok(sq_group_of("ID,a=1,l=5,g=k,h", key) == 1 && strcmp(key, "k") == 0
	    && sq_group_of("ID,a=1", key) == 0, "sq_group_of");
}

int
main(void)
{
	test_parse();
	test_format();
	test_ids();
	test_fork_unique();
	test_reason();
	test_group();
	return tap_done();
}
