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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "qadmin.h"

struct cmd {
	const char	*name;
	admin_fn	*fn;
	const char	*usage;
};

static const struct cmd cmds[] = {
	{ "bind", cmd_bind, "bind exchange queue [pattern]" },
	{ "cat", cmd_cat, "cat [--meta] queue id" },
	{ "check", cmd_check, "check [--repair] queue" },
	{ "config", cmd_config,
	    "config queue [get key | set key=value ... | show]" },
	{ "create", cmd_create, "create queue [key=value ...]" },
	{ "delete", cmd_delete, "delete queue id ..." },
	{ "destroy", cmd_destroy, "destroy [-f] queue" },
	{ "exchange", cmd_exchange, "exchange create name fanout|direct|topic [alternate=queue] | destroy name | list | show name" },
	{ "gc", cmd_gc, "gc [--tmp-age duration] queue" },
	{ "hold", cmd_hold, "hold queue [id ...]" },
	{ "list", cmd_list, "list" },
	{ "ls", cmd_ls, "ls [--json] [-n count] queue [state ...]" },
	{ "move", cmd_move, "move queue other [id ... | -]" },
	{ "peek", cmd_ls, "peek [--json] [-n count] queue [state ...]" },
	{ "purge", cmd_purge, "purge queue [state ...]" },
	{ "recover", cmd_recover, "recover queue" },
	{ "redrive", cmd_redrive, "redrive [--reason reason] "
	    "[--older-than duration] [--limit count]\n"
	    "                [--to other] queue [id ... | -]" },
	{ "release", cmd_release, "release queue [id ...]" },
	{ "replay", cmd_replay, "replay [--since time] [--to other] queue" },
	{ "retry-now", cmd_retry_now, "retry-now queue" },
	{ "stats", cmd_stats, "stats [--age] [--json | --prometheus "
	    "[-o file]] [queue ...]" },
	{ "unbind", cmd_unbind, "unbind exchange queue [pattern]" },
};
#define NCMDS	(sizeof(cmds) / sizeof(cmds[0]))

static void
print_usage(FILE *fp)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		fprintf(fp, "%s qadmin [-nqv] [-d root] %s\n",
		    i == 0 ? "usage:" : "      ", cmds[i].usage);
}

void
admin_usage(void)
{
	print_usage(stderr);
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

int
cmd_create(struct admin *a, int argc, char **argv)
{
	char path[PATH_MAX], why[256] = "", *eq;
	const char **keys, **values;
	int i;

	if (argc < 2)
		admin_usage();
	tool_queue_path(path, a->root, argv[1]);
	keys = reallocarray(NULL, (size_t)argc, sizeof(*keys));
	values = reallocarray(NULL, (size_t)argc, sizeof(*values));
	if (keys == NULL || values == NULL)
		err(EX_OSERR, NULL);
	for (i = 2; i < argc; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL || eq == argv[i])
			errx(EX_USAGE, "%s: not a key=value setting", argv[i]);
		*eq = '\0';
		keys[i - 2] = argv[i];
		values[i - 2] = eq + 1;
	}
	if (a->dry_run) {
		admin_say(a, "create", argv[1], "-", path);
		return 0;
	}
	if (sq_queue_create(path, keys, values, (size_t)argc - 2, why,
	    sizeof(why)) == -1) {
		if (errno == EINVAL)
			errx(EX_CONFIG, "%s: %s", argv[1], why);
		if (errno == EEXIST)
			errx(EX_CANTCREAT, "%s: queue exists", argv[1]);
		err(EX_CANTCREAT, "%s", argv[1]);
	}
	free(keys);
	free(values);
	return 0;
}

int
cmd_destroy(struct admin *a, int argc, char **argv)
{
	char path[PATH_MAX];
	int force = 0, ch;

	while ((ch = getopt(argc, argv, "f")) != -1) {
		if (ch != 'f')
			admin_usage();
		force = 1;
	}
	if (argc - optind != 1)
		admin_usage();
	argv += optind - 1;
	tool_queue_path(path, a->root, argv[1]);
	if (a->dry_run && access(path, F_OK) == -1)
		errx(EX_NOINPUT, "%s: no such queue", argv[1]);
	if (a->dry_run) {
		admin_say(a, "destroy", argv[1], path, "-");
		return 0;
	}
	if (sq_queue_destroy(path, force) == -1) {
		if (errno == ENOTEMPTY)
			errx(EX_DATAERR, "%s: queue not empty (use -f)",
			    argv[1]);
		if (errno == ENOENT)
			errx(EX_NOINPUT, "%s: no such queue", argv[1]);
		if (errno == ENOTDIR)
			errx(EX_NOINPUT, "%s: not a queue", argv[1]);
		err(tool_exit_code(errno), "%s", argv[1]);
	}
	return 0;
}

int
cmd_list(struct admin *a, int argc, char **argv)
{
	char root[PATH_MAX], path[PATH_MAX * 2], msg[PATH_MAX + 256];
	struct sq_queue q;
	struct sq_counts c;
	struct dirent **names;
	int n, i;

	(void)argv;
	if (argc != 1)
		admin_usage();
	if (sq_spool_root(root, sizeof(root), a->root) == -1)
		err(EX_CONFIG, "spool root");
	if ((n = scandir(root, &names, NULL, alphasort)) == -1) {
		if (errno == ENOENT)
			return 0;	/* no root yet: no queues */
		err(tool_exit_code(errno), "%s", root);
	}
	printf("QUEUE\tREADY\tINFLIGHT\tRETRY\tDEAD\n");
	for (i = 0; i < n; i++) {
		if (sq_queue_name_valid(names[i]->d_name)) {
			snprintf(path, sizeof(path), "%s/%s", root,
			    names[i]->d_name);
			if (sq_queue_open(&q, path, msg, sizeof(msg)) == 0 &&
			    sq_queue_count(&q, &c) == 0)
				printf("%s\t%zu\t%zu\t%zu\t%zu\n",
				    names[i]->d_name, c.ready, c.inflight,
				    c.retry, c.dead);
			else if (errno == EINVAL)
				warnx("%s", msg);
			sq_queue_close(&q);
		}
		free(names[i]);
	}
	free(names);
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
	struct admin a;
	size_t i;
	int ch, rc;

	tool_init();
	memset(&a, 0, sizeof(a));
	/* "+": options after the command belong to it. */
	while ((ch = getopt_long(argc, argv, "+d:hnqv", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'd':
			a.root = optarg;
			break;
		case 'h':
			print_usage(stdout);
			return 0;
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
			admin_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		admin_usage();
	for (i = 0; i < NCMDS; i++)
		if (strcmp(argv[0], cmds[i].name) == 0) {
			/* 0: glibc starts afresh, permuting again. */
			optind = 0;
			rc = cmds[i].fn(&a, argc, argv);
			/* Every command's output, checked once here. */
			if (fflush(stdout) == EOF || ferror(stdout))
				err(EX_IOERR, "stdout");
			return rc;
		}
	warnx("%s: unknown command", argv[0]);
	admin_usage();
}
