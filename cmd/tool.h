/*
 * tool.h - what the command-line tools share: exit codes, opening the
 * queue named on the command line, option values.  No queue logic here.
 */
#ifndef SPOOLQ_TOOL_H
#define SPOOLQ_TOOL_H

#include <stdint.h>

#include "spoolq.h"

/*
 * Exit codes (sysexits(3), written in spoolq(7) EXIT STATUS): 1 is a plain
 * "no" - no message was available.
 */
#define EXIT_NONE	1	/* nothing to claim */

/*
 * tool_init - make sure descriptors 0, 1 and 2 are open (on /dev/null if
 * they were closed), so that no file we open is taken for them.
 */
void	tool_init(void);

/* tool_exit_code - the sysexits code for an errno. */
int	tool_exit_code(int err);

/*
 * tool_open - open the queue named by arg (a name under the root from -d
 * root / the environment, or a path), creating it first when create is
 * set.  Prints "tool: queue: reason" and exits on failure: 64 for a bad
 * name, 66 for a missing queue, 78 for a bad queue.conf.
 */
void	tool_open(struct sq_queue *q, const char *root, const char *arg,
	    int create);

/*
 * tool_queue_path - resolve arg into buf (PATH_MAX bytes) like tool_open,
 * exiting with a message on a bad name.
 */
void	tool_queue_path(char *buf, const char *root, const char *arg);

/* tool_duration - parse option opt's value s, or exit 64 with a message. */
int64_t	tool_duration(const char *opt, const char *s);

/* tool_number - parse a count from min to max, or exit 64. */
long long tool_number(const char *opt, const char *s, long long min,
	    long long max);

/*
 * tool_time - parse option opt's time s, "@EPOCH" (seconds) or a local
 * "YYYY-MM-DD[T ]HH:MM[:SS]" (sq_time_parse), into epoch milliseconds,
 * or exit 64 with a message.
 */
int64_t	tool_time(const char *opt, const char *s);

/* tool_version - print "NAME (spoolq) VERSION" and exit 0. */
void	tool_version(void);

#endif
