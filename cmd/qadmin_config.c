/*
 * qadmin_config.c - config: read and change a queue's queue.conf.
 *
 * get prints one effective value; set validates each key=value like the
 * loader and rewrites the file once, atomically, with all of them
 * (sq_conf_update_many), also a file that does not load today, as long
 * as the new one does: set is how a broken queue.conf is mended; show
 * prints
 * every key with its effective value and where it comes from.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "qadmin.h"

static int
show(struct sq_queue *q)
{
	const char *const *k;
	char value[SQ_CONF_VALUE_MAX];
	int line;

	for (k = sq_conf_keys(); *k != NULL; k++) {
		sq_conf_get(&q->conf, *k, value, sizeof(value));
		if (sq_conf_source(q->fd, *k, &line) == -1)
			err(tool_exit_code(errno), "%s/%s", q->path,
			    SQ_CONF_FILE);
		if (line > 0)
			printf("%s = %s\t(%s:%d)\n", *k, value, SQ_CONF_FILE,
			    line);
		else
			printf("%s = %s\t(default)\n", *k, value);
	}
	return 0;
}

/*
 * Open queue arg for set: as every command does, but a queue.conf that
 * does not load is no error (the settings stay at their defaults; the
 * file set writes must load whole).
 */
static void
config_open(struct admin *a, struct sq_queue *q, const char *arg)
{
	char path[PATH_MAX], msg[PATH_MAX + 256];

	tool_queue_path(path, a->root, arg, 0);
	if (sq_queue_open(q, path, msg, sizeof(msg)) == 0)
		return;
	if (errno == EINVAL && sq_queue_open_dirs(q, path, msg,
	    sizeof(msg)) == 0)
		return;
	admin_open(a, q, arg);		/* says why, as every command */
}

/*
 * The action named before the queue (config set q k=v, the order of
 * "config get|set" in the list of commands): 1 when arg is an action and
 * no queue of that name exists, so that the two may be read swapped.
 */
static int
action_first(struct admin *a, const char *arg)
{
	char path[PATH_MAX];
	struct stat st;

	if (strcmp(arg, "get") != 0 && strcmp(arg, "set") != 0 &&
	    strcmp(arg, "show") != 0)
		return 0;
	tool_queue_path(path, a->root, arg, 0);
	return lstat(path, &st) == -1 && errno == ENOENT;
}

int
cmd_config(struct admin *a, int argc, char **argv)
{
	struct sq_queue q;
	const char *keys[SQ_CONF_UPDATE_MAX], *values[SQ_CONF_UPDATE_MAX];
	char value[SQ_CONF_VALUE_MAX], why[256], hint[PATH_MAX + 80] = "", *eq;
	const char *queue;
	int i;

	if (getopt(argc, argv, "") != -1)
		admin_usage(NULL);
	if (argc - optind < 1)
		admin_usage("missing queue name");
	if (argc - optind > 1 && action_first(a, argv[optind])) {
		eq = argv[optind];
		argv[optind] = argv[optind + 1];
		argv[optind + 1] = eq;
	}
	/* set mends a queue.conf that does not load: it need not load. */
	if (argc - optind > 1 && strcmp(argv[optind + 1], "set") == 0)
		config_open(a, &q, argv[optind]);
	else
		admin_open(a, &q, argv[optind]);
	queue = argv[optind];
	argc -= optind + 1;
	argv += optind + 1;
	if (argc == 0 || (argc == 1 && strcmp(argv[0], "show") == 0))
		return show(&q);
	if (strcmp(argv[0], "get") == 0) {
		if (argc != 2)
			admin_usage(argc < 2 ? "get: missing key" :
			    "get: one key only");
		if (sq_conf_get(&q.conf, argv[1], value, sizeof(value)) == -1)
			tool_bad("%s: unknown key", tool_echo(argv[1]));
		printf("%s\n", value);
		return 0;
	}
	if (strcmp(argv[0], "set") != 0)
		admin_usage("%s: unknown action (get, set or show)",
		    tool_echo(argv[0]));
	if (argc < 2)
		admin_usage("set: missing key=value");
	/* Check every setting before writing any. */
	for (i = 1; i < argc; i++) {
		struct sq_conf check = q.conf;

		if ((eq = strchr(argv[i], '=')) == NULL || eq == argv[i])
			tool_bad("%s: not a key=value setting",
			    tool_echo(argv[i]));
		*eq = '\0';
		if (sq_conf_set(&check, argv[i], eq + 1, why, sizeof(why)) ==
		    -1)
			errx(EX_CONFIG, "%s: %s: %s", q.path,
			    tool_echo(argv[i]), why);
		*eq = '=';
	}
	if (argc - 1 > SQ_CONF_UPDATE_MAX)
		tool_bad("more than %d settings", SQ_CONF_UPDATE_MAX);
	for (i = 1; i < argc; i++) {
		eq = strchr(argv[i], '=');
		*eq = '\0';
		keys[i - 1] = argv[i];
		values[i - 1] = eq + 1;
	}
	/* All settings in one rewrite: a crash leaves all or none. */
	if (!a->dry_run && sq_conf_update_many(&q, keys, values,
	    (size_t)argc - 1, why, sizeof(why)) == -1) {
		/* A FIFO, link or directory is moved away first. */
		if (strstr(why, ": not a regular file") != NULL)
			snprintf(hint, sizeof(hint), "; qadmin check --repair "
			    "%s moves it to quarantine/, then set writes a new "
			    "one", queue);
		errx(errno == EINVAL ? EX_CONFIG : tool_exit_code(errno),
		    "%s%s%s%s", q.path, strncmp(why, SQ_CONF_FILE ":",
		    sizeof(SQ_CONF_FILE)) == 0 ? "/" : ": ", why, hint);
	}
	for (i = 0; i < argc - 1 && !a->quiet; i++)
		printf("%sset %s = %s\n", a->dry_run ? "would " : "",
		    keys[i], values[i]);
	return 0;
}
