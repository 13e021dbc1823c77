/*
 * output.h - the job output store of qworker --output: per message ID,
 * what its last job wrote to standard output and standard error and how
 * it ended, as plain files in a directory of the user's choosing.
 * Included by spoolq.h; part of the same public API.
 *
 *   DIR/ID.out     the job's standard output (at most a cap, then a marker)
 *   DIR/ID.err     its standard error, likewise
 *   DIR/ID.status  key=value lines: how the job ended (sq_output_status)
 *   DIR/.ID.TOKEN.SUFFIX
 *                  the same, being written by the worker TOKEN
 *   DIR/.gc        stamp: when the directory was last collected
 *
 * Each file is written under its dot name and renamed into place when the
 * job has ended, .status last, so a reader never sees a partial file; a
 * later attempt of the same message replaces them.  Nothing is followed:
 * every name is opened relative to the directory's descriptor with
 * O_NOFOLLOW, and gc removes only regular files.
 */
#ifndef SPOOLQ_OUTPUT_H
#define SPOOLQ_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#define SQ_OUTPUT_OUT		".out"		/* standard output */
#define SQ_OUTPUT_ERR		".err"		/* standard error */
#define SQ_OUTPUT_STATUS	".status"	/* how the job ended */
#define SQ_OUTPUT_STAMP		".gc"		/* last collection */
#define SQ_OUTPUT_MAX		(1024 * 1024)	/* bytes kept per stream */
#define SQ_OUTPUT_AGE_MS	(7LL * 24 * 60 * 60 * 1000)	/* kept 7 days */
#define SQ_OUTPUT_GC_EVERY_MS	(60LL * 60 * 1000)	/* collect hourly */

/*
 * sq_output_open - open the output directory path, making it (mode 0777
 * less the umask; with the group bits and set-group-ID of its parent
 * when the parent is shared, spoolq(5)) when it does not exist and
 * create is set.  A symbolic
 * link is refused (ELOOP), as is anything but a directory (ENOTDIR).
 * Returns the directory's descriptor (close-on-exec) or -1 with errno.
 */
int	sq_output_open(const char *path, int create);

/*
 * sq_output_create - create the file .ID.TOKEN.SUFFIX in the output
 * directory dfd (O_EXCL, O_NOFOLLOW, mode 0666 less the umask, group
 * read and write in a shared directory: share_file), for a
 * job of worker token on message id; suffix is SQ_OUTPUT_OUT or
 * SQ_OUTPUT_ERR.  A leftover of an earlier run of the same worker is
 * replaced.  Returns a write descriptor (close-on-exec) or -1 with errno.
 */
int	sq_output_create(int dfd, const char *id, const char *token,
	    const char *suffix);

/*
 * sq_output_commit - rename .ID.TOKEN.SUFFIX into place as ID.SUFFIX in
 * dfd, replacing the file of an earlier attempt.  Returns 0 or -1 with
 * errno.
 */
int	sq_output_commit(int dfd, const char *id, const char *token,
	    const char *suffix);

/*
 * sq_output_discard - remove .ID.TOKEN.SUFFIX from dfd, if it is there:
 * the file of a job that never ran.  Keeps errno.
 */
void	sq_output_discard(int dfd, const char *id, const char *token,
	    const char *suffix);

/*
 * sq_output_status - write text (len bytes) as ID.status in dfd: under
 * its dot name, then renamed into place.  Returns 0 or -1 with errno.
 */
int	sq_output_status(int dfd, const char *id, const char *token,
	    const char *text, size_t len);

/*
 * sq_output_read - open ID.SUFFIX of dfd for reading (O_NOFOLLOW, never
 * blocking on a FIFO).  Returns the descriptor (close-on-exec), or -1
 * with errno: ENOENT when there is none, SQ_ENOTREG when it is not a
 * regular file (sq_open_regular).
 */
int	sq_output_read(int dfd, const char *id, const char *suffix);

/*
 * sq_output_gc - remove the regular files of dfd whose names end in
 * .out, .err or .status (dot names too) and whose mtime is more than
 * age_ms before now_ms (epoch milliseconds); age_ms 0 keeps everything.
 * Runs only when the stamp .gc is missing or older than
 * SQ_OUTPUT_GC_EVERY_MS (or force is set), and touches the stamp, so
 * that workers sharing a directory collect it about once an hour in
 * all.  Counts the files removed in *removed.  Returns 0 or -1 with
 * errno (the first failure; the collection goes on).
 */
int	sq_output_gc(int dfd, int64_t now_ms, int64_t age_ms, int force,
	    size_t *removed);

#endif /* SPOOLQ_OUTPUT_H */
