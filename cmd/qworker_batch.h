/*
 * qworker_batch.h - qworker --batch: one job for several claims, its
 * command line, its result stream and its outcome lines.
 */
#ifndef QWORKER_BATCH_H
#define QWORKER_BATCH_H

#include <sysexits.h>

#include "tool.h"

#define BATCH_MAX	1000		/* --batch: paths on one command line */
#define RESULT_FD	4		/* in the job: SPOOLQ_RESULT_FD */
#define BATCH_START_FDS	2		/* a batch start: its result pipe */
/* The exit codes of the outcome protocol (qmail, sysexits). */
#define IS_TEMPFAIL(s)	((s) == EX_TEMPFAIL || (s) == 111)
#define IS_PERMFAIL(s)	((s) == 100 || (s) == EX_DATAERR)

#define RESULT_LINE_MAX	(16 + SQ_NAME_MAX + PATH_MAX + SQ_REASON_MAX)

/* Called for a message that failed: write its failure record. */
typedef void	wbatch_fail_fn(const struct sq_claim *c, const char *status,
		    void *arg);

/* Called to settle a claim of the batch b, as sq_jobbatch_apply does. */
typedef int	wbatch_settle_fn(struct sq_jobbatch *b, const char *name,
		    enum sq_verdict v, const char *reason, char *newname,
		    int *dead, void *arg);

struct wbatch {
	struct sq_jobbatch b;
	const char	*qarg;		/* the queue as given, for logs */
	char		**argv;		/* the command, then the paths */
	size_t		 ncmd;		/* words of the command in argv */
	char		 line[RESULT_LINE_MAX];	/* result line being read */
	size_t		 linelen;
	int		 overlong;	/* the line went past RESULT_LINE_MAX */
	unsigned	 lineno;
	int64_t		 start_ms;	/* sq_mono_ms at the start */
	int		 quiet;
	int		 failed;	/* an outcome other than ack */
	wbatch_fail_fn	*fail;		/* NULL: no failure records */
	wbatch_settle_fn *settle;	/* NULL: sq_jobbatch_apply */
	void		*arg;		/* for both */
};

/*
 * wbatch_init - a batch job for the n claims c of q: argv is cmd with
 * the claims' paths appended.  Returns 0 or -1 with errno (ENOMEM).
 */
int	wbatch_init(struct wbatch *wb, struct sq_queue *q, const char *qarg,
	    const struct sq_claim *c, size_t n, char *const *cmd, int quiet);

/*
 * wbatch_read - read what the job wrote to its result pipe *fd (non-
 * blocking) and settle each whole line's message at once; at end of
 * file (or an error) *fd is closed and -1, and a last line without a
 * newline counts too.
 */
void	wbatch_read(struct wbatch *wb, int *fd);

/*
 * wbatch_end - the job ended with wait status status: settle every claim
 * it left unsettled by the outcome table (release: give them back
 * uncounted), one outcome line each.
 */
void	wbatch_end(struct wbatch *wb, int status, int timed_out, int release);

/* wbatch_free - free the batch. */
void	wbatch_free(struct wbatch *wb);

#endif
