/*
 * settle.c - receipts and the ways a claim ends: ack, retry, reject,
 * touch.
 *
 * A receipt is the path of a claimed file.  It is never trusted: it must
 * name a regular file directly inside the cur/ directory of a queue (the
 * same inode as that queue's cur/), with no ".." component and a name
 * that parses as a claim.  Every settlement is one rename or unlink of
 * cur/NAME (settle_commit); if the lease was lost (the message was
 * recovered and claimed again, so its name changed) the call fails with
 * ENOENT and changes nothing.  A commit the file system reported failed
 * but made (NFS: a lost reply) is judged by what is on disk, never taken
 * for a lost lease: a rename by the name it chose, an unlink by the ID
 * being under no other name (commit.c).
 *
 * At-most-once delivery (qrecv -A) takes a claim out of sight before its
 * body is shown: cur/NAME is renamed to tmp/NAME (the commit point: no
 * consumer looks into tmp/), then acknowledged once the body is out, or
 * given back to new/ when it could not be written.  A crash in between
 * leaves tmp/NAME, which qadmin gc removes once its lease and the tmp/
 * age are over: the message is never delivered twice.  An archiving
 * queue takes it straight into archive/, its ack, so the archive keeps
 * every message taken; a body not written is given back from there.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static int
has_dotdot(const char *path)
{
	const char *p = path;

	while ((p = strstr(p, "..")) != NULL) {
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return 1;
		p += 2;
	}
	return 0;
}

int
sq_receipt_split(const char *path, char *qdir, size_t qdirsize, char *name,
    size_t namesize)
{
	char dir[PATH_MAX], *slash;
	const char *base;
	struct sq_name n;
	size_t len;

	if (has_dotdot(path) || strlcpy(dir, path, sizeof(dir)) >= sizeof(dir))
		goto bad;
	if ((slash = strrchr(dir, '/')) == NULL) {
		base = path;
		dir[0] = '\0';
	} else {
		*slash = '\0';
		base = path + (slash - dir) + 1;
	}
	if (sq_name_parse(&n, base) == -1 || n.lease < 0 ||
	    strlcpy(name, base, namesize) >= namesize)
		goto bad;
	len = strlen(dir);
	while (len > 0 && dir[len - 1] == '/')
		dir[--len] = '\0';
	if (len == 0 && slash == NULL) {
		/* A bare name: the current directory is the cur/. */
		return strlcpy(qdir, "..", qdirsize) < qdirsize ? 0 : -1;
	}
	if (len == 0 && slash != NULL)
		goto bad;		/* "/NAME" */
	if (strcmp(dir, "cur") == 0 || strcmp(dir, "./cur") == 0)
		return strlcpy(qdir, ".", qdirsize) < qdirsize ? 0 : -1;
	if (len < 4 || strcmp(dir + len - 4, "/cur") != 0)
		goto bad;
	dir[len - 4] = '\0';
	if (dir[0] == '\0')
		strlcpy(dir, "/", sizeof(dir));
	if (strlcpy(qdir, dir, qdirsize) >= qdirsize)
		goto bad;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

int
sq_receipt_check(struct sq_queue *q, const char *name)
{
	struct stat st;

	if (fstatat(q->curfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
sq_receipt_open(const char *path, struct sq_queue *q, char *name, char *err,
    size_t errsize)
{
	char qdir[PATH_MAX], dir[PATH_MAX], *slash;
	struct stat a, b;
	int saved;

	q->fd = -1;
	if (sq_receipt_split(path, qdir, sizeof(qdir), name, SQ_NAME_MAX + 1)
	    == -1) {
		snprintf(err, errsize, "%s: not a receipt", path);
		return -1;
	}
	if (sq_queue_open(q, qdir, err, errsize) == -1) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
			snprintf(err, errsize, "%s: not a receipt", path);
			errno = EINVAL;
		}
		return -1;
	}
	/* The receipt's directory must be this very queue's cur/. */
	strlcpy(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	else
		strlcpy(dir, ".", sizeof(dir));
	if (stat(dir[0] ? dir : "/", &a) == -1 || fstat(q->curfd, &b) == -1 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		sq_queue_close(q);
		snprintf(err, errsize, "%s: not a receipt", path);
		errno = EINVAL;
		return -1;
	}
	if (sq_receipt_check(q, name) == -1) {
		saved = errno;
		if (saved == SQ_ENOTREG && fstatat(q->curfd, name, &a,
		    AT_SYMLINK_NOFOLLOW) == 0)
			snprintf(err, errsize, "%s: not a regular file (%s)",
			    path, sq_mode_name(a.st_mode));
		else
			snprintf(err, errsize, "%s: %s", path, saved ==
			    ENOENT ? "lease lost or message already settled" :
			    "not a receipt");
		/* The queue stays open: the caller may go on with others. */
		errno = saved;
		return -1;
	}
	return 0;
}

/* Parse a claim's name; EINVAL when it is not one. */
static int
claim_name(const char *name, struct sq_name *n)
{
	if (sq_name_parse(n, name) == -1 || n->lease < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/*
 * What follows the unlink of an ack: counter, group, records (failures:
 * whether a failure record may be there).
 */
static void
acked(struct sq_queue *q, const struct sq_name *n, int failures)
{
	sq_counter_add(q, SQ_COUNT_ACKED, 1);
	sq_group_release(q, n);
	/* Redrives reset attempts: any message may have a failure record. */
	if (failures)
		failure_remove(q, n->id);
	if (n->has_attr)
		attr_remove(q, n->id);
}

/*
 * sq_receipt_check for a settle of cur/name to dir: a name gone after a
 * try in doubt is for settle_commit to judge.
 */
static int
settle_check(struct sq_queue *q, const char *name, const char *dir)
{
	if (sq_receipt_check(q, name) == 0)
		return 0;
	return errno == ENOENT && settle_doubted(q, name, dir, -1) ? 0 : -1;
}

/*
 * The dead-letter move of cur/name, n its dead form: into the queue
 * dead_letter names, else (none, or it could not be) into dead/.
 */
static int
settle_dead(struct sq_queue *q, const char *name, struct sq_name *n,
    char *newname)
{
	if (dead_letter_forward(q, q->curfd, name, n, newname) == 1)
		return 0;
	return settle_move(q, q->curfd, name, SQ_DIR_DEAD, q->deadfd, n,
	    newname);
}

int
ack_known(struct sq_queue *q, const char *name, int failures)
{
	struct sq_name n;

	if (claim_name(name, &n) == -1)
		return -1;
	if (q->conf.archive) {
		if (settle_check(q, name, SQ_DIR_ARCHIVE) == -1 ||
		    archive_message(q, name, &n, NULL) == -1)
			return -1;
		sq_counter_add(q, SQ_COUNT_ACKED, 1);
		sq_group_release(q, &n);
		return 0;
	}
	if (settle_check(q, name, SQ_DIR_CUR) == -1 ||
	    settle_commit(q, q->curfd, name, SQ_DIR_CUR, -1, NULL) == -1)
		return -1;
	acked(q, &n, failures);
	return 0;
}

int
sq_ack(struct sq_queue *q, const char *name)
{
	return ack_known(q, name, 1);
}

int
ack_records(struct sq_queue *q, size_t n)
{
	/*
	 * A failure record is written by the claim's last holder before the
	 * message left cur/ (sq_failure_write): one of these claims would
	 * have found it there already.  Two unlinks that fail cost less
	 * than the listing.
	 */
	return n > 2 ? !attr_none(q) : 1;
}

size_t
sq_ack_many(struct sq_queue *q, char (*names)[SQ_NAME_MAX + 1], size_t n,
    int *errs)
{
	size_t i, failed = 0;
	int failures;

	failures = ack_records(q, n);
	for (i = 0; i < n; i++) {
		errs[i] = ack_known(q, names[i], failures) == 0 ? 0 : errno;
		failed += errs[i] != 0;
	}
	return failed;
}

int
sq_retry(struct sq_queue *q, const char *name, int64_t delay_ms,
    const char *dead_reason, char *newname, int *dead)
{
	struct sq_name n;
	int64_t now_ms = sq_now_ms();

	if (claim_name(name, &n) == -1)
		return -1;
	*dead = n.attempts >= q->conf.max_attempts;
	if (*dead) {
		dead_name(&n, dead_reason ? dead_reason : SQ_REASON_ATTEMPTS);
		if (settle_check(q, name, SQ_DIR_DEAD) == -1 ||
		    settle_dead(q, name, &n, newname) == -1)
			return -1;
		sq_counter_add(q, SQ_COUNT_DEAD, 1);
		sq_group_release(q, &n);
		return 0;
	}
	if (settle_check(q, name, SQ_DIR_RETRY) == -1)
		return -1;
	if (delay_ms < 0)
		delay_ms = sq_conf_backoff_ms(&q->conf, n.attempts);
	/* A due time of now must be due at once: no rounding up then. */
	retry_name(&n, delay_ms > 0 ? SQ_MS_TO_S_CEIL(now_ms + delay_ms) :
	    now_ms / 1000);
	if (settle_move(q, q->curfd, name, SQ_DIR_RETRY, q->retryfd, &n,
	    newname) == -1)
		return -1;
	sq_counter_add(q, SQ_COUNT_RETRIED, 1);
	/* Best effort: maintenance also runs at least once a minute. */
	(void)index_lower_maint(q, n.due * 1000);
	return 0;
}

int
sq_reject(struct sq_queue *q, const char *name, const char *reason,
    char *newname)
{
	struct sq_name n;

	if (reason == NULL)
		reason = SQ_REASON_REJECTED;
	if (!sq_reason_valid(reason) || claim_name(name, &n) == -1) {
		errno = EINVAL;
		return -1;
	}
	if (settle_check(q, name, SQ_DIR_DEAD) == -1)
		return -1;
	dead_name(&n, reason);
	if (settle_dead(q, name, &n, newname) == -1)
		return -1;
	sq_counter_add(q, SQ_COUNT_DEAD, 1);
	sq_group_release(q, &n);
	return 0;
}

int
sq_touch(struct sq_queue *q, const char *name, int64_t lease_ms,
    char *newname)
{
	struct sq_name n;

	if (claim_name(name, &n) == -1 ||
	    settle_check(q, name, SQ_DIR_CUR) == -1)
		return -1;
	touched_name(&n, SQ_MS_TO_S_CEIL(sq_now_ms() + lease_ms));
	if (settle_move(q, q->curfd, name, SQ_DIR_CUR, q->curfd, &n,
	    newname) == -1)
		return -1;
	if (strcmp(newname, name) == 0)
		return 0;		/* same deadline, same receipt */
	/* A shorter lease must still be recovered on time (best effort). */
	(void)index_lower_maint(q, n.lease * 1000);
	return 0;
}

int
sq_take(struct sq_queue *q, const char *name, char *taken)
{
	struct sq_name n;
	char to[SQ_NAME_MAX + 1];

	if (claim_name(name, &n) == -1)
		return -1;
	if (q->conf.archive) {
		/* The ack of an archiving queue keeps it: that is all. */
		return settle_check(q, name, SQ_DIR_ARCHIVE) == -1 ? -1 :
		    archive_message(q, name, &n, taken);
	}
	/* Out of sight under the same name: the commit point of -A. */
	strlcpy(to, name, sizeof(to));
	if (settle_check(q, name, SQ_DIR_TMP) == -1 || settle_commit(q,
	    q->curfd, name, SQ_DIR_TMP, q->tmpfd, to) == -1)
		return -1;
	strlcpy(taken, to, SQ_NAME_MAX + 1);
	return 0;
}

int
sq_take_done(struct sq_queue *q, const char *taken)
{
	struct sq_name n;

	if (sq_name_parse(&n, taken) == -1) {
		errno = EINVAL;
		return -1;
	}
	if (q->conf.archive) {
		sq_counter_add(q, SQ_COUNT_ACKED, 1);
		sq_group_release(q, &n);
		return 0;		/* archived when taken */
	}
	/*
	 * Gone already (an unlink the file system made but reported failed,
	 * or qadmin gc's once the lease was over): acknowledged all the
	 * same, as settle_commit judges.
	 */
	if (settle_commit(q, q->tmpfd, taken, SQ_DIR_TMP, -1, NULL) == -1)
		return -1;
	acked(q, &n, 1);
	return 0;
}

int
sq_take_undo(struct sq_queue *q, const char *taken)
{
	char back[SQ_NAME_MAX + 1];
	struct sq_name n;
	int fd, rc, saved;

	if (sq_name_parse(&n, taken) == -1) {
		errno = EINVAL;
		return -1;
	}
	released_name(&n);
	if (!q->conf.archive)
		fd = q->tmpfd;
	else if ((fd = subdir_open(q->fd, SQ_DIR_ARCHIVE, 0)) == -1)
		return -1;
	rc = settle_move(q, fd, taken, SQ_DIR_NEW, q->newfd, &n, back);
	if (q->conf.archive) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	/* Offered again at once, ahead of newer names (best effort). */
	if (rc == 0)
		(void)index_offer(q, back);
	return rc;
}

int
sq_touch_undo(struct sq_queue *q, const char *newname, const char *name)
{
	struct sq_name a, b;

	if (claim_name(newname, &a) == -1 || claim_name(name, &b) == -1 ||
	    strcmp(a.id, b.id) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (strcmp(newname, name) == 0)
		return 0;
	return move_rename(q->curfd, newname, q->curfd, name);
}

int
sq_settle_again(struct sq_queue *q, sq_settle_fn *step, void *arg,
    sq_settle_log_fn *log, int *tries)
{
	struct sq_backoff b;
	int64_t wait_ms;
	int e;

	sq_backoff_init(&b, SQ_SETTLE_FIRST_MS, SQ_SETTLE_MAX_MS);
	settle_doubt_clear(q);
	for (*tries = 1; step(q, arg) == -1; ++*tries) {
		e = errno;
		if (!sq_error_stale(e) || *tries == SQ_SETTLE_TRIES) {
			settle_doubt_clear(q);
			errno = e;
			return -1;
		}
		wait_ms = sq_backoff_next(&b);
		if (log != NULL)
			log(*tries, e, wait_ms, arg);
		(void)poll(NULL, 0, (int)wait_ms);
		/* The file system may have dropped our directories. */
		(void)sq_queue_reopen(q);
	}
	return 0;
}
