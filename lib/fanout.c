/*
 * fanout.c - one message into several queues (an exchange's routes).
 *
 * The body is written once, as a hidden source file in the first
 * queue's tmp/, and hard-linked into each queue's tmp/ under the same ID;
 * a file system met for the first time gets one copy of the source, and
 * its queues link to that, so no body is written twice per file system.  Each queue's copy then goes through that queue's
 * batch: sidecar, deduplication, sync, and its own rename into new/ -
 * the commit point per queue.  A crash between two queues leaves the
 * message in some queues and not the others; a retried send with a
 * dedup ID completes the set without duplicates; a dedup ID whose marker
 * name is taken by a non-file in any of the queues fails before any copy
 * is made.  The source is unlinked
 * at the end; a crashed sender's source is a dot file in tmp/ that
 * qadmin gc removes.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define SOURCE_PREFIX	".fanout."
#define COPY_CHUNK	(64 * 1024)

/*
 * Write the body from mem (len bytes) or fd into tmp/.fanout.ID of q;
 * *inerr is set when reading fd failed.
 */
static int
source_write(struct sq_queue *q, const char *id, const void *mem,
    size_t len, int in, size_t *total, int *inerr)
{
	char name[SQ_ID_MAX + sizeof(SOURCE_PREFIX)], *buf = NULL;
	ssize_t n;
	int fd, rc = -1, saved;

	snprintf(name, sizeof(name), "%s%s", SOURCE_PREFIX, id);
	fd = openat(q->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0666);
	if (fd == -1)
		return -1;
	if (share_file(q->share, fd) == -1)
		goto out;
	*total = 0;
	if (in == -1) {
		if (sq_write_all(fd, mem, len) == -1)
			goto out;
		*total = len;
	} else {
		if ((buf = malloc(COPY_CHUNK)) == NULL)
			goto out;
		while ((n = read(in, buf, COPY_CHUNK)) != 0) {
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1) {
				*inerr = 1;
				goto out;
			}
			if (sq_write_all(fd, buf, (size_t)n) == -1)
				goto out;
			*total += (size_t)n;
		}
	}
	rc = 0;
out:
	saved = errno;
	free(buf);
	if (close(fd) == -1 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc == -1)
		unlinkat(q->tmpfd, name, 0);
	errno = saved;
	return rc;
}

/* One source file per file system, so every queue can link to one. */
struct sources {
	size_t	 n;
	struct {
		dev_t	 dev;
		int	 tmpfd;		/* the tmp/ holding it */
	} s[8];
};

/*
 * The source for queue q's file system: the first one written, or a
 * copy of it made in q's tmp/ the first time that file system is met
 * (up to 8; past that, queues get copies).  Returns the tmp/ descriptor
 * holding it, or -1 with errno.
 */
static int
source_for(struct sources *src, struct sq_queue *q, const char *name)
{
	size_t i;

	for (i = 0; i < src->n; i++)
		if (src->s[i].dev == q->dev)
			return src->s[i].tmpfd;
	if (src->n == sizeof(src->s) / sizeof(src->s[0]))
		return src->s[0].tmpfd;
	if (copy_file(src->s[0].tmpfd, name, q->tmpfd, name) == -1)
		return -1;
	src->s[src->n].dev = q->dev;
	src->s[src->n++].tmpfd = q->tmpfd;
	return q->tmpfd;
}

/*
 * Link the first queue's sidecar attr/ID into b's queue, as the body is:
 * one key and attributes file for all, where the file system allows.
 */
static void
link_sidecar(struct sq_batch *first, struct sq_batch *b, const char *id)
{
	int from, to;

	b->sidecar_linked = 0;
	if (b == first || first->q->dev != b->q->dev ||
	    first->opts == NULL || (first->opts->key == NULL &&
	    first->opts->nattrs == 0))
		return;
	if ((from = sq_state_attr(first->q, 0)) == -1)
		return;
	if ((to = sq_state_attr(b->q, 1)) != -1) {
		b->sidecar_linked = linkat(from, id, to, id, 0) == 0;
		close(to);
	}
	close(from);
}

/* Link (or copy) the source into b's tmp/ID and hand it to the batch. */
static int
fan_one(struct sq_batch *first, struct sq_batch *b, struct sources *src,
    const char *name, const char *id, size_t len)
{
	int rc, srcfd;

	if (batch_room(b) == -1 || (srcfd = source_for(src, b->q, name)) == -1)
		return -1;
	rc = linkat(srcfd, name, b->q->tmpfd, id, 0);
	if (rc == -1 && errno == EXDEV)
		rc = copy_file(srcfd, name, b->q->tmpfd, id);
	if (rc == -1)
		return -1;
	link_sidecar(first, b, id);
	rc = tmp_ready(b, id, len, 0, 0);
	b->sidecar_linked = 0;
	return rc;
}

/*
 * Whether the dedup marker's name of b's send is taken, in b's queue, by
 * an entry that is not a regular file, and b does not set such a send
 * aside: its copy would fail after those before it were committed.
 */
static int
marker_planted(const struct sq_batch *b)
{
	char rel[sizeof(SQ_DIR_DEDUP) + SQ_DEDUP_MAX + 1];
	struct stat st;

	if (b->opts == NULL || b->opts->dedup_id == NULL || b->aside)
		return 0;
	snprintf(rel, sizeof(rel), "%s/%s", SQ_DIR_DEDUP, b->opts->dedup_id);
	return fstatat(b->q->fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISREG(st.st_mode);
}

static int
fanout(struct sq_batch *b, size_t n, const void *mem, size_t len, int in,
    size_t *delivered)
{
	char id[SQ_ID_MAX], src[SQ_ID_MAX + sizeof(SOURCE_PREFIX)];
	struct sources sources;
	size_t i, total;
	int rc = 0, saved = 0;

	*delivered = 0;
	if (n == 0)
		return 0;
	/*
	 * Each queue's copy is committed on its own: a marker that no send
	 * can have is looked for in every queue before the first, so that
	 * such a send fails whole, not in some queues (a lookup decides no
	 * send here, it only refuses one early; dedup.c still decides).
	 */
	for (i = 0; i < n; i++)
		if (marker_planted(&b[i])) {
			errno = SQ_ENOTREG;
			return -1;
		}
	b[0].input_failed = 0;
	if (sq_id_new(id, sizeof(id)) == -1 ||
	    source_write(b[0].q, id, mem, len, in, &total,
	    &b[0].input_failed) == -1)
		return -1;
	snprintf(src, sizeof(src), "%s%s", SOURCE_PREFIX, id);
	sources.n = 1;
	sources.s[0].dev = b[0].q->dev;
	sources.s[0].tmpfd = b[0].q->tmpfd;
	for (i = 0; i < n; i++) {
		if (fan_one(&b[0], &b[i], &sources, src, id, total) == -1) {
			saved = errno;
			rc = -1;
			break;
		}
		(*delivered)++;
	}
	for (i = 0; i < sources.n; i++)
		unlinkat(sources.s[i].tmpfd, src, 0);
	errno = saved;
	return rc;
}

int
sq_fanout_add(struct sq_batch *b, size_t n, const void *body, size_t len,
    size_t *delivered)
{
	return fanout(b, n, body, len, -1, delivered);
}

int
sq_fanout_add_fd(struct sq_batch *b, size_t n, int fd, size_t *delivered)
{
	return fanout(b, n, NULL, 0, fd, delivered);
}
