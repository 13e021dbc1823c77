/*
 * spoolq.h - public interface of libspoolq, grouped by module.
 *
 * A queue is a directory, a message is a file, and every state change is
 * one rename(2).  spoolq(5) is the written form of the layout and the
 * name grammar defined here; the two share this one list of names.
 *
 * Conventions: functions return 0 on success and -1 with errno set on
 * failure, unless a comment says otherwise.  "Empty" and "busy" are
 * results, not errors.  The library never prints and never exits.
 * Times are milliseconds since the epoch (int64_t) unless a name says
 * otherwise; deadlines stored in message names are whole epoch seconds.
 */
#ifndef SPOOLQ_H
#define SPOOLQ_H

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define SQ_VERSION		"0.1.0"

/* Queue subdirectories (spoolq(5) LAYOUT). */
#define SQ_DIR_TMP		"tmp"	/* bodies being written */
#define SQ_DIR_NEW		"new"	/* ready, oldest first */
#define SQ_DIR_CUR		"cur"	/* claimed; the name is the lease */
#define SQ_DIR_RETRY		"retry"	/* waiting for a due time */
#define SQ_DIR_DEAD		"dead"	/* dead letters */
#define SQ_DIR_ATTR		"attr"	/* attribute sidecars */
#define SQ_DIR_RUN		"run"	/* locks and the claim index */
#define SQ_DIR_HOLD		"hold"	/* parked by an operator */
#define SQ_DIR_ARCHIVE		"archive"	/* acked, kept for replay */
#define SQ_DIR_DEDUP		"dedup"	/* deduplication markers */
#define SQ_DIR_GROUPS		"groups"	/* message groups: batons, queues */
#define SQ_HELD_FILE		"held"	/* flag: the queue hands out nothing */
#define SQ_CONF_FILE		"queue.conf"
#define SQ_INDEX_PREFIX		"run/index."	/* + HOST: claim index */
#define SQ_INDEX_OLD		"index"	/* in run/: before per-host indexes */
#define SQ_RATE_FILE		"run/rate"	/* the rate limit's bucket */
#define SQ_WORKER_PREFIX	"worker."	/* run/worker.TOKEN: a live worker */
#define SQ_SLOT_PREFIX		"slot."		/* run/slot.N: a worker slot */
#define SQ_JOB_PREFIX		"job."		/* run/job.TOKEN.ID: a running job */
#define SQ_FAILURE_SUFFIX	".failure"	/* attr/ID.failure: last failure */

/* Name fields, in the order they are written (spoolq(5) NAMES). */
#define SQ_F_ATTEMPTS		'a'	/* claims so far */
#define SQ_F_LEASE		'l'	/* lease deadline, epoch seconds */
#define SQ_F_WORKER		'w'	/* claiming worker's token */
#define SQ_F_NONCE		'c'	/* claim nonce of a claim with no w= */
#define SQ_F_DUE		't'	/* due time in retry/, epoch seconds */
#define SQ_F_EXPIRES		'e'	/* expiry time, epoch seconds */
#define SQ_F_GROUP		'g'	/* message group key */
#define SQ_F_REASON		'r'	/* dead-letter reason */
#define SQ_F_ATTR		'h'	/* bare flag: an attr/ sidecar exists */

#define SQ_ID_MAX		160	/* bytes of an ID, with its NUL */
#define SQ_NAME_MAX		255	/* NAME_MAX of the file systems we use */
#define SQ_TOKEN_MAX		33	/* worker token, with its NUL */
#define SQ_REASON_MAX		33	/* dead-letter reason, with its NUL */
#define SQ_GROUP_MAX		33	/* group key [A-Za-z0-9_-], with its NUL */
#define SQ_NONCE_MAX		9	/* claim nonce, 8 hex digits, with its NUL */
#define SQ_QUEUE_NAME_MAX	128	/* SPEC 1: [A-Za-z0-9][A-Za-z0-9._-]{0,127} */

/*
 * errno for an entry that is not a regular file where one was expected (a
 * symlink, FIFO, socket, device or directory planted in a queue).
 */
#define SQ_ENOTREG		EINVAL

/*
 * errno for a queue one of whose state directories (tmp/, new/, cur/,
 * retry/, dead/) is missing or is not a directory, while the others or
 * its queue.conf show that it is a queue: broken, not absent
 * ("Structure needs cleaning"; qadmin check --repair mends it).
 */
#define SQ_EBROKEN		EUCLEAN

/* Dead-letter reasons written by the library. */
#define SQ_REASON_ATTEMPTS	"attempts"
#define SQ_REASON_EXPIRED	"expired"
#define SQ_REASON_REJECTED	"rejected"
#define SQ_REASON_TIMEOUT	"timeout"
#define SQ_REASON_OVERFLOW	"overflow"
#define SQ_REASON_UNREADABLE	"unreadable"	/* a body no job could read */
#define SQ_REASON_BADMARKER	"badmarker"	/* its dedup marker's name is
						   taken by a non-file */
#define SQ_REASON_TOOLARGE	"toolarge"	/* larger than max_bytes alone:
						   it never fits */

/* ---------------------------------------------------------------- time */

/*
 * sq_now_ms - the wall clock (CLOCK_REALTIME) in milliseconds since the
 * epoch.  Deadlines in names are wall-clock times so that every process
 * and host sharing a queue reads them alike.
 */
int64_t	sq_now_ms(void);

/*
 * sq_mono_ms - CLOCK_BOOTTIME in milliseconds: a clock that never steps
 * and that counts a suspended host, for measuring how long this process
 * was away (stopped, suspended, cut off).  Never compare it across
 * processes or hosts.
 */
int64_t	sq_mono_ms(void);

/*
 * sq_duration_parse - parse a duration such as "500ms", "30s", "5m",
 * "2h", "4d" or a bare number of seconds into *ms (milliseconds).
 * Returns 0, or -1 with errno EINVAL (not a duration) or ERANGE (over
 * 100 years).  Suffixes follow SPEC 3.
 */
int	sq_duration_parse(const char *s, int64_t *ms);

/*
 * sq_time_parse - parse a point in time, "@EPOCH" (seconds, 0 to
 * 4102444800, the year 2100) or a local "YYYY-MM-DDTHH:MM[:SS]" or
 * "YYYY-MM-DD HH:MM[:SS]", every field of exactly that many digits
 * (strptime(3) in the TZ of the process), into
 * *ms, epoch milliseconds.  A local time that does not exist (Feb 30,
 * second 60, an hour skipped by a daylight saving change) is refused
 * rather than moved (mktime(3) would move it).  Returns 0, or -1 with
 * errno EINVAL (not a time) or ERANGE (an epoch past the limit).
 */
int	sq_time_parse(const char *s, int64_t *ms);

/* ---------------------------------------------------------------- backoff */

/*
 * A bounded exponential back-off, for a step that failed and left the
 * state unchanged: such a step is never retried at once (SPEC 2).
 * Durations in milliseconds.
 */
struct sq_backoff {
	int64_t		min_ms, max_ms;		/* first and longest wait */
	int64_t		step_ms;		/* the last step; 0 = none yet */
	unsigned	tries;			/* waits since the last reset */
};

/*
 * sq_backoff_init - a back-off whose waits double from min_ms (at least
 * 1) up to max_ms.
 */
void	sq_backoff_init(struct sq_backoff *b, int64_t min_ms, int64_t max_ms);

/* sq_backoff_reset - after a success: the next wait is min_ms again. */
void	sq_backoff_reset(struct sq_backoff *b);

/*
 * sq_backoff_next - the next wait in milliseconds: min_ms, then twice the
 * last step up to max_ms, each less up to a fifth at random (arc4random;
 * AWS "exponential backoff and jitter") so that waiters on one cause do
 * not retry in step.  Counts b->tries.
 */
int64_t	sq_backoff_next(struct sq_backoff *b);

/*
 * sq_backoff_sleep - sleep for sq_backoff_next(b), but not past until_ms
 * (epoch ms; INT64_MAX for no limit).  Returns 0; -1 with ETIMEDOUT when
 * until_ms has already passed, or EINTR when a signal came.
 */
int	sq_backoff_sleep(struct sq_backoff *b, int64_t until_ms);

/*
 * sq_backoff_lock - take flock(2) op (LOCK_EX or LOCK_SH) on fd, waiting
 * at most wait_ms milliseconds (negative: no bound) for a holder: tries
 * with LOCK_NB, a back-off of 1 ms doubling up to 50 ms between tries.
 * wait_ms is measured by sq_mono_ms, so a step of the wall clock neither
 * stretches nor cuts it.  Only flock, never fcntl locks (SPEC 2).  Returns 0 when locked, 1 when
 * still busy after wait_ms (not an error: dma's three results), -1 with
 * errno.
 */
int	sq_backoff_lock(int fd, int op, int64_t wait_ms);

/* ---------------------------------------------------------------- names */

/*
 * A message name split into its ID and fields.  Absent numeric fields are
 * 0 (attempts) or -1 (times); absent strings are "".
 */
struct sq_name {
	char		id[SQ_ID_MAX];
	unsigned	attempts;		/* a= */
	int64_t		lease;			/* l=, epoch seconds, or -1 */
	char		token[SQ_TOKEN_MAX];	/* w= */
	char		nonce[SQ_NONCE_MAX];	/* c=, or "" */
	int64_t		due;			/* t=, epoch seconds, or -1 */
	int64_t		expires;		/* e=, epoch seconds, or -1 */
	char		group[SQ_GROUP_MAX];	/* g=, or "" */
	char		reason[SQ_REASON_MAX];	/* r= */
	int		has_attr;		/* h */
};

/*
 * sq_name_parse - split a file name into *n.  The ID is everything before
 * the first comma: non-empty, not starting with '.', free of '/' and
 * control bytes.  Each field is key=value with a key from SQ_F_* (h takes
 * no value), at most once.  Returns 0, or -1 with errno EINVAL.
 */
int	sq_name_parse(struct sq_name *n, const char *name);

/*
 * sq_name_format - write n as "ID[,a=..][,l=..][,w=..][,c=..][,t=..][,e=..]
 * [,g=..][,r=..][,h]" into buf (size bytes), leaving out absent fields and a=0.
 * Returns 0, or -1 with errno ENAMETOOLONG when it does not fit.
 */
int	sq_name_format(char *buf, size_t size, const struct sq_name *n);

/*
 * sq_name_init - an empty name for the given id (attempts 0, no times).
 * The id is copied with truncation checked: returns -1, errno
 * ENAMETOOLONG, when it does not fit.
 */
int	sq_name_init(struct sq_name *n, const char *id);

/*
 * sq_id_new - make a new message ID "SSSSSSSSSS.NNNNNNNNN.PID_COUNTER_RAND.HOST"
 * into buf (size >= SQ_ID_MAX): wall-clock seconds and nanoseconds
 * zero-padded so that byte order is send order, never going backwards
 * within a process; pid and a per-process counter; 32 random bits from
 * arc4random(3) so that containers sharing a host name and pid numbers
 * still differ; the short host name with bytes outside [A-Za-z0-9-]
 * replaced by '-'.  Returns 0, or -1 with errno ENAMETOOLONG.
 */
int	sq_id_new(char *buf, size_t size);

/*
 * sq_id_time - the send time encoded in an ID made by sq_id_new, in epoch
 * seconds (rounded down); -1 for an ID of another shape (hand-delivered
 * messages).  For display only: ages are measured with sq_id_time_ms.
 */
int64_t	sq_id_time(const char *id);

/*
 * sq_id_time_ms - the send time encoded in an ID, in epoch milliseconds
 * (its seconds and nanoseconds, rounded down to the millisecond); -1 for
 * an ID of another shape.  Every age of a message (ttl, stats, ls) is
 * measured from it, so an age is never taken as longer than it is: with
 * whole seconds a message sent at x.9 s would be 0.9 s older (spoolq(5),
 * "Ages").
 */
int64_t	sq_id_time_ms(const char *id);

/* ---------------------------------------------------------------- rate */

struct sq_queue;

/* A rate limit: at most count per interval_ms; count 0 is no limit. */
struct sq_rate {
	unsigned	count;
	int64_t		interval_ms;
};

/*
 * sq_rate_parse - parse "N/s", "N/m", "N/h" or "N/DURATION" (a duration
 * as sq_duration_parse takes it: "5/100ms", "10/2s"; at least 1 ms), N
 * from 1 to 1000000, or "0" for no limit, into *r.  Returns 0, or -1 with
 * errno EINVAL.
 */
int	sq_rate_parse(const char *s, struct sq_rate *r);

/*
 * sq_rate_format - r as sq_rate_parse takes it ("50/s", "3/m", "5/100ms",
 * "0"), into buf (size bytes).
 */
void	sq_rate_format(const struct sq_rate *r, char *buf, size_t size);

/*
 * sq_rate_take - take up to want tokens of r from q's bucket, run/rate,
 * shared by every worker of q (a token bucket holding r->count, filled
 * at r->count per r->interval_ms, kept as the GCRA of ITU-T I.371 keeps
 * it; rate.c).  *got gets the tokens taken (want when r has no limit),
 * and when fewer than want, *next_ms the epoch ms when the next one can
 * be had (else INT64_MAX).  The bucket's lock is waited for at most
 * 100 ms, then the bucket is used without it (SPEC 2).  Returns 0, or -1
 * with errno (nothing taken).
 */
int	sq_rate_take(struct sq_queue *q, const struct sq_rate *r, size_t want,
	    size_t *got, int64_t *next_ms);

/*
 * sq_rate_give - put back n tokens taken by sq_rate_take and not used (a
 * claim found fewer messages than tokens taken).  Returns 0 or -1 with
 * errno.
 */
int	sq_rate_give(struct sq_queue *q, const struct sq_rate *r, size_t n);

/* ---------------------------------------------------------------- config */

enum sq_durability {
	SQ_DURABILITY_NONE,		/* no fsync: tmpfs, rebuildable work */
	SQ_DURABILITY_FSYNC		/* fsync bodies and directories */
};

/* What a send does when max_messages or max_bytes is reached. */
enum sq_overflow {
	SQ_OVERFLOW_REJECT,		/* fail at once: EX_TEMPFAIL */
	SQ_OVERFLOW_BLOCK,		/* wait for room */
	SQ_OVERFLOW_DROP_OLDEST		/* dead-letter the oldest (r=overflow) */
};

/* queue.conf, [queue] section.  Durations in milliseconds. */
struct sq_conf {
	unsigned	max_attempts;		/* claims before dead-lettering; 5 */
	int64_t		lease_ms;		/* visibility timeout; 5 min */
	int64_t		retry_delay_ms;		/* first backoff step; 30 s */
	int64_t		retry_max_delay_ms;	/* backoff cap; 1 h */
	int64_t		ttl_ms;			/* retention since send; 0 = never */
	enum sq_durability durability;		/* fsync */
	int64_t		job_timeout_ms;		/* qworker job limit; 0 = none */
	int64_t		dedup_window_ms;	/* dedup_id memory; 5 min */
	int64_t		poll_interval_ms;	/* waiters look this often where
						   inotify misses changes; 1 s */
	uint64_t	max_messages;		/* ready+retry+inflight; 0 = any */
	uint64_t	max_bytes;		/* their bytes; 0 = any */
	enum sq_overflow overflow;		/* when a bound is reached */
	uint64_t	min_free_disk;		/* bytes; refuse sends below */
	int		archive;		/* acked messages kept in archive/ */
	int64_t		retention_ms;		/* archive age bound; 0 = none */
	uint64_t	retention_bytes;	/* archive size bound; 0 = none */
	struct sq_rate	rate;			/* qworker jobs; 0 = no limit */
	char		dead_letter[SQ_QUEUE_NAME_MAX + 1];
						/* queue NAME beside this one
						   that takes its dead letters
						   into new/; "" = dead/ */
};

/*
 * sq_conf_defaults - fill c with the defaults of SPEC 3, taken from SQS
 * (visibility timeout, receive count), beanstalkd and RabbitMQ.
 */
void	sq_conf_defaults(struct sq_conf *c);

/*
 * sq_conf_set - validate and apply one key=value (as in queue.conf).
 * On error returns -1, errno EINVAL, leaves c unchanged, and writes the
 * reason ("unknown key", "not a duration", ...) into why (whysize bytes).
 */
int	sq_conf_set(struct sq_conf *c, const char *key, const char *value,
	    char *why, size_t whysize);

/*
 * sq_conf_load - read queue.conf (in the directory dirfd, shown to users
 * as path) over c.  A missing file leaves c unchanged and succeeds.  On a
 * bad line, section, key or value, or a key set on two lines ("KEY: set
 * twice (also on line N)"), returns -1 with errno EINVAL and writes
 * "PATH:LINE: KEY: reason" into err; on an unreadable file returns -1 with
 * the open(2)/read(2) errno and "PATH: strerror" in err.
 */
int	sq_conf_load(struct sq_conf *c, int dirfd, const char *path,
	    char *err, size_t errsize);

/*
 * sq_conf_backoff_ms - the retry delay after the given attempt (1 = first
 * claim): retry_delay * 2^(attempt-1), capped at retry_max_delay, with
 * +-20% jitter from arc4random(3) (AWS "exponential backoff and jitter").
 */
int64_t	sq_conf_backoff_ms(const struct sq_conf *c, unsigned attempt);

/*
 * sq_conf_keys - the queue.conf keys, NULL-terminated, in the order
 * spoolq(5) lists them.
 */
const char *const *sq_conf_keys(void);

/* Bytes of the longest value sq_conf_get writes, NUL included: a queue
   name (dead_letter) of SQ_QUEUE_NAME_MAX bytes is the longest. */
#define SQ_CONF_VALUE_MAX	(SQ_QUEUE_NAME_MAX + 1)

/*
 * sq_conf_get - the value of key in c, formatted as queue.conf takes it
 * (durations as "30s", "5m", "500ms"), into buf (size bytes; any value
 * fits in SQ_CONF_VALUE_MAX).  Returns 0, or -1 with errno EINVAL for an
 * unknown key, ERANGE when the value does not fit in size (buf then
 * holds its start, NUL-terminated).
 */
int	sq_conf_get(const struct sq_conf *c, const char *key, char *buf,
	    size_t size);

/*
 * sq_duration_format - ms (milliseconds) in the largest unit that divides
 * it: "4d", "2h", "5m", "30s", "500ms", "0".
 */
void	sq_duration_format(int64_t ms, char *buf, size_t size);

/*
 * sq_conf_source - the line of queue.conf (in dirfd) that sets key, or 0
 * when the key keeps its default.  Returns 0, or -1 with errno (EINVAL for
 * an unknown key).
 */
int	sq_conf_source(int dirfd, const char *key, int *line);

struct sq_queue;

/*
 * sq_conf_update - set key = value in q's queue.conf after validating it
 * like the loader: the line that set the key is replaced, other lines and
 * comments are kept, a new key is appended (under a [queue] header made
 * if missing); earlier lines that set the key too are dropped.  Written
 * to a temporary file, fsynced, loaded (it must load whole, so a broken
 * queue.conf is mended only when every error in it goes) and renamed
 * over queue.conf, so readers see the old file or the new one.  Sets
 * q->conf to what the new file loads.  On error returns -1 with errno
 * (EINVAL: bad value, or the new file would not load) and a message
 * "KEY: reason" or "queue.conf:LINE: KEY: reason" in err; the file is
 * unchanged.
 */
int	sq_conf_update(struct sq_queue *q, const char *key, const char *value,
	    char *err, size_t errsize);

/* Most settings one sq_conf_update_many can make. */
#define SQ_CONF_UPDATE_MAX	64

/*
 * sq_conf_update_many - sq_conf_update of nkeys settings at once, keys[i]
 * = values[i], at most SQ_CONF_UPDATE_MAX; where a key comes twice the
 * last one counts.  Every value is checked before anything is written,
 * and all go into one new file and one rename, so a crash or an error
 * leaves every setting or none (SPEC 4: nothing half-done).  Returns 0,
 * or -1 with errno (EINVAL: a bad value, or too many) and err as for
 * sq_conf_update.
 */
int	sq_conf_update_many(struct sq_queue *q, const char *const *keys,
	    const char *const *values, size_t nkeys, char *err,
	    size_t errsize);

/* ---------------------------------------------------------------- spool */

/*
 * sq_spool_root - the spool root (SPEC 1): dir if not NULL, else
 * $SPOOLQ_DIR, else /var/spool/spoolq for uid 0, else
 * ${XDG_STATE_HOME:-$HOME/.local/state}/spoolq.  Written into buf (size
 * bytes).  Returns 0, or -1 with errno ENAMETOOLONG, or ENOENT when no
 * home directory is known.
 */
int	sq_spool_root(char *buf, size_t size, const char *dir);

/*
 * sq_queue_name_valid - 1 when name matches [A-Za-z0-9][A-Za-z0-9._-]{0,127}
 * (SPEC 1), else 0.
 */
int	sq_queue_name_valid(const char *name);

/*
 * sq_queue_path - the directory of the queue argument arg: arg itself when
 * it contains '/', else root/arg after checking the name.  Returns 0, or
 * -1 with errno EINVAL (bad name) or ENAMETOOLONG.
 */
int	sq_queue_path(char *buf, size_t size, const char *root, const char *arg);

/*
 * Bytes of the names moved back into new/ that an open queue keeps for
 * the side list of run/index.HOST before it writes them (index_offer).
 */
#define SQ_OFFER_BYTES	4096

/* An open queue: directory descriptors, its settings and its shown path. */
struct sq_queue {
	char		path[PATH_MAX];		/* as given, for messages */
	int		fd;			/* the queue directory */
	int		tmpfd, newfd, curfd, retryfd, deadfd;
	struct sq_conf	conf;
	int		index_fd;		/* run/index, opened on demand */
	int		groupsfd;		/* groups/, when groups_open */
	int		groups_open;		/* (group.c, on demand) */
	int		runfd;			/* run/, when run_open */
	int		run_open;		/* (the job locks, worker.c) */
	int		attrfd;			/* attr/, when attr_open */
	int		attr_open;		/* (sidecars: attr_dir) */
	int		attr_fs;		/* attrfd's file system: 0 not
						   looked at, 1 local, 2 remote
						   (attr_none) */
	dev_t		dev;
	mode_t		share;			/* group access: dir_share() */
	char		real[PATH_MAX];		/* canonical path, on demand */
	uint64_t	counted[5];		/* counts not yet in run/counters */
	int64_t		counted_ms;		/* when they were last written */
	int		live_fd;		/* worker lock: sq_worker_bind */
	int64_t		live_ms;		/* its heartbeat interval; 0: none */
	int64_t		live_at;		/* its last beat, sq_mono_ms */
	char		offered[SQ_OFFER_BYTES];	/* names for run/index */
	size_t		offered_len;		/* (index.c) bytes of them */
	int64_t		offered_ms;		/* when the first was kept */
	int		dl_errno;		/* why the last dead letter for
						   dead_letter stayed in dead/;
						   0: none (admin.c) */
	int		dl_told;		/* the cause last handed out by
						   sq_dead_letter_failed */
	unsigned long	dl_sent;		/* dead letters given to the
						   dead_letter queue */
	struct sq_queue	*dl_to;			/* that queue, opened on demand
						   (admin.c); closed with q */
	int64_t		group_ms;		/* group upkeep due (group.c) */
	struct sq_group_cache *group_cache;	/* order files read (group.c) */
	/*
	 * A settle whose commit the file system failed and no look could
	 * tell made or not (commit.c): tried again, it decides by these.
	 */
	char		doubt_from[SQ_NAME_MAX + 1];	/* its claim; "" none */
	const char	*doubt_dir;		/* its destination: SQ_DIR_* */
	char		doubt_to[SQ_NAME_MAX + 1];	/* name there; "" unlink */
};

/*
 * sq_queue_blame - after an operation on q failed with EACCES or EPERM:
 * the name of the first of q's directories (tmp, new, cur, retry, dead,
 * attr, run, hold, archive, dedup, in that order; those that do not exist
 * are skipped) that this process may not use as mode asks (R_OK, W_OK,
 * X_OK, judged as faccessat(2) with AT_EACCESS judges them), or NULL when
 * every one may be used and the cause lies elsewhere.  Tools name it in
 * their error, "q/cur: Permission denied", rather than only the queue.
 * Changes nothing; errno is kept.
 */
const char	*sq_queue_blame(const struct sq_queue *q, int mode);

/*
 * sq_queue_real - the canonical absolute path of q (realpath(3) of its
 * path, computed once), for receipts: a receipt made from it is valid
 * from any directory and has no "." or ".." component for qack to
 * refuse.  Falls back to the path as given.
 */
const char	*sq_queue_real(struct sq_queue *q);

/*
 * sq_queue_create - create the queue directory path with every
 * subdirectory, and queue.conf with the given settings (keys/values, n
 * pairs; may be 0).  The queue is built under a dot name beside its final
 * place and renamed into place, so it appears whole or not at all.
 * Directory modes come from the umask.  Missing parents (the spool root)
 * are created.  Returns 0, or -1 with errno EEXIST (already there),
 * EINVAL (a bad setting; "KEY: reason" in why) or a mkdir(2) errno.
 */
int	sq_queue_create(const char *path, const char *const *keys,
	    const char *const *values, size_t n, char *why, size_t whysize);

/*
 * sq_queue_open - open the queue at path (never following a symlink in
 * its last component) and load its queue.conf.  Returns 0; -1 with errno
 * ENOENT (no such queue), ENOTDIR (not a queue: nothing of a queue is
 * there), SQ_EBROKEN (a state directory is missing or not a directory;
 * err holds "PATH/DIR: reason", the reason "No such file or directory" or
 * "not a directory (TYPE)"), EINVAL (bad queue.conf; err holds
 * "FILE:LINE: KEY: reason"), or the errno of open(2).  err (errsize
 * bytes) always gets a message.
 */
int	sq_queue_open(struct sq_queue *q, const char *path, char *err,
	    size_t errsize);

/*
 * sq_queue_open_arg - open the queue named by a command-line argument as
 * the tools do (SPEC 1): arg itself when it contains '/', else the queue
 * NAME arg under the spool root of sq_spool_root(root) (root NULL: the
 * default root).  Returns 0; -1 with errno ENOENT (no home directory
 * for the default root, or no such queue), ENAMETOOLONG, EINVAL (a bad
 * queue name, err "ARG: bad queue name"; or a bad queue.conf), or as
 * for sq_queue_open.  err (errsize bytes) always gets a whole message
 * that names the spool root, arg or the queue's path.
 */
int	sq_queue_open_arg(struct sq_queue *q, const char *root,
	    const char *arg, char *err, size_t errsize);

/*
 * sq_queue_open_dirs - sq_queue_open without loading queue.conf: the
 * settings stay at their defaults.  For mending a queue whose queue.conf
 * does not load (qadmin config set).  Returns 0, or -1 with errno and err
 * as for sq_queue_open (never EINVAL for queue.conf).
 */
int	sq_queue_open_dirs(struct sq_queue *q, const char *path, char *err,
	    size_t errsize);

/*
 * sq_queue_reopen - open the directories of q again by its path and put
 * the new descriptors in place of the old (closed; run/index is opened
 * again on demand); the settings, counts and worker binding are kept.
 * For a step that failed with an error of the descriptor rather than of
 * the file (sq_error_stale): a network or FUSE file system can drop an
 * open directory (GlusterFS: EBADFD, "remote_fd is -1"; NFS: ESTALE).
 * Returns 0, or -1 with errno of open(2) (q unchanged).
 */
int	sq_queue_reopen(struct sq_queue *q);

/*
 * sq_queue_moved - the name of the first state directory of q (tmp, new,
 * cur, retry, dead) that its name no longer leads to: removed, renamed
 * or replaced while q was open, so that what q lists is no longer what
 * others see; "." when it is the queue directory itself that its path
 * (q->path, followed as at open) no longer leads to (the queue destroyed,
 * renamed, or destroyed and made anew); NULL when every one is where it
 * was.  A descriptor that
 * cannot be fstat'ed counts as in place (sq_error_stale is the caller's).
 */
const char *sq_queue_moved(const struct sq_queue *q);

/*
 * sq_error_stale - whether errno e may pass if the step is made again,
 * perhaps on descriptors opened again (sq_queue_reopen): a descriptor or
 * file handle a network file system dropped (EBADF, EBADFD, ESTALE), a
 * connection (ENOTCONN, ETIMEDOUT, ECONNABORTED, ECONNRESET, EHOSTDOWN,
 * EHOSTUNREACH), EIO, EAGAIN, EINTR.  ENOENT is not: a lost race or lease.
 */
int	sq_error_stale(int e);

/*
 * sq_queue_close - close every descriptor of q and free what it keeps
 * (the copies of group order files).  Safe to call twice.
 */
void	sq_queue_close(struct sq_queue *q);

/*
 * sq_queue_destroy - remove the queue at path.  Unless force is set,
 * refuses (ENOTEMPTY) a queue holding messages in new, cur, retry, dead
 * or hold, waiting in a group (groups/KEY/), or kept for replay in
 * archive/ (acked: a user who set archive = yes keeps them on purpose).
 * The queue is first renamed to a dot name so that it disappears
 * at once, then removed.  Unless force is set, each directory a message
 * can arrive in (tmp, new, retry, cur, archive, dead, hold, groups/KEY,
 * groups) is then
 * removed while empty, one by one, before anything else: a message that
 * came in after the look (a send or a dead letter forwarded through a
 * descriptor opened before the rename) makes rmdir(2) fail, and the queue
 * is made whole again, renamed back and refused (ENOTEMPTY); a rename
 * into a directory already removed fails for its sender (ENOENT).
 * On ENOTEMPTY, why (whysize bytes) says what holds the queue: how many
 * messages in which directories, as "2 in new/, 1 in archive/
 * (acknowledged, kept for replay)", or "a message came in new/"; it is
 * empty after any other failure (messages that could not be counted,
 * e.g. EMFILE, are that failure, not ENOTEMPTY).
 * Returns 0 or -1 with errno (another errno when the queue could not be
 * put back: it is then left under its dot name).
 */
int	sq_queue_destroy(const char *path, int force, char *why,
	    size_t whysize);

/* Message counts per state, from one directory listing each. */
struct sq_counts {
	size_t	ready, inflight, retry, dead;
};

/*
 * sq_queue_count - count the messages of q per state.  ready counts
 * new/ and the messages waiting behind their group's head in
 * groups/KEY/ (spoolq(5) "Message groups"), which are ready but blocked
 * by their group.  Returns 0 or -1.
 */
int	sq_queue_count(struct sq_queue *q, struct sq_counts *c);

/* ---------------------------------------------------------------- send */

/* Batches commit at this many messages or bytes, whichever comes first. */
#define SQ_BATCH_MESSAGES	1024
#define SQ_BATCH_BYTES		(8 * 1024 * 1024)
/* A batch keeps at most this many deduplicated sends pending (their
   markers locked, one file on a local file system, else one and a
   descriptor each): sq_batch_defer_dedup. */
#define SQ_DEDUP_BATCH		128

/* Limits of what a producer may say about a message (spoolq(5) ATTRIBUTES). */
#define SQ_KEY_MAX		255	/* routing key bytes (AMQP: 255) */
#define SQ_ATTR_NAME_MAX	64	/* [A-Za-z0-9_-] */
#define SQ_ATTR_VALUE_MAX	4096	/* bytes, no NUL or newline */
#define SQ_ATTRS_MAX		64	/* attributes per message */
#define SQ_DEDUP_MAX		128	/* bytes of a deduplication ID */
/* The suffix of the marker of a send set aside because the name of its
   own marker is taken (dedup/ID,badmarker): no dedup ID has a comma. */
#define SQ_DEDUP_ASIDE		",badmarker"

struct sq_attr {
	const char	*name, *value;
};

/*
 * Per-message options of a send, applied to every message of a batch.
 * Times are epoch milliseconds, 0 when unused.
 */
struct sq_msgopts {
	int64_t		 due_ms;	/* > now: wait in retry/ (--delay, --at) */
	int64_t		 expires_ms;	/* never delivered after (--ttl) */
	const char	*key;		/* routing key, or NULL */
	const struct sq_attr *attrs;	/* NAME=VALUE attributes */
	size_t		 nattrs;
	const char	*dedup_id;	/* drop repeats within dedup_window */
	const char	*group;		/* group key (sq_group_key), or NULL */
};

struct sq_dedup_slot;			/* internal */

/* Called once per message as it becomes visible in new/. */
typedef void	sq_sent_fn(const char *id, void *arg);

/*
 * A batch of sends: bodies are written into tmp/, then made durable
 * together (one syncfs(2) for the batch under durability = fsync) and
 * renamed one by one into new/, and new/ is fsynced once.  The commit
 * point of each message is its rename into new/.
 */
struct sq_batch {
	struct sq_queue	*q;
	char		(*ids)[SQ_ID_MAX];	/* pending, written in tmp/ */
	size_t		npending;
	size_t		nalloc;
	size_t		bytes;
	size_t		committed;		/* messages made visible so far */
	sq_sent_fn	*sent;
	void		*arg;
	const struct sq_msgopts *opts;		/* NULL: plain messages */
	size_t		dropped;		/* duplicates (dedup_id) */
	int64_t		wait_ms;		/* overflow = block: the longest
						   a commit waits for room, in
						   all; -1 (the default) forever */
	int		sidecar_linked;		/* fan-out linked attr/ID already */
	int		input_failed;		/* last *_add_fd: read(2) failed */
	int		defer_dedup;		/* sq_batch_defer_dedup */
	struct sq_dedup_slot *dd;		/* its pending sends, or NULL */
	size_t		ndd, ddnext;		/* how many; the next to publish */
	int		ddfd;			/* dedup/, open while dd is */
	unsigned int	ddshare;		/* its group sharing (mode bits) */
	int		aside;			/* sq_batch_set_aside */
	sq_sent_fn	*aside_fn;		/* called per message set aside */
	void		*aside_arg;
	size_t		set_aside;		/* how many went to dead/ so */
	const char	*aside_reason;		/* r= of the last one so */
	int		tmp_synced;		/* the body being finished was
						   fsynced through its own fd */
};

/*
 * sq_batch_options - apply o (kept by reference; NULL for none) to the
 * messages added from now on.  Checks the key and attributes (EINVAL:
 * bad name, a newline in a value, over the limits above) and the dedup
 * ID ([A-Za-z0-9._:@+=-]{1,128}).  Returns 0 or -1 with errno.
 */
int	sq_batch_options(struct sq_batch *b, const struct sq_msgopts *o);

/*
 * sq_dedup_id_valid - 1 when s can be a deduplication ID: 1 to 128 bytes
 * of [A-Za-z0-9._:@+=-], not starting with '.' (it names a file).
 */
int	sq_dedup_id_valid(const char *s);

/* sq_batch_begin - start a batch on q; sent(id, arg) may be NULL. */
void	sq_batch_begin(struct sq_batch *b, struct sq_queue *q, sq_sent_fn *sent,
	    void *arg);

/*
 * sq_batch_add - write body (len bytes) as one message.  Commits the batch
 * when it reaches SQ_BATCH_MESSAGES or SQ_BATCH_BYTES.  On failure the
 * uncommitted messages are removed from tmp/ and -1 returned with errno
 * (ENOSPC, EDQUOT, EIO...; SQ_ENOTREG when the name of the send's dedup
 * marker is taken by an entry that is not a regular file: never opened,
 * never waited for, see sq_batch_set_aside); b->committed tells how many
 * became visible.
 */
int	sq_batch_add(struct sq_batch *b, const void *body, size_t len);

/*
 * sq_batch_add_fd - like sq_batch_add with the body read from fd until
 * end of file.  A read error (errno from read(2)) also aborts the batch
 * and sets b->input_failed, which tells it from a failure to write the
 * queue (ENOSPC: the queue's disk is full, not the input's).
 */
int	sq_batch_add_fd(struct sq_batch *b, int fd);

/*
 * sq_batch_defer_dedup - let b keep sends with a dedup ID (and no group)
 * pending as other sends are, up to SQ_DEDUP_BATCH of them, instead of
 * committing each on its own, so that a batch of them costs one flush
 * of bodies and markers and one of new/ under durability = fsync, and
 * no directory open per message.  Each such send's options are read by
 * its sq_batch_add: the caller may change them before the next one.  A
 * send without a dedup ID, or with a group, is still committed at once
 * (with those before it).  The dedup rule holds as for a send on its
 * own (dedup.c): a crash before the commit leaves "pending" markers
 * whose bodies the next send of the ID publishes, one after it leaves
 * "pending" markers whose bodies are gone (as the commit itself does:
 * it never writes "sent" into them), and either way the next send of
 * the ID is dropped.  A marker stays locked until its batch is
 * committed or aborted: another sender of the ID waits for it (for the
 * lease, at most 5 s, then EBUSY).  On a local file system the markers
 * of a batch are hard links of one file, a line per ID (spoolq(5)), so
 * that a send costs a name, not a file.  Call before the first add.
 */
void	sq_batch_defer_dedup(struct sq_batch *b);

/*
 * sq_batch_set_aside - a send of b whose dedup marker's name (dedup/ID)
 * is taken by an entry that is not a regular file (a symlink, FIFO,
 * socket, device or directory, planted there or left by hand) goes into
 * dead/ as ID,r=badmarker (SQ_REASON_BADMARKER, with its e, g and h)
 * instead of failing: the entry may be neither opened nor replaced
 * (SPEC 2, "Hostile and broken surroundings"), and without it the
 * duplicates of the ID cannot be told.  The body is made durable before
 * its rename into dead/, and dead/ after it; the other sends of the
 * batch go on, and sq_batch_add gives 0.  The set-aside is deduplicated
 * under the marker dedup/ID,badmarker (SQ_DEDUP_ASIDE): a send of the
 * ID again within dedup_window (a broker's redelivery) is dropped as a
 * duplicate, not set aside twice; only that name taken too, it is set
 * aside each time.  fn(id, arg), when not NULL, is
 * called with the ID of each message so set aside, which b->set_aside
 * counts (b->aside_reason tells it the reason).  A send whose body
 * alone is larger than the queue's max_bytes, which would never fit
 * (EFBIG), is set aside the same way, as ID,r=toolarge
 * (SQ_REASON_TOOLARGE), without looking at its dedup ID.  For a caller
 * that cannot report a failed send to anybody (qbridge in: the broker
 * would give the message again and again); without it such a send fails
 * with errno SQ_ENOTREG, or EFBIG at its commit (sq_batch_add).
 */
void	sq_batch_set_aside(struct sq_batch *b, sq_sent_fn *fn, void *arg);

/* sq_batch_commit - make every pending message visible.  0 or -1. */
int	sq_batch_commit(struct sq_batch *b);

/* sq_batch_abort - remove every pending message from tmp/; free memory. */
void	sq_batch_abort(struct sq_batch *b);

/* sq_batch_end - commit what is pending and free the batch.  0 or -1. */
int	sq_batch_end(struct sq_batch *b);

/*
 * sq_bound_admit - ask room for n more messages of bytes in total in q
 * (max_messages, max_bytes over ready + retry + in-flight; min_free_disk).
 * With overflow = drop-oldest the oldest ready messages are dead-lettered
 * (r=overflow) to make room; with block it waits up to wait_ms
 * (negative: forever) for consumers to make room; only a single message
 * waits (n = 1): a batch that does not fit whole gets EAGAIN at once and
 * is then admitted message by message.  Costs nothing when no bound is
 * set, and lists the queue at most once a second, or when full.  The
 * usage lock is waited for at most 5 seconds (less when the lease or
 * wait_ms is shorter); a holder that keeps it longer is taken for
 * stalled, and the send is decided by a fresh count without the lock,
 * which misses at most the stalled sender's unpublished batch (SPEC 2:
 * a stopped process stops the others no longer than its lease).
 * Returns
 * 0 when admitted, with the usage lock in *lockfd (-1 when unbounded,
 * or when admitted without the lock) to
 * be given to sq_bound_release once the messages are published; or -1
 * with errno EAGAIN (full: reject, or the wait ran out), EFBIG (one
 * message larger than max_bytes: it never fits, so it neither waits nor
 * drops anything), ENOSPC (below min_free_disk) or an I/O errno.
 * sq_batch_commit calls it for every batch.
 */
int	sq_bound_admit(struct sq_queue *q, size_t n, size_t bytes,
	    int64_t wait_ms, int *lockfd);

/*
 * sq_bound_release - after publishing what sq_bound_admit admitted, let
 * the next sender in (lockfd from sq_bound_admit; -1 is ignored).
 */
void	sq_bound_release(int lockfd);

/*
 * sq_fanout_add - add one message to each of the n batches b[0..n-1] (one
 * per target queue, begun on different queues): the body (len bytes) is
 * written once and hard-linked into every queue under one ID (copied
 * across file systems), then each batch commits it by its own rules.
 * *delivered counts the queues that took it.  On error returns -1 with
 * errno; the batch that failed is aborted, the others keep theirs.  A
 * dedup ID whose marker name is taken by a non-file in one of the queues
 * (whose batch does not set such sends aside, sq_batch_set_aside) fails
 * before anything is written, in any queue: SQ_ENOTREG, *delivered 0.
 */
int	sq_fanout_add(struct sq_batch *b, size_t n, const void *body,
	    size_t len, size_t *delivered);

/*
 * sq_fanout_add_fd - like sq_fanout_add with the body read from fd; a
 * read error sets b[0].input_failed, as sq_batch_add_fd does.
 */
int	sq_fanout_add_fd(struct sq_batch *b, size_t n, int fd,
	    size_t *delivered);

/* ---------------------------------------------------------------- attributes */

/* sq_attr_name_valid - 1 when s matches [A-Za-z0-9_-]{1,64}, else 0. */
int	sq_attr_name_valid(const char *s);

/*
 * sq_attr_check - check the key and attributes of o against the limits
 * above.  Returns 0 or -1 with errno EINVAL.
 */
int	sq_attr_check(const struct sq_msgopts *o);

/*
 * Called for each record of a sidecar: name NULL for the routing key.
 * Return 0 to go on, anything else to stop with that result.
 */
typedef int	sq_attr_fn(const char *name, const char *value, void *arg);

/*
 * sq_attr_each - read the sidecar attr/ID of q (present when the name
 * has h) and call fn for the routing key and each attribute, in the
 * order sent.  Returns 0, fn's non-zero result, or -1 with errno
 * (ENOENT: no sidecar).
 */
int	sq_attr_each(struct sq_queue *q, const char *id, sq_attr_fn *fn,
	    void *arg);

/* ---------------------------------------------------------------- claim */

/* One claimed message: its name in cur/ (the receipt's last component). */
struct sq_claim {
	char		name[SQ_NAME_MAX + 1];
	struct sq_name	n;
	int		fd;	/* the body, open (sq_claim_open); else -1 */
	off_t		size;	/* its size in bytes, with fd; else -1 */
};

/*
 * sq_claim - claim up to max ready messages of q in ID order, renaming
 * each from new/ to cur/ID,a=k+1,l=now+lease_ms[,w=token] (token may be
 * NULL).  lease_ms <= 0 means the queue's lease.  Before claiming, the
 * queue is maintained (sq_queue_maintain) when a retry falls due or a
 * lease runs out.  A message whose attempts already reached max_attempts
 * is dead-lettered (r=attempts), one older than ttl r=expired, instead of
 * claimed.  A claim lost to another consumer (ENOENT) is skipped.
 *
 * Ready names come from this host's claim index, run/index.HOST (HOST as
 * in message IDs): a sorted snapshot of the oldest names of new/, listed
 * again only when used up, and a side list of the names promotion and
 * recovery moved back since, merged in ID order; so a claim costs the
 * same at any backlog and with any trickle of retries (SPEC 6).
 * Arrivals after a snapshot join at the next one.  Other hosts keep
 * their own index; the claim rename decides every race (spoolq(5), The
 * claim index).
 *
 * A held queue (QUEUE/held exists) hands out nothing.
 * When fewer than max were ready, the worker locks are probed
 * (sq_workers_check; the lock of token itself, which its worker holds
 * while it claims, is not) and the claims of dead or hung workers
 * recovered and offered at once.
 *
 * Sets *got (0 = nothing ready) and *next_ms, the earliest time a retry
 * falls due or a lease ends (INT64_MAX if none), for waiters.  Returns 0,
 * or -1 with errno.
 */
int	sq_claim(struct sq_queue *q, int64_t lease_ms, const char *token,
	    struct sq_claim *out, size_t max, size_t *got, int64_t *next_ms);

/*
 * sq_claim_open - sq_claim for a consumer that reads each body at once:
 * each claim's body is opened right after its rename, read-only with
 * O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC, and the status of the open file
 * (fstat(2)) is what proves it a regular file, in place of the fstatat(2)
 * that sq_claim makes of the claimed name: one system call fewer per
 * message.  What is not a regular file is closed unread and put back,
 * as by sq_claim.  out[i].fd is the open body and out[i].size its size in
 * bytes, for the caller to read and close; where the open failed for
 * another reason (EACCES, EMFILE) out[i].fd is -1, the claim is made and
 * the caller opens the body itself (sq_open_regular), meeting that error
 * there.  On -1 no descriptor is left open.  Arguments, results and
 * errors otherwise as sq_claim.
 */
int	sq_claim_open(struct sq_queue *q, int64_t lease_ms, const char *token,
	    struct sq_claim *out, size_t max, size_t *got, int64_t *next_ms);

/* What a maintenance pass moved. */
struct sq_maint {
	size_t		promoted;	/* retry/ -> new/ */
	size_t		recovered;	/* cur/ -> new/ */
	size_t		dead;		/* cur/ -> dead/ (attempts used up) */
	int64_t		next_ms;	/* earliest future due time or deadline,
					   or time a live worker holding
					   claims would read as hung */
};

/*
 * sq_queue_maintain - promote due retry/ messages to new/ID,a=k and
 * recover claims to new/ID,a=k, or to dead/ with r=attempts when their
 * attempts reached max_attempts (a message that crashes its consumer
 * every time still ends in dead/).  A claim is recovered when its lease
 * ended (now_ms past l), or, for a worker's claim (w=TOKEN), only when
 * that worker is dead or hung (sq_worker_probe), whatever its lease, and
 * the job it ran is too (sq_job_probe): the job's lock is free, gone, or
 * older than its lease (a job tree that outlived its worker, or a stopped
 * one, keeps the claim at most one lease past the worker's last beat).
 * Each move is one rename; a lost race (ENOENT) is skipped.  Fills *m;
 * its next_ms (epoch ms) also counts, for each live worker that holds
 * claims, the time its heartbeat turns older than its lease, so that a
 * consumer that maintains again then recovers a stopped worker's claims
 * at once, and for a claim kept by its job's lock, a look again a second
 * later, when the job may have ended.
 * Returns 0 or -1 with errno.
 */
int	sq_queue_maintain(struct sq_queue *q, int64_t now_ms, struct sq_maint *m);

/*
 * A watch on new/ for consumers that wait.  Open it before the first
 * claim attempt so that no arrival in between is missed.
 *
 * sq_watch_open - watch q's new/ and retry/ with inotify (IN_MOVED_TO,
 * IN_CREATE): an arrival in retry/ wakes the waiter so that its next
 * claim learns the new due time.
 * On network and FUSE file systems (statfs(2) type), and where inotify is
 * unavailable (inotify_init1 fails, the watch limit is reached), the
 * watch also polls, every poll_interval of q->conf, read at each wait so
 * that a reload applies (SPEC 2 "Waiting"); q must outlive the watch.
 * Returns the watch, or NULL with errno ENOMEM.
 *
 * sq_watch_wait - block until new/ changes, a poll interval passes, or
 * the epoch time until_ms (INT64_MAX = no limit).  Returns 1 when the
 * caller should look again, 0 when until_ms came, -1 with errno (EINTR
 * when a signal arrived).
 *
 * sq_watch_close - release the watch; NULL is ignored.
 */
struct sq_watch;
struct sq_watch	*sq_watch_open(struct sq_queue *q);
int	sq_watch_wait(struct sq_watch *w, int64_t until_ms);
void	sq_watch_close(struct sq_watch *w);

/*
 * For callers with their own poll(2) loop: sq_watch_fd gives the
 * descriptor to poll for reading (-1 when there is none), sq_watch_poll_ms
 * how often to look again anyway (-1 = never: inotify sees everything),
 * and sq_watch_drain consumes the pending events after a wake-up.
 */
int	sq_watch_fd(struct sq_watch *w);
int	sq_watch_poll_ms(struct sq_watch *w);
void	sq_watch_drain(struct sq_watch *w);

/*
 * sq_watch_due_ms - the earliest due time (epoch ms) named by a message
 * that arrived in retry/ (a delayed send, a retry) since the last
 * sq_watch_due_clear, or INT64_MAX: a waiter claims again then, since no
 * event marks a due time passing.  sq_watch_wait does so by itself;
 * callers with their own loop clear it once they have looked.
 */
int64_t	sq_watch_due_ms(const struct sq_watch *w);
void	sq_watch_due_clear(struct sq_watch *w);

/* ---------------------------------------------------------------- workers */

/* What a probe of a worker's lock file tells (SPEC 2, worker locking). */
enum sq_worker_state {
	SQ_WORKER_ALIVE,	/* lock held, heartbeat within the lease */
	SQ_WORKER_DEAD,		/* lock free or file gone */
	SQ_WORKER_HUNG		/* lock held, heartbeat older than the lease */
};

/*
 * sq_worker_token - a fresh worker token of 12 characters [0-9A-Za-z]
 * from arc4random(3) into buf (size > 12).  Returns 0 or -1 (ENAMETOOLONG).
 */
int	sq_worker_token(char *buf, size_t size);

/*
 * sq_worker_register - create run/worker.TOKEN in q, holding flock(LOCK_EX)
 * on it and holding the record of sq_worker_record (heartbeat_ms,
 * lease_ms) before it appears under that name.  On a full disk it takes
 * over a dead worker's lock file when no file can be made, and the record
 * may be empty (sq_worker_record; sq_worker_recorded tells).  Returns the
 * lock descriptor (close-on-exec; keep it open for the worker's life) or
 * -1 with errno (ENOSPC: no room, and no dead worker's file).
 */
int	sq_worker_register(struct sq_queue *q, const char *token,
	    int64_t heartbeat_ms, int64_t lease_ms);

/*
 * sq_worker_record - write into the lock file fd the worker's promise,
 * "heartbeat=MS lease=MS pid=N": it refreshes the file at least every
 * heartbeat_ms, and its claims may be taken from it once the file is
 * older than lease_ms (at least 3 heartbeats).  Other consumers judge it
 * by this record alone, never by their own reading of queue.conf (SPEC 2:
 * a live worker's claims are never recovered, whatever queue.conf says
 * now), so a worker that changes its lease (SIGHUP) calls this before
 * acting on it.  Also a heartbeat.  Returns 0, or 1 when there was no
 * room to write it (ENOSPC, EDQUOT: a full disk): the file is then left
 * empty, and others judge the worker by the queue's lease as they read
 * it (spoolq(5)); or -1 with errno.
 */
int	sq_worker_record(int fd, int64_t heartbeat_ms, int64_t lease_ms);

/*
 * sq_worker_recorded - whether the lock file fd holds a record: 0 when it
 * is empty (no room was left to write one), 1 when it holds one, -1 with
 * errno of fstat(2).
 */
int	sq_worker_recorded(int fd);

/*
 * sq_worker_heartbeat - set the lock file's mtime to now; call at least
 * every heartbeat_ms of its record.  Returns 0 or -1 with errno.
 */
int	sq_worker_heartbeat(int fd);

/*
 * sq_worker_bind - tie the worker lock fd (of sq_worker_register, on q),
 * with heartbeat interval heartbeat_ms, to q: from now on every claim on
 * q with a token keeps that heartbeat fresh (sq_worker_fresh), and the
 * beat of sq_worker_beat is timed from the monotonic clock.  Counts as a
 * beat just made (call it right after sq_worker_register or
 * sq_worker_record).  heartbeat_ms 0 unbinds.
 */
void	sq_worker_bind(struct sq_queue *q, int fd, int64_t heartbeat_ms);

/*
 * sq_worker_beat - the heartbeat of the worker bound to q: set its lock
 * file's mtime to now and note when, by sq_mono_ms.  Returns 0 (also
 * when none is bound) or -1 with errno of futimens(2).
 */
int	sq_worker_beat(struct sq_queue *q);

/*
 * sq_worker_fresh - beat (sq_worker_beat) if a heartbeat interval or
 * more of sq_mono_ms has passed since the last beat of the worker bound
 * to q.  sq_claim calls it before each claim rename with a token, so that
 * a worker resumed after a pause it can notice (SIGSTOP, a suspended
 * host, a loop held up) beats before it claims and no fresh claim of it
 * reads as hung (SPEC 2, worker locking), and again after the rename, so
 * that a pause during the rename is seen and the claim checked.  Returns
 * 0 when no beat was due (or none is bound), 1 after a beat, -1 with errno.
 */
int	sq_worker_fresh(struct sq_queue *q);

/*
 * sq_worker_lost - whether the lock file of the worker bound to q is no
 * longer a lock others can see: its name is gone (st_nlink 0: removed by
 * hand, or by a consumer that found it unlocked), or its descriptor was
 * dropped by the file system (sq_error_stale).  beat_errno is the errno
 * of a failed sq_worker_beat, or 0 to look with fstat(2).  Returns 1 or 0
 * (also when none is bound).
 */
int	sq_worker_lost(const struct sq_queue *q, int beat_errno);

/*
 * sq_worker_relock - make the lock file of the worker bound to q again,
 * as sq_worker_register does, with its record (its heartbeat interval
 * and lease_ms), but renamed over a file of the same name, so that no
 * moment passes without one; the old descriptor is closed and the new one
 * bound.  For a worker whose lock was lost (sq_worker_lost): without it,
 * every consumer judges the worker dead or hung and recovers its claims.
 * Claims recovered before it are lost (their settles fail with ENOENT).
 * Returns the new lock descriptor, or -1 with errno (EINVAL: none bound;
 * the old one is kept).
 */
int	sq_worker_relock(struct sq_queue *q, const char *token,
	    int64_t lease_ms);

/*
 * sq_worker_since - milliseconds of sq_mono_ms since the last beat of
 * the worker bound to q (-1 when none is bound): a worker that finds
 * this over its lease was away long enough for others to recover its
 * claims.
 */
int64_t	sq_worker_since(const struct sq_queue *q);

/*
 * sq_worker_unregister - remove run/worker.TOKEN (while still locked) and
 * close fd.  Call only once every claim of the worker is settled.
 */
void	sq_worker_unregister(struct sq_queue *q, const char *token, int fd);

/*
 * sq_worker_probe - the state of the worker with this token in q, at
 * now_ms: dead when its lock is free or its file gone, hung when its
 * file is older than the lease of its record (or, for an empty file, the
 * lease of q's settings), else alive.  A record that does not parse (one
 * being rewritten) reads as alive.
 */
enum sq_worker_state sq_worker_probe(struct sq_queue *q, const char *token,
	    int64_t now_ms);

/*
 * sq_job_lock - create run/job.TOKEN.ID in q for the job that the worker
 * with this token runs for its claim of the message id, holding
 * flock(LOCK_EX) on it and the worker's record (sq_worker_record:
 * heartbeat_ms, lease_ms).  The worker hands the descriptor to the job,
 * open across execve, so that the lock stays held as long as the job or
 * anything it started lives, even after the worker died: a claim of a
 * dead worker is recovered only once its job lock is free too, or once
 * the lock file is older than that lease (sq_queue_maintain).  The
 * worker refreshes the file's mtime at its heartbeat (sq_worker_heartbeat)
 * and removes it (sq_job_unlock) once the job is reaped and its claims
 * settled.  A file of that name left over is replaced.  Only flock(2),
 * never fcntl locks (SPEC 2).  The descriptor is read-only, so that a
 * job cannot spoil the record by writing to it (the record is written
 * through a descriptor closed before return).  Returns the descriptor
 * (close-on-exec) or -1 with errno (ENOSPC, EDQUOT: no room;
 * ENAMETOOLONG).
 */
int	sq_job_lock(struct sq_queue *q, const char *token, const char *id,
	    int64_t heartbeat_ms, int64_t lease_ms);

/*
 * sq_job_lock_link - name the job lock of (token, id) also
 * run/job.TOKEN.ALSO, a hard link to the same file, for a job that holds
 * several claims (qworker --batch): each claim finds the lock by its own
 * name.  Returns 0 or -1 with errno of linkat(2).
 */
int	sq_job_lock_link(struct sq_queue *q, const char *token, const char *id,
	    const char *also);

/*
 * sq_job_unlock - remove run/job.TOKEN.ID, a name of a job lock of q,
 * while the caller still holds the lock; the caller closes its
 * descriptor after removing every name.  Best effort: a file left behind
 * is free once its holders are gone, and recovery and qadmin gc remove it.
 */
void	sq_job_unlock(struct sq_queue *q, const char *token, const char *id);

/*
 * sq_job_probe - the state of the job lock of (token, id) in q at now_ms,
 * judged as a worker lock (sq_worker_probe): dead when free or gone, hung
 * when held but older than the lease of its record, else alive.  Its
 * record is written in full before the job starts: one that does not
 * parse, or with figures past any duration (100 years), was spoilt
 * since and is judged, as an empty one, by the lease of q's settings.
 */
enum sq_worker_state sq_job_probe(struct sq_queue *q, const char *token,
	    const char *id, int64_t now_ms);

/*
 * sq_workers_check - probe every worker lock file of q, removing those
 * of dead workers.  Returns 1 when a dead or hung worker was found (its
 * claims wait for sq_queue_maintain), 0 when all live, -1 with errno.
 */
int	sq_workers_check(struct sq_queue *q, int64_t now_ms);

/*
 * sq_slot_take - take one of nslots worker slots of q (flock(LOCK_EX |
 * LOCK_NB) on run/slot.0 .. run/slot.N-1).  Returns 0 with the lock
 * descriptor in *fd (keep it open), 1 when every slot is busy, -1 with
 * errno.
 */
int	sq_slot_take(struct sq_queue *q, unsigned nslots, int *fd);

/*
 * sq_failure_write - record why the last attempt of message id failed,
 * as attr/ID.failure (replaced on each failure; removed by sq_ack).
 * Returns 0 or -1 with errno.
 */
int	sq_failure_write(struct sq_queue *q, const char *id, const char *text,
	    size_t len);

/*
 * sq_release - give the claim cur/name back to new/ without counting the
 * attempt (a is decremented), for a worker stopping before the job ran
 * to its end.  A rename reported failed but made counts as made, as
 * sq_retry.  Returns 0 or -1 with errno as sq_ack.
 */
int	sq_release(struct sq_queue *q, const char *name);

/*
 * sq_unclaim - after every settle of the claim cur/name failed: give it
 * back to new/ as a ready message at once, its attempt counted (the job
 * ran; max_attempts still ends it in dead/), so that it neither waits
 * for its lease nor keeps the token of a worker that may exit.  When
 * that fails too, the next claim by any consumer looks for claims to
 * recover first (best effort), which returns it as soon as its worker is
 * gone.  Returns 0 when given back, -1 with errno when it stays in cur/.
 */
int	sq_unclaim(struct sq_queue *q, const char *name);

/*
 * sq_take - the commit point of an at-most-once delivery (qrecv -A): move
 * the claim cur/name out of every consumer's sight, so that it is never
 * handed out again whatever happens next: to tmp/name, or, in an
 * archiving queue, to archive/ID,a=k (its ack).  The name it was taken
 * under is written to taken (SQ_NAME_MAX + 1 bytes).  Follow with
 * sq_take_done once the body was delivered, or sq_take_undo when it could
 * not be.  A crash in between leaves tmp/name for qadmin gc, which keeps
 * it until its lease is over.  A move the file system reported failed
 * but made (an NFS reply lost: made again, it finds cur/name gone) is
 * taken: 0 when cur/name is gone and the taken name is a regular file.
 * Returns 0 or -1 with errno as sq_ack.
 */
int	sq_take(struct sq_queue *q, const char *name, char *taken);

/*
 * sq_take_done - acknowledge the message taken as taken, as sq_ack does:
 * unlink it with its sidecars (an archiving queue has archived it
 * already).  A message already gone (an unlink the file system made but
 * reported failed, or qadmin gc's after the lease) is acknowledged all
 * the same when its ID is under no other name, as sq_ack judges.
 * Returns 0 or -1 with errno (ENOENT: the ID lives on elsewhere).
 */
int	sq_take_done(struct sq_queue *q, const char *taken);

/*
 * sq_take_undo - give the message taken as taken back to new/ as a ready
 * message, the attempt not counted (as sq_release): its body could not be
 * delivered.  A move reported failed but made (as sq_take) is given
 * back.  Returns 0 or -1 with errno.
 */
int	sq_take_undo(struct sq_queue *q, const char *taken);

/*
 * sq_touch_undo - take back a touch whose new receipt could not be given
 * to anyone: rename cur/newname back to cur/name, the receipt its caller
 * still holds (both must be claims of one ID).  Returns 0 or -1 with
 * errno (ENOENT: settled or recovered meanwhile; EINVAL: not a pair).
 */
int	sq_touch_undo(struct sq_queue *q, const char *newname,
	    const char *name);

/* ---------------------------------------------------------------- settle */

/*
 * sq_receipt_open - check that path names a regular file in some queue's
 * cur/ directory and open that queue into *q (with its settings), copying
 * the file name into name (SQ_NAME_MAX + 1 bytes).  Refuses ("not a
 * receipt", errno EINVAL) paths with ".." components, a directory that is
 * not the cur/ of a queue, a name that does not parse; a symlink or other
 * non-regular file is refused with errno SQ_ENOTREG and "PATH: not a
 * regular file (TYPE)" in err.  A missing file gives ENOENT: its lease
 * was lost or it was already settled.  err gets a message for queue
 * errors.  Returns 0 or -1.
 */
int	sq_receipt_open(const char *path, struct sq_queue *q, char *name,
	    char *err, size_t errsize);

/*
 * sq_receipt_split - split path into the directory of the queue and the
 * file name, checking only the form (".../cur/NAME", no ".." component,
 * name parses).  dir gets "." for a bare name (the current directory is
 * then the cur/ directory).  Returns 0 or -1 with errno EINVAL.
 */
int	sq_receipt_split(const char *path, char *qdir, size_t qdirsize,
	    char *name, size_t namesize);

/*
 * sq_receipt_check - fstatat the name in q's cur/ without following
 * links.  Returns 0 for a regular file; -1 with ENOENT (gone) or EINVAL
 * (not a regular file).
 */
int	sq_receipt_check(struct sq_queue *q, const char *name);

/*
 * sq_ack - settle the claim cur/name by unlinking it (the commit point),
 * and remove its sidecars: attributes (attr/ID, when the name has h) and
 * failure record (attr/ID.failure).  With archive = yes the claim is
 * renamed to archive/ID,a=k instead and its attributes kept.  A commit
 * the file system reported failed but made (NFS: a lost reply; spoolq(5)
 * "States and transitions") counts as made: the claim gone and its ID
 * under no other name (one listing of each state directory, on this
 * path only and on a network or FUSE file system only: a local one never
 * reports failed an unlink it made, and the claim gone is a lost lease),
 * or, archived, archive/ID,a=k a regular file.
 * Returns 0, or -1 with ENOENT when the lease was lost (the ID lives on
 * under another name) or the message already settled, EINVAL for a name
 * that is not a claim, or the errno of the commit.
 */
int	sq_ack(struct sq_queue *q, const char *name);

/*
 * sq_ack_many - sq_ack of each of the n claims names[0..n), claimed
 * before the call: errs[i] gets 0 or the errno of its ack.  Where attr/
 * holds no entry at all (or is missing) on a local file system, no
 * unlink of a failure record is tried for them: a record is written by
 * the holder of a claim before the message leaves cur/ (sq_failure_write,
 * spoolq(5) "Failure records"), so one for any of them was there at its
 * claim and is there still.  One listing of attr/ stands for n unlinks
 * that fail.  Returns how many acks failed.
 */
size_t	sq_ack_many(struct sq_queue *q, char (*names)[SQ_NAME_MAX + 1],
	    size_t n, int *errs);

/*
 * sq_retry - move the claim cur/name to retry/ID,a=k,t=due, with due =
 * now + delay_ms, or now + sq_conf_backoff_ms when delay_ms < 0.  When
 * the attempts already reached max_attempts it is dead-lettered instead,
 * with r=dead_reason (NULL: "attempts").  The new name is written to
 * newname (SQ_NAME_MAX + 1 bytes) and *dead tells which happened.  A
 * rename reported failed but made counts as made when the claim is gone
 * and the name chosen is a regular file there (sq_settle_again's next
 * try looks for the name chosen first).  Errors as sq_ack.
 */
int	sq_retry(struct sq_queue *q, const char *name, int64_t delay_ms,
	    const char *dead_reason, char *newname, int *dead);

/*
 * sq_reject - dead-letter the claim cur/name as dead/ID,a=k,r=reason
 * (reason matches [a-z0-9-]{1,32}; NULL means "rejected").  Errors as
 * sq_ack, and EINVAL for a bad reason.
 */
int	sq_reject(struct sq_queue *q, const char *name, const char *reason,
	    char *newname);

/*
 * sq_touch - extend the lease of cur/name to now + lease_ms by renaming
 * it to its new name (written to newname); a rename reported failed but
 * made counts as made, as sq_retry.  Errors as sq_ack.
 */
int	sq_touch(struct sq_queue *q, const char *name, int64_t lease_ms,
	    char *newname);

/*
 * A settle that the file system failed rather than the claim (EIO; a
 * descriptor or file handle a network file system dropped, as GlusterFS's
 * EBADFD "remote_fd is -1" or NFS's ESTALE; EAGAIN, EINTR: sq_error_stale)
 * left the message where it was, and may pass if made again: it is made
 * again SQ_SETTLE_TRIES times in all, after waits that double from
 * SQ_SETTLE_FIRST_MS to SQ_SETTLE_MAX_MS (jittered down by up to a fifth;
 * about 1.5 s in all), on directories opened anew (sq_queue_reopen).
 */
#define SQ_SETTLE_TRIES		5	/* tries in all */
#define SQ_SETTLE_FIRST_MS	50	/* the first wait, milliseconds */
#define SQ_SETTLE_MAX_MS	800	/* the longest wait, milliseconds */

/* One settling step on q (sq_settle_again); 0, or -1 with errno. */
typedef int	sq_settle_fn(struct sq_queue *q, void *arg);

/*
 * Told before each wait of sq_settle_again: the tries made so far (1,
 * 2...), the errno of the last, and the wait that follows (milliseconds).
 */
typedef void	sq_settle_log_fn(int tries, int e, int64_t wait_ms, void *arg);

/*
 * sq_settle_again - run step(q, arg) until it succeeds, fails with an
 * error that is not one of the file system (ENOENT: the lease was lost;
 * EINVAL...), or has failed SQ_SETTLE_TRIES times, waiting between tries
 * as above; log (may be NULL) is called with arg once per wait, before
 * it, so that a tool says once per back-off what it waits for (SPEC 2:
 * a step that failed and left the state unchanged is never retried at
 * once).  step must leave the message in its state when it fails, as
 * every settle does (one rename or unlink), or leave it in doubt: a
 * commit reported failed that no look could tell made or not is kept in
 * q, and the next try of the same settle decides by the names chosen
 * first (sq_ack, sq_retry).  *tries gets the number of tries made.  Returns 0, or -1 with the errno of the last try: the
 * message is then still where it was before the first.
 */
int	sq_settle_again(struct sq_queue *q, sq_settle_fn *step, void *arg,
	    sq_settle_log_fn *log, int *tries);

/* sq_reason_valid - 1 when s matches [a-z0-9-]{1,32}, else 0. */
int	sq_reason_valid(const char *s);

/* ---------------------------------------------------------------- batch */

/*
 * Batch jobs (qworker --batch, qworker(1)): one run of a command for
 * several claims of one queue.  The job settles messages one by one
 * through its result stream, lines "ack ID", "retry ID" or "reject ID
 * [REASON]"; the rest follow its exit status.
 */
enum sq_verdict {
	SQ_VERDICT_ACK,		/* sq_ack */
	SQ_VERDICT_RETRY,	/* sq_retry: back-off, dead at max_attempts */
	SQ_VERDICT_REJECT,	/* sq_reject: dead letter at once */
	SQ_VERDICT_RELEASE	/* sq_release: back uncounted (never in a line) */
};

/* One line of a result stream. */
struct sq_result {
	enum sq_verdict	verdict;
	char		id[SQ_ID_MAX];
	char		reason[SQ_REASON_MAX];	/* reject; "" = "rejected" */
};

/*
 * sq_result_parse - parse one line (len bytes, without its newline; a
 * trailing CR is ignored) of a batch job's result stream into *r: a verb
 * (ack, retry, reject), then the message as its ID, its claimed file name
 * or that file's path (the ID is kept), then for reject an optional
 * reason ([a-z0-9-]{1,32}), words separated by blanks.  Returns 0, or -1
 * with errno EINVAL for anything else (an unknown verb, a missing or
 * unparsable ID, an extra word, a NUL byte).
 */
int	sq_result_parse(const char *line, size_t len, struct sq_result *r);

/* sq_verdict_name - "ack", "retry", "reject" or "release". */
const char *sq_verdict_name(enum sq_verdict v);

/* The claims of one batch job and which of them are settled. */
struct sq_jobbatch {
	struct sq_queue	*q;
	struct sq_claim	*c;		/* the claims, in the order given */
	size_t		 n;
	size_t		*byid;		/* indexes into c, sorted by ID */
	unsigned char	*settled;	/* per claim: settled (or lost) */
	size_t		 left;		/* claims not settled yet */
	int		 failures;	/* their acks may find failure
					   records: -1 not looked at yet
					   (sq_jobbatch_apply) */
};

/*
 * sq_jobbatch_init - a batch of copies of the n claims c (n >= 1) of q,
 * none settled; q must outlive it.  Returns 0, or -1 with errno EINVAL
 * (n is 0) or ENOMEM.
 */
int	sq_jobbatch_init(struct sq_jobbatch *b, struct sq_queue *q,
	    const struct sq_claim *c, size_t n);

/* sq_jobbatch_free - free what sq_jobbatch_init allocated. */
void	sq_jobbatch_free(struct sq_jobbatch *b);

/*
 * sq_jobbatch_find - the index in b->c of the claim of message id, into
 * *i (a binary search: log n).  Returns 0, or -1 with errno ENOENT when
 * the batch holds no such message.
 */
int	sq_jobbatch_find(const struct sq_jobbatch *b, const char *id,
	    size_t *i);

/*
 * sq_verdict_apply - settle the claim cur/name of q by verdict v: sq_ack,
 * sq_retry (reason: the dead-letter reason once max_attempts is reached,
 * NULL for "attempts"), sq_reject (reason NULL for "rejected") or
 * sq_release.  newname (SQ_NAME_MAX + 1 bytes) gets the name in retry/
 * or dead/ ("" otherwise), *dead whether it went to dead letters.
 * Returns 0, or -1 with errno as those (ENOENT: the claim was lost).
 */
int	sq_verdict_apply(struct sq_queue *q, const char *name,
	    enum sq_verdict v, const char *reason, char *newname, int *dead);

/*
 * sq_jobbatch_apply - sq_verdict_apply of the claim name of b on q (the
 * queue of b, or the same queue opened again), except that an ack tries
 * no unlink of a failure record where none of the claims of b can have
 * one: at the first ack of the batch, attr/ is looked at once, as
 * sq_ack_many looks at it, and where it holds no entry at all (or is
 * missing) on a local file system, none of the acks of the batch tries
 * the unlink.  A record is written by the holder of a claim before the
 * message leaves cur/ (spoolq(5) "Failure records"), so one for any of
 * them was there at its claim and is there still.  Returns as
 * sq_verdict_apply.
 */
int	sq_jobbatch_apply(struct sq_jobbatch *b, struct sq_queue *q,
	    const char *name, enum sq_verdict v, const char *reason,
	    char *newname, int *dead);

/*
 * sq_jobbatch_take - mark claim i of b settled, before settling it by
 * other means than sq_jobbatch_settle.  Returns 0, or -1 with errno
 * EALREADY (settled before) or EINVAL (no claim i).
 */
int	sq_jobbatch_take(struct sq_jobbatch *b, size_t i);

/*
 * sq_jobbatch_settle - settle claim i of b by verdict v, once: ack,
 * retry (reason is the dead-letter reason once max_attempts is reached,
 * NULL for "attempts"), reject (reason NULL for "rejected"), release.
 * The claim counts as settled from then on even when the call fails (a
 * lost claim is no one's to settle): sq_jobbatch_take, then
 * sq_jobbatch_apply.  Returns 0, or -1 with errno EALREADY (settled
 * before: nothing done), EINVAL (no claim i), or as sq_verdict_apply.
 */
int	sq_jobbatch_settle(struct sq_jobbatch *b, size_t i, enum sq_verdict v,
	    const char *reason, char *newname, int *dead);

/* ---------------------------------------------------------------- states */

/* The states a message can be in, each a directory (spoolq(5) STATES). */
enum sq_state {
	SQ_STATE_READY,		/* new/ */
	SQ_STATE_INFLIGHT,	/* cur/ */
	SQ_STATE_RETRY,		/* retry/ */
	SQ_STATE_DEAD,		/* dead/ */
	SQ_STATE_HELD,		/* hold/, made on demand */
	SQ_NSTATES,		/* the states above, one directory each */
	/*
	 * groups/KEY/, KEY its g=: ready, but waiting behind its group's
	 * head (spoolq(5) "Message groups").  Not one directory, so left
	 * out of the loops over the SQ_NSTATES states; sq_msg_each,
	 * sq_msg_find, sq_admin_move and sq_admin_delete take it.
	 */
	SQ_STATE_GROUPED = SQ_NSTATES
};

/*
 * sq_state_name - "ready", "inflight", "retry", "dead", "held" or
 * "grouped".
 */
const char	*sq_state_name(enum sq_state st);

/*
 * sq_state_dir - the state's directory: "new", "cur", "retry", ...;
 * "groups" for SQ_STATE_GROUPED, whose messages are in groups/KEY/.
 */
const char	*sq_state_dir(enum sq_state st);

/*
 * sq_state_parse - a state from its name or its directory name, "grouped"
 * and "groups" included.  Returns 0, or -1 with errno EINVAL.
 */
int	sq_state_parse(const char *s, enum sq_state *st);

/*
 * sq_state_open - open the state's directory of q (not following links),
 * creating it first when create is set (hold/ is made on demand), but
 * never in a queue being destroyed (queue_subdir_open).  Returns a
 * descriptor or -1 with errno (ENOENT when missing or when the queue is
 * being destroyed, EINVAL for SQ_STATE_GROUPED, whose messages are each
 * in their group's).
 */
int	sq_state_open(struct sq_queue *q, enum sq_state st, int create);

/* One entry of a state directory, as sq_msg_each sees it. */
struct sq_msg {
	enum sq_state	 state;
	int		 dirfd;		/* the state directory, while walking */
	const char	*name;		/* file name */
	int		 parsed;	/* name parsed into n */
	struct sq_name	 n;
	struct stat	 st;		/* lstat: symlinks are not followed */
};

/*
 * Called for each entry: return 0 to go on, 1 to stop (not an error),
 * -1 to stop with an error (errno set).
 */
typedef int	sq_msg_fn(const struct sq_msg *m, void *arg);

/*
 * sq_msg_each - stream the non-dot entries of state st of q to fn,
 * unordered, in constant memory.  Entries that vanish meanwhile are
 * skipped; a missing hold/ is an empty state.  SQ_STATE_GROUPED walks
 * every group's directory (sq_group_each), m->dirfd then being the
 * group's.  Returns 0 or -1 with errno (from fn or the directory).
 */
int	sq_msg_each(struct sq_queue *q, enum sq_state st, sq_msg_fn *fn,
	    void *arg);

/*
 * sq_msg_find - find the regular file whose ID is id, in any state (ready
 * first, grouped last).  Fills *out, with its name copied into name
 * (SQ_NAME_MAX + 1 bytes).  Returns 0, or -1 with errno ENOENT (no such
 * message) or SQ_ENOTREG (only an entry that is not a regular file, such
 * as a FIFO or symlink planted there, has the ID; *out and name then
 * describe it, out->st its lstat).  Cost: one listing of each state directory, and of
 * each group's directory when the ID is in none of them.
 */
int	sq_msg_find(struct sq_queue *q, const char *id, struct sq_msg *out,
	    char *name);

/*
 * sq_state_attr - open q's attr/ directory, creating it when create is
 * set.  Returns a descriptor or -1 with errno.
 */
int	sq_state_attr(struct sq_queue *q, int create);

/*
 * sq_queue_hold - hold (on = 1) or release (on = 0) the whole queue: the
 * flag file QUEUE/held makes every claim return nothing, while sends are
 * still accepted (a Postfix-style hold).  Returns 0 or -1 with errno.
 */
int	sq_queue_hold(struct sq_queue *q, int on);

/* sq_queue_held - 1 when the queue is held, else 0. */
int	sq_queue_held(struct sq_queue *q);

/* ---------------------------------------------------------------- admin */

/*
 * sq_admin_move - move the message name from state from of q into state
 * target (ready or held) of queue to (which may be q): one rename, or,
 * between file systems, copy + fsync + publish + unlink.  The new name
 * keeps the ID, e=, g= and h, and the attempts unless reset is set
 * (redrive resets them); the sidecars in attr/ follow.  from may be
 * SQ_STATE_GROUPED (the message waits in groups/KEY/, KEY its g=).  A
 * move into another queue or into hold/ takes the message out of its
 * group's states: the baton, if its ID holds it, is handed on
 * (sq_group_release); a grouped message that comes into new/ joins its
 * group at its first claim (sq_group_admit).  newname (SQ_NAME_MAX + 1
 * bytes, may be NULL) gets the new name.  Refuses (EINVAL) in-flight
 * messages, whose consumer owns them, and other targets.  Returns 0 or -1
 * with errno (ENOENT: the message moved on meanwhile).
 */
int	sq_admin_move(struct sq_queue *q, enum sq_state from, const char *name,
	    struct sq_queue *to, enum sq_state target, int reset,
	    char *newname);

/*
 * sq_dead_letter_failed - why a dead letter of q stayed in q's own dead/
 * although queue.conf names a dead_letter queue: the errno of the step
 * that failed (ENOENT or ENOTDIR: no such queue; EXDEV: on another file
 * system; SQ_EBROKEN: a state directory missing; EACCES...), so that a
 * tool warns once per cause and not once per message.  Returns that
 * errno when it differs from the one this call returned last, else 0.
 */
int	sq_dead_letter_failed(struct sq_queue *q);

/*
 * sq_admin_delete - unlink the message name in state st of q (which may
 * be SQ_STATE_GROUPED), and its sidecars; a grouped message's baton, if
 * its ID holds it, is then handed on to the next of its group, or freed
 * (sq_group_release).  Returns 0 or -1 with errno (ENOENT when gone).
 */
int	sq_admin_delete(struct sq_queue *q, enum sq_state st, const char *name);

/*
 * sq_queue_refresh - make the next claim list new/ again and run
 * maintenance, so that messages an operator moved into new/ are offered
 * at once rather than after the current claim snapshot.  Returns 0 or -1
 * with errno (EBUSY: the claim index stayed locked for 2 seconds,
 * its holder is stopped).  Only this host's index is refreshed: other
 * hosts offer the messages when their snapshot is used up.
 */
int	sq_queue_refresh(struct sq_queue *q);

/* ---------------------------------------------------------------- archive */

/* Called per replayed message: new_id "" once sent, NULL on a dry run. */
typedef void	sq_replay_fn(const char *id, const char *new_id, void *arg);

/*
 * sq_archive_replay - send every message of q's archive/ sent at or
 * after since_ms (epoch ms, from the ID; 0 = all) again into queue to
 * (which may be q): a new message with a new ID, the original's routing
 * key, attributes and group (g=: sent into its group, as qsend -g does),
 * and the attribute original-id.  Archived files stay.  *n counts what was (or, on a dry run, would be) sent.  Returns
 * 0 or -1 with errno.
 */
int	sq_archive_replay(struct sq_queue *q, struct sq_queue *to,
	    int64_t since_ms, int dry_run, sq_replay_fn *fn, void *arg,
	    size_t *n);

/* Called per archived file trimmed: its name and why. */
typedef void	sq_trim_fn(const char *name, const char *why, void *arg);

/*
 * sq_archive_trim - enforce retention (age since archiving, the file's
 * ctime) and retention_bytes (oldest first) on q's archive/, as of
 * now_ms.  Returns 0 or -1 with errno.  Memory grows with the archive's
 * length (it is sorted by age).
 */
int	sq_archive_trim(struct sq_queue *q, int64_t now_ms, int dry_run,
	    sq_trim_fn *fn, void *arg);

/* ---------------------------------------------------------------- files */

/*
 * sq_rename - rename without ever replacing an existing file: renameat2
 * with RENAME_NOREPLACE, falling back to renameat(2) where the file
 * system answers EINVAL (FUSE, network file systems; names are unique by
 * construction there).  Returns 0 or -1 with errno (EEXIST on a clash).
 */
int	sq_rename(int fromfd, const char *from, int tofd, const char *to);

/*
 * sq_write_all - write len bytes to fd, retrying short writes and EINTR.
 * Returns 0 or -1 with errno.
 */
int	sq_write_all(int fd, const void *buf, size_t len);

/*
 * sq_open_regular - open the entry path (relative to the directory dfd)
 * with flags (O_RDONLY, O_RDWR or O_WRONLY, optionally O_CREAT with mode,
 * O_EXCL, O_TRUNC, O_APPEND) only if it is a regular file.  O_NOFOLLOW,
 * O_NONBLOCK and O_CLOEXEC are added, and each directory of a relative
 * path ("run/usage") is opened without following a symlink too, so a
 * symlink is never followed, at any component, and
 * a FIFO or device can never block the open; the descriptor is then
 * fstat'ed (into *st when st is not NULL) and O_NONBLOCK taken off again,
 * unless flags hold O_NONBLOCK: then it stays, and one fcntl(2) is saved
 * (for a caller that reads the file itself: on a regular file it changes
 * nothing; not for a descriptor handed to a child).  Every body,
 * sidecar, marker and settings file is opened this way (SPEC 2, "Hostile
 * and broken surroundings"; Postfix's safe_open).
 * Returns a descriptor, or -1 with errno: SQ_ENOTREG when the entry is a
 * symlink, FIFO, socket, device or directory (nothing is left open), else
 * that of openat(2) or fstat(2).
 */
int	sq_open_regular(int dfd, const char *path, int flags, mode_t mode,
	    struct stat *st);

/*
 * sq_entry_regular - whether the directory entry name of dfd is a regular
 * file, judged from its readdir(3) type d_type (DT_UNKNOWN: asked of the
 * file system with fstatat AT_SYMLINK_NOFOLLOW; a symlink is never
 * followed).  Returns 1 or 0; an entry that vanished is 0.
 */
int	sq_entry_regular(int dfd, const char *name, unsigned char d_type);

/*
 * sq_mode_name - the kind of file mode names, as messages say it:
 * "regular file", "directory", "symlink", "FIFO", "socket" or "device".
 * Returns a static string.
 */
const char *sq_mode_name(mode_t mode);

/* Modules with headers of their own, part of the same public API. */
#include "exchange.h"
#include "group.h"
#include "inspect.h"
#include "output.h"
#include "repair.h"

#endif /* SPOOLQ_H */
