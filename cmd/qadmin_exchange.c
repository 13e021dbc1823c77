/*
 * qadmin_exchange.c - exchange (create, list, show), bind and unbind.
 *
 * An exchange is named like a queue and lives beside the queues of the
 * spool root; its bound queues are names resolved there.  exchange.conf
 * is read and rewritten only by the library (lib/exchange.c).
 */
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "exchange.h"
#include "qadmin.h"

#define ALTERNATE	"alternate="

/* Resolve the exchange argument like a queue argument (a name or a path). */
static void
exchange_path(char *buf, const char *root, const char *arg, int create)
{
	char rootbuf[PATH_MAX];

	tool_root(rootbuf, root, create || (strchr(arg, '/') != NULL &&
	    root == NULL));
	if (sq_queue_path(buf, PATH_MAX, rootbuf, arg) == -1) {
		if (errno == EINVAL)
			tool_bad("%s: bad exchange name (want "
			    "[A-Za-z0-9][A-Za-z0-9._-]{0,127} or a path)",
			    tool_echo(arg));
		tool_bad("%s: %s", tool_echo(arg), strerror(errno));
	}
}

/* Open the exchange argument, or exit with a message (66, 78, ...). */
static void
exchange_open(struct admin *a, struct sq_exchange *x, const char *arg)
{
	char path[PATH_MAX], msg[PATH_MAX + 300];

	exchange_path(path, a->root, arg, 0);
	if (sq_exchange_open(x, path, msg, sizeof(msg)) == 0)
		return;
	switch (errno) {
	case EINVAL:
		errx(EX_CONFIG, "%s", msg);	/* file:line: key: reason */
	case ENOENT:
		errx(EX_NOINPUT, "%s: no such exchange", arg);
	case ENOTDIR:
		errx(EX_NOINPUT, "%s: not an exchange (%s)", arg, path);
	default:
		err(tool_exit_code(errno), "%s", arg);
	}
}

static void
check_queue_name(const char *name)
{
	if (!sq_queue_name_valid(name))
		tool_bad("%s: bad queue name (want "
		    "[A-Za-z0-9][A-Za-z0-9._-]{0,127})", tool_echo(name));
}

static int
create(struct admin *a, int argc, char **argv)
{
	struct sq_exchange x;
	struct sq_queue q;
	const char *alternate = NULL;
	char path[PATH_MAX], qpath[PATH_MAX * 2], msg[PATH_MAX + 300];

	if (argc < 2)
		admin_usage("create: missing exchange name");
	if (argc < 3)
		admin_usage("create: missing type (fanout, direct or topic)");
	if (argc > 4)
		admin_usage("create: %s: too many operands", argv[4]);
	if (strcmp(argv[2], "fanout") != 0 && strcmp(argv[2], "direct") != 0 &&
	    strcmp(argv[2], "topic") != 0)
		tool_bad("%s: unknown exchange type (want fanout, direct "
		    "or topic)", tool_echo(argv[2]));
	if (argc == 4) {
		if (strncmp(argv[3], ALTERNATE, strlen(ALTERNATE)) != 0)
			tool_bad("%s: not alternate=QUEUE",
			    tool_echo(argv[3]));
		alternate = argv[3] + strlen(ALTERNATE);
		check_queue_name(alternate);
	}
	exchange_path(path, a->root, argv[1], 1);
	if (a->dry_run) {
		admin_say(a, "create", argv[1], "-", path);
		return 0;
	}
	if (sq_exchange_create(path, argv[2], alternate) == -1) {
		if (errno == EEXIST)
			errx(EX_CANTCREAT, "%s: exists", argv[1]);
		err(tool_exit_code(errno), "%s", argv[1]);
	}
	/* Like RabbitMQ's alternate-exchange, it may come later: say so. */
	if (alternate != NULL && sq_exchange_open(&x, path, msg,
	    sizeof(msg)) == 0) {
		snprintf(qpath, sizeof(qpath), "%s/%s", x.root, alternate);
		if (sq_queue_open(&q, qpath, msg, sizeof(msg)) == -1 &&
		    (errno == ENOENT || errno == ENOTDIR))
			warnx("%s: alternate queue %s does not exist (yet)",
			    argv[1], alternate);
		sq_queue_close(&q);
		sq_exchange_close(&x);
	}
	return 0;
}

static int
list(struct admin *a, int argc, char **argv)
{
	char root[PATH_MAX], path[PATH_MAX * 2], msg[PATH_MAX + 300];
	struct sq_exchange x;
	struct dirent **names;
	int n, i, rc = 0;

	if (argc != 1)
		admin_usage("list: %s: no operands taken", argv[1]);
	tool_root(root, a->root, 0);
	if ((n = scandir(root, &names, NULL, alphasort)) == -1)
		err(tool_exit_code(errno), "%s", root);
	printf("EXCHANGE\tTYPE\tBINDINGS\n");
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", root, names[i]->d_name);
		if (sq_queue_name_valid(names[i]->d_name) &&
		    sq_exchange_is(path)) {
			if (sq_exchange_open(&x, path, msg, sizeof(msg)) == 0) {
				printf("%s\t%s\t%zu\n", names[i]->d_name,
				    sq_exchange_type_name(x.type),
				    x.nbindings);
				sq_exchange_close(&x);
			} else {
				rc = errno == EINVAL ? EX_CONFIG :
				    tool_exit_code(errno);
				warnx("%s", msg);
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static int
show(struct admin *a, int argc, char **argv)
{
	struct sq_exchange x;
	size_t i;

	if (argc != 2)
		admin_usage(argc < 2 ? "show: missing exchange name" :
		    "show: one exchange only");
	exchange_open(a, &x, argv[1]);
	printf("type: %s\n", sq_exchange_type_name(x.type));
	if (x.alternate != NULL)
		printf("alternate: %s\n", x.alternate);
	for (i = 0; i < x.nbindings; i++)
		if (x.bindings[i].pattern != NULL)
			printf("%s\t%s\n", x.bindings[i].queue,
			    x.bindings[i].pattern);
		else
			printf("%s\n", x.bindings[i].queue);
	sq_exchange_close(&x);
	return 0;
}

static int
destroy(struct admin *a, int argc, char **argv)
{
	char path[PATH_MAX];

	if (argc != 2)
		admin_usage(argc < 2 ? "destroy: missing exchange name" :
		    "destroy: one exchange only");
	tool_queue_path(path, a->root, argv[1], 0);
	if (!a->dry_run && sq_exchange_destroy(path) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			errx(EX_NOINPUT, "%s: no such exchange", argv[1]);
		err(tool_exit_code(errno), "%s", argv[1]);
	}
	admin_say(a, "destroy", argv[1], path, "-");
	return 0;
}

int
cmd_exchange(struct admin *a, int argc, char **argv)
{
	if (getopt(argc, argv, "") != -1)
		admin_usage(NULL);
	if (argc - optind < 1)
		admin_usage("missing action (create, destroy, list or show)");
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "create") == 0)
		return create(a, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return list(a, argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return show(a, argc, argv);
	if (strcmp(argv[0], "destroy") == 0)
		return destroy(a, argc, argv);
	admin_usage("%s: unknown action (create, destroy, list or show)",
	    tool_echo(argv[0]));
}

/* bind and unbind: check the arguments, then edit exchange.conf. */
static int
binding(struct admin *a, int argc, char **argv, int bind)
{
	struct sq_exchange x;
	struct sq_queue q;
	const char *pattern;
	char qpath[PATH_MAX * 2], msg[PATH_MAX + 300];
	int rc;

	if (getopt(argc, argv, "") != -1)
		admin_usage(NULL);
	if (argc - optind < 1)
		admin_usage("missing exchange name");
	if (argc - optind < 2)
		admin_usage("missing queue name");
	if (argc - optind > 3)
		admin_usage("%s: too many operands",
		    tool_echo(argv[optind + 3]));
	argc -= optind;
	argv += optind;
	pattern = argc == 3 ? argv[2] : NULL;
	check_queue_name(argv[1]);
	exchange_open(a, &x, argv[0]);
	if (x.type == SQ_EXCHANGE_FANOUT)
		pattern = NULL;		/* fanout ignores keys */
	else if (pattern == NULL && bind)
		tool_bad("%s: a %s exchange binds with a pattern",
		    argv[0], sq_exchange_type_name(x.type));
	if (bind) {
		/* Bound queues live beside the exchange. */
		snprintf(qpath, sizeof(qpath), "%s/%s", x.root, argv[1]);
		if (sq_queue_open(&q, qpath, msg, sizeof(msg)) == -1 &&
		    errno != EINVAL) {
			if (errno == ENOENT)
				errx(EX_NOINPUT, "%s: no such queue", argv[1]);
			if (errno == ENOTDIR)
				errx(EX_NOINPUT, "%s: not a queue (%s)",
				    argv[1], qpath);
			if (errno == SQ_EBROKEN)	/* NAME/DIR: reason */
				errx(EX_NOINPUT, "%s%s", argv[1],
				    msg + strlen(qpath));
			err(tool_exit_code(errno), "%s", argv[1]);
		}
		sq_queue_close(&q);
	}
	if (a->dry_run) {
		if (!a->quiet)
			printf("would %s %s %s%s%s\n", bind ? "bind" :
			    "unbind", argv[0], argv[1], pattern ? " " : "",
			    pattern ? pattern : "");
		sq_exchange_close(&x);
		return 0;
	}
	rc = bind ? sq_exchange_bind(x.path, argv[1], pattern) :
	    sq_exchange_unbind(x.path, argv[1], pattern);
	if (rc == -1) {
		if (errno == EINVAL && pattern != NULL)
			tool_bad("%s: bad pattern (at most %d bytes, "
			    "no control characters, no blank at either end, "
			    "no ';' first or after a blank)",
			    tool_echo(pattern), SQ_PATTERN_MAX);
		if (errno == ENOENT && !bind)
			errx(EX_NOINPUT, "%s: %s%s%s: not bound", argv[0],
			    argv[1], pattern ? " " : "", pattern ? pattern : "");
		err(tool_exit_code(errno), "%s", argv[0]);
	}
	sq_exchange_close(&x);
	return 0;
}

int
cmd_bind(struct admin *a, int argc, char **argv)
{
	return binding(a, argc, argv, 1);
}

int
cmd_unbind(struct admin *a, int argc, char **argv)
{
	return binding(a, argc, argv, 0);
}
