/*
 * qworker_batch.c - qworker --batch: one run of the command for up to N
 * claims of one queue, their paths appended to its arguments as xargs(1)
 * does (no shell ever sees them).
 *
 * The job may settle messages one by one by writing lines "ack ID",
 * "retry ID" or "reject ID [REASON]" to the descriptor SPOOLQ_RESULT_FD;
 * each whole line is acted on as soon as it is read, so what the job
 * settled stays settled whatever happens to it or to the worker next.
 * A line that does not parse, names a message the batch does not hold,
 * or one settled already is logged and changes nothing.  When the job
 * ends, what it left unsettled follows its exit status by the table of
 * qworker(1), message by message (max_attempts and dead letters count
 * per message).  The claims are the worker's (w=TOKEN): they come back
 * as soon as the worker dies, whatever the batch's length.
 */
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qworker_batch.h"

#define SHOWN_MAX	80	/* bytes of a refused line shown */

int
wbatch_init(struct wbatch *wb, struct sq_queue *q, const char *qarg,
    const struct sq_claim *c, size_t n, char *const *cmd, int quiet)
{
	size_t ncmd, i;
	int e;

	memset(wb, 0, sizeof(*wb));
	if (sq_jobbatch_init(&wb->b, q, c, n) == -1)
		return -1;
	for (ncmd = 0; cmd[ncmd] != NULL; ncmd++)
		;
	if ((wb->argv = calloc(ncmd + n + 1, sizeof(*wb->argv))) == NULL)
		goto fail;
	memcpy(wb->argv, cmd, ncmd * sizeof(*cmd));
	wb->ncmd = ncmd;
	for (i = 0; i < n; i++)
		if (asprintf(&wb->argv[ncmd + i], "%s/%s/%s", sq_queue_real(q),
		    SQ_DIR_CUR, c[i].name) == -1) {
			wb->argv[ncmd + i] = NULL;
			goto fail;
		}
	wb->qarg = qarg;
	wb->quiet = quiet;
	wb->start_ms = sq_mono_ms();
	return 0;
fail:
	e = errno;
	wbatch_free(wb);
	errno = e;
	return -1;
}

void
wbatch_free(struct wbatch *wb)
{
	size_t i;

	/* The command's own words are borrowed; the paths are ours. */
	for (i = 0; wb->argv != NULL && i < wb->b.n; i++)
		free(wb->argv[wb->ncmd + i]);
	free(wb->argv);
	sq_jobbatch_free(&wb->b);
	memset(wb, 0, sizeof(*wb));
}

/* One outcome line, as for a single job: "qworker: ID QUEUE A OUTCOME Ts". */
static void
outcome(struct wbatch *wb, size_t i, const char *what)
{
	int64_t took = sq_mono_ms() - wb->start_ms;

	if (strcmp(what, "ack") != 0)
		wb->failed = 1;
	if (wb->quiet)
		return;
	fprintf(stderr, "qworker: %s %s %u %s %lld.%03llds\n",
	    wb->b.c[i].n.id, wb->qarg, wb->b.c[i].n.attempts, what,
	    (long long)(took / 1000), (long long)(took % 1000));
}

/*
 * Settle claim i by verdict v and log it: status is what the failure
 * record and a retry's outcome say ("exit=3", "timeout", "result").
 */
static void
settle(struct wbatch *wb, size_t i, enum sq_verdict v, const char *reason,
    const char *status)
{
	char newname[SQ_NAME_MAX + 1], what[64];
	int dead;

	/* No failure record for a claim recovered while we were stopped. */
	if ((v == SQ_VERDICT_RETRY || v == SQ_VERDICT_REJECT) &&
	    wb->fail != NULL && (sq_receipt_check(wb->b.q, wb->b.c[i].name) ==
	    0 || errno != ENOENT))
		wb->fail(&wb->b.c[i], status, wb->arg);
	/* Settled whatever comes of it: a lost claim is no one's to settle. */
	if (sq_jobbatch_take(&wb->b, i) == -1)
		return;
	if ((wb->settle != NULL ? wb->settle(&wb->b, wb->b.c[i].name, v,
	    reason, newname, &dead, wb->arg) : sq_jobbatch_apply(&wb->b,
	    wb->b.q, wb->b.c[i].name, v, reason, newname, &dead)) == -1) {
		warn("%s: %s: %s", wb->qarg, wb->b.c[i].n.id, errno ==
		    ENOENT ? "claim lost (settled by someone else)" : "settle");
		wb->failed = 1;
		return;
	}
	switch (v) {
	case SQ_VERDICT_ACK:
		strlcpy(what, "ack", sizeof(what));
		break;
	case SQ_VERDICT_RELEASE:
		strlcpy(what, "released", sizeof(what));
		break;
	case SQ_VERDICT_REJECT:
		snprintf(what, sizeof(what), "dead:%s", reason != NULL ?
		    reason : SQ_REASON_REJECTED);
		break;
	case SQ_VERDICT_RETRY:
		snprintf(what, sizeof(what), "%s:%s", dead ? "dead" : "retry",
		    dead ? (reason != NULL ? reason : SQ_REASON_ATTEMPTS) :
		    status);
		break;
	}
	outcome(wb, i, what);
}

/* A result line that is not acted on: say why, the line made visible. */
static void
refuse(struct wbatch *wb, const char *line, size_t len, const char *why)
{
	/* tool_vis: at most 4 bytes for each byte. */
	char shown[4 * SHOWN_MAX + 1];

	tool_vis(shown, line, len < SHOWN_MAX ? len : SHOWN_MAX,
	    TOOL_VIS_LINE);
	warnx("%s: result line %u: \"%s\"%s: %s", wb->qarg, wb->lineno,
	    shown, len > SHOWN_MAX ? "..." : "", why);
}

/* Act on one whole line of the result stream. */
static void
result_line(struct wbatch *wb, char *line, size_t len)
{
	struct sq_result r;
	size_t i;

	wb->lineno++;
	line[len < sizeof(wb->line) ? len : sizeof(wb->line) - 1] = '\0';
	if (wb->overlong) {
		refuse(wb, line, len, "too long; not acted on");
		return;
	}
	if (sq_result_parse(line, len, &r) == -1) {
		refuse(wb, line, len, "not \"ack ID\", \"retry ID\" or "
		    "\"reject ID [REASON]\"; not acted on");
		return;
	}
	if (sq_jobbatch_find(&wb->b, r.id, &i) == -1) {
		refuse(wb, line, len, "no message of this batch; not acted on");
		return;
	}
	if (wb->b.settled[i]) {
		refuse(wb, line, len, "settled already; not acted on");
		return;
	}
	settle(wb, i, r.verdict, r.reason[0] != '\0' ? r.reason : NULL,
	    "result");
}

void
wbatch_read(struct wbatch *wb, int *fd)
{
	char buf[8192], *nl, *p;
	ssize_t n;
	size_t k;

	while (*fd != -1) {
		while ((n = read(*fd, buf, sizeof(buf))) == -1 &&
		    errno == EINTR)
			;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(*fd);
			*fd = -1;
			if (wb->linelen > 0 || wb->overlong)
				result_line(wb, wb->line, wb->linelen);
			wb->linelen = 0;
			wb->overlong = 0;
			return;
		}
		for (p = buf; p < buf + n; p += k) {
			nl = memchr(p, '\n', (size_t)(buf + n - p));
			k = nl != NULL ? (size_t)(nl - p) : (size_t)(buf + n - p);
			if (wb->linelen + k >= sizeof(wb->line)) {
				/* Keep the start, to show. */
				k = k < sizeof(wb->line) - 1 - wb->linelen ? k :
				    sizeof(wb->line) - 1 - wb->linelen;
				wb->overlong = 1;
			}
			memcpy(wb->line + wb->linelen, p, k);
			wb->linelen += k;
			if (nl == NULL) {
				k = (size_t)(buf + n - p);
				continue;
			}
			result_line(wb, wb->line, wb->linelen);
			wb->linelen = 0;
			wb->overlong = 0;
			k = (size_t)(nl - p) + 1;
		}
	}
}

void
wbatch_end(struct wbatch *wb, int status, int timed_out, int release)
{
	enum sq_verdict v;
	const char *reason = NULL;
	char st[32];
	size_t i;

	if (WIFSIGNALED(status))
		snprintf(st, sizeof(st), "signal=%d", WTERMSIG(status));
	else
		snprintf(st, sizeof(st), "exit=%d", WEXITSTATUS(status));
	if (release)
		v = SQ_VERDICT_RELEASE;
	else if (timed_out) {
		v = SQ_VERDICT_RETRY;
		reason = SQ_REASON_TIMEOUT;
		strlcpy(st, "timeout", sizeof(st));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		v = SQ_VERDICT_ACK;
	else if (WIFEXITED(status) && IS_PERMFAIL(WEXITSTATUS(status)))
		v = SQ_VERDICT_REJECT;
	else
		v = SQ_VERDICT_RETRY;
	for (i = 0; i < wb->b.n && wb->b.left > 0; i++)
		if (!wb->b.settled[i])
			settle(wb, i, v, reason, st);
}
