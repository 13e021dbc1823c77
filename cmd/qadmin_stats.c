/*
 * qadmin_stats.c - qadmin stats: counts per state, bytes, ages, attempts
 * and dead-letter rate of one queue or of every queue under the root.
 *
 * The numbers come from the library (lib/inspect.c), which streams each
 * state directory once; this file only parses options and formats:
 * an aligned table for people, JSON for programs, and the Prometheus
 * text exposition format for the node_exporter textfile collector,
 * written with -o to a temporary name, synced and renamed in place.
 * Sizes are bytes in JSON and Prometheus and humanize_number(3) in
 * tables; ages in tables are one unit, rounded down: 5s, 3m, 2h, 4d.
 */
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

#include "inspect.h"
#include "qadmin.h"

#define SIZE_LEN	5		/* humanize_number: "1.2K" + NUL */

/* One queue of stats, as named in the output. */
struct qstats {
	char		name[PATH_MAX];
	struct sq_stats	s;
	int		held;			/* QUEUE/held: claims find none */
	char		broken[PATH_MAX + 256];	/* why it cannot be read, or "" */
};

/* ------------------------------------------------ formatting helpers */

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
		snprintf(buf, size, "in %s", admin_span(span, sizeof(span),
		    t - now));
	else
		snprintf(buf, size, "%s ago", admin_span(span, sizeof(span),
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
			fprintf(fp, "  oldest %s", admin_span(t, sizeof(t),
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
	fprintf(fp, "\n  %-12s sent %" PRIu64 ", acked %" PRIu64 ", retried %"
	    PRIu64 ", dead-lettered %" PRIu64, "total", s->sent, s->acked,
	    s->retried, s->dead_lettered);
	/* Counts lost to a stopped holder of run/counters: said, not hidden. */
	if (s->dropped > 0)
		fprintf(fp, ", dropped %" PRIu64, s->dropped);
	putc('\n', fp);
	if (s->groups.groups > 0)
		fprintf(fp, "  %-12s %zu: %zu in flight, %zu blocked, %zu "
		    "messages waiting\n", "groups", s->groups.groups,
		    s->groups.inflight, s->groups.blocked, s->groups.waiting);
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
		admin_json_str(fp, qs[i].name);
		if (qs[i].broken[0] != '\0') {
			fputs(",\"status\":\"broken\",\"reason\":", fp);
			admin_json_str(fp, qs[i].broken);
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
		fprintf(fp, ",\"total\":{\"sent\":%" PRIu64 ",\"acked\":%"
		    PRIu64 ",\"retried\":%" PRIu64 ",\"dead_lettered\":%"
		    PRIu64 ",\"dropped\":%" PRIu64 "}", s->sent, s->acked,
		    s->retried, s->dead_lettered, s->dropped);
		fprintf(fp, ",\"groups\":{\"all\":%zu,\"inflight\":%zu,"
		    "\"blocked\":%zu,\"waiting\":%zu}", s->groups.groups,
		    s->groups.inflight, s->groups.blocked, s->groups.waiting);
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
	M_AGES, M_HELD, M_BROKEN, M_TOTAL, M_GROUPS, M_DROPPED, NMETRICS
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
	[M_TOTAL] = { "spoolq_messages_total",
	    "Messages sent, acked, retried and dead-lettered since the "
	    "queue was made." },
	[M_GROUPS] = { "spoolq_groups",
	    "Message groups: all, in flight (head claimed), blocked "
	    "(messages waiting behind their head), and the messages "
	    "waiting." },
	[M_DROPPED] = { "spoolq_counts_dropped_total",
	    "Counts of spoolq_messages_total that were not written, because "
	    "run/counters stayed locked (a stopped process held it)." },
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
	case M_TOTAL:
		prom_sample(fp, m, q, "event", "sent", (int64_t)s->sent);
		prom_sample(fp, m, q, "event", "acked", (int64_t)s->acked);
		prom_sample(fp, m, q, "event", "retried", (int64_t)s->retried);
		prom_sample(fp, m, q, "event", "dead_lettered",
		    (int64_t)s->dead_lettered);
		break;
	case M_GROUPS:
		prom_sample(fp, m, q, "kind", "all", (int64_t)s->groups.groups);
		prom_sample(fp, m, q, "kind", "inflight",
		    (int64_t)s->groups.inflight);
		prom_sample(fp, m, q, "kind", "blocked",
		    (int64_t)s->groups.blocked);
		prom_sample(fp, m, q, "kind", "waiting_messages",
		    (int64_t)s->groups.waiting);
		break;
	case M_DROPPED:
		prom_sample(fp, m, q, NULL, NULL, (int64_t)s->dropped);
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
		fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name,
		    metrics[m].help, metrics[m].name,
		    m == M_TOTAL || m == M_DROPPED ? "counter" : "gauge");
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
 * Open the queue NAME at PATH and add its figures, or, when it cannot be
 * read, report it on stderr as tool_open would and add it as broken.
 * Returns 0, the exit status for a broken queue (tool_open_why), or -1
 * when there is no queue at PATH (ENOENT, ENOTDIR).
 */
static int
stats_open(struct qstats **qs, size_t *n, const char *name,
    const char *path)
{
	char msg[PATH_MAX + 256], why[PATH_MAX * 2 + 256];
	struct sq_queue q;
	int rc;

	if (sq_queue_open(&q, path, msg, sizeof(msg)) == 0) {
		stats_add(qs, n, name, &q, NULL);
		sq_queue_close(&q);
		return 0;
	}
	if (errno == ENOENT || errno == ENOTDIR)
		return -1;
	rc = tool_open_why(why, sizeof(why), name, path, msg, errno);
	warnx("%s", why);
	stats_add(qs, n, name, NULL, why);
	return rc;
}

/*
 * Every queue under the spool root, by name order.  Returns the exit
 * status for queues that could not be read (stats_open); they are
 * reported on stderr and shown as broken.
 */
static int
stats_all(struct admin *a, struct qstats **qs, size_t *n)
{
	char root[PATH_MAX], path[PATH_MAX * 2];
	struct dirent **names;
	int i, count, rc = 0, r;

	tool_root(root, a->root, 0);
	if ((count = scandir(root, &names, NULL, alphasort)) == -1)
		err(tool_exit_code(errno), "%s", root);
	for (i = 0; i < count; i++) {
		if (sq_queue_name_valid(names[i]->d_name)) {
			snprintf(path, sizeof(path), "%s/%s", root,
			    names[i]->d_name);
			if ((r = stats_open(qs, n, names[i]->d_name,
			    path)) > 0)
				rc = r;
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
			tool_bad("%s: name too long", tool_echo(file));
		memcpy(o->dir, file, slash - file);
		o->dir[slash - file] = '\0';
		o->base = slash + 1;
	}
	if (*o->base == '\0')
		tool_bad("%s: not a file name", tool_echo(file));
	if ((size_t)snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.%ld", o->base,
	    (long)getpid()) >= sizeof(o->tmp))
		tool_bad("%s: name too long", tool_echo(file));
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
	char path[PATH_MAX];
	struct out out;
	const char *file = NULL;
	struct qstats *qs = NULL;
	struct sq_queue q;
	size_t n = 0;
	int ch, i, r, ages = 0, json = 0, prom = 0, rc = 0;
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
	/* A named queue that is broken is shown as such, as in a listing. */
	for (i = optind; i < argc; i++) {
		tool_queue_path(path, a->root, argv[i], 0);
		if ((r = stats_open(&qs, &n, argv[i], path)) == -1)
			admin_open(a, &q, argv[i]);	/* says why, exits */
		else if (r > 0)
			rc = r;
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
