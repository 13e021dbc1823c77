/*
 * internal.h - helpers shared between library modules; not installed.
 */
#ifndef SPOOLQ_INTERNAL_H
#define SPOOLQ_INTERNAL_H

#include "spoolq.h"

/* Milliseconds to whole epoch seconds, rounded up: deadlines never early. */
#define SQ_MS_TO_S_CEIL(ms)	(((ms) + 999) / 1000)

/*
 * index_lower_maint - make the next claim run sq_queue_maintain no later
 * than at_ms (a new retry due time).  Takes the index lock briefly.
 * Returns 0 or -1 with errno.
 */
int	index_lower_maint(struct sq_queue *q, int64_t at_ms);

/*
 * move_message - rename name in fromfd to the name n formats to in tofd,
 * writing the new name into newname (SQ_NAME_MAX + 1 bytes) when not NULL.
 * Returns 0 or -1 with errno (ENOENT when the message is gone).
 */
int	move_message(int fromfd, const char *name, int tofd,
	    const struct sq_name *n, char *newname);

/* dead_name - turn n into its dead-letter form with the given reason. */
void	dead_name(struct sq_name *n, const char *reason);

/* ready_name - turn n into its form in new/ (ID, a, e, h kept). */
void	ready_name(struct sq_name *n);

/* failure_remove - unlink attr/ID.failure if there is one. */
void	failure_remove(struct sq_queue *q, const char *id);

#endif
