/*
 * group.h - message groups (group.c): within a group, messages are
 * delivered one at a time in ID order; groups flow in parallel.  The
 * on-disk rule is spoolq(5) "Message groups"; part of spoolq.h.
 */
#ifndef SPOOLQ_GROUP_H
#define SPOOLQ_GROUP_H

#include <stddef.h>
#include <stdint.h>

struct sq_name;
struct sq_queue;

#define SQ_GROUP_FREE		",free"		/* baton: no head */
#define SQ_GROUP_HEAD		",head="	/* baton: held by ,head=ID */
#define SQ_GROUP_GONE		",gone="	/* baton: ,gone=ID under review */
#define SQ_GROUP_ORDER		".order"	/* the next heads: a hint */
#define SQ_GROUP_ADD		",add."		/* an add under way: ,add.RAND */
#define SQ_GROUP_MAINT		",maint"	/* groups/,maint: last upkeep */
#define SQ_GROUP_ENV		"SPOOLQ_GROUP"	/* qsend's default group */

/*
 * sq_group_key_valid - 1 when the len bytes at s are a group key as the
 * g= field holds it, [A-Za-z0-9_-]{1,32}, else 0.  A rule of message
 * names, defined with them in name.c.
 */
int	sq_group_key_valid(const char *s, size_t len);

/*
 * sq_group_key - the key of the group named group (any bytes but NUL,
 * not empty) into key (SQ_GROUP_MAX bytes): the name itself when it is a
 * valid key, else "h" and 16 hexadecimal digits of its 64-bit FNV-1a
 * hash, so that one name always gives one key.  Two names may share a
 * hashed key: their messages are then ordered together, which costs
 * parallelism, never order.  Returns 0, or -1 with errno EINVAL (empty).
 */
int	sq_group_key(const char *group, char *key);

/*
 * sq_group_publish - the send of a grouped message: rename tmp/tmpname
 * of q to groups/KEY/name, where name (formatted by publish_name) carries
 * g=KEY, making the group's directory and baton first if needed, then
 * let the group advance (sq_group_advance).  The rename is the commit
 * point of the send.  Returns 0, or -1 with errno of the rename (EEXIST:
 * the name is taken) or of making the directory.
 */
int	sq_group_publish(struct sq_queue *q, const char *tmpname,
	    const char *name, const char *key);

/*
 * sq_group_advance - when the baton of group key is free and messages
 * wait in groups/KEY/, take the baton for the oldest (smallest ID) by
 * renaming ,free to ,head=ID, then promote that message to new/ (or to
 * retry/ when its t= is still to come); when the baton is ,head=ID and ID
 * still waits in groups/KEY/ (a promotion cut short), promote it.  A lost
 * race (ENOENT) is no error: the winner advances.  Returns 0 or -1 with
 * errno.
 */
int	sq_group_advance(struct sq_queue *q, const char *key);

/*
 * sq_group_release - message n (its ID and g=) of q has left the states
 * that hold its group (new/, cur/, retry/) for good: acknowledged, dead-
 * lettered, taken, deleted or moved away.  Frees the group's baton if n
 * holds it (,head=ID or ,gone=ID -> ,free) and advances the group; the
 * next head comes from the group's order file (groups/KEY/.order) when
 * it names one, else from a listing of the group's directory.  q keeps
 * a copy of the order file it read, used while the file is unchanged
 * (one fstatat(2) instead of reading it again), until sq_queue_close.  Does
 * nothing for a message without g= or whose ID does not hold the baton.
 * Best effort, never fails: what a crash leaves is mended by
 * sq_group_maintain.
 */
void	sq_group_release(struct sq_queue *q, const struct sq_name *n);

/*
 * sq_group_admit - the claim hook: message n of group n->group was just
 * claimed as cur/curname.  Returns 1 when ID holds its group's baton
 * (,head=ID): the claim stands.  Otherwise (a grouped message delivered
 * by hand, redriven or released into new/) the claim is undone into the
 * group's queue, groups/KEY/ID,a=k..., the group advances, and 0 is
 * returned: the caller skips it.  -1 with errno on an error.
 */
int	sq_group_admit(struct sq_queue *q, const char *curname,
	    const struct sq_name *n);

/* sq_group_maintain flags. */
#define SQ_GROUP_FORCE	1	/* now, whatever the grace and rate limit */
#define SQ_GROUP_DRY	2	/* report only, change nothing */

/*
 * Called for each half-done group state met: key is the group's, what
 * says what was found, action what was done (or, with SQ_GROUP_DRY, is
 * to be done): "advance", "promote", "free", or NULL for nothing.
 */
typedef void	sq_group_report_fn(const char *key, const char *what,
		    const char *action, void *arg);

/*
 * sq_group_maintain - mend what crashes leave of groups (spoolq(5)
 * "Message groups", recovery): advance groups whose baton is free while
 * messages wait, finish promotions cut short, and free batons whose head
 * is gone from new/, cur/ and retry/ - after renaming the baton to
 * ,gone=ID and looking again, so that a head moving meanwhile is never
 * missed.  Batons younger than 5 s are left alone, and unless flags has
 * SQ_GROUP_FORCE a pass runs at most every 10 s per queue (groups/,maint
 * records the last).  Without SQ_GROUP_FORCE or SQ_GROUP_DRY a group
 * whose baton names a head and whose order file checks is judged by that
 * file and fstatat(2) calls, not by a listing of its directory, and a
 * head is looked for by name in new/ and retry/ before they are listed,
 * so that a pass costs the same at any backlog.  report (may be NULL)
 * hears each state found.  now_ms: ms since the epoch.  Returns 0 or -1
 * with errno.
 */
int	sq_group_maintain(struct sq_queue *q, int64_t now_ms, int flags,
	    sq_group_report_fn *report, void *arg);

/*
 * sq_group_tick - run sq_group_maintain when this process has not run it
 * for 10 s (GROUP_EVERY_MS; q->group_ms holds when it is due, a clock
 * step back makes it due), so that a claim mends a group whose head is
 * gone within 15 s (5 s grace + 10 s), not at the next minute's
 * maintenance of the claim index (spoolq(5) "Message groups").  When it
 * is not due this costs no system call; when due, groups/,maint limits
 * the passes of all processes to one per 10 s.  now_ms: ms since the
 * epoch.  When the queue has groups/, lowers *next_ms (ms since the
 * epoch) to the next tick, so that a waiting consumer comes back for it.
 * Returns 0, or -1 with errno from sq_group_maintain.
 */
int	sq_group_tick(struct sq_queue *q, int64_t now_ms, int64_t *next_ms);

/* What sq_group_stats counts. */
struct sq_group_stats {
	size_t	groups;		/* directories in groups/ */
	size_t	held;		/* batons held by a head */
	size_t	inflight;	/* heads claimed (in cur/) */
	size_t	blocked;	/* groups with messages waiting behind a head */
	size_t	waiting;	/* messages waiting in groups/KEY/ */
};

/*
 * sq_group_stats - count the groups of q into *s (all 0 without groups/).
 * Lists groups/, each group's directory and cur/.  Returns 0 or -1.
 */
int	sq_group_stats(struct sq_queue *q, struct sq_group_stats *s);

/*
 * sq_group_each - call fn for every entry waiting in a group's directory,
 * groups/KEY/NAME (batons and dot names left out), as sq_msg_each does
 * for a state: m->state is SQ_STATE_GROUPED; m->dirfd is the group's
 * directory; m->parsed is 0 for a name that does not parse or whose g=
 * is not KEY, which is no message of the group (qadmin check reports
 * it).  An entry of groups/ itself that is not a directory (planted:
 * a FIFO, a symlink, a file) comes too, unparsed, with m->dirfd groups/,
 * so that it is counted stray as in a state.  In no order.  Returns 0,
 * fn's -1,
 * or -1 with errno; 0 without groups/.
 */
int	sq_group_each(struct sq_queue *q, sq_msg_fn *fn, void *arg);

/*
 * sq_group_of - for a batch of claims: 1 when the message name (any
 * state) is in a group, with its key copied into key (SQ_GROUP_MAX
 * bytes), else 0.  A batch that takes several messages at once must take
 * at most one per key; within a group, claims already give one at a time.
 */
int	sq_group_of(const char *name, char *key);

#endif /* SPOOLQ_GROUP_H */
