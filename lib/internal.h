/*
 * internal.h - helpers shared between library modules; not installed.
 */
#ifndef SPOOLQ_INTERNAL_H
#define SPOOLQ_INTERNAL_H

#include <dirent.h>

#include "spoolq.h"

/* Milliseconds to whole epoch seconds, rounded up: deadlines never early. */
#define SQ_MS_TO_S_CEIL(ms)	(((ms) + 999) / 1000)

/* index.c: the claim index of this host, run/index.HOST (spoolq(5)). */

#define INDEX_MAX	65536	/* names in one snapshot: the oldest */
#define FNV1A_BASIS	14695981039346656037ULL

/* fnv1a - the 64-bit FNV-1a hash of len bytes at p, continuing from h. */
uint64_t	fnv1a(uint64_t h, const void *p, size_t len);

/* The header of an index, as read under its lock. */
struct index {
	int		fd;
	uint64_t	gen;		/* drawn at random per snapshot */
	int64_t		cursor, end;	/* byte offsets of the snapshot */
	unsigned int	side_cur, side_used;	/* bytes of the side list */
	uint64_t	side_sum;	/* its checksum */
	int64_t		maint_ms;	/* run maintenance at this time */
	int64_t		maint_at_ms;	/* when the last one began */
	int64_t		retry_ns;	/* retry/'s mtime then */
	pid_t		list_pid;	/* a consumer listing new/, or 0 */
	int64_t		list_ms;	/* since then (epoch ms) */
};

/* Names of a directory, sorted (names_list). */
struct names {
	char	**v;
	size_t	  n, alloc;
};

/*
 * backoff_sleep_mono - sq_backoff_sleep with until a time of sq_mono_ms
 * (INT64_MAX: none), for waits that a step of the wall clock must
 * neither stretch nor cut.  Returns 0, or -1 with errno (ETIMEDOUT: until
 * has come; EINTR).
 */
int	backoff_sleep_mono(struct sq_backoff *b, int64_t until);

/*
 * index_path - "run/index.HOST" for this host (HOST as in message IDs)
 * into buf of size bytes.  Returns 0, or -1 with errno ENAMETOOLONG.
 */
int	index_path(char *buf, size_t size);

/*
 * index_lock - open q's index of this host (created on demand, shared as
 * the queue is), lock it within 2 seconds and read its header into ix;
 * a damaged header reads as an empty index.  Returns 0, or -1 with errno
 * (EBUSY: another holder kept the lock 2 seconds; ENOENT: no run/;
 * SQ_ENOTREG: not a regular file; ENOSPC, EROFS, EACCES...).  The names
 * q keeps for the side list (index_offer) are written first.
 */
int	index_lock(struct sq_queue *q, struct index *ix);

/* index_unlock - release the lock index_lock took. */
void	index_unlock(struct index *ix);

/* index_save - write ix's header, the commit point.  0 or -1 with errno. */
int	index_save(struct index *ix);

/* index_reset - make ix read as used up (snapshot and side list). */
void	index_reset(struct index *ix);

/*
 * index_take - copy up to max names to try next into pick, in ID order,
 * merging the side list with the snapshot, and advance the cursors (save
 * the header after).  A damaged part resets the index.  Returns how many
 * names were copied: 0 when the index is used up.
 */
size_t	index_take(struct index *ix, char (*pick)[SQ_NAME_MAX + 1],
	    size_t max);

/*
 * index_side_add - merge the NUL-terminated names (len bytes in all)
 * into the side list of ix, written at once; the header is saved by the
 * caller.  Returns 0, 1 when they do not fit (the index is reset, so the
 * next claim lists new/), or -1 with errno.
 */
int	index_side_add(struct index *ix, const char *names, size_t len);

/*
 * index_install - write the sorted listing l as ix's new snapshot (a new
 * generation; the side list is kept) and save the header.  Returns 0, or
 * -1 with errno, the index then reset.
 */
int	index_install(struct index *ix, const struct names *l);

/*
 * index_offer - put name, just moved back into new/ (a released claim, a
 * take undone), on the side list of this host's index, so that it is
 * claimed in ID order ahead of the snapshot rather than after it, with
 * the names q kept (index_offer_later).  Waits 100 ms at most for the
 * lock.  Returns 0 or -1 with errno (as index_lock).
 */
int	index_offer(struct sq_queue *q, const char *name);

/*
 * index_offer_later - the same for many names, such as the next heads of
 * the groups a settle frees: name is kept in q (SQ_OFFER_BYTES) and
 * written with those kept before it by index_offer_flush: when they no
 * longer fit, when the first was kept OFFER_FLUSH_MS (100 ms) ago,
 * whenever index_lock is taken for q (a claim, under the lock it takes
 * anyway) and when q is closed; so a settle of a thousand heads writes
 * the side list a few times, not once each.  What a crash or an exit
 * without sq_queue_close loses is only a hint: the name is in new/, and
 * the next listing of new/ finds it.  Returns 0 or -1 with errno.
 */
int	index_offer_later(struct sq_queue *q, const char *name);

/*
 * index_offer_flush - write the names q keeps (index_offer) onto the side
 * list, waiting 100 ms at most for the lock; they are forgotten either
 * way (the listing of new/ finds them).  Returns 0 or -1 with errno.
 */
int	index_offer_flush(struct sq_queue *q);

/*
 * index_lower_maint - make the next claim on this host run
 * sq_queue_maintain no later than at_ms (a new retry due time).  Takes
 * the index lock briefly.  Returns 0 or -1 with errno.
 */
int	index_lower_maint(struct sq_queue *q, int64_t at_ms);

/*
 * names_list - the oldest max names of regular files in the directory
 * dfd (dot names and names with a newline left out), sorted, into *l,
 * kept in a bounded heap while reading: memory is bounded by max, not by
 * the directory.  Returns 0 or -1 with errno.
 */
int	names_list(int dfd, size_t max, struct names *l);

/* names_free - free a listing of names_list. */
void	names_free(struct names *l);

/*
 * group_dir_of - open groups/KEY/ of q, KEY the g= of the message name,
 * where a message of state SQ_STATE_GROUPED waits (group.c; not made).
 * Returns a descriptor or -1 with errno (EINVAL: no g= in name, ENOENT).
 */
int	group_dir_of(struct sq_queue *q, const char *name);

/*
 * group_order_wrong - whether the order file of gfd, the directory of
 * group key, could lead a settle astray: NULL when it is right or
 * absent, else what is wrong ("order file that does not check ...", one
 * whose names after the head are not the oldest waiting in their order).
 * For qadmin check; the settles check it themselves (group.c).
 */
const char *group_order_wrong(int gfd, const char *key);

/*
 * group_cache_free - forget the order files of groups that q keeps
 * (group.c); sq_queue_close calls it.
 */
void	group_cache_free(struct sq_queue *q);

/*
 * An add to a group's directory under way (group.c): the directory, the
 * oldest ID the add puts there, and its add marker, groups/KEY/,add.RAND,
 * which keeps the group from getting an order file until the add is done
 * (spoolq(5) "Message groups").
 */
#define GROUP_MARK_MAX	32
struct group_add {
	int		 fd;		/* groups/KEY/, -1 until opened */
	const char	*first;		/* the oldest ID added; NULL: unknown */
	char		 mark[GROUP_MARK_MAX];	/* its marker; "": none */
};

/*
 * group_publish_into - the send of a grouped message as sq_group_publish
 * makes it, for a batch of sends into one group: a->fd is the group's
 * directory; when it is -1 the directory is opened (made whole first if
 * needed), the add's marker made and the group's order file removed
 * unless it checks and its last name is older than a->first, all before
 * the first rename; a->fd stays open for the next message.  The rename
 * of from in fromfd (tmp/ of q for a send) to groups/KEY/name is the
 * commit point of the send (move_rename_judged: one reported failed but
 * made counts as made).  Returns 0, or -1 with errno of the rename (EEXIST:
 * the name is taken) or of making the directory; a->fd may be open
 * either way, and group_publish_done ends the add.
 */
int	group_publish_into(struct sq_queue *q, struct group_add *a,
	    int fromfd, const char *from, const char *name, const char *key);

/*
 * group_publish_from - sq_group_publish of from in fromfd, a directory
 * of q or of another queue on its file system (a dead letter forwarded
 * into q, dead_letter_forward): into groups/KEY/name of q as a send
 * puts a message there, behind the group's head, then the group
 * advances.  Returns 0 or -1 with errno as group_publish_into.
 */
int	group_publish_from(struct sq_queue *q, int fromfd, const char *from,
	    const char *name, const char *key);

/*
 * group_publish_done - after the renames of group_publish_into into
 * a->fd: remove the add's marker (and the order file, if another process
 * removed the marker meanwhile, taking it for one left by a crash),
 * synchronize the directory under durability = fsync, let the group
 * advance when its baton is free, and close a->fd.  Best effort: a crash
 * before it leaves what sq_group_maintain mends.
 */
void	group_publish_done(struct sq_queue *q, struct group_add *a);

/* short_host - this host's short name as in message IDs (name.c). */
const char	*short_host(void);

/*
 * move.c: the names of a message in each state, and the moves.  Every
 * move of a message between states (tmp/, new/, cur/, retry/, dead/,
 * hold/, archive/, groups/KEY/, quarantine/, and the take of qrecv -A
 * into tmp/) is one of move_message, move_rename and move_quarantine,
 * and every new name is made by the rules below: no other module calls
 * sq_rename for a message or sets the fields of its next state.
 */

/*
 * move_message - rename name in fromfd to the name n formats to in tofd
 * (move_rename), writing the new name into newname (SQ_NAME_MAX + 1
 * bytes) when not NULL.  Returns 0 or -1 with errno (ENOENT when the
 * message is gone; EEXIST when the name is taken; ENAMETOOLONG when n
 * does not fit in a name).
 */
int	move_message(int fromfd, const char *name, int tofd,
	    const struct sq_name *n, char *newname);

/*
 * move_rename - the commit point of a move: rename from in fromfd to to
 * in tofd, a name made by these rules or one the message already has
 * (a take, a publish, a name put back), never over an existing file
 * (sq_rename: RENAME_NOREPLACE where the file system has it; SPEC 2).
 * The same name in the same directory is no move and succeeds, as
 * rename(2) does.  Returns 0 or -1 with errno (ENOENT: gone; EEXIST).
 */
int	move_rename(int fromfd, const char *from, int tofd, const char *to);

/*
 * move_made - after move_rename of from in fromfd to to in tofd was
 * reported failed: whether it was made all the same, as a network file
 * system may report a rename it made (NFS: the reply is lost, the
 * request sent again is answered ENOENT; or EIO, ESTALE).  Made when
 * from is gone and to is a regular file in tofd: names are unique, so
 * no one else put it there.  Returns 1 (made), 0 (from is still there:
 * nothing was made; errno kept), or -1 with errno: ENOENT when from is
 * gone and not at to, else the look's.
 */
int	move_made(int fromfd, const char *from, int tofd, const char *to);

/*
 * move_rename_judged - move_rename, and when it is reported failed,
 * judged by move_made as settle_commit judges the rename of a settle
 * (commit.c), without keeping a doubt: 0 when made, or -1 with errno:
 * ENOENT when from is gone and not at to, else the rename's (or the
 * look's, when the rename said ENOENT and the look failed).
 */
int	move_rename_judged(int fromfd, const char *from, int tofd,
	    const char *to);

/*
 * move_quarantine - move the entry name in dfd (a message or anything
 * else found in a state directory) into the quarantine directory qfd
 * under its own name, or, when that is taken, NAME.q1 to NAME.q9; the
 * name used goes into to (size bytes).  Returns 0 or -1 with errno
 * (EEXIST: all ten taken; ENAMETOOLONG).
 */
int	move_quarantine(int dfd, const char *name, int qfd, char *to,
	    size_t size);

/*
 * dead_letter_forward - the dead-letter move of a queue whose queue.conf
 * names a dead_letter queue (admin.c): the message name in fromfd of q,
 * whose dead form is n (dead_name), is renamed into the new/ of that
 * queue, beside q (QUEUE/../NAME), as dead_letter_name makes it, its
 * sidecars given to it first (as sq_admin_move); a grouped one into the
 * group's directory of that queue (group_publish_from), behind its head.
 * One rename across the two queues: the commit point, judged as a
 * settle's (settle_commit, move_rename_judged): reported failed but made, it
 * is made.  Returns 1 when moved (newname, when not
 * NULL, gets the name there: SQ_NAME_MAX + 1 bytes), 0 when q has no
 * dead_letter, when the message is gone or not a regular file (the
 * caller's own move then fails as it would have), when it is a fan-out
 * copy still shared with another queue (a link count above one) or a
 * dead letter forwarded into q and not yet claimed (r= in name), or
 * when the move could not be made (no such queue, EXDEV, a failed
 * rename, a sidecar that could not be given to the target: the cause in
 * q->dl_errno for sq_dead_letter_failed): the caller then moves it into
 * q's dead/ as ever, so nothing is lost.
 */
int	dead_letter_forward(struct sq_queue *q, int fromfd, const char *name,
	    const struct sq_name *n, char *newname);

/*
 * dead_letter_close - close the dead_letter queue q keeps open
 * (q->dl_to), if any (spool.c, with sq_queue_close):
 * dead_letter_forward opens it again when needed.
 */
void	dead_letter_close(struct sq_queue *q);

/* dead_name - turn n into its dead-letter form with the given reason. */
void	dead_name(struct sq_name *n, const char *reason);

/*
 * dead_letter_name - turn n, in its dead-letter form, into its form in
 * the new/ of the queue its queue's dead_letter names: ready, with a
 * fresh start (attempts 0, as SQS's redrive to a dead-letter queue, and
 * no e, which would expire it there at once), its reason r kept to show
 * why it came; ID, g and h kept.
 */
void	dead_letter_name(struct sq_name *n);

/*
 * ready_name - turn n into its form in new/, held and archived (ID, a,
 * e, g, h kept; lease, token, nonce, due time and reason dropped).
 */
void	ready_name(struct sq_name *n);

/* retry_name - turn n into its form in retry/, due at due (epoch s). */
void	retry_name(struct sq_name *n, int64_t due);

/*
 * released_name - turn the claim n into its form back in new/ with its
 * attempt not counted (a release, a take undone, a claim put back into
 * its group).
 */
void	released_name(struct sq_name *n);

/*
 * redrive_name - turn n into its form back in new/ or hold/ by an
 * operator's move; with reset (a redrive) attempts and expiry start
 * afresh.
 */
void	redrive_name(struct sq_name *n, int reset);

/*
 * claimed_name - turn the ready n into its claim: one more attempt, the
 * lease deadline lease (epoch s), and the worker's token, or, when token
 * is NULL, the random nonce (drawn by the caller from arc4random), so
 * that no two claims share a name.
 */
void	claimed_name(struct sq_name *n, int64_t lease, const char *token,
	    uint32_t nonce);

/* touched_name - give the claim n the new lease deadline lease (epoch s). */
void	touched_name(struct sq_name *n, int64_t lease);

/*
 * expired - 1 when message n is past its time at now_ms (epoch ms): its
 * own e= deadline (whole seconds, rounded up at send), or the queue's ttl
 * counted from its send time in the ID to the millisecond; never before
 * the time asked for.  Else 0.
 */
int	expired(const struct sq_queue *q, const struct sq_name *n,
	    int64_t now_ms);

/* has_sidecar - 1 when the send options o give a message an attr/ sidecar. */
int	has_sidecar(const struct sq_msgopts *o);

/*
 * publish_name - the name (SQ_NAME_MAX + 1 bytes) and directory (q's
 * newfd or retryfd) that tmp/id is published under with the send options
 * o (may be NULL): new/ID, or retry/ID,t=DUE when o's due time is still
 * to come, with e= from o's expiry and h when it has a sidecar.  Returns
 * 0 or -1 with errno (EINVAL: id is not an ID).
 */
int	publish_name(struct sq_queue *q, const struct sq_msgopts *o,
	    const char *id, char *name, int *dirfd);

/*
 * publish_name_h - publish_name with h set by has_attr (what is on
 * disk) rather than by o: for a body published on behalf of another
 * sender (dedup.c).
 */
int	publish_name_h(struct sq_queue *q, const struct sq_msgopts *o,
	    const char *id, int has_attr, char *name, int *dirfd);

/*
 * dead_send_name - the name (SQ_NAME_MAX + 1 bytes) in dead/ of a send
 * of tmp/id with the options o (may be NULL) that is set aside at once:
 * ID with e, g and h as publish_name gives them, and r=reason.  Returns
 * 0 or -1 with errno (ENAMETOOLONG, EINVAL: a group key too long).
 */
int	dead_send_name(const struct sq_msgopts *o, const char *id,
	    const char *reason, char *name);

/*
 * attr_none - 1 when attr/ is missing or holds no entry at all, on a
 * local file system (a remote one may list from its caches): then no
 * message of q has a sidecar or a failure record now.  0 otherwise,
 * or when attr/ cannot be listed.  It lists the directory that attr_dir
 * keeps open (never the path attr/ again, where a link or another
 * directory may have been put since), the one sidecars and failure
 * records are removed from: that descriptor, from its start; whether it
 * is remote is looked at once per opening of it (q->attr_fs), so a call
 * costs its getdents64(2) alone.
 */
int	attr_none(struct sq_queue *q);

/*
 * ack_records - whether the acks of n claims of q, all made before the
 * call, may find a failure record to remove: 0 when attr/ holds none
 * (attr_none, looked at only for n > 2), else 1.  What sq_ack_many and
 * sq_jobbatch_apply look at once for their acks.
 */
int	ack_records(struct sq_queue *q, size_t n);

/*
 * ack_known - sq_ack of the claim name of q; failures 0 (ack_records
 * said so) tries no unlink of its failure record.
 */
int	ack_known(struct sq_queue *q, const char *name, int failures);

/*
 * attr_dir - q's attr/, kept open in q->attrfd for the life of q (closed
 * by sq_queue_close and sq_queue_reopen): sidecars are named, read and
 * removed relative to it, never through a path "attr/ID" from the queue
 * directory, which would follow a symbolic link put in attr/'s place
 * after the queue was opened (SPEC: refuse symlink tricks).  Opened with
 * O_NOFOLLOW, never made.  Returns the descriptor (not to be closed), or
 * -1 with errno (ENOENT: no attr/, so no sidecar; ELOOP or ENOTDIR: not
 * a directory).
 */
int	attr_dir(struct sq_queue *q);

/* failure_remove - unlink attr/ID.failure if there is one. */
void	failure_remove(struct sq_queue *q, const char *id);

/* attr_write - write attr/ID for the options o (key, attributes). */
int	attr_write(struct sq_queue *q, const char *id,
	    const struct sq_msgopts *o);

/* attr_remove - unlink attr/ID if there is one. */
void	attr_remove(struct sq_queue *q, const char *id);

/*
 * batch_push - add the finished tmp/ID (len bytes) to b's pending list,
 * committing the batch when full or when now is set.  Returns 0 or -1
 * with errno (the batch aborted).
 */
int	batch_push(struct sq_batch *b, const char *id, size_t len, int now);

/* dedup.c: a send with a dedup ID, around its publication by send.c. */
struct dedup {
	int	dfd;		/* dedup/ */
	int	fd;		/* the marker, locked */
	const char *key;	/* its name: the dedup ID */
	int	pending;	/* it says "pending" for ours */
	size_t	before;		/* the batch's committed count at the start */
	/* Set by the caller before dedup_begin, for a deferred send: */
	int	keep_dfd;	/* dfd is the batch's: open it not, close it not */
	mode_t	share;		/* with keep_dfd: dir_share(dfd) */
	int	defer;		/* the batch syncs the markers, see send.c */
	/* Set by dedup_begin when it gives 0: */
	char	keybuf[SQ_DEDUP_MAX + sizeof(SQ_DEDUP_ASIDE)];
	char	name[SQ_NAME_MAX + 1];	/* the name it is to be published as */
	int	tofd;			/* in this directory of the queue */
	int	base;		/* deferred: the marker is a batch's file, */
	off_t	end;		/* its lines this long */
	int	linked;		/* deferred: a link to the batch's file (fd -1) */
};

/*
 * A deduplicated send held pending in its batch (sq_batch_defer_dedup):
 * its marker stays locked and says "pending" until the batch is
 * committed, and stays so (or it is taken back).  The marker of the
 * first made is the batch's file (d.base), those after it links to it
 * (d.linked), when the file system allows (dedup_link).
 */
struct sq_dedup_slot {
	struct dedup	d;
	char		id[SQ_ID_MAX];	/* tmp/ID */
	int64_t		due_ms;		/* of a delayed one, for the index */
	int		published;
};

/*
 * dedup_begin - the finished tmp/id of batch b has b's dedup ID: make
 * (O_EXCL) or open its marker, lock it and judge.  A duplicate (the ID
 * was sent within dedup_window) is dropped - tmp/id and its sidecar
 * removed, b->dropped counted, a crashed first sender's body published -
 * and gives 1.  The first send of the ID gives 0 with the marker locked
 * and saying "pending": publish tmp/id, then call dedup_end.  On a file
 * system other hosts write to, judging a marker that a first send may
 * take over waits MARKER_SETTLE_MS (2 s) under its lock (dedup.c).  -1
 * with errno (EBUSY: the marker stayed locked by another sender for the
 * lease, at most 5 s): tmp/id and its sidecar are removed.  2 with
 * errno SQ_ENOTREG when the marker's name is taken by an entry that is
 * not a regular file (never opened, never waited for): tmp/id and its
 * sidecar are left for the caller to set aside or take back.  Giving 0
 * it leaves in d->name and d->tofd where tmp/id is to go (the marker
 * records it).  With d->defer the "pending" is written without fsync:
 * the batch makes its markers durable with its bodies, before any of
 * them is published (send.c).
 */
int	dedup_begin(struct dedup *d, struct sq_batch *b, const char *id);

/*
 * dedup_link - a deferred send's marker as a hard link (linkat(2), the
 * commit point of a first send, as the exclusive create is) to base's,
 * the batch's file (base->base: made by dedup_begin, locked and held by
 * the batch), its line appended: locked with it, "pending".  Returns 0
 * (then as dedup_begin's 0, with d->fd -1), 1 when the name exists or
 * the file system makes no link (dedup_begin decides), or -1 with
 * errno (as dedup_begin's -1).
 */
int	dedup_link(struct dedup *d, struct dedup *base, struct sq_batch *b,
	    const char *id);

/*
 * dedup_end - after dedup_begin gave 0 and the publication of tmp/id
 * ended with rc (0 or -1, errno set): mark the ID "sent", or, when
 * nothing of the batch was published, take the marker back and remove
 * tmp/id and its sidecar.  Unlocks the marker.  Returns 0 or -1 with
 * errno.  A deferred send (d->defer) is taken back whenever rc is -1:
 * its batch passes 0 only for one it published.
 */
int	dedup_end(struct dedup *d, struct sq_batch *b, const char *id, int rc);

/* batch_room - make room in b for one more pending message.  0 or -1. */
int	batch_room(struct sq_batch *b);

/*
 * tmp_ready - the body tmp/ID (len bytes) of b's queue is complete (or
 * failed, with errno saved): write its sidecar, then deduplicate or push
 * it.  On failure tmp/ID is removed and the batch aborted.  0 or -1.
 */
int	tmp_ready(struct sq_batch *b, const char *id, size_t len, int failed,
	    int saved);

/*
 * copy_file - copy the regular file name in fromfd to the new file
 * tmpname in tofd, fsynced.  Returns 0 or -1 with errno (nothing left).
 */
int	copy_file(int fromfd, const char *name, int tofd, const char *tmpname);

/*
 * worker_probe_at - sq_worker_probe at now_ms (epoch ms), and for a
 * worker found alive by a held lock whose heartbeat (the lock file's
 * mtime) is younger than its recorded lease, *hung_ms (when not NULL) set
 * to the epoch ms at which that heartbeat turns older than the lease
 * unless the worker beats again: the time a consumer probes it again, so
 * that a stopped worker's claims are recovered as soon as it reads as
 * hung, not at the next maintenance (spoolq(7), shared file systems).
 * Left alone in every other case.
 */
enum sq_worker_state worker_probe_at(struct sq_queue *q, const char *token,
	    int64_t now_ms, int64_t *hung_ms);

/*
 * workers_check - sq_workers_check, but for the lock file of the worker
 * own (a token, or NULL: every one): a claim by that worker, which holds
 * that lock, skips it.  A probe of its own lock would open it, find it
 * held (by itself) and read it alive, changing nothing: four system
 * calls or more at every claim that came up short.
 */
int	workers_check(struct sq_queue *q, int64_t now_ms, const char *own);

/*
 * job_probe_at - sq_job_probe at now_ms, removing a lock file found free
 * when reap is set; *hung_ms as worker_probe_at sets it.
 */
enum sq_worker_state job_probe_at(struct sq_queue *q, const char *token,
	    const char *id, int64_t now_ms, int reap, int64_t *hung_ms);

/*
 * drop_oldest - dead-letter up to max of the oldest ready messages of q
 * with r=reason, in claim order (overflow = drop-oldest).  *got tells how
 * many went.  Returns 0 or -1 with errno.
 */
int	drop_oldest(struct sq_queue *q, size_t max, const char *reason,
	    size_t *got);

/*
 * archive_message - the ack of an archiving queue: rename cur/name to
 * archive/ID,a=k (n is the parsed name; changed), its new name written
 * to newname (SQ_NAME_MAX + 1 bytes) when not NULL, by settle_move (a
 * rename reported failed but made counts as made).  0 or -1 with errno.
 */
int	archive_message(struct sq_queue *q, const char *name,
	    struct sq_name *n, char *newname);

/*
 * settle_commit - the commit point of a settle (commit.c): rename from in
 * fromfd to to in tofd, the directory dir (SQ_DIR_*), or unlink from when
 * to is NULL.  A commit the file system reported failed but made (NFS: a
 * lost reply) counts as made: from gone and to a regular file in tofd,
 * or, for an unlink, the ID under no other name in any state directory
 * (sq_msg_find: one listing of each, on this path only, and only where
 * fs_remote: on a local file system from gone is a lost lease).  When
 * the look cannot tell, the settle is left in doubt in q and the next
 * settle_commit of from to dir decides first, by the name chosen first,
 * which it writes into to (SQ_NAME_MAX + 1 bytes).  Returns 0 when made,
 * or -1 with errno: ENOENT when from is gone and not where the settle
 * puts it (the lease was lost), else the commit's error (the look's when
 * the commit said ENOENT and the look failed).
 */
int	settle_commit(struct sq_queue *q, int fromfd, const char *from,
	    const char *dir, int tofd, char *to);

/*
 * settle_move - settle_commit of from to the name n formats, as
 * move_message; the name made is written to newname (SQ_NAME_MAX + 1
 * bytes) when not NULL and parsed back into n (a try after one in doubt
 * makes the name chosen first).  Returns 0 or -1 with errno as
 * settle_commit.
 */
int	settle_move(struct sq_queue *q, int fromfd, const char *from,
	    const char *dir, int tofd, struct sq_name *n, char *newname);

/*
 * settle_doubted - whether the settle of from to dir is the one left in
 * doubt in q; unlink: 1 for an unlink, 0 for a rename, -1 for either.
 */
int	settle_doubted(const struct sq_queue *q, const char *from,
	    const char *dir, int unlink);

/* settle_doubt_clear - forget the settle in doubt in q, if any. */
void	settle_doubt_clear(struct sq_queue *q);

/* Called for each entry of a directory, lstat'ed; 0 goes on, else stops. */
typedef int	dir_entry_fn(int dfd, const char *name, const struct stat *st,
		    void *arg);

/*
 * dir_stream - a directory stream of its own on the directory dfd (a new
 * descriptor: dfd's offset is left alone), for readdir(3); close it with
 * closedir(3).  NULL with errno.
 */
DIR	*dir_stream(int dfd);

/*
 * dir_each - call fn for every entry of the directory dfd but "." and
 * "..", dot names included, lstat'ed (never followed or opened), in
 * constant memory; entries that vanish meanwhile are skipped.  Returns 0,
 * fn's non-zero result, or -1 with errno.
 */
int	dir_each(int dfd, dir_entry_fn *fn, void *arg);

/*
 * subdir_open - open the directory name in dfd (never following a
 * symlink), making it first when create is set and it is missing; a
 * concurrent mkdir by another process is no error.  Returns a
 * descriptor or -1 with errno.
 */
int	subdir_open(int dfd, const char *name, int create);

/*
 * queue_subdir_open - subdir_open of the directory name of the queue
 * directory qfd (groups/, hold/, run/), except that one it makes while the
 * queue is being destroyed is removed again and refused: qadmin destroy
 * removes tmp/ first (spool.c, seal_queue), so a directory made after
 * tmp/ was gone may be made after the destroy looked for it, and would
 * be removed with the queue and what is put into it.  Returns a
 * descriptor or -1 with errno (ENOENT: the queue is being destroyed).
 */
int	queue_subdir_open(int qfd, const char *name, int create);

/*
 * fs_remote - 1 when fd is on a file system that other hosts write to
 * (NFS, FUSE, SMB, Ceph, GFS2 and the others of statfs(2) f_type known
 * as such), whose client may answer from its caches of names,
 * attributes and contents for about a second; 0 otherwise, also when
 * fstatfs(2) fails.
 */
int	fs_remote(int fd);

/*
 * dir_share - the access that the directory dfd shares with its group:
 * S_ISGID and its group permission bits when it has the set-group-ID bit
 * and is group-writable (a queue, or spool root, of a group: spoolq(5)),
 * else 0 (also when it cannot be stat'ed).
 */
mode_t	dir_share(int dfd);

/*
 * share_file - in a shared directory (share from dir_share, 0 for none),
 * give the file fd, if ours, group read and write and take away write by
 * others, whatever the umask was.  Returns 0, or -1 with the errno of
 * fstat(2) or fchmod(2).
 */
int	share_file(mode_t share, int fd);

/*
 * mkdir_shared - mkdirat(2) name in dfd with modes from the umask and, in
 * a shared directory (dir_share), the group bits and set-group-ID of dfd
 * and no write by others.  Returns 0, or -1 with errno (EEXIST when it is
 * there).
 */
int	mkdir_shared(int dfd, const char *name);

/*
 * sort - qsort(3) that accepts an empty array: qsort's base must not be
 * NULL even for no elements (C11 7.22.5), and an empty list is often NULL.
 */
#define sort(base, n, size, cmp) do {					\
	if ((n) > 1)							\
		qsort((base), (n), (size), (cmp));			\
} while (0)

/*
 * mkdir_path - mkdir(2) path unless it is there (EEXIST is success), with
 * modes from the umask and, when its parent is shared (dir_share), the
 * parent's group bits and set-group-ID, as mkdir_shared.  Returns 0, or
 * -1 with errno.
 */
int	mkdir_path(const char *path);

/*
 * make_dirs - mkdir -p: path and its missing parents (the spool root above
 * a new queue or exchange), with modes from the umask, or shared with the
 * group inside a shared directory (mkdir_shared).  0 or -1 with errno.
 */
int	make_dirs(const char *path);

/*
 * The name a destroy renames a queue or an exchange to, in its parent,
 * before it removes it: SQ_DESTROY_PREFIX, the destroyer's pid, a dot and
 * 8 hex digits (sq_queue_destroy, sq_exchange_destroy); sq_spool_gc
 * finishes the removal of one whose destroy was stopped.
 */
#define SQ_DESTROY_PREFIX	".destroy."

/*
 * remove_tree - remove everything below the directory fd, never following
 * a symbolic link (it is removed as a name).  0 or -1 with errno (what
 * could be removed is gone).
 */
int	remove_tree(int fd);

/*
 * path_split - split path into its parent directory ("." for a bare name,
 * "/" at the top; psize bytes) and last component (bsize bytes),
 * trailing slashes ignored.  Returns 0, or -1 with errno EINVAL (the last
 * component is empty, "." or "..") or ENAMETOOLONG.
 */
int	path_split(const char *path, char *parent, size_t psize, char *base,
	    size_t bsize);

/*
 * Throughput counters (counter.c): messages sent, acknowledged, retried
 * and dead-lettered since the queue was made, and counts that could not
 * be written (dropped), in run/counters.
 */
#define SQ_COUNTER_FILE		"run/counters"
#define SQ_NCOUNTERS		5	/* struct sq_queue's counted[] */
#define SQ_COUNT_SENT		0
#define SQ_COUNT_ACKED		1
#define SQ_COUNT_RETRIED	2
#define SQ_COUNT_DEAD		3
#define SQ_COUNT_DROPPED	4

/*
 * sq_counter_add - count n messages of counter which (SQ_COUNT_*) in q;
 * written to run/counters by sq_counter_flush, which this calls once a
 * second at most.  Never fails: a count that cannot be written is counted
 * as dropped (sq_counter_flush).
 */
void	sq_counter_add(struct sq_queue *q, int which, uint64_t n);

/*
 * sq_counter_flush - add q's pending counts to run/counters under its
 * lock (waited for COUNTER_WAIT_MS, 10 ms, at most) and forget them, with
 * the drops others recorded.  When they cannot be written: unless final
 * is set they stay pending for the next try; when it is (sq_queue_close)
 * their number is recorded as dropped in run/counters.dropped.  0, or -1
 * when they could not be written; errno is kept.
 */
int	sq_counter_flush(struct sq_queue *q, int final);

/*
 * sq_counter_read - the counters of q, v[SQ_COUNT_*]; all 0 when
 * run/counters does not exist yet; v[SQ_COUNT_DROPPED] includes the
 * drops not yet folded into it.  0, or -1 with errno.
 */
int	sq_counter_read(struct sq_queue *q, uint64_t v[SQ_NCOUNTERS]);

/* The mtime of st in epoch milliseconds. */
#define SQ_MTIME_MS(st)	((int64_t)(st)->st_mtim.tv_sec * 1000 + \
			    (st)->st_mtim.tv_nsec / 1000000)

#endif
