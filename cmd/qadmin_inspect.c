/*
 * qadmin_inspect.c - the commands that look without touching: stats,
 * ls (peek) and cat.
 *
 * The numbers come from the library (lib/inspect.c), which streams each
 * state directory once; this file only parses options and formats:
 * an aligned table for people, JSON for programs, and the Prometheus
 * text exposition format for the node_exporter textfile collector.
 * Sizes are bytes in JSON and Prometheus and humanize_number(3) in
 * tables; ages in tables are one unit, rounded down: 5s, 3m, 2h, 4d.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libutil.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#define LIBBSD_OPENBSD_VIS	/* libbsd: the OpenBSD strnvis (unused) */
#include <vis.h>

#include "inspect.h"
#include "qadmin.h"

#define LS_MAX		1000000		/* ls -n: names held in memory */
#define SIZE_LEN	5		/* humanize_number: "1.2K" + NUL */
#define ID_WIDTH	40		/* ls: first width of the ID column */

/* One queue of stats, as named in the output. */
struct qstats {
	char		name[PATH_MAX];
	struct sq_stats	s;
	int		held;			/* QUEUE/held: claims find none */
	char		broken[PATH_MAX + 256];	/* why it cannot be read, or "" */
};

/* ------------------------------------------------ formatting helpers */

/* An age or a time span of s seconds as "5s", "3m", "2h" or "4d". */
static const char *
fmt_span(char *buf, size_t size, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, size, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRId64 "m", s / 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRId64 "h", s / 3600);
	else
		snprintf(buf, size, "%" PRId64 "d", s / 86400);
	return buf;
}

/*
 * The age of the oldest ready message in whole seconds, rounded down from
 * milliseconds (0 when none, or when it was sent after the stats' time).
 */
static int64_t
ready_age(const struct sq_stats *s)
{
	if (s->oldest_ready < 0 || s->now_ms < s->oldest_ready)
		return 0;
	return (s->now_ms - s->oldest_ready) / 1000;
}

/* An epoch time t relative to now: "in 25s" or "3m ago". */
static const char *
fmt_when(char *buf, size_t size, int64_t t, int64_t now)
{
	char span[32];

	if (t >= now)
		snprintf(buf, size, "in %s", fmt_span(span, sizeof(span),
		    t - now));
	else
		snprintf(buf, size, "%s ago", fmt_span(span, sizeof(span),
		    now - t));
	return buf;
}

static const char *
fmt_size(char *buf, uint64_t bytes)
{
	if (humanize_number(buf, SIZE_LEN, bytes > INT64_MAX ? INT64_MAX :
	    (int64_t)bytes, "", HN_AUTOSCALE, HN_DECIMAL | HN_NOSPACE) == -1)
		strlcpy(buf, "?", SIZE_LEN);
	return buf;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

/*
 * A JSON string (RFC 8259): quotes, backslashes and control bytes
 * escaped; bytes that are not UTF-8 (IDs of messages delivered by hand
 * may have any) become U+FFFD, so the document stays valid.
 */
static void
json_str(FILE *fp, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), len;

	putc('"', fp);
	while (n > 0) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", fp);
		else if (*s == '\t')
			fputs("\\t", fp);
		else if (*s < 0x20 || *s == 0x7f)
			fprintf(fp, "\\u%04x", *s);
		else if ((len = utf8_len(s, n)) == 0)
			fputs("\\ufffd", fp);
		else {
			fwrite(s, 1, len, fp);
			s += len;
			n -= len;
			continue;
		}
		s++;
		n--;
	}
	putc('"', fp);
}

/* A JSON number, or null for a time that is not there (-1). */
static void
json_time(FILE *fp, int64_t t)
{
	if (t < 0)
		fputs("null", fp);
	else
		fprintf(fp, "%" PRId64, t);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void
prom_label(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(fp, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", fp);
		else
			putc(*s, fp);
	}
}

/* ------------------------------------------------ stats */

/* The note after a state's counts in the table: lag, lease, due, rate. */
static void
table_note(FILE *fp, const struct sq_stats *s, enum sq_state st)
{
	int64_t now = s->now_ms / 1000;
	char t[64];

	switch (st) {
	case SQ_STATE_READY:
		if (s->oldest_ready >= 0)
			fprintf(fp, "  oldest %s", fmt_span(t, sizeof(t),
			    ready_age(s)));
		break;
	case SQ_STATE_INFLIGHT:
		if (s->earliest_lease >= 0)
			fprintf(fp, "  first lease ends %s", fmt_when(t,
			    sizeof(t), s->earliest_lease, now));
		break;
	case SQ_STATE_RETRY:
		if (s->next_due >= 0)
			fprintf(fp, "  next due %s", fmt_when(t, sizeof(t),
			    s->next_due, now));
		break;
	case SQ_STATE_DEAD:
		fprintf(fp, "  %" PRIu64 " in the last hour, %" PRIu64
		    " in the last day", s->dead_last_hour, s->dead_last_day);
		break;
	default:
		break;
	}
}

static void
stats_table(FILE *fp, const struct qstats *qs)
{
	const struct sq_stats *s = &qs->s;
	char size[SIZE_LEN];
	const char *sep = "";
	size_t i;
	int st;

	if (qs->broken[0] != '\0') {
		fprintf(fp, "%s\n  %-12s %s\n", qs->name, "broken",
		    qs->broken);
		return;
	}
	fprintf(fp, "%s%s\n", qs->name, qs->held ? " (held: nothing is "
	    "claimed until qadmin release)" : "");
	fprintf(fp, "  %-12s %8s %6s\n", "state", "messages", "bytes");
	for (st = 0; st < SQ_NSTATES; st++) {
		fprintf(fp, "  %-12s %8" PRIu64 " %6s", sq_state_name(st),
		    s->state[st].count, fmt_size(size, s->state[st].bytes));
		table_note(fp, s, (enum sq_state)st);
		putc('\n', fp);
	}
	fprintf(fp, "  %-12s ", "dead letters");
	for (i = 0; i < s->ndead_reasons; i++)
		if (s->dead_reason[i].count > 0) {
			fprintf(fp, "%s%s %" PRIu64, sep,
			    s->dead_reason[i].name, s->dead_reason[i].count);
			sep = ", ";
		}
	if (s->dead_other > 0)
		fprintf(fp, "%sother %" PRIu64, sep, s->dead_other);
	fprintf(fp, "%s\n", *sep == '\0' && s->dead_other == 0 ? "none" :
	    "");
	fprintf(fp, "  %-12s ", "attempts");
	for (i = 0; i < SQ_STATS_ATTEMPTS; i++)
		fprintf(fp, "%s%zu%s: %" PRIu64, i > 0 ? ", " : "", i,
		    i == SQ_STATS_ATTEMPTS - 1 ? "+" : "", s->attempts[i]);
	fprintf(fp, "\n  %-12s %u alive", "workers", s->workers_alive);
	if (s->workers_hung > 0)
		fprintf(fp, ", %u hung", s->workers_hung);
	putc('\n', fp);
	if (s->stray > 0)
		fprintf(fp, "  %-12s %" PRIu64 " entries that are not messages "
		    "(see qadmin check)\n", "stray", s->stray);
}

/* The ready messages by age, one row per queue, like Postfix qshape. */
static void
stats_ages(FILE *fp, const struct qstats *qs, size_t n)
{
	uint64_t total[SQ_STATS_AGES], sum;
	int w = 5;
	size_t i, j;

	memset(total, 0, sizeof(total));
	for (i = 0; i < n; i++) {
		if ((int)strlen(qs[i].name) > w)
			w = (int)strlen(qs[i].name);
		for (j = 0; j < SQ_STATS_AGES; j++)
			total[j] += qs[i].s.ready_age[j];
	}
	fprintf(fp, "%-*s %7s", w, "", "T");
	for (j = 0; j < SQ_STATS_AGES; j++)
		fprintf(fp, " %7s", sq_stats_age_label(j));
	fputs("\n", fp);
	for (i = 0; i <= n; i++) {
		const uint64_t *row = i == 0 ? total : qs[i - 1].s.ready_age;

		if (i > 0 && qs[i - 1].broken[0] != '\0')
			continue;	/* nothing known; said on stderr */
		for (sum = 0, j = 0; j < SQ_STATS_AGES; j++)
			sum += row[j];
		fprintf(fp, "%-*s %7" PRIu64, w, i == 0 ? "TOTAL" :
		    qs[i - 1].name, sum);
		for (j = 0; j < SQ_STATS_AGES; j++)
			fprintf(fp, " %7" PRIu64, row[j]);
		putc('\n', fp);
	}
}

/* One state's object in the JSON of stats. */
static void
json_state(FILE *fp, const struct sq_stats *s, enum sq_state st)
{
	size_t i;

	fprintf(fp, ",\"%s\":{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64,
	    sq_state_name(st), s->state[st].count, s->state[st].bytes);
	switch (st) {
	case SQ_STATE_READY:
		fputs(",\"oldest_sent\":", fp);
		json_time(fp, s->oldest_ready < 0 ? -1 : s->oldest_ready / 1000);
		fputs(",\"oldest_age_seconds\":", fp);
		json_time(fp, s->oldest_ready < 0 ? -1 : ready_age(s));
		break;
	case SQ_STATE_INFLIGHT:
		fputs(",\"earliest_lease_deadline\":", fp);
		json_time(fp, s->earliest_lease);
		break;
	case SQ_STATE_RETRY:
		fputs(",\"next_due\":", fp);
		json_time(fp, s->next_due);
		break;
	case SQ_STATE_DEAD:
		/* Reasons match [a-z0-9-]: no escaping needed. */
		fputs(",\"by_reason\":{", fp);
		for (i = 0; i < s->ndead_reasons; i++)
			fprintf(fp, "\"%s\":%" PRIu64 ",",
			    s->dead_reason[i].name, s->dead_reason[i].count);
		fprintf(fp, "\"other\":%" PRIu64 "},\"last_hour\":%" PRIu64
		    ",\"last_day\":%" PRIu64, s->dead_other, s->dead_last_hour,
		    s->dead_last_day);
		break;
	default:
		break;
	}
	putc('}', fp);
}

static void
stats_json(FILE *fp, const struct qstats *qs, size_t n, int ages)
{
	const struct sq_stats *s;
	size_t i, j;
	int st;

	fputs("{\"queues\":[", fp);
	for (i = 0; i < n; i++) {
		s = &qs[i].s;
		fputs(i > 0 ? ",\n{\"name\":" : "\n{\"name\":", fp);
		json_str(fp, qs[i].name);
		if (qs[i].broken[0] != '\0') {
			fputs(",\"status\":\"broken\",\"reason\":", fp);
			json_str(fp, qs[i].broken);
			putc('}', fp);
			continue;
		}
		fprintf(fp, ",\"status\":\"%s\",\"time\":%" PRId64,
		    qs[i].held ? "held" : "ok", s->now_ms / 1000);
		for (st = 0; st < SQ_NSTATES; st++)
			json_state(fp, s, (enum sq_state)st);
		fputs(",\"attempts\":{", fp);
		for (j = 0; j < SQ_STATS_ATTEMPTS; j++)
			fprintf(fp, "%s\"%zu%s\":%" PRIu64, j > 0 ? "," : "",
			    j, j == SQ_STATS_ATTEMPTS - 1 ? "+" : "",
			    s->attempts[j]);
		fprintf(fp, "},\"workers\":{\"alive\":%u,\"hung\":%u}"
		    ",\"stray\":%" PRIu64, s->workers_alive, s->workers_hung,
		    s->stray);
		if (ages) {
			fputs(",\"ready_age\":{", fp);
			for (j = 0; j < SQ_STATS_AGES; j++)
				fprintf(fp, "%s\"%s\":%" PRIu64,
				    j > 0 ? "," : "", sq_stats_age_label(j),
				    s->ready_age[j]);
			putc('}', fp);
		}
		putc('}', fp);
	}
	fputs(n > 0 ? "\n]}\n" : "]}\n", fp);
}

/* What one Prometheus metric family shows of one queue. */
enum metric {
	M_MESSAGES, M_BYTES, M_OLDEST, M_NEXT_DUE, M_LEASE, M_DEAD,
	M_DEAD_HOUR, M_DEAD_DAY, M_ATTEMPTS, M_WORKERS, M_HUNG, M_STRAY,
	M_AGES, M_HELD, M_BROKEN, NMETRICS
};

static const struct {
	const char	*name, *help;
} metrics[NMETRICS] = {
	[M_MESSAGES] = { "spoolq_messages",
	    "Messages in the queue, by state." },
	[M_BYTES] = { "spoolq_bytes",
	    "Bytes of message bodies in the queue, by state." },
	[M_OLDEST] = { "spoolq_oldest_ready_age_seconds",
	    "Age of the oldest ready message since it was sent (0 when "
	    "none is ready)." },
	[M_NEXT_DUE] = { "spoolq_next_retry_due_timestamp_seconds",
	    "When the next message waiting in retry falls due." },
	[M_LEASE] = { "spoolq_earliest_lease_deadline_timestamp_seconds",
	    "The earliest lease deadline of the claimed messages." },
	[M_DEAD] = { "spoolq_dead_letters",
	    "Dead letters in the queue, by reason." },
	[M_DEAD_HOUR] = { "spoolq_dead_lettered_last_hour",
	    "Dead letters that entered dead/ in the last hour." },
	[M_DEAD_DAY] = { "spoolq_dead_lettered_last_day",
	    "Dead letters that entered dead/ in the last day." },
	[M_ATTEMPTS] = { "spoolq_attempts",
	    "Messages by attempts so far (5+: five or more), in every "
	    "state." },
	[M_WORKERS] = { "spoolq_workers",
	    "Workers whose lock file is held (alive or hung)." },
	[M_HUNG] = { "spoolq_workers_hung",
	    "Workers holding their lock with a heartbeat older than the "
	    "lease." },
	[M_STRAY] = { "spoolq_stray_entries",
	    "Entries of state directories that are not messages." },
	[M_AGES] = { "spoolq_ready_age_messages",
	    "Ready messages by age since they were sent." },
	[M_HELD] = { "spoolq_queue_held",
	    "1 when the queue is held (qadmin hold): nothing is claimed." },
	[M_BROKEN] = { "spoolq_queue_broken",
	    "1 when the queue cannot be read (such as a bad queue.conf); "
	    "its other metrics are missing." },
};

static void
prom_sample(FILE *fp, enum metric m, const char *queue, const char *label,
    const char *value, int64_t v)
{
	fprintf(fp, "%s{queue=\"", metrics[m].name);
	prom_label(fp, queue);
	if (label != NULL) {
		fprintf(fp, "\",%s=\"", label);
		prom_label(fp, value);
	}
	fprintf(fp, "\"} %" PRId64 "\n", v);
}

static void
prom_queue(FILE *fp, enum metric m, const struct qstats *qs)
{
	const struct sq_stats *s = &qs->s;
	const char *q = qs->name;
	char label[16];
	size_t i;

	if (m == M_BROKEN) {
		prom_sample(fp, m, q, NULL, NULL, qs->broken[0] != '\0');
		return;
	}
	if (qs->broken[0] != '\0')
		return;
	switch (m) {
	case M_MESSAGES:
	case M_BYTES:
		for (i = 0; i < SQ_NSTATES; i++)
			prom_sample(fp, m, q, "state", sq_state_name(i),
			    (int64_t)(m == M_MESSAGES ? s->state[i].count :
			    s->state[i].bytes));
		break;
	case M_OLDEST:
		prom_sample(fp, m, q, NULL, NULL, ready_age(s));
		break;
	case M_NEXT_DUE:
		if (s->next_due >= 0)
			prom_sample(fp, m, q, NULL, NULL, s->next_due);
		break;
	case M_LEASE:
		if (s->earliest_lease >= 0)
			prom_sample(fp, m, q, NULL, NULL, s->earliest_lease);
		break;
	case M_DEAD:
		for (i = 0; i < s->ndead_reasons; i++)
			prom_sample(fp, m, q, "reason", s->dead_reason[i].name,
			    (int64_t)s->dead_reason[i].count);
		prom_sample(fp, m, q, "reason", "other",
		    (int64_t)s->dead_other);
		break;
	case M_DEAD_HOUR:
		prom_sample(fp, m, q, NULL, NULL, (int64_t)s->dead_last_hour);
		break;
	case M_DEAD_DAY:
		prom_sample(fp, m, q, NULL, NULL, (int64_t)s->dead_last_day);
		break;
	case M_ATTEMPTS:
		for (i = 0; i < SQ_STATS_ATTEMPTS; i++) {
			snprintf(label, sizeof(label), "%zu%s", i,
			    i == SQ_STATS_ATTEMPTS - 1 ? "+" : "");
			prom_sample(fp, m, q, "attempts", label,
			    (int64_t)s->attempts[i]);
		}
		break;
	case M_WORKERS:
		prom_sample(fp, m, q, NULL, NULL,
		    (int64_t)s->workers_alive + s->workers_hung);
		break;
	case M_HUNG:
		prom_sample(fp, m, q, NULL, NULL, (int64_t)s->workers_hung);
		break;
	case M_STRAY:
		prom_sample(fp, m, q, NULL, NULL, (int64_t)s->stray);
		break;
	case M_AGES:
		for (i = 0; i < SQ_STATS_AGES; i++)
			prom_sample(fp, m, q, "age", sq_stats_age_label(i),
			    (int64_t)s->ready_age[i]);
		break;
	case M_HELD:
		prom_sample(fp, m, q, NULL, NULL, qs->held);
		break;
	default:
		break;
	}
}

/*
 * The text exposition format: each family once, with its HELP and TYPE
 * lines, then its samples for every queue (a family must not be split).
 */
static void
stats_prometheus(FILE *fp, const struct qstats *qs, size_t n, int ages)
{
	size_t i;
	int m;

	for (m = 0; m < NMETRICS; m++) {
		if (m == M_AGES && !ages)
			continue;
		fprintf(fp, "# HELP %s %s\n# TYPE %s gauge\n", metrics[m].name,
		    metrics[m].help, metrics[m].name);
		for (i = 0; i < n; i++)
			prom_queue(fp, (enum metric)m, &qs[i]);
	}
}

/*
 * Collect the stats of the open queue q under the given name, or, when q
 * is NULL, note the queue as broken for the reason given.
 */
static void
stats_add(struct qstats **qs, size_t *n, const char *name,
    struct sq_queue *q, const char *broken)
{
	struct qstats *p;
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*qs)[i].name, name) == 0)
			return;		/* named twice: one set of series */
	if ((p = reallocarray(*qs, *n + 1, sizeof(**qs))) == NULL)
		err(EX_OSERR, NULL);
	*qs = p;
	p = &p[*n];
	memset(p, 0, sizeof(*p));
	strlcpy(p->name, name, sizeof(p->name));
	(*n)++;
	if (q == NULL) {
		strlcpy(p->broken, broken, sizeof(p->broken));
		return;
	}
	if (sq_stats_collect(q, sq_now_ms(), &p->s) == -1)
		tool_queue_err(tool_exit_code(errno), q, name, NULL);
	p->held = sq_queue_held(q);
}

/*
 * Every queue under the spool root, by name order.  Returns the exit
 * status for queues that could not be read (bad queue.conf: 78); they
 * are reported on stderr and shown as broken.
 */
static int
stats_all(struct admin *a, struct qstats **qs, size_t *n)
{
	char root[PATH_MAX], path[PATH_MAX * 2], msg[PATH_MAX + 256];
	struct dirent **names;
	struct sq_queue q;
	int i, count, rc = 0;

	tool_root(root, a->root, 0);
	if ((count = scandir(root, &names, NULL, alphasort)) == -1)
		err(tool_exit_code(errno), "%s", root);
	for (i = 0; i < count; i++) {
		if (sq_queue_name_valid(names[i]->d_name)) {
			snprintf(path, sizeof(path), "%s/%s", root,
			    names[i]->d_name);
			if (sq_queue_open(&q, path, msg, sizeof(msg)) == 0)
				stats_add(qs, n, names[i]->d_name, &q, NULL);
			else if (errno == EINVAL) {
				warnx("%s", msg);	/* file:line: key */
				stats_add(qs, n, names[i]->d_name, NULL, msg);
				rc = EX_CONFIG;
			} else if (errno != ENOENT && errno != ENOTDIR) {
				warn("%s", names[i]->d_name);
				stats_add(qs, n, names[i]->d_name, NULL,
				    strerror(errno));
				rc = tool_exit_code(errno);
			}
			sq_queue_close(&q);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* Where -o writes: FILE's directory, open, and the names in it. */
struct out {
	int		 dfd;		/* FILE's directory */
	char		 dir[PATH_MAX];	/* its name, for messages */
	const char	*base;		/* FILE's last component */
	char		 tmp[NAME_MAX + 1];	/* BASE.tmp.PID in DFD */
};

/*
 * Open BASE.tmp.PID in FILE's directory, never following a link.  A
 * directory that is missing or not writable is named with its reason,
 * the temporary name is an internal detail.
 */
static FILE *
out_open(const char *file, struct out *o)
{
	const char *slash;
	FILE *fp;
	int fd;

	if ((slash = strrchr(file, '/')) == NULL) {
		strlcpy(o->dir, ".", sizeof(o->dir));
		o->base = file;
	} else if (slash == file) {
		strlcpy(o->dir, "/", sizeof(o->dir));
		o->base = slash + 1;
	} else {
		if ((size_t)(slash - file) >= sizeof(o->dir))
			errx(EX_USAGE, "%s: name too long", file);
		memcpy(o->dir, file, slash - file);
		o->dir[slash - file] = '\0';
		o->base = slash + 1;
	}
	if (*o->base == '\0')
		errx(EX_USAGE, "%s: not a file name", file);
	if ((size_t)snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.%ld", o->base,
	    (long)getpid()) >= sizeof(o->tmp))
		errx(EX_USAGE, "%s: name too long", file);
	if ((o->dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		err(EX_CANTCREAT, "%s", o->dir);
	fd = openat(o->dfd, o->tmp,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd == -1)
		err(EX_CANTCREAT, "%s", errno == EEXIST || errno == ELOOP ?
		    file : o->dir);
	if ((fp = fdopen(fd, "w")) == NULL)
		err(EX_OSERR, "%s", file);
	return fp;
}

/* Finish the output: flushed, and with -o synced and renamed in place. */
static void
out_close(FILE *fp, const char *file, struct out *o)
{
	int saved;

	if (file == NULL) {
		if (fflush(fp) == EOF || ferror(fp))
			err(EX_IOERR, "stdout");
		return;
	}
	if (fflush(fp) == EOF || ferror(fp) || fsync(fileno(fp)) == -1 ||
	    fclose(fp) == EOF || renameat(o->dfd, o->tmp, o->dfd, o->base) ==
	    -1) {
		saved = errno;
		unlinkat(o->dfd, o->tmp, 0);
		errno = saved;
		err(EX_IOERR, "%s", file);
	}
	close(o->dfd);
}

int
cmd_stats(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "age", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct out out;
	const char *file = NULL;
	struct qstats *qs = NULL;
	struct sq_queue q;
	size_t n = 0;
	int ch, i, ages = 0, json = 0, prom = 0, rc = 0;
	FILE *fp = stdout;

	optind = 0;	/* glibc: start over, permuting (main used "+") */
	while ((ch = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			ages = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'o':
			file = optarg;
			break;
		case 'p':
			prom = 1;
			break;
		default:
			admin_usage(NULL);
		}
	}
	if (json && prom)
		admin_usage("--json and --prometheus: choose one");
	if (file != NULL && !prom)
		admin_usage("-o: only with --prometheus");
	if (optind == argc)
		rc = stats_all(a, &qs, &n);
	for (i = optind; i < argc; i++) {
		admin_open(a, &q, argv[i]);
		stats_add(&qs, &n, argv[i], &q, NULL);
		sq_queue_close(&q);
	}
	if (file != NULL)
		fp = out_open(file, &out);
	if (prom)
		stats_prometheus(fp, qs, n, ages);
	else if (json)
		stats_json(fp, qs, n, ages);
	else if (ages)
		stats_ages(fp, qs, n);
	else
		for (i = 0; i < (int)n; i++) {
			if (i > 0)
				putc('\n', fp);
			stats_table(fp, &qs[i]);
		}
	out_close(fp, file, &out);
	free(qs);
	return rc;
}

/* ------------------------------------------------ ls */

struct lister {
	int		json;
	int		lines;		/* printed so far */
	int		idw;		/* width of the ID column, widest yet */
	int64_t		now;		/* epoch milliseconds */
};

/* The fields of a name in JSON: "lease", "worker", "due", ... */
static void
ls_json_fields(const struct sq_name *n)
{
	if (n->lease >= 0)
		printf(",\"lease\":%" PRId64, n->lease);
	if (n->token[0] != '\0')
		printf(",\"worker\":\"%s\"", n->token);	/* [A-Za-z0-9] */
	if (n->due >= 0)
		printf(",\"due\":%" PRId64, n->due);
	if (n->expires >= 0)
		printf(",\"expires\":%" PRId64, n->expires);
	if (n->reason[0] != '\0')
		printf(",\"reason\":\"%s\"", n->reason);	/* [a-z0-9-] */
}

static void
ls_json(struct lister *l, const struct sq_msg *m)
{
	const char *stray = sq_msg_stray(m);
	int64_t sent = sq_msg_sent_ms(m);

	fputs(l->lines > 0 ? ",\n" : "\n", stdout);
	printf("{\"state\":\"%s\",", sq_state_name(m->state));
	if (stray == NULL) {
		fputs("\"id\":", stdout);
		json_str(stdout, m->n.id);
		putchar(',');
	}
	fputs("\"name\":", stdout);
	json_str(stdout, m->name);
	if (stray != NULL)
		printf(",\"stray\":\"%s\"", stray);
	else
		printf(",\"attempts\":%u,\"sent\":%" PRId64, m->n.attempts,
		    sent);
	printf(",\"age\":%" PRId64 ",\"size\":%jd", l->now > sent ?
	    (l->now - sent) / 1000 : 0, (intmax_t)m->st.st_size);
	if (stray == NULL)
		ls_json_fields(&m->n);
	putchar('}');
}

/* INFO: the fields that matter in the state, as key=value[,key=value]. */
static void
ls_info(const struct sq_msg *m)
{
	const struct sq_name *n = &m->n;

	switch (m->state) {
	case SQ_STATE_INFLIGHT:
		if (n->lease >= 0)
			printf("lease=%" PRId64 "%s", n->lease,
			    n->token[0] != '\0' ? "," : "");
		if (n->token[0] != '\0')
			printf("worker=%s", n->token);
		if (n->lease < 0 && n->token[0] == '\0')
			putchar('-');
		break;
	case SQ_STATE_RETRY:
		if (n->due >= 0)
			printf("due=%" PRId64, n->due);
		else
			putchar('-');
		break;
	case SQ_STATE_DEAD:
		fputs(n->reason[0] != '\0' ? n->reason : "-", stdout);
		break;
	default:
		if (n->expires >= 0)
			printf("expires=%" PRId64, n->expires);
		else
			putchar('-');
		break;
	}
}

/*
 * One line: STATE ID ATTEMPTS AGE SIZE INFO, blank-separated, no header
 * (so that `awk '{ print $2 }'` gives IDs).  An entry that is not a
 * message shows its name, made visible (vis(3)), attempts "-" and what
 * it is as INFO: "stray:fifo".
 */
static void
ls_line(struct lister *l, const struct sq_msg *m)
{
	const char *stray = sq_msg_stray(m);
	char age[32], *shown = NULL, attempts[16];
	const char *id = m->n.id;
	int idw;

	if (stray != NULL) {
		if (stravis(&shown, m->name, VIS_CSTYLE | VIS_OCTAL |
		    VIS_WHITE) == -1)
			err(EX_OSERR, NULL);
		id = shown;
		strlcpy(attempts, "-", sizeof(attempts));
	} else
		snprintf(attempts, sizeof(attempts), "%u", m->n.attempts);
	if ((idw = (int)strlen(id)) > l->idw)
		l->idw = idw;
	printf("%-8s %-*s %3s %4s %7jd ", sq_state_name(m->state), l->idw,
	    id, attempts, fmt_span(age, sizeof(age),
	    (l->now - sq_msg_sent_ms(m)) / 1000),
	    (intmax_t)m->st.st_size);
	if (stray != NULL)
		printf("stray:%s", stray);
	else
		ls_info(m);
	putchar('\n');
	free(shown);
}

static int
ls_one(const struct sq_msg *m, void *arg)
{
	struct lister *l = arg;

	if (l->json)
		ls_json(l, m);
	else
		ls_line(l, m);
	l->lines++;
	return ferror(stdout) ? -1 : 0;
}

/* ls -n: a count from 1 to LS_MAX, or the synopsis. */
static size_t
ls_count(const char *s)
{
	const char *errstr;
	long long n;

	n = strtonum(s, 1, LS_MAX, &errstr);
	if (errstr != NULL) {
		admin_usage("-n %s: %s (from 1 to %d)", s, errstr, LS_MAX);
	}
	return (size_t)n;
}

int
cmd_ls(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	enum sq_state states[SQ_NSTATES];
	struct lister l;
	struct sq_queue q;
	size_t max = 0, nstates = 0, i;
	int ch, rc;

	memset(&l, 0, sizeof(l));
	l.idw = ID_WIDTH;
	optind = 0;	/* glibc: start over, permuting (main used "+") */
	while ((ch = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			l.json = 1;
			break;
		case 'n':
			max = ls_count(optarg);
			break;
		default:
			admin_usage(NULL);
		}
	}
	if (optind >= argc)
		admin_usage("missing queue name");
	if (argc - optind - 1 > SQ_NSTATES)
		admin_usage("%s: too many states", argv[optind + 1 +
		    SQ_NSTATES]);
	for (i = (size_t)optind + 1; i < (size_t)argc; i++)
		if (sq_state_parse(argv[i], &states[nstates++]) == -1) {
			admin_usage("%s: not a state (ready, inflight, retry, "
			    "dead, held)", argv[i]);
		}
	if (nstates == 0)
		for (; nstates < SQ_NSTATES; nstates++)
			states[nstates] = (enum sq_state)nstates;
	admin_open(a, &q, argv[optind]);
	l.now = sq_now_ms();
	if (l.json)
		putchar('[');
	for (i = 0; i < nstates; i++) {
		rc = max > 0 ? sq_msg_oldest(&q, states[i], max, ls_one, &l) :
		    sq_msg_each(&q, states[i], ls_one, &l);
		if (rc == -1) {
			if (ferror(stdout))
				err(EX_IOERR, "stdout");
			err(tool_exit_code(errno), "%s: %s", argv[optind],
			    sq_state_name(states[i]));
		}
	}
	if (l.json)
		fputs(l.lines > 0 ? "\n]\n" : "]\n", stdout);
	sq_queue_close(&q);
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EX_IOERR, "stdout");
	return 0;
}

/* ------------------------------------------------ cat */

/* Copy fd to standard output, byte for byte. */
static void
copy_out(int fd, const char *what)
{
	char buf[65536];
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			err(EX_IOERR, "%s", what);
		}
		if (sq_write_all(STDOUT_FILENO, buf, (size_t)r) == -1)
			err(EX_IOERR, "stdout");
	}
}

/* cat --meta: the routing key and each attribute of the sidecar. */
static int
meta_attr(const char *name, const char *value, void *arg)
{
	(void)arg;
	if (name == NULL)
		printf("key: %s\n", value);
	else
		printf("attr: %s=%s\n", name, value);
	return 0;
}

/*
 * cat --meta --output dir: what qworker --output kept of the message's
 * last job: "output:", the lines of dir/ID.status, then where its
 * standard output and error are; first, for a message that is gone,
 * "state: gone".  Returns 0, or -1 when there is none.
 */
static int
cat_output(const char *dir, const char *id, int gone)
{
	char path[PATH_MAX];
	int dfd, fd;

	if ((dfd = sq_output_open(dir, 0)) == -1)
		err(errno == ENOENT || errno == ENOTDIR ? EX_NOINPUT :
		    tool_exit_code(errno), "%s", dir);
	if ((fd = sq_output_read(dfd, id, SQ_OUTPUT_STATUS)) == -1) {
		if (errno != ENOENT)
			warn("%s/%s%s", dir, id, SQ_OUTPUT_STATUS);
		close(dfd);
		return -1;
	}
	if (realpath(dir, path) == NULL)
		strlcpy(path, dir, sizeof(path));
	if (gone)
		printf("state: gone\nid: %s\n", id);
	printf("output:\n");
	if (fflush(stdout) == EOF)
		err(EX_IOERR, "stdout");
	copy_out(fd, "output status");
	close(fd);
	printf("stdout_file=%s/%s%s\nstderr_file=%s/%s%s\n", path, id,
	    SQ_OUTPUT_OUT, path, id, SQ_OUTPUT_ERR);
	close(dfd);
	return 0;
}

/*
 * cat --meta: "key: value" lines, what --output kept of its last job,
 * then the failure record if any.
 */
static void
cat_meta(struct sq_queue *q, const struct sq_msg *m, const char *name,
    const char *output)
{
	const struct sq_name *n = &m->n;
	int64_t sent;
	int fd;

	printf("state: %s\nname: %s\nid: %s\nattempts: %u\nsize: %jd\n",
	    sq_state_name(m->state), name, n->id, n->attempts,
	    (intmax_t)m->st.st_size);
	if ((sent = sq_id_time(n->id)) >= 0)
		printf("sent: %" PRId64 "\n", sent);
	if (n->lease >= 0)
		printf("lease: %" PRId64 "\n", n->lease);
	if (n->token[0] != '\0')
		printf("worker: %s\n", n->token);
	if (n->due >= 0)
		printf("due: %" PRId64 "\n", n->due);
	if (n->expires >= 0)
		printf("expires: %" PRId64 "\n", n->expires);
	if (n->reason[0] != '\0')
		printf("reason: %s\n", n->reason);
	if (n->has_attr && sq_attr_each(q, n->id, meta_attr, NULL) == -1 &&
	    errno != ENOENT)
		warn("%s: attributes", n->id);
	if (output != NULL)
		(void)cat_output(output, n->id, 0);
	if ((fd = sq_failure_open(q, n->id)) == -1) {
		if (errno != ENOENT)
			warn("%s: failure record", n->id);
	} else {
		printf("failure:\n");
		if (fflush(stdout) == EOF)
			err(EX_IOERR, "stdout");
		copy_out(fd, "failure record");
		close(fd);
	}
}


int
cmd_cat(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "meta", no_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	char name[SQ_NAME_MAX + 1];
	const char *output = NULL, *id;
	struct sq_queue q;
	struct sq_msg m;
	int ch, fd, meta = 0;

	optind = 0;	/* glibc: start over, permuting (main used "+") */
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			meta = 1;
			break;
		case 'o':
			output = optarg;
			break;
		default:
			admin_usage(NULL);
		}
	}
	if (argc - optind < 1)
		admin_usage("missing queue name");
	if (argc - optind < 2)
		admin_usage("missing message id");
	if (argc - optind > 2)
		admin_usage("%s: one message only", argv[optind + 2]);
	if (output != NULL && !meta)
		admin_usage("--output: only with --meta");
	id = argv[optind + 1];
	admin_open(a, &q, argv[optind]);
	if ((fd = sq_msg_open(&q, id, &m, name)) == -1) {
		/* Acknowledged, but its job's output is kept. */
		if (errno == ENOENT && output != NULL &&
		    strchr(id, '/') == NULL && strchr(id, ',') == NULL) {
			if (cat_output(output, id, 1) == 0)
				goto out;
			errx(EX_NOINPUT, "%s: no such message, and no output "
			    "in %s", id, output);
		}
		if (errno == ENOENT)
			errx(EX_NOINPUT, "%s: no such message", id);
		if (errno == EAGAIN)
			errx(EX_TEMPFAIL, "%s: message keeps moving; try again",
			    id);
		err(tool_exit_code(errno), "%s", id);
	}
	if (meta)
		cat_meta(&q, &m, name, output);
	else
		copy_out(fd, id);
	close(fd);
out:
	sq_queue_close(&q);
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EX_IOERR, "stdout");
	return 0;
}
