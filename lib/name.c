/*
 * name.c - message IDs and message names (spoolq(5) NAMES).
 *
 * A name is ID[,FIELD...]: the ID never changes for the life of a
 * message, the fields carry its delivery state, like maildir's info
 * suffix.  Every field is key=value (h is a bare flag) so that
 * `awk -F,` splits a name and `ls` shows the state.  IDs sort in send
 * order because their time parts are zero-padded.  Queue names (SPEC 1)
 * are checked here too, below the settings that name other queues.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int
id_valid(const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len >= SQ_ID_MAX || id[0] == '.')
		return 0;
	for (i = 0; i < len; i++)
		if (id[i] == '/' || iscntrl((unsigned char)id[i]))
			return 0;
	return 1;
}

static int
token_valid(const char *s, size_t len, size_t max, int lower)
{
	size_t i;

	if (len == 0 || len >= max)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (lower ? !(islower(c) || isdigit(c) || c == '-') :
		    !isalnum(c))
			return 0;
	}
	return 1;
}

int
sq_reason_valid(const char *s)
{
	return token_valid(s, strlen(s), SQ_REASON_MAX, 1);
}

/* Parse a decimal field value of len bytes; -1 when it is not one. */
static int64_t
field_number(const char *s, size_t len)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || len > 18)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* The g= field's rule, with the other name rules (group.h). */
int
sq_group_key_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= SQ_GROUP_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') &&
		    !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && s[i] != '_' &&
		    s[i] != '-')
			return 0;
	return 1;
}

int
sq_name_init(struct sq_name *n, const char *id)
{
	memset(n, 0, sizeof(*n));
	n->lease = n->due = n->expires = -1;
	if (strlcpy(n->id, id, sizeof(n->id)) >= sizeof(n->id)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
field_parse(struct sq_name *n, const char *f, size_t len, unsigned *seen)
{
	const char *v = f + 2;
	size_t vlen = len - 2;
	int64_t num = 0;
	unsigned bit;
	const char *keys = "alwterhgc", *k;

	if (len == 1 && f[0] == SQ_F_ATTR) {
		if (*seen & (1u << 6))
			return -1;
		*seen |= 1u << 6;
		n->has_attr = 1;
		return 0;
	}
	if (len < 3 || f[1] != '=' || (k = strchr(keys, f[0])) == NULL ||
	    f[0] == SQ_F_ATTR)
		return -1;
	bit = 1u << (k - keys);
	if (*seen & bit)
		return -1;
	*seen |= bit;
	switch (f[0]) {
	case SQ_F_WORKER:
		if (!token_valid(v, vlen, SQ_TOKEN_MAX, 0))
			return -1;
		memcpy(n->token, v, vlen);
		n->token[vlen] = '\0';
		return 0;
	case SQ_F_NONCE:
		if (!token_valid(v, vlen, SQ_NONCE_MAX, 1))
			return -1;
		memcpy(n->nonce, v, vlen);
		n->nonce[vlen] = '\0';
		return 0;
	case SQ_F_GROUP:
		if (!sq_group_key_valid(v, vlen))
			return -1;
		memcpy(n->group, v, vlen);
		n->group[vlen] = '\0';
		return 0;
	case SQ_F_REASON:
		if (!token_valid(v, vlen, SQ_REASON_MAX, 1))
			return -1;
		memcpy(n->reason, v, vlen);
		n->reason[vlen] = '\0';
		return 0;
	}
	if ((num = field_number(v, vlen)) < 0)
		return -1;
	switch (f[0]) {
	case SQ_F_ATTEMPTS:
		if (num > 1000000)
			return -1;
		n->attempts = (unsigned)num;
		break;
	case SQ_F_LEASE:
		n->lease = num;
		break;
	case SQ_F_DUE:
		n->due = num;
		break;
	case SQ_F_EXPIRES:
		n->expires = num;
		break;
	}
	return 0;
}

int
sq_name_parse(struct sq_name *n, const char *name)
{
	const char *comma = strchr(name, ',');
	size_t idlen = comma ? (size_t)(comma - name) : strlen(name);
	unsigned seen = 0;

	memset(n, 0, sizeof(*n));
	n->lease = n->due = n->expires = -1;
	if (!id_valid(name, idlen) || strlen(name) > SQ_NAME_MAX)
		goto bad;
	memcpy(n->id, name, idlen);
	n->id[idlen] = '\0';
	while (comma != NULL) {
		const char *f = comma + 1;

		comma = strchr(f, ',');
		if (field_parse(n, f, comma ? (size_t)(comma - f) : strlen(f),
		    &seen) == -1)
			goto bad;
	}
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

int
sq_name_format(char *buf, size_t size, const struct sq_name *n)
{
	char tmp[SQ_NAME_MAX + 64];
	size_t len;

	len = strlcpy(tmp, n->id, sizeof(tmp));
#define ADD(...) do {							\
	if (len < sizeof(tmp))						\
		len += (size_t)snprintf(tmp + len, sizeof(tmp) - len,	\
		    __VA_ARGS__);					\
} while (0)
	if (n->attempts > 0)
		ADD(",%c=%u", SQ_F_ATTEMPTS, n->attempts);
	if (n->lease >= 0)
		ADD(",%c=%lld", SQ_F_LEASE, (long long)n->lease);
	if (n->token[0] != '\0')
		ADD(",%c=%s", SQ_F_WORKER, n->token);
	if (n->nonce[0] != '\0')
		ADD(",%c=%s", SQ_F_NONCE, n->nonce);
	if (n->due >= 0)
		ADD(",%c=%lld", SQ_F_DUE, (long long)n->due);
	if (n->expires >= 0)
		ADD(",%c=%lld", SQ_F_EXPIRES, (long long)n->expires);
	if (n->group[0] != '\0')
		ADD(",%c=%s", SQ_F_GROUP, n->group);
	if (n->reason[0] != '\0')
		ADD(",%c=%s", SQ_F_REASON, n->reason);
	if (n->has_attr)
		ADD(",%c", SQ_F_ATTR);
#undef ADD
	if (len >= sizeof(tmp) || len > SQ_NAME_MAX || len >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, tmp, len + 1);
	return 0;
}

/*
 * The short host name, with bytes outside [A-Za-z0-9-] made '-'.  The
 * buffer holds the longest name Linux allows (HOST_NAME_MAX, 64 bytes)
 * and its NUL: a 64-byte buffer makes gethostname(2) fail with
 * ENAMETOOLONG on such a name.
 */
const char *
short_host(void)
{
	static char host[HOST_NAME_MAX + 1];
	char *p;

	if (host[0] != '\0')
		return host;
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if ((p = strchr(host, '.')) != NULL && p != host)
		*p = '\0';
	for (p = host; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			*p = '-';
	return host;
}

int
sq_id_new(char *buf, size_t size)
{
	static struct timespec last;
	static unsigned long counter;
	struct timespec ts;
	int len;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Never go backwards within a process, even across a clock step. */
	if (ts.tv_sec < last.tv_sec ||
	    (ts.tv_sec == last.tv_sec && ts.tv_nsec <= last.tv_nsec)) {
		ts = last;
		if (++ts.tv_nsec == 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec = 0;
		}
	}
	last = ts;
	len = snprintf(buf, size, "%010lld.%09ld.%ld_%lu_%08x.%s",
	    (long long)ts.tv_sec, ts.tv_nsec, (long)getpid(), counter++,
	    arc4random(), short_host());
	if (len < 0 || (size_t)len >= size || len >= SQ_ID_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int64_t
sq_id_time(const char *id)
{
	int64_t ms;

	if ((ms = sq_id_time_ms(id)) < 0)
		return -1;
	return ms / 1000;
}

int64_t
sq_id_time_ms(const char *id)
{
	int64_t s, ns;

	if (strlen(id) < 21 || id[10] != '.' || id[20] != '.')
		return -1;
	if ((s = field_number(id, 10)) < 0 ||
	    (ns = field_number(id + 11, 9)) < 0)
		return -1;
	return s * 1000 + ns / 1000000;
}

int
sq_queue_name_valid(const char *name)
{
	size_t i;

	if (!isalnum((unsigned char)name[0]))
		return 0;
	for (i = 1; name[i] != '\0'; i++)
		if (i >= SQ_QUEUE_NAME_MAX || !(isalnum((unsigned char)name[i])
		    || name[i] == '.' || name[i] == '_' || name[i] == '-'))
			return 0;
	return 1;
}
