/*
 * tool.c - helpers shared by qsend, qrecv, qack, qworker and qadmin.
 */
#include <err.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <libutil.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>
#define LIBBSD_OPENBSD_VIS	/* libbsd: the OpenBSD strnvis (unused) */
#include <vis.h>

#include "tool.h"

/*
 * The user's LC_CTYPE when it is UTF-8, for tool_vis alone, else
 * (locale_t)0.  Not the process's locale: the name rules of the library
 * (isalnum on queue, attribute and host names) must not follow it.
 */
static locale_t vis_locale;

void
tool_init(void)
{
	int fd;

	/*
	 * A closed standard descriptor would be reused by the first file we
	 * open, and then read or written as if it were stdin or stdout.
	 */
	while ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 &&
	    fd <= STDERR_FILENO) {
		if (fcntl(fd, F_SETFD, 0) == -1)
			break;
	}
	if (fd > STDERR_FILENO)
		close(fd);
	/*
	 * A reader that went away is an output error like any other: the
	 * write fails with EPIPE, the tool gives back what it has not
	 * handed over and exits 74 ("tool: stdout: Broken pipe"), rather
	 * than dying half-way with nothing reported.
	 */
	signal(SIGPIPE, SIG_IGN);
	/* What the user's terminal shows as text (tool_vis). */
	vis_locale = newlocale(LC_CTYPE_MASK, "", (locale_t)0);
	if (vis_locale != (locale_t)0 && strcmp(nl_langinfo_l(CODESET,
	    vis_locale), "UTF-8") != 0) {
		freelocale(vis_locale);
		vis_locale = (locale_t)0;
	}
}

int
tool_exit_code(int e)
{
	switch (e) {
	case 0:
		return 0;
	case EINVAL:
	case ENAMETOOLONG:
		return EX_DATAERR;
	case ENOENT:
	case ENOTDIR:
	case SQ_EBROKEN:
		return EX_NOINPUT;
	case EEXIST:
		return EX_CANTCREAT;
	case ENOSPC:
	case EDQUOT:
	case EAGAIN:
	case EBUSY:
	case EINTR:
		return EX_TEMPFAIL;
	case EACCES:
	case EPERM:
	case EROFS:
		return EX_NOPERM;
	default:
		return EX_IOERR;
	}
}

void
tool_root(char *buf, const char *root, int create)
{
	struct stat st;

	if (sq_spool_root(buf, PATH_MAX, root) == -1)
		err(EX_CONFIG, "spool root (-d root, SPOOLQ_DIR or HOME)");
	if (create || stat(buf, &st) == 0)
		return;
	if (errno == ENOENT || errno == ENOTDIR)
		errx(EX_NOINPUT, "%s: no such spool root", buf);
	err(tool_exit_code(errno), "%s", buf);
}

void
tool_queue_path(char *buf, const char *root, const char *arg, int create)
{
	char rootbuf[PATH_MAX];
	struct stat st;

	/* A path does not need the root, but a -d that was given must be. */
	tool_root(rootbuf, root, 1);
	if (!create && (strchr(arg, '/') == NULL || root != NULL) &&
	    stat(rootbuf, &st) == -1) {
		if (errno != ENOENT && errno != ENOTDIR)
			err(tool_exit_code(errno), "%s", rootbuf);
		if (strchr(arg, '/') == NULL)
			errx(EX_NOINPUT, "%s: no such queue (no spool root %s)",
			    arg, rootbuf);
		errx(EX_NOINPUT, "%s: no such spool root", rootbuf);
	}
	if (sq_queue_path(buf, PATH_MAX, rootbuf, arg) == -1) {
		if (errno == EINVAL)
			tool_bad("%s: bad queue name (want "
			    "[A-Za-z0-9][A-Za-z0-9._-]{0,127} or a path)",
			    tool_echo(arg));
		tool_bad("%s: %s", tool_echo(arg), strerror(errno));
	}
}

void
tool_args(char **argv, const char *name)
{
	static char buf[64];

	strlcpy(buf, name, sizeof(buf));
	argv[0] = buf;
}

void
tool_usage(const char *synopsis, const char *fmt, ...)
{
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vwarnx(fmt, ap);
		va_end(ap);
	}
	fputs(synopsis, stderr);
	exit(EX_USAGE);
}

/* What tool_bad prints after its line (tool_synopsis). */
static const char *bad_synopsis = "";
static void (*bad_print)(void);

void
tool_synopsis(const char *synopsis, void (*print)(void))
{
	bad_synopsis = synopsis != NULL ? synopsis : "";
	bad_print = print;
}

void
tool_bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnx(fmt, ap);
	va_end(ap);
	if (bad_print != NULL)
		bad_print();
	else
		fputs(bad_synopsis, stderr);
	exit(EX_USAGE);
}

void
tool_help(const char *synopsis, const char *options, const char *page)
{
	printf("%s\n%s\nSee %s.\n", synopsis, options, page);
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EX_IOERR, "stdout");
	exit(0);
}

void
tool_open(struct sq_queue *q, const char *root, const char *arg, int create)
{
	char path[PATH_MAX], msg[PATH_MAX + 256], why[PATH_MAX * 2 + 256];
	int code;

	tool_queue_path(path, root, arg, create);
	if (create && sq_queue_create(path, NULL, NULL, 0, why,
	    sizeof(why)) == -1 && errno != EEXIST)
		err(EX_CANTCREAT, "%s", arg);
	if (sq_queue_open(q, path, msg, sizeof(msg)) == 0)
		return;
	code = tool_open_why(why, sizeof(why), arg, path, msg, errno);
	errx(code, "%s", why);
}

int
tool_open_why(char *buf, size_t size, const char *arg, const char *path,
    const char *msg, int e)
{
	size_t len = strlen(path);

	/* Name the queue as the user did; queue.conf errors name the file. */
	switch (e) {
	case EINVAL:
		/*
		 * queue.conf's keys and values are echoed: made visible
		 * (tool_vis), cut to fit.  A queue.conf planted as a FIFO,
		 * link or directory: say how to mend it.
		 */
		tool_vis(buf, msg, strnlen(msg, (size - 1) / 4 - 64),
		    TOOL_VIS_LINE);
		if (strstr(msg, ": not a regular file") != NULL)
			snprintf(buf + strlen(buf), size - strlen(buf),
			    "; qadmin check --repair %s moves it to "
			    "quarantine/", arg);
		return EX_CONFIG;
	case ENOENT:
		snprintf(buf, size, "%s: no such queue", arg);
		return EX_NOINPUT;
	case ENOTDIR:
		snprintf(buf, size, "%s: not a queue (%s)", arg, path);
		return EX_NOINPUT;
	default:
		/* A state directory it may not use: name it as the user would. */
		if (strncmp(msg, path, len) == 0 && msg[len] == '/')
			snprintf(buf, size, "%s%s", arg, msg + len);
		else
			snprintf(buf, size, "%s: %s", arg, strerror(e));
		return tool_exit_code(e);
	}
}

const char *
tool_queue_what(char *buf, size_t size, const struct sq_queue *q,
    const char *arg, const char *what, int e)
{
	const char *d = NULL;

	if (e == EACCES || e == EPERM)
		d = sq_queue_blame(q, R_OK | W_OK | X_OK);
	if (d != NULL)
		snprintf(buf, size, "%s/%s", arg, d);
	else if (what != NULL)
		snprintf(buf, size, "%s: %s", arg, what);
	else
		snprintf(buf, size, "%s", arg);
	return buf;
}

void
tool_queue_err(int code, const struct sq_queue *q, const char *arg,
    const char *what)
{
	char buf[PATH_MAX + 256];
	int e = errno;

	tool_queue_what(buf, sizeof(buf), q, arg, what, e);
	errno = e;
	err(code, "%s", buf);
}

void
tool_dead_letter_warn(struct sq_queue *q)
{
	const char *why;
	int e;

	if ((e = sq_dead_letter_failed(q)) == 0)
		return;
	why = e == ENOENT ? "no such queue" :
	    e == ENOTDIR ? "not a queue" :
	    e == EXDEV ? "on another file system" :
	    e == SQ_EBROKEN ? "not a whole queue" : strerror(e);
	warnx("%s: dead_letter %s: %s; dead letters kept in %s/", q->path,
	    q->conf.dead_letter, why, SQ_DIR_DEAD);
}

int64_t
tool_duration(const char *opt, const char *s)
{
	int64_t ms;

	if (sq_duration_parse(s, &ms) == -1)
		tool_bad("%s %s: not a duration (like 500ms, 30s, 5m, "
		    "2h, 4d; bare: seconds)", opt, tool_echo(s));
	return ms;
}

long long
tool_number(const char *opt, const char *s, long long min, long long max)
{
	const char *errstr;
	long long n = strtonum(s, min, max, &errstr);

	if (errstr != NULL)
		tool_bad("%s %s: %s (from %lld to %lld)", opt, tool_echo(s),
		    errstr, min, max);
	return n;
}

int64_t
tool_time(const char *opt, const char *s)
{
	int64_t ms;

	if (sq_time_parse(s, &ms) == -1)
		tool_bad("%s %s: not a time (@EPOCH or "
		    "YYYY-MM-DDTHH:MM[:SS])", opt, tool_echo(s));
	return ms;
}

uint64_t
tool_size(const char *opt, const char *s)
{
	uint64_t n;

	/* Digits first: expand_number would take "0x10" or " 5". */
	if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && (s[1] == 'x' ||
	    s[1] == 'X')) || expand_number(s, &n) == -1)
		tool_bad("%s %s: not a size (like 500, 64k, 10M, 2G)", opt,
		    tool_echo(s));
	return n;
}

/*
 * A character kept as it is in a UTF-8 locale: printable, and not one
 * that changes how the text around it reads (the bidirectional controls
 * of Trojan Source, CVE-2021-42574; zero-width characters; the byte
 * order mark; interlinear annotations), which glibc counts as printable.
 */
static int
vis_keep(wchar_t wc)
{
	if (wc == 0x061c || (wc >= 0x200b && wc <= 0x200f) ||
	    (wc >= 0x202a && wc <= 0x202e) ||
	    (wc >= 0x2060 && wc <= 0x206f) || wc == 0xfeff ||
	    (wc >= 0xfff9 && wc <= 0xfffb))
		return 0;
	return iswprint_l((wint_t)wc, vis_locale) != 0;
}

size_t
tool_vis(char *dst, const char *s, size_t len, int line)
{
	int flags = VIS_OCTAL | VIS_NOLOCALE | (line == TOOL_VIS_LINE ?
	    VIS_NL : 0);
	size_t i = 0, from = 0, k = 0, n;
	locale_t old;
	mbstate_t st;
	wchar_t wc;

	if (vis_locale == (locale_t)0)
		return (size_t)strvisx(dst, s, len, flags);
	/*
	 * UTF-8: each valid multibyte character that vis_keep keeps is
	 * copied as it is; the bytes between (ASCII, invalid or cut
	 * sequences, characters not kept) go through strvisx byte by byte.
	 * A kept character is as long in dst as in s: 4 * len + 1 bytes
	 * still hold it all.
	 */
	old = uselocale(vis_locale);
	memset(&st, 0, sizeof(st));
	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		n = mbrtowc(&wc, s + i, len - i, &st);
		if (n == (size_t)-1 || n == (size_t)-2 || n < 2 ||
		    !vis_keep(wc)) {
			memset(&st, 0, sizeof(st));
			i++;
			continue;
		}
		k += (size_t)strvisx(dst + k, s + from, i - from, flags);
		memcpy(dst + k, s + i, n);
		k += n;
		i += n;
		from = i;
	}
	uselocale(old);
	k += (size_t)strvisx(dst + k, s + from, i - from, flags);
	return k;
}

const char *
tool_echo(const char *s)
{
	static char buf[TOOL_ECHO_SLOTS][4 * TOOL_ECHO_MAX + 4];
	static unsigned next;
	char *b = buf[next++ % TOOL_ECHO_SLOTS];
	size_t len = strnlen(s, TOOL_ECHO_MAX + 1);

	if (len > TOOL_ECHO_MAX)
		len = TOOL_ECHO_MAX;
	tool_vis(b, s, len, TOOL_VIS_LINE);
	if (s[len] != '\0')
		strlcat(b, "...", sizeof(buf[0]));
	return b;
}

void
tool_version(void)
{
	printf("%s (spoolq) %s\n", getprogname(), SQ_VERSION);
	exit(0);
}
