/*
 * repair.h - the upkeep of whole queues on an operator's request:
 * recovery now instead of lazily, garbage collection, and the check (and
 * repair) of a queue's tree.  To be merged into spoolq.h as its
 * "repair" section.
 *
 * Like the rest of the library these functions never print: each
 * finding or action is handed to a callback, and the caller words it.
 */
#ifndef SPOOLQ_REPAIR_H
#define SPOOLQ_REPAIR_H

#include "spoolq.h"

/* ---------------------------------------------------------------- repair */

/*
 * Ages, in milliseconds.  tmp/: maildir(5) tmp cleanup, 36 h - "a file in
 * tmp/ that has not been accessed for 36 hours" is a leftover of a
 * crashed delivery.  Leftovers of an interrupted worker start
 * (run/.worker.*), of an interrupted failure record (attr/.*) and
 * orphaned sidecars: 1 h, far beyond the few microseconds between their
 * creation and their rename or their message's move.
 */
#define SQ_GC_TMP_AGE_MS	(36LL * 60 * 60 * 1000)
#define SQ_GC_LEFTOVER_AGE_MS	(60LL * 60 * 1000)
#define SQ_GC_INDEX_AGE_MS	(36LL * 60 * 60 * 1000)	/* run/index.HOST unsaved */

/* The directory check --repair moves what it cannot mend into. */
#define SQ_DIR_QUARANTINE	"quarantine"

/* One move that sq_queue_maintain would make. */
struct sq_move {
	const char	*name;		/* file name in the from state */
	const char	*id;
	enum sq_state	 from, to;
};

/* Called for each planned move. */
typedef void	sq_move_fn(const struct sq_move *mv, void *arg);

/*
 * sq_queue_maintain_plan - say, without changing anything, what
 * sq_queue_maintain(q, now_ms, m) would move now: each due retry/
 * message (retry -> ready) and each claim whose lease ended (now_ms
 * past l) or whose worker (w=) is dead or hung and whose job lock is
 * free or hung too, to ready or, when its attempts reached max_attempts,
 * to dead.  Worker and job lock files are probed read-only
 * (sq_worker_probe, sq_job_probe) and never removed.  The rules mirror
 * claim.c's maintenance pass, which stays authoritative; a move can
 * still differ when a consumer acts in between.  fn (may be NULL) gets
 * each move, *m the counts.  Returns 0 or -1 with errno.
 */
int	sq_queue_maintain_plan(struct sq_queue *q, int64_t now_ms,
	    struct sq_maint *m, sq_move_fn *fn, void *arg);

/* One file that gc removed, or would remove. */
struct sq_gc_item {
	const char	*path;		/* relative to the queue: "tmp/NAME" */
	int		 dead;		/* dead-lettered (expired), not removed */
	const char	*reason;	/* "older than 36h", "orphan sidecar"... */
	int		 error;		/* errno of a failed unlink, else 0 */
	int		 kept;		/* with error: harmless where it is, */
					/* reported but not a failure */
};

/* Called for each file gc removes (or, on a dry run, would remove). */
typedef void	sq_gc_fn(const struct sq_gc_item *item, void *arg);

/*
 * sq_queue_gc - remove what crashes and settled messages leave behind in
 * q, as of now_ms (epoch milliseconds):
 *
 *   tmp/...     regular files and symlinks whose mtime is older than
 *               tmp_age_ms (SQ_GC_TMP_AGE_MS: the maildir(5) 36 h rule);
 *   attr/ID, attr/ID.failure
 *               sidecars older than SQ_GC_LEFTOVER_AGE_MS whose ID is in
 *               no state (new, cur, retry, dead, hold, or waiting in
 *               groups/KEY/), nor in tmp/, archive/ or quarantine/: the
 *               sidecar names are kept sorted in
 *               memory (proportional to the number of sidecars, none
 *               when attr/ is empty), each state streamed once, and the
 *               candidates confirmed by a second pass, so that a message
 *               moving between states during the first pass is not
 *               taken for gone;
 *   attr/.*     an interrupted failure record, older than 1 h;
 *   run/worker.TOKEN
 *               lock files of dead workers (lock free: sq_worker_probe);
 *               hung workers' files stay, their lock is held.  A lock
 *               file that cannot be opened (another user's, mode 0600)
 *               or removed is reported with error and kept set, and is
 *               no failure: a dead worker's file harms no one;
 *   run/.worker.*
 *               leftovers of a worker killed while starting, older than
 *               SQ_GC_LEFTOVER_AGE_MS;
 *   run/job.TOKEN.ID
 *               job locks that nothing holds (sq_job_probe: dead) of
 *               workers that are not alive: what the jobs of a dead
 *               worker left once they ended; a held one stays;
 *   run/index   the claim index shared by all hosts in older versions;
 *   run/index.HOST
 *               a host's claim index not saved for SQ_GC_INDEX_AGE_MS
 *               (its consumers save it at least once a minute);
 *   dedup/ID    producer deduplication markers older than dedup_window
 *               that no sender holds locked;
 *   archive/... what retention and retention_bytes no longer keep
 *               (sq_archive_trim);
 *   new/, retry/, groups/KEY/
 *               messages past their expiry (e=, or the queue's ttl) are
 *               not removed but dead-lettered with r=expired, one rename
 *               each, as a consumer meeting them would (the group's
 *               baton, if the message holds it, handed on).
 *
 * Nothing in the state directories is touched: gc never removes a
 * message that is still to be delivered.  Entries are lstat'ed, never followed or opened.  With
 * dry_run nothing is removed and fn hears what would be.  fn (may be
 * NULL) gets each file; a failed unlink is reported with error set and
 * the collection goes on.  tmp_age_ms < 0 is EINVAL.  Returns 0, or -1
 * with errno: of the first failed unlink not marked kept, or of a directory that could
 * not be read (a missing attr/ or run/ is empty, not an error).
 */
int	sq_queue_gc(struct sq_queue *q, int64_t now_ms, int64_t tmp_age_ms,
	    int dry_run, sq_gc_fn *fn, void *arg);

/*
 * sq_spool_gc - finish the removals that a destroy stopped mid-way (killed,
 * or its host gone) left in the directory dir, a spool root or the parent
 * of a queue or exchange given by path, as of now_ms: each entry named as
 * a destroy names what it removes (".destroy.PID.XXXXXXXX": the
 * destroyer's pid in decimal, 8 lowercase hex digits, nothing else), that
 * is a directory (lstat'ed, never followed: a symbolic link or a file of
 * that name is left), and whose destroy is over: PID is no live process
 * of this host (kill(2) with signal 0), and neither the directory nor one
 * directly in it (a state directory being emptied) was changed within
 * SQ_GC_LEFTOVER_AGE_MS by its mtime.  It is removed whole, no link
 * followed (the queue or exchange was doomed once renamed so: a destroy
 * never renames it back).  dir itself may be a symbolic link.  fn (may be
 * NULL) gets each leftover, its path the name in dir; with dry_run
 * nothing is removed.  Returns 0, or -1 with errno: of dir, or of the
 * first leftover that could not be removed whole (reported with error
 * set).
 */
int	sq_spool_gc(const char *dir, int64_t now_ms, int dry_run, sq_gc_fn *fn,
	    void *arg);

/* Flags of sq_queue_check. */
#define SQ_CHECK_REPAIR		0x1	/* mend what is found */
#define SQ_CHECK_DRY_RUN	0x2	/* with REPAIR: say, do not do */

/* One inconsistency found by sq_queue_check, and its repair. */
struct sq_problem {
	const char	*path;		/* relative to the queue: "new/NAME" */
	const char	*id;		/* the message ID, or NULL */
	const char	*what;		/* "not a regular file (symlink)"...;
					   a settings file that does not
					   load: "queue.conf:LINE: KEY:
					   reason" or "queue.conf: reason",
					   starting with path and ':' */
	const char	*action;	/* the repair: "mkdir", "rename",
					   "recover", "quarantine", "copy",
					   "chmod", "chown", "make" (a
					   group's baton), "remove" (a
					   wrong order file); NULL: none */
	const char	*to;		/* the repair's result: a path
					   relative to the queue, a mode */
	int		 repaired;	/* 1: the repair was made */
	int		 error;		/* errno of a failed repair, else 0 */
};

/* Called for each problem, after its repair was tried (or not). */
typedef void	sq_problem_fn(const struct sq_problem *p, void *arg);

/* What sq_queue_check found. */
struct sq_check_result {
	size_t		found;		/* problems found */
	size_t		repaired;	/* of which mended */
};

/*
 * sq_queue_check - look at the queue directory path for every
 * inconsistency, calling fn (not NULL) once for each:
 *
 *   - a missing tmp/, new/, cur/, retry/ or dead/; a subdirectory
 *     (those, attr/, run/, hold/) or queue.conf that is not of its type;
 *   - an entry of a state directory that is not a regular file
 *     (symlink, FIFO, directory, socket, device): never followed, never
 *     opened;
 *   - a name that does not parse (spoolq(5) NAMES);
 *   - an ID found in two states, or twice in one;
 *   - fields unfit for the state (spoolq(5): l and w only in cur/, t
 *     only in retry/, r only in dead/; cur/ needs l, retry/ t, dead/ r);
 *   - a message file with more than one link;
 *   - a file or subdirectory owned by another user than the queue
 *     directory, unless the queue is group-writable and it belongs to
 *     the queue's group (a queue shared by a group, spoolq(5) LAYOUT);
 *   - a file or subdirectory writable by group or others where the
 *     queue directory is not;
 *   - errors in queue.conf, as sq_conf_load reports them.
 *
 * The queue is opened leniently, since a missing subdirectory or a bad
 * queue.conf are among the findings; a directory with none of tmp/,
 * new/, cur/, retry/, dead/ or queue.conf is not taken for a queue
 * (ENOTDIR).
 *
 * With SQ_CHECK_REPAIR each problem is mended by a rename, a mkdir(2),
 * chmod or chown: missing directories are made with the queue
 * directory's mode (and, for root, owner); unfit names renamed to their
 * proper form in place (l, w, t, r stripped from new/ and hold/; a due
 * time of now added in retry/, a reason "unknown" in dead/), or a claim
 * without a lease given back to new/ with its attempts; extra write bits
 * removed; a file chowned to the queue's owner where permitted; a
 * hard-linked message given a private copy (written in tmp/, fsynced;
 * the shared link renamed out of its state - the commit point, which a
 * consumer's claim can win - and the copy renamed in; not in cur/, whose
 * name is a claimer's receipt).  What cannot be mended - non-regular
 * entries, unparsable names, the second copy of a duplicated ID - is
 * renamed into quarantine/STATEDIR/NAME (a subdirectory in the place of
 * a state directory into quarantine/NAME), made on demand with the
 * queue's mode, ".q1" to ".q9" added on a clash; nothing is ever
 * removed.  After renames the claim index is refreshed
 * (sq_queue_refresh), so that the new names are offered at once.  Of
 * two copies of one ID the one kept is, in order: the one whose name
 * fits its state, the one in the most advanced state (inflight, ready,
 * retry, held, dead), the one with more attempts.  A duplicate is
 * quarantined only if both names are still there right before (so a
 * message moving while the queue was walked is not one).
 * With SQ_CHECK_DRY_RUN nothing changes; fn hears the repairs that would
 * be made.
 *
 * Memory is constant except for duplicate detection, which keeps one
 * 64-bit hash per message and the names of the few messages whose hash
 * is seen twice.  Fills *res.  Returns 0 (whether or not problems were
 * found), or -1 with errno when the queue could not be examined (ENOENT:
 * no such directory; ENOTDIR: not a queue; ENOMEM; a read error).
 */
int	sq_queue_check(const char *path, int flags, sq_problem_fn *fn,
	    void *arg, struct sq_check_result *res);

#endif /* SPOOLQ_REPAIR_H */
