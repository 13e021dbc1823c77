/*
 * inspect.h - looking at a queue without changing it: statistics for
 * `qadmin stats`, the oldest messages of a state for `qadmin ls -n`, and
 * opening a message or its failure record by ID for `qadmin cat`.
 * (To be merged into spoolq.h as its "inspect" section.)
 *
 * Everything here streams the state directories with sq_msg_each:
 * memory does not grow with the queue, no symlink is followed, and no
 * file but a regular one is ever opened.
 */
#ifndef SPOOLQ_INSPECT_H
#define SPOOLQ_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "spoolq.h"

#define SQ_STATS_ATTEMPTS	6	/* attempts histogram: 0..4 and 5+ */
#define SQ_STATS_AGES		7	/* ready ages: 0-5m ... 80-160m, 160m+ */
#define SQ_STATS_REASONS	16	/* dead-letter reasons counted by name */
#define SQ_STATS_HOUR_S		3600	/* the dead-letter rate windows, */
#define SQ_STATS_DAY_S		86400	/* in seconds */

/* Messages and bytes (st_size) of one state. */
struct sq_stats_count {
	uint64_t	count;
	uint64_t	bytes;
};

/* Dead letters with one reason (r=). */
struct sq_stats_reason {
	char		name[SQ_REASON_MAX];
	uint64_t	count;
};

/*
 * What sq_stats_collect saw in one queue.  A message is a regular file
 * whose name parses (spoolq(5) NAMES); any other entry of a state
 * directory (symlink, FIFO, directory, unparsable name) counts only in
 * stray.  Times are epoch seconds, -1 when there is nothing to report.
 *
 * Dead letters are counted by reason in a table of SQ_STATS_REASONS
 * slots, so memory stays fixed however many reasons users invent: the
 * reasons the library writes ("attempts", "expired", "rejected",
 * "timeout", "overflow") come first and are always there, then the other
 * reasons met, sorted by name, as long as there is room; what does not
 * fit (which ones depends on the order of the listing), dead letters
 * without r= and those whose reason is "other" count in dead_other.
 */
struct sq_stats {
	int64_t		now_ms;			/* the time it was taken at */
	struct sq_stats_count state[SQ_NSTATES];
	uint64_t	stray;			/* entries that are not messages */
	int64_t		oldest_ready;		/* send time of the oldest ready, ms */
	int64_t		earliest_lease;		/* smallest l= in cur/ */
	int64_t		next_due;		/* smallest t= in retry/ */
	struct sq_stats_reason dead_reason[SQ_STATS_REASONS];
	size_t		ndead_reasons;		/* slots in use */
	uint64_t	dead_other;		/* reasons beyond the table */
	uint64_t	dead_last_hour;		/* ctime within SQ_STATS_HOUR_S */
	uint64_t	dead_last_day;		/* ctime within SQ_STATS_DAY_S */
	uint64_t	attempts[SQ_STATS_ATTEMPTS];	/* a=0..4, 5+; all states */
	uint64_t	ready_age[SQ_STATS_AGES];	/* by sq_stats_age_label */
	unsigned	workers_alive;		/* run/worker.*, lock held, fresh */
	unsigned	workers_hung;		/* lock held, heartbeat > lease */
	/* Since the queue was made (run/counters; counter.c): */
	uint64_t	sent, acked, retried, dead_lettered;
	uint64_t	dropped;		/* counts not written: lock busy */
	struct sq_group_stats groups;		/* message groups (group.c) */
};

/*
 * sq_stats_collect - fill *s with the statistics of q as of now_ms
 * (milliseconds since the epoch; ages, windows and worker heartbeats are
 * measured from it): count and bytes per state, where ready holds new/
 * and the messages waiting behind their group's head in groups/KEY/,
 * which are ready but blocked by their group (groups.waiting says how
 * many of them); the send time of the oldest ready message, grouped or
 * not (from its ID, else its mtime: sq_msg_sent_ms); the
 * earliest lease deadline and the next retry due time; dead letters by
 * reason (a fixed table, unknown reasons under "other"); how many files
 * entered dead/ in the last hour and day, from their ctime, which the
 * rename into dead/ sets (no counters are kept); the attempts histogram
 * over every state; ready messages by age (qshape(1) buckets); and the
 * workers whose lock file run/worker.TOKEN is held (sq_worker_probe),
 * never creating run/; the counters of messages sent, acknowledged,
 * retried and dead-lettered since the queue was made, and the counts
 * that could not be written (dropped), read from run/counters (0 before
 * the first); the message groups
 * (sq_group_stats).  Each state directory is listed once, in
 * constant memory; entries that move meanwhile may be missed or seen
 * twice, as with any listing of a live queue.  Changes nothing.
 * Returns 0, or -1 with errno from opendir(3)/readdir(3)/fstatat(2)
 * (ENOENT when a state directory of the queue is missing).
 */
int	sq_stats_collect(struct sq_queue *q, int64_t now_ms, struct sq_stats *s);

/*
 * sq_stats_age_label - the label of ready-age bucket i (0 <= i <
 * SQ_STATS_AGES): "0-5m", "5-10m", "10-20m", "20-40m", "40-80m",
 * "80-160m", "160m+" (each bucket holds ages from its lower bound up to,
 * not including, its upper one; the buckets of Postfix qshape(1)).
 * NULL when i is out of range.
 */
const char	*sq_stats_age_label(size_t i);

/*
 * sq_stats_age_bucket - the bucket of an age in seconds (negative ages,
 * from clock skew, count as 0).
 */
size_t	sq_stats_age_bucket(int64_t age_s);

/*
 * sq_msg_sent_ms - when the message m was sent, in epoch milliseconds: the
 * time in its ID (sq_id_time_ms), else, for IDs of another shape (delivery
 * by hand) and for entries that are not messages, its modification time
 * (to the millisecond).
 */
int64_t	sq_msg_sent_ms(const struct sq_msg *m);

/*
 * sq_msg_stray - NULL when the entry m is a message (a regular file whose
 * name parses), else a word for what it is: "symlink", "fifo",
 * "directory", "socket", "device", or "bad-name" for a regular file
 * whose name does not parse.  Such entries are never claimed; `qadmin
 * check` deals with them.
 */
const char	*sq_msg_stray(const struct sq_msg *m);

/*
 * sq_msg_oldest - call fn(m, arg) for the first max entries of state st
 * of q in ID order (the name up to its first comma; for messages made by
 * sq_id_new, send order), oldest first, whether messages or not, as
 * sq_msg_each would pass them.  One listing of the directory; memory
 * grows with max (a heap of up to max names, about 400 bytes each),
 * never with the queue.  In the callback m->dirfd is the state
 * directory, still open (-1 for SQ_STATE_GROUPED, whose messages are
 * in their groups' directories), and m->st is the lstat taken while
 * listing.
 * fn returns as for sq_msg_each.  Returns 0, or -1 with errno (ENOMEM,
 * or as sq_msg_each, or from fn).
 */
int	sq_msg_oldest(struct sq_queue *q, enum sq_state st, size_t max,
	    sq_msg_fn *fn, void *arg);

/*
 * sq_msg_open - find the message whose ID is id (sq_msg_find: any state,
 * ready first) and open it for reading, never following a symlink and
 * never opening anything but a regular file (O_NOFOLLOW | O_NONBLOCK,
 * then fstat).  When the message moves between finding and opening (a
 * claim, a retry), it is looked for again, up to 8 times.  Fills *out as
 * sq_msg_find (out->st is the fstat of the open file; name gets the name,
 * SQ_NAME_MAX + 1 bytes).  Returns the descriptor (close-on-exec), or -1
 * with errno ENOENT (no such message), SQ_ENOTREG (only an entry that is
 * not a regular file has the ID: *out and name describe it, as for
 * sq_msg_find), EAGAIN (it kept moving), or from openat(2).
 */
int	sq_msg_open(struct sq_queue *q, const char *id, struct sq_msg *out,
	    char *name);

/*
 * sq_failure_open - open the failure record attr/ID.failure of message
 * id for reading (see spoolq(5) Failure records), refusing anything but
 * a regular file as sq_msg_open does.  Returns the descriptor, or -1
 * with errno ENOENT (no record), EINVAL (not a regular file, or id is
 * not a valid ID), or from openat(2).
 */
int	sq_failure_open(struct sq_queue *q, const char *id);

#endif /* SPOOLQ_INSPECT_H */
