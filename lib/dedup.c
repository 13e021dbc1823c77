/*
 * dedup.c - exactly-once effect on the producer side (SQS FIFO
 * MessageDeduplicationId): a send whose dedup ID was already sent within
 * dedup_window is accepted and dropped.
 *
 * Each dedup ID has a marker dedup/ID holding "MSGID STATE MS".  A sender
 * holds flock(2) on the marker for the whole send, so senders of one ID
 * take turns, and the kernel frees the lock if one crashes.  The marker
 * says "pending" before the message is published and "sent" after:
 *   sent, within the window      -> a duplicate: dropped;
 *   pending (its sender crashed)  -> if its body is still in tmp/, it was
 *                                    never published: publish it now (the
 *                                    first message is never lost) and drop
 *                                    ours; else it was published: drop ours;
 *   empty, or older than window   -> ours is the first: send it.
 * Markers expire by time; qadmin gc removes them.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define DEDUP_DIR	"dedup"

struct marker {
	char	id[SQ_ID_MAX];
	char	state[16];
	int64_t	ms;
};

static int
marker_read(int fd, struct marker *m)
{
	char buf[SQ_ID_MAX + 64];
	long long ms;
	ssize_t n;

	memset(m, 0, sizeof(*m));
	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return n == 0 ? 0 : -1;
	buf[n] = '\0';
	if (sscanf(buf, "%159s %15s %lld", m->id, m->state, &ms) != 3 ||
	    strchr(m->id, '/') != NULL || m->id[0] == '.')
		memset(m, 0, sizeof(*m));	/* damaged: as if absent */
	else
		m->ms = ms;
	return 0;
}

static int
marker_write(struct sq_queue *q, int fd, const char *id, const char *state)
{
	char buf[SQ_ID_MAX + 64];
	int len;

	len = snprintf(buf, sizeof(buf), "%s %s %lld\n", id, state,
	    (long long)sq_now_ms());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)len, 0) != len)
		return -1;
	if (q->conf.durability == SQ_DURABILITY_FSYNC && fsync(fd) == -1)
		return -1;
	return 0;
}

/* Drop our tmp/ID (and its sidecar): a duplicate. */
static void
drop(struct sq_batch *b, const char *id)
{
	unlinkat(b->q->tmpfd, id, 0);
	attr_remove(b->q, id);
	b->dropped++;
}

/* Publish a crashed sender's complete body from tmp/ as new/ID[,h]. */
static int
publish_orphan(struct sq_queue *q, const char *id)
{
	char attr[SQ_ID_MAX + sizeof(SQ_DIR_ATTR) + 1];
	struct sq_name n;
	char name[SQ_NAME_MAX + 1];

	if (sq_name_init(&n, id) == -1)
		return -1;
	snprintf(attr, sizeof(attr), "%s/%s", SQ_DIR_ATTR, id);
	n.has_attr = faccessat(q->fd, attr, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	if (sq_name_format(name, sizeof(name), &n) == -1)
		return -1;
	return sq_rename(q->tmpfd, id, q->newfd, name);
}

int
dedup_send(struct sq_batch *b, const char *id, size_t len)
{
	struct sq_queue *q = b->q;
	struct marker m;
	struct stat st;
	int dfd, fd = -1, rc = -1, saved;

	dfd = openat(q->fd, DEDUP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (dfd == -1 && errno == ENOENT && mkdirat(q->fd, DEDUP_DIR, 0777) ==
	    0)
		dfd = openat(q->fd, DEDUP_DIR, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC | O_NOFOLLOW);
	if (dfd == -1)
		goto out;
	fd = openat(dfd, b->opts->dedup_id, O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0666);
	if (fd == -1)
		goto out;
	while (flock(fd, LOCK_EX) == -1)
		if (errno != EINTR)
			goto out;
	if (marker_read(fd, &m) == -1)
		goto out;
	if (m.id[0] != '\0' && sq_now_ms() - m.ms < q->conf.dedup_window_ms) {
		if (strcmp(m.state, "pending") == 0 &&
		    fstatat(q->tmpfd, m.id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    publish_orphan(q, m.id) == -1)
			goto out;
		if (strcmp(m.state, "sent") != 0 &&
		    marker_write(q, fd, m.id, "sent") == -1)
			goto out;
		drop(b, id);
		rc = 0;
		goto out;
	}
	if (marker_write(q, fd, id, "pending") == -1)
		goto out;
	if (batch_push(b, id, len, 1) == -1)
		goto out;
	rc = marker_write(q, fd, id, "sent");
out:
	saved = errno;
	if (rc == -1 && fd != -1 && b->npending == 0 &&
	    faccessat(q->tmpfd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		unlinkat(q->tmpfd, id, 0);	/* not published: no orphan */
		attr_remove(q, id);
	}
	if (fd != -1)
		close(fd);
	if (dfd != -1)
		close(dfd);
	errno = saved;
	return rc;
}
