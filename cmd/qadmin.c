/*
 * qadmin - create, destroy and list queues.
 *
 * Subcommands live in one table of {name, function, usage}; each one
 * parses its own options and calls the library.
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

#include "tool.h"

struct cmd {
	const char	*name;
	int		(*fn)(const char *, int, char **);
	const char	*usage;
};

static int	cmd_create(const char *, int, char **);
static int	cmd_destroy(const char *, int, char **);
static int	cmd_list(const char *, int, char **);

static const struct cmd cmds[] = {
	{ "create", cmd_create, "create queue [key=value ...]" },
	{ "destroy", cmd_destroy, "destroy [-f] queue" },
	{ "list", cmd_list, "list" },
};
#define NCMDS	(sizeof(cmds) / sizeof(cmds[0]))

static void
usage(int status)
{
	FILE *fp = status ? stderr : stdout;
	size_t i;

	for (i = 0; i < NCMDS; i++)
		fprintf(fp, "%s qadmin [-qv] [-d root] %s\n",
		    i == 0 ? "usage:" : "      ", cmds[i].usage);
	exit(status ? EX_USAGE : 0);
}

static int
cmd_create(const char *root, int argc, char **argv)
{
	char path[PATH_MAX], why[256] = "", *eq;
	const char **keys, **values;
	int i;

	if (argc < 2)
		usage(1);
	tool_queue_path(path, root, argv[1]);
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

static int
cmd_destroy(const char *root, int argc, char **argv)
{
	char path[PATH_MAX];
	int force = 0;

	if (argc == 3 && strcmp(argv[1], "-f") == 0) {
		force = 1;
		argv++;
		argc--;
	}
	if (argc != 2)
		usage(1);
	tool_queue_path(path, root, argv[1]);
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

static int
cmd_list(const char *rootopt, int argc, char **argv)
{
	char root[PATH_MAX], path[PATH_MAX * 2], msg[PATH_MAX + 256];
	struct sq_queue q;
	struct sq_counts c;
	struct dirent **names;
	int n, i;

	(void)argv;
	if (argc != 1)
		usage(1);
	if (sq_spool_root(root, sizeof(root), rootopt) == -1)
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = NULL;
	size_t i;
	int ch;

	/* "+": options after the subcommand belong to it. */
	while ((ch = getopt_long(argc, argv, "+d:hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			root = optarg;
			break;
		case 'h':
			usage(0);
			break;
		case 'q':
		case 'v':
			break;
		case 'V':
			tool_version();
			break;
		default:
			usage(1);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage(1);
	for (i = 0; i < NCMDS; i++)
		if (strcmp(argv[0], cmds[i].name) == 0)
			return cmds[i].fn(root, argc, argv);
	warnx("%s: unknown command", argv[0]);
	usage(1);
}
