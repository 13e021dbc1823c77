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
 * they were closed), so that no file we open is taken for them; ignore
 * SIGPIPE, so that a closed output is the write error EPIPE, handled as
 * every output error is (exit 74), never a silent death half-way; note
 * the user's LC_CTYPE for tool_vis when it is UTF-8 (newlocale(3), not
 * setlocale: the library's name rules stay those of the C locale).
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
 * tool_open_why - why sq_queue_open of path (named arg by the user)
 * failed with errno e and its message msg, as the user names things:
 * "FILE:LINE: KEY: reason" for a bad queue.conf (EINVAL; made visible by
 * tool_vis, since it echoes the file's text; size must be over 256; for
 * one that is not a regular file, "FILE: not a regular file (KIND);
 * qadmin check --repair arg moves it to quarantine/"), "arg: no such
 * queue" (ENOENT), "arg: not a queue (path)" (ENOTDIR), "arg/DIR: reason"
 * for a state directory it may not use or that is missing, else "arg:
 * reason".  Into buf (size bytes); returns the exit status: 78, 66, or
 * tool_exit_code(e).
 */
int	tool_open_why(char *buf, size_t size, const char *arg,
	    const char *path, const char *msg, int e);

/*
 * tool_queue_what - what failed, for an error about the open queue q,
 * named arg as the user gave it, after an operation (what, may be NULL)
 * failed with errno e: "arg/DIR" when a directory of q refuses this user
 * (EACCES or EPERM, sq_queue_blame), else "arg: what" (or "arg").  Into
 * buf (size bytes), which it returns, for "tool: %s: reason".
 */
const char *tool_queue_what(char *buf, size_t size, const struct sq_queue *q,
	    const char *arg, const char *what, int e);

/*
 * tool_queue_err - exit with code after an operation on q failed with
 * errno: "tool: arg/DIR: reason" or "tool: arg: what: reason" (see
 * tool_queue_what).
 */
void	tool_queue_err(int code, const struct sq_queue *q, const char *arg,
	    const char *what) __attribute__((__noreturn__));

/*
 * tool_dead_letter_warn - warn once per cause when dead letters of q
 * stayed in its own dead/ because its dead_letter queue could not take
 * them (sq_dead_letter_failed): "tool: QUEUE: dead_letter NAME: reason;
 * dead letters kept in dead/".
 */
void	tool_dead_letter_warn(struct sq_queue *q);

/*
 * tool_queue_path - resolve arg into buf (PATH_MAX bytes) like tool_open,
 * exiting with a message on a bad name (64), or on a spool root that does
 * not exist (66) when the queue is a name under it or -d root was given,
 * unless create is set (the root is then made with the queue).
 */
void	tool_queue_path(char *buf, const char *root, const char *arg,
	    int create);

/*
 * tool_root - the spool root (-d root, else the environment; spoolq(7))
 * into buf (PATH_MAX bytes).  Unless create is set, a root that does not
 * exist is an error: "tool: ROOT: no such spool root" and exit 66.
 */
void	tool_root(char *buf, const char *root, int create);

/*
 * tool_args - the programs error messages are prefixed with: getopt(3)
 * reports a bad option as "argv[0]: why", so argv[0] becomes the name
 * the tool reports errors under (getprogname, or "qadmin: COMMAND").
 */
void	tool_args(char **argv, const char *name);

/*
 * tool_usage - a usage error: print "tool: why" (printf(3) format; none
 * when fmt is NULL, after getopt's own message), then synopsis, to
 * stderr, and exit 64.
 */
void	tool_usage(const char *synopsis, const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 2, 3)));

/*
 * tool_synopsis - what a usage error found after option parsing
 * (tool_bad) prints after its one line: the text synopsis, or, when print
 * is not NULL, what print writes to stderr (qadmin: the synopsis of the
 * command being run).
 */
void	tool_synopsis(const char *synopsis, void (*print)(void));

/*
 * tool_bad - a usage error, such as a bad option value: print "tool: why"
 * (printf(3) format), then the synopsis set by tool_synopsis, to stderr,
 * and exit 64.
 */
void	tool_bad(const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 1, 2)));

/*
 * tool_help - -h/--help: print synopsis, a blank line, options (one line
 * each), and the man page to read for more ("See PAGE."), to stdout, and
 * exit 0 (74 when stdout cannot be written).
 */
void	tool_help(const char *synopsis, const char *options, const char *page)
	    __attribute__((noreturn));

/*
 * tool_duration - parse option opt's value s, or exit 64 with a message
 * and the synopsis (tool_bad), as every option value parser here does.
 */
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

/*
 * tool_size - parse option opt's size s, digits with an optional suffix
 * k, M, G (powers of 1024, expand_number(3)), or exit 64 with a message.
 */
uint64_t tool_size(const char *opt, const char *s);

/*
 * tool_vis - make the len bytes of s (NULs too) safe to show, to a
 * terminal and to a program that reads the text line by line: strvisx(3)
 * with VIS_OCTAL (vis(3)) turns every control byte (escape, carriage
 * return, backspace, NUL...), DEL and every byte outside ASCII into
 * \ooo, a backslash too (\134), so that what was shown can be told from
 * what shows it.  When tool_init found a UTF-8 LC_CTYPE, a valid UTF-8
 * character that is printable (iswprint) is copied as it is, except the
 * bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E,
 * U+2066 to U+2069), the zero-width and annotation controls and the
 * byte order mark; invalid or cut sequences and every character not kept are
 * still \ooo, byte by byte.  Tabs are kept; newlines too with
 * TOOL_VIS_LINES (text of many lines: a job's standard error in qadmin
 * cat --meta), and they become \012 with TOOL_VIS_LINE (one line: a log
 * line, an echoed input).  dst holds at least 4 * len + 1 bytes.
 * Returns the length of the NUL-terminated text in dst.
 */
#define TOOL_VIS_LINES	0
#define TOOL_VIS_LINE	1
size_t	tool_vis(char *dst, const char *s, size_t len, int line);

/*
 * tool_echo - the user's input s as an error message may echo it: its
 * first TOOL_ECHO_MAX bytes, then "..." when it is longer, made safe by
 * tool_vis (TOOL_VIS_LINE: one line, control bytes, newlines and
 * non-ASCII as \ooo).  A receipt, name, key or option value of any size
 * then costs one short line.  Returns one of TOOL_ECHO_SLOTS static
 * buffers used in turn, so that one message may echo that many inputs.
 */
#define TOOL_ECHO_MAX	64
#define TOOL_ECHO_SLOTS	4
const char *tool_echo(const char *s);

/* tool_version - print "NAME (spoolq) VERSION" and exit 0. */
void	tool_version(void);

#endif
