/*
 * qadmin_inspect.c - the commands that look at messages without
 * touching them: ls (peek) and cat.
 *
 * The listing comes from the library (lib/inspect.c), which streams each
 * state directory once; this file only parses options and formats: one
 * line per message for people and awk, or JSON for programs.  Ages are
 * one unit, rounded down: 5s, 3m, 2h, 4d.  stats is in qadmin_stats.c.
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
#define ID_WIDTH	40		/* ls: first width of the ID column */

/* ------------------------------------------------ ls */

struct lister {
	int		json;
	int		lines;		/* printed so far */
	int		idw;		/* width of the ID column, widest yet */
	int64_t		now;		/* epoch milliseconds */
	const char	*label;		/* shown instead of the state, or NULL */
	size_t		max, left;	/* -n: at most max of groups/ */
};

/* The state shown for m: its own, or "grouped" while it waits in groups/. */
static const char *
ls_state(const struct lister *l, const struct sq_msg *m)
{
	return l->label != NULL ? l->label : sq_state_name(m->state);
}

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
	if (n->group[0] != '\0')
		printf(",\"group\":\"%s\"", n->group);	/* [A-Za-z0-9_-] */
}

static void
ls_json(struct lister *l, const struct sq_msg *m)
{
	const char *stray = sq_msg_stray(m);
	int64_t sent = sq_msg_sent_ms(m);

	fputs(l->lines > 0 ? ",\n" : "\n", stdout);
	printf("{\"state\":\"%s\",", ls_state(l, m));
	if (stray == NULL) {
		fputs("\"id\":", stdout);
		admin_json_str(stdout, m->n.id);
		putchar(',');
	}
	fputs("\"name\":", stdout);
	admin_json_str(stdout, m->name);
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

/* The fields of a message that matter in its state, or "". */
static void
state_info(const struct sq_msg *m, char *buf, size_t size)
{
	const struct sq_name *n = &m->n;

	buf[0] = '\0';
	switch (m->state) {
	case SQ_STATE_INFLIGHT:
		if (n->lease >= 0 && n->token[0] != '\0')
			snprintf(buf, size, "lease=%" PRId64 ",worker=%s",
			    n->lease, n->token);
		else if (n->lease >= 0)
			snprintf(buf, size, "lease=%" PRId64, n->lease);
		else if (n->token[0] != '\0')
			snprintf(buf, size, "worker=%s", n->token);
		break;
	case SQ_STATE_RETRY:
		if (n->due >= 0)
			snprintf(buf, size, "due=%" PRId64, n->due);
		break;
	case SQ_STATE_DEAD:
		strlcpy(buf, n->reason, size);
		break;
	default:
		if (n->expires >= 0)
			snprintf(buf, size, "expires=%" PRId64, n->expires);
		/* A dead letter of another queue (dead_letter): why. */
		if (n->reason[0] != '\0')
			snprintf(buf + strlen(buf), size - strlen(buf),
			    "%sdead=%s", buf[0] != '\0' ? "," : "", n->reason);
		break;
	}
}

/*
 * INFO: the fields that matter in the state, as key=value[,key=value],
 * then the group of a grouped message, group=KEY; "-" for none.
 */
static void
ls_info(const struct sq_msg *m)
{
	char buf[128];

	state_info(m, buf, sizeof(buf));
	if (m->n.group[0] != '\0')
		printf("%s%sgroup=%s", buf, buf[0] != '\0' ? "," : "",
		    m->n.group);
	else
		fputs(buf[0] != '\0' ? buf : "-", stdout);
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
	printf("%-8s %-*s %3s %4s %7jd ", ls_state(l, m), l->idw,
	    id, attempts, admin_span(age, sizeof(age),
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

	if (l->label != NULL && l->max > 0 && l->left-- == 0)
		return 1;		/* -n: enough of groups/ */

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
	int ch, rc, grouped = 0;

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
	if (argc - optind - 1 > SQ_NSTATES + 1)
		admin_usage("%s: too many states", tool_echo(argv[optind + 1 +
		    SQ_NSTATES + 1]));
	for (i = (size_t)optind + 1; i < (size_t)argc; i++)
		if (strcmp(argv[i], "grouped") == 0 ||
		    strcmp(argv[i], SQ_DIR_GROUPS) == 0)
			grouped = 1;
		else if (nstates == SQ_NSTATES ||
		    sq_state_parse(argv[i], &states[nstates++]) == -1) {
			admin_usage("%s: not a state (ready, inflight, retry, "
			    "dead, held, grouped)", tool_echo(argv[i]));
		}
	if (nstates == 0 && !grouped) {
		for (; nstates < SQ_NSTATES; nstates++)
			states[nstates] = (enum sq_state)nstates;
		grouped = 1;
	}
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
	/* Messages waiting behind their group's head, in no order. */
	l.label = "grouped";
	l.max = l.left = max;
	if (grouped && sq_group_each(&q, ls_one, &l) == -1) {
		if (ferror(stdout))
			err(EX_IOERR, "stdout");
		err(tool_exit_code(errno), "%s: %s", argv[optind],
		    SQ_DIR_GROUPS);
	}
	if (l.json)
		fputs(l.lines > 0 ? "\n]\n" : "]\n", stdout);
	sq_queue_close(&q);
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EX_IOERR, "stdout");
	return 0;
}

/* ------------------------------------------------ cat */

/*
 * Copy fd to standard output: byte for byte (bodies), or, when safe is
 * set, made safe for a terminal by tool_vis (tabs and newlines as they
 * are, every other control byte, NUL, escape and non-ASCII byte as \ooo,
 * a backslash as \134), as qworker logs a job's lines: what a job wrote to
 * its standard error is shown by --meta, never sent raw.
 */
static void
copy_out(int fd, const char *what, int safe)
{
	char buf[16384], shown[4 * sizeof(buf) + 1];
	ssize_t r;
	size_t len;

	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			err(EX_IOERR, "%s", what);
		}
		len = safe ? tool_vis(shown, buf, (size_t)r,
		    TOOL_VIS_LINES) : (size_t)r;
		if (sq_write_all(STDOUT_FILENO, safe ? shown : buf, len) == -1)
			err(EX_IOERR, "stdout");
	}
}

/* cat --meta: the routing key and each attribute of the sidecar, safe. */
static int
meta_attr(const char *name, const char *value, void *arg)
{
	size_t len = strlen(value);
	char *shown;

	(void)arg;
	if ((shown = malloc(4 * len + 1)) == NULL)
		err(EX_OSERR, NULL);
	tool_vis(shown, value, len, TOOL_VIS_LINE);
	if (name == NULL)
		printf("key: %s\n", shown);
	else
		printf("attr: %s=%s\n", name, shown);
	free(shown);
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
	copy_out(fd, "output status", 1);
	close(fd);
	printf("stdout_file=%s/%s%s\nstderr_file=%s/%s%s\n", path, id,
	    SQ_OUTPUT_OUT, path, id, SQ_OUTPUT_ERR);
	close(dfd);
	return 0;
}

/*
 * cat --meta: "key: value" lines, what --output kept of its last job,
 * then the failure record if any, all made safe for a terminal.
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
	if (n->group[0] != '\0')
		printf("group: %s\n", n->group);	/* [A-Za-z0-9_-] */
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
		copy_out(fd, "failure record", 1);
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
	char name[SQ_NAME_MAX + 1], dir[SQ_GROUP_MAX + 16];
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
		admin_usage("%s: one message only",
		    tool_echo(argv[optind + 2]));
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
			    "in %s", tool_echo(id), output);
		}
		if (errno == ENOENT)
			errx(EX_NOINPUT, "%s: no such message",
			    tool_echo(id));
		if (errno == SQ_ENOTREG)
			errx(EX_DATAERR, "%s/%s/%s: not a regular file (%s); "
			    "qadmin check --repair %s moves it to quarantine/",
			    argv[optind], admin_msg_dir(&m, dir, sizeof(dir)),
			    name, sq_mode_name(m.st.st_mode), argv[optind]);
		if (errno == EAGAIN)
			errx(EX_TEMPFAIL, "%s: message keeps moving; try again",
			    id);
		err(tool_exit_code(errno), "%s", id);
	}
	if (meta)
		cat_meta(&q, &m, name, output);
	else
		copy_out(fd, id, 0);
	close(fd);
out:
	sq_queue_close(&q);
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EX_IOERR, "stdout");
	return 0;
}
