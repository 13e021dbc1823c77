/*
 * qadmin - create, inspect, monitor, repair and redrive queues.
 *
 * Subcommands live in one table of {name, function, usage}; this file
 * holds the table, the shared helpers of qadmin.h and the commands on
 * whole queues (create, destroy, list).
 */
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "qadmin.h"

struct cmd {
	const char	*name;
	admin_fn	*fn;
	const char	*usage;		/* as in the SYNOPSIS of qadmin(1) */
	const char	*help;		/* -h: one line per option or operand */
};

static const struct cmd cmds[] = {
	{ "bind", cmd_bind, "bind exchange queue [pattern]",
	    "  exchange        the exchange that routes to queue\n"
	    "  queue           a queue beside the exchange\n"
	    "  pattern         direct: the key; topic: words with * (one) "
	    "and # (any)\n" },
	{ "cat", cmd_cat, "cat [--meta [--output dir]] queue id",
	    "  --meta          state, fields, attributes and the last "
	    "failure, not the body\n"
	    "  --output dir    with --meta, the last job's status kept by "
	    "qworker --output\n" },
	{ "check", cmd_check, "check [--repair] queue",
	    "  --repair        mend what is found (strays go to "
	    "quarantine/)\n" },
	{ "config", cmd_config,
	    "config queue [get key | set key=value ... | show]",
	    "  get key         print one setting of queue.conf\n"
	    "  set key=value   change settings (all are checked first)\n"
	    "  show            print every setting (the default)\n" },
	{ "create", cmd_create, "create queue [key=value ...]",
	    "  key=value       a queue.conf setting, like max_attempts=3 "
	    "lease=1m\n" },
	{ "delete", cmd_delete, "delete queue id ...",
	    "  id ...          messages to remove, in whatever state\n" },
	{ "destroy", cmd_destroy, "destroy [-f] queue",
	    "  -f              remove the queue even if it holds messages\n" },
	{ "exchange", cmd_exchange, "exchange create name fanout|direct|topic "
	    "[alternate=queue] | destroy name | list | show name",
	    "  create name type  make an exchange: fanout, direct or topic\n"
	    "  alternate=queue  where messages no binding matches go\n"
	    "  destroy name    remove an exchange\n"
	    "  list            one line per exchange: type and bindings\n"
	    "  show name       the type and bindings of one exchange\n" },
	{ "gc", cmd_gc, "gc [--tmp-age duration] [queue]",
	    "  --tmp-age duration  remove files of tmp/ older than this "
	    "(default 36h)\n"
	    "  (no queue)      only what stopped destroys left in the "
	    "spool root\n" },
	{ "hold", cmd_hold, "hold queue [id ...]",
	    "  id ...          hold these ready or waiting messages in "
	    "hold/;\n"
	    "                  without any, hold the whole queue\n" },
	{ "list", cmd_list, "list",
	    "  (no options)    one line per queue: counts and status (ok, "
	    "held, broken)\n" },
	{ "ls", cmd_ls, "ls [--json] [-n count] queue [state ...]",
	    "  --json          one JSON object per message\n"
	    "  -n count        the count oldest messages of each state\n"
	    "  state           ready, inflight, retry, dead, held or "
	    "grouped (default: all)\n" },
	{ "move", cmd_move, "move queue other [id ... | -]",
	    "  other           the queue the messages go to, as ready\n"
	    "  id ... | -      these messages (- reads IDs from stdin); "
	    "default: all ready\n" },
	{ "peek", cmd_ls, "peek [--json] [-n count] queue [state ...]",
	    "  --json          one JSON object per message\n"
	    "  -n count        the count oldest messages of each state\n"
	    "  state           ready, inflight, retry, dead, held or "
	    "grouped (default: all)\n" },
	{ "purge", cmd_purge, "purge queue [state ...]",
	    "  state           ready (and grouped), retry, dead, held, or "
	    "grouped alone\n"
	    "                  (default: ready and retry)\n" },
	{ "recover", cmd_recover, "recover queue",
	    "  (no options)    recover lost claims, promote due retries, "
	    "expire messages\n" },
	{ "redrive", cmd_redrive, "redrive [--reason reason] "
	    "[--older-than duration] [--limit count]\n"
	    "                [--to other] queue [id ... | -]",
	    "  --reason reason     only dead letters with this reason (r=)\n"
	    "  --older-than duration  only those dead for longer than "
	    "this\n"
	    "  --limit count       at most count messages\n"
	    "  --to other          into the queue other\n"
	    "  id ... | -          these dead letters (- reads IDs from "
	    "stdin)\n" },
	{ "release", cmd_release, "release queue [id ...]",
	    "  id ...          release these held messages; without any, "
	    "release\n"
	    "                  the whole queue and every held message\n" },
	{ "replay", cmd_replay, "replay [--since time] [--to other] queue",
	    "  --since time    only messages sent since time (@EPOCH or "
	    "YYYY-MM-DDTHH:MM)\n"
	    "  --to other      into the queue other\n" },
	{ "retry-now", cmd_retry_now, "retry-now queue",
	    "  (no options)    make every message waiting in retry/ ready "
	    "now\n" },
	{ "stats", cmd_stats, "stats [--age] [--json | --prometheus "
	    "[-o file]] [queue ...]",
	    "  --age           ready messages by age, like qshape(1)\n"
	    "  --json          one JSON document\n"
	    "  --prometheus    the text format of the node_exporter "
	    "textfile collector\n"
	    "  -o file         with --prometheus: write file, replaced "
	    "atomically\n"
	    "  queue ...       default: every queue under the spool root\n" },
	{ "unbind", cmd_unbind, "unbind exchange queue [pattern]",
	    "  exchange        the exchange to remove the binding from\n"
	    "  queue           the bound queue\n"
	    "  pattern         only this binding (default: every binding "
	    "of queue)\n" },
};
#define NCMDS	(sizeof(cmds) / sizeof(cmds[0]))

#define GLOBAL_HELP \
	"  -d root         the spool root (default $SPOOLQ_DIR; spoolq(7))\n" \
	"  -h, --help      this help; qadmin COMMAND -h: a command's " \
	"options\n" \
	"  -n, --dry-run   say what would change, change nothing\n" \
	"  -q              quiet: no lines of changes\n" \
	"  -v              verbose: say more on standard error\n" \
	"  --version       print the version\n"

/* The command being run (NULL before one is chosen), for admin_usage. */
static const struct cmd *current;

/* The synopsis of cmd, or of every command when cmd is NULL. */
static void
print_usage(FILE *fp, const struct cmd *cmd)
{
	size_t i;

	if (cmd != NULL) {
		fprintf(fp, "usage: qadmin [-nqv] [-d root] %s\n", cmd->usage);
		return;
	}
	for (i = 0; i < NCMDS; i++)
		fprintf(fp, "%s qadmin [-nqv] [-d root] %s\n",
		    i == 0 ? "usage:" : "      ", cmds[i].usage);
}

/* After a usage error: the synopsis of the command being run. */
static void
bad_usage(void)
{
	print_usage(stderr, current);
}

/*
 * The width of the option column of help text: lines "  OPTION  TEXT",
 * the option ending at the first two spaces; a line that starts with
 * more spaces continues the text above.
 */
static int
help_width(const char *text, int width)
{
	const char *line, *gap, *end;

	for (line = text; *line != '\0'; line = end + (*end == '\n')) {
		end = line + strcspn(line, "\n");
		if (strncmp(line, "  ", 2) != 0 || line[2] == ' ')
			continue;
		if ((gap = strstr(line + 2, "  ")) == NULL || gap > end)
			gap = end;
		if (gap - line - 2 > width)
			width = gap - line - 2;
	}
	return width;
}

/* Print help text with its option column width wide. */
static void
help_print(const char *text, int width)
{
	const char *line, *gap, *end;

	for (line = text; *line != '\0'; line = end + (*end == '\n')) {
		end = line + strcspn(line, "\n");
		if (strncmp(line, "  ", 2) != 0) {
			printf("%.*s\n", (int)(end - line), line);
			continue;
		}
		if (line[2] == ' ')
			gap = line + 2;		/* continued: no option */
		else if ((gap = strstr(line + 2, "  ")) == NULL || gap > end)
			gap = end;
		printf("  %-*.*s", width, (int)(gap - line - 2), line + 2);
		gap += strspn(gap, " ");
		if (gap < end)
			printf("  %.*s", (int)(end - gap), gap);
		putchar('\n');
	}
}

/* -h: the synopsis, the options, the page to read; exits 0. */
static void __attribute__((noreturn))
help(const struct cmd *cmd)
{
	/* Global options go before the command; after it, -n may differ. */
	static const char global[] =
	    "  -d, -n, -q, -v  before the command: as for every command "
	    "(qadmin -h)\n";
	static const char global_n[] =
	    "  -d, -n, -q, -v  before the command: as for every command "
	    "(qadmin -h);\n"
	    "                  -n before the command is --dry-run; -n count "
	    "after it, the count\n";
	const char *text = cmd != NULL ? cmd->help : GLOBAL_HELP;
	const char *more = cmd == NULL ? "" : strstr(text, "  -n ") != NULL ?
	    global_n : global;
	int width;

	print_usage(stdout, cmd);
	putchar('\n');
	width = help_width(more, help_width(text, 0));
	help_print(text, width);
	help_print(more, width);
	printf("\nSee qadmin(1)%s.\n", cmd != NULL ? ", Commands" : "");
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EX_IOERR, "stdout");
	exit(0);
}

void
admin_usage(const char *fmt, ...)
{
	va_list ap;

	if (fmt != NULL) {
		/* "qadmin: COMMAND" once a command is chosen (main). */
		fprintf(stderr, "%s: ", getprogname());
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		putc('\n', stderr);
	}
	print_usage(stderr, current);
	exit(EX_USAGE);
}

void
admin_open(struct admin *a, struct sq_queue *q, const char *arg)
{
	tool_open(q, a->root, arg, 0);
}

void
admin_say(struct admin *a, const char *action, const char *id,
    const char *from, const char *to)
{
	if (a->quiet)
		return;
	printf("%s%s %s %s -> %s\n", a->dry_run ? "would " : "", action, id,
	    from, to);
}

const char *
admin_msg_dir(const struct sq_msg *m, char *buf, size_t size)
{
	if (m->state == SQ_STATE_GROUPED && m->parsed)
		snprintf(buf, size, "%s/%s", SQ_DIR_GROUPS, m->n.group);
	else
		strlcpy(buf, sq_state_dir(m->state), size);
	return buf;
}

int
admin_ids(int argc, char **argv, int (*fn)(const char *, void *), void *arg)
{
	char *line = NULL;
	size_t size = 0;
	ssize_t len;
	int i, rc = 0, r;

	if (argc == 1 && strcmp(argv[0], "-") == 0) {
		while ((len = getline(&line, &size, stdin)) != -1) {
			if (len > 0 && line[len - 1] == '\n')
				line[--len] = '\0';
			if (len > 0 && (r = fn(line, arg)) != 0 && rc == 0)
				rc = r;
		}
		free(line);
		return rc;
	}
	for (i = 0; i < argc; i++)
		if ((r = fn(argv[i], arg)) != 0 && rc == 0)
			rc = r;
	return rc;
}

const char *
admin_span(char *buf, size_t size, int64_t s)
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

void
admin_json_str(FILE *fp, const char *str)
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

/* Whether path ends in a name that create can give a directory. */
static int
ends_in_name(const char *path)
{
	const char *end = path + strlen(path), *start;

	while (end > path && end[-1] == '/')
		end--;
	for (start = end; start > path && start[-1] != '/'; start--)
		continue;
	return end > start && strncmp(start, ".", (size_t)(end - start)) != 0 &&
	    strncmp(start, "..", (size_t)(end - start)) != 0;
}

int
cmd_create(struct admin *a, int argc, char **argv)
{
	char path[PATH_MAX], why[256] = "", *eq;
	const char **keys, **values;
	int i;

	if (getopt(argc, argv, "") != -1)
		admin_usage(NULL);
	argc -= optind;
	argv += optind;
	if (argc < 1)
		admin_usage("missing queue name");
	if (!ends_in_name(argv[0]))
		tool_bad("%s: a queue path must end in a directory name",
		    tool_echo(argv[0]));
	tool_queue_path(path, a->root, argv[0], 1);
	keys = reallocarray(NULL, (size_t)argc, sizeof(*keys));
	values = reallocarray(NULL, (size_t)argc, sizeof(*values));
	if (keys == NULL || values == NULL)
		err(EX_OSERR, NULL);
	for (i = 1; i < argc; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL || eq == argv[i])
			admin_usage("%s: not a key=value setting",
			    tool_echo(argv[i]));
		*eq = '\0';
		keys[i - 1] = argv[i];
		values[i - 1] = eq + 1;
	}
	if (a->dry_run) {
		admin_say(a, "create", argv[0], "-", path);
		return 0;
	}
	if (sq_queue_create(path, keys, values, (size_t)argc - 1, why,
	    sizeof(why)) == -1) {
		if (errno == EINVAL)
			errx(EX_CONFIG, "%s: %s", argv[0], why);
		if (errno == EEXIST)
			errx(EX_CANTCREAT, "%s: queue exists", argv[0]);
		err(EX_CANTCREAT, "%s", argv[0]);
	}
	free(keys);
	free(values);
	return 0;
}

int
cmd_destroy(struct admin *a, int argc, char **argv)
{
	char path[PATH_MAX], why[256];
	int force = 0, ch;

	while ((ch = getopt(argc, argv, "f")) != -1) {
		if (ch != 'f')
			admin_usage(NULL);
		force = 1;
	}
	if (argc - optind < 1)
		admin_usage("missing queue name");
	if (argc - optind > 1)
		admin_usage("%s: one queue at a time",
		    tool_echo(argv[optind + 1]));
	argv += optind - 1;
	tool_queue_path(path, a->root, argv[1], 0);
	if (a->dry_run && access(path, F_OK) == -1)
		errx(EX_NOINPUT, "%s: no such queue", argv[1]);
	if (a->dry_run) {
		admin_say(a, "destroy", argv[1], path, "-");
		return 0;
	}
	if (sq_queue_destroy(path, force, why, sizeof(why)) == -1) {
		if (errno == ENOTEMPTY)
			errx(EX_DATAERR, "%s: queue not empty: %s; use -f",
			    argv[1], why);
		if (errno == ENOENT)
			errx(EX_NOINPUT, "%s: no such queue", argv[1]);
		if (errno == ENOTDIR)
			errx(EX_NOINPUT, "%s: not a queue", argv[1]);
		err(tool_exit_code(errno), "%s", argv[1]);
	}
	return 0;
}

/*
 * One line of list: the counts and status of a queue, or "-" counts and
 * "broken" for a queue that cannot be opened (its reason on stderr).
 * Returns 0 or the exit status of the failure.
 */
static int
list_one(const char *root, const char *name)
{
	char path[PATH_MAX * 2], msg[PATH_MAX + 256];
	struct sq_queue q;
	struct sq_counts c;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (sq_queue_open(&q, path, msg, sizeof(msg)) == 0 &&
	    sq_queue_count(&q, &c) == 0)
		printf("%s\t%zu\t%zu\t%zu\t%zu\t%s\n", name, c.ready,
		    c.inflight, c.retry, c.dead, sq_queue_held(&q) ? "held" :
		    "ok");
	else if (errno == EINVAL) {
		warnx("%s", msg);	/* file:line: key: reason */
		printf("%s\t-\t-\t-\t-\tbroken\n", name);
		rc = EX_CONFIG;
	} else if (errno == SQ_EBROKEN) {
		/* "NAME/DIR: reason", named from the spool root */
		warnx("%s", msg + strlen(root) + 1);
		printf("%s\t-\t-\t-\t-\tbroken\n", name);
		rc = EX_NOINPUT;
	} else if (errno != ENOENT && errno != ENOTDIR) {
		warn("%s", path);
		printf("%s\t-\t-\t-\t-\tbroken\n", name);
		rc = tool_exit_code(errno);
	}
	sq_queue_close(&q);
	return rc;
}

int
cmd_list(struct admin *a, int argc, char **argv)
{
	char root[PATH_MAX];
	struct dirent **names;
	int n, i, r, rc = 0;

	if (getopt(argc, argv, "") != -1)
		admin_usage(NULL);
	if (argc - optind > 0)
		admin_usage("%s: list takes no operands",
		    tool_echo(argv[optind]));
	tool_root(root, a->root, 0);
	if ((n = scandir(root, &names, NULL, alphasort)) == -1)
		err(tool_exit_code(errno), "%s", root);
	printf("QUEUE\tREADY\tINFLIGHT\tRETRY\tDEAD\tSTATUS\n");
	for (i = 0; i < n; i++) {
		if (sq_queue_name_valid(names[i]->d_name) &&
		    (r = list_one(root, names[i]->d_name)) != 0 && rc == 0)
			rc = r;
		free(names[i]);
	}
	free(names);
	return rc;
}

/* -h or --help among the arguments of a command, before any "--". */
static int
wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char name[64];
	struct admin a;
	size_t i;
	int ch, rc;

	tool_init();
	tool_args(argv, getprogname());
	tool_synopsis(NULL, bad_usage);
	memset(&a, 0, sizeof(a));
	/* "+": options after the command belong to it. */
	while ((ch = getopt_long(argc, argv, "+d:hnqv", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'd':
			a.root = optarg;
			break;
		case 'h':
			help(NULL);
		case 'n':
			a.dry_run = 1;
			break;
		case 'q':
			a.quiet = 1;
			break;
		case 'v':
			a.verbose = 1;
			break;
		case 'V':
			tool_version();
			break;
		default:
			admin_usage(NULL);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		admin_usage("missing command");
	for (i = 0; i < NCMDS; i++)
		if (strcmp(argv[0], cmds[i].name) == 0)
			break;
	if (i == NCMDS)
		admin_usage("%s: unknown command", tool_echo(argv[0]));
	current = &cmds[i];
	if (wants_help(argc, argv))
		help(current);
	/* getopt reports a bad option as "argv[0]: why". */
	snprintf(name, sizeof(name), "%s: %s", getprogname(), current->name);
	tool_args(argv, name);
	/* Every message of the command: "qadmin: COMMAND: ...". */
	setprogname(argv[0]);
	/* 0: glibc starts afresh, permuting again. */
	optind = 0;
	rc = current->fn(&a, argc, argv);
	/* Every command's output, checked once here. */
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EX_IOERR, "stdout");
	return rc;
}
