/*
 * qadmin.h - the subcommands of qadmin, one file per group:
 * qadmin.c (create, destroy, list), qadmin_stats.c (stats),
 * qadmin_inspect.c (ls, cat),
 * qadmin_msgs.c (purge, redrive, move, retry-now, hold, release,
 * delete), qadmin_repair.c (recover, gc, check), qadmin_config.c
 * (config).  Each parses its own options with getopt (optind reset)
 * and calls the library; none holds queue logic of its own.
 */
#ifndef SPOOLQ_QADMIN_H
#define SPOOLQ_QADMIN_H

#include "tool.h"

/* Global options, given before the subcommand. */
struct admin {
	const char	*root;		/* -d */
	int		 dry_run;	/* -n: say, do not do */
	int		 quiet;		/* -q */
	int		 verbose;	/* -v */
};

/*
 * A subcommand gets argv from its own name on (argv[0] is the command
 * name) and returns the exit status.  Usage errors call admin_usage.
 */
typedef int	admin_fn(struct admin *, int, char **);

admin_fn	cmd_create, cmd_destroy, cmd_list;
admin_fn	cmd_stats, cmd_ls, cmd_cat;
admin_fn	cmd_purge, cmd_redrive, cmd_move, cmd_retry_now, cmd_hold,
		cmd_release, cmd_delete, cmd_replay;
admin_fn	cmd_recover, cmd_gc, cmd_check;
admin_fn	cmd_config;
admin_fn	cmd_exchange, cmd_bind, cmd_unbind;

/*
 * admin_usage - a usage error of the command being run: print
 * "qadmin: COMMAND: why" (printf(3) format; nothing when fmt is NULL, as
 * after getopt's own message), then the synopsis of that command (of
 * every command before one is chosen), and exit 64.
 */
void	admin_usage(const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 1, 2)));

/*
 * admin_open - open the queue argument like tool_open (exits with a
 * message on failure).
 */
void	admin_open(struct admin *a, struct sq_queue *q, const char *arg);

/*
 * admin_say - print one "ACTION ID FROM -> TO" line for a change (with
 * "would " in front under -n), unless -q.
 */
void	admin_say(struct admin *a, const char *action, const char *id,
	    const char *from, const char *to);

/*
 * admin_ids - call fn(id, arg) for each ID operand, or for each line of
 * stdin when the only operand is "-".  Returns the first non-zero
 * result of fn, or 0.
 */
int	admin_ids(int argc, char **argv, int (*fn)(const char *, void *),
	    void *arg);

/*
 * admin_msg_dir - the directory of m relative to its queue, for messages:
 * its state's, or groups/KEY for a grouped message.  Returns buf (size
 * bytes).
 */
const char *admin_msg_dir(const struct sq_msg *m, char *buf, size_t size);

/*
 * admin_span - an age or a time span of s seconds (negative: 0) as
 * "5s", "3m", "2h" or "4d", rounded down to one unit, written into buf
 * of size bytes.  Returns buf.
 */
const char *admin_span(char *buf, size_t size, int64_t s);

/*
 * admin_json_str - write str to fp as a JSON string (RFC 8259): quotes,
 * backslashes and control bytes escaped; bytes that are not UTF-8 (IDs
 * of messages delivered by hand may have any) become U+FFFD, so the
 * document stays valid.
 */
void	admin_json_str(FILE *fp, const char *str);

#endif
