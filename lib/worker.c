/*
 * worker.c - long-running consumers: worker locks, heartbeats, slots,
 * failure records, and the release of a claim.
 *
 * The lock is the state (nq): a worker holds flock(LOCK_EX) on
 * run/worker.TOKEN for its whole life, and its claims carry w=TOKEN.
 * When the process dies the kernel drops the lock, so any consumer that
 * can take the lock knows the worker is gone and may return its claims
 * at once.  A live lock with an old mtime is a hung worker (stopped, or
 * cut off from a shared file system): the worker touches the file at
 * least every lease/3, and a heartbeat older than the lease counts as
 * dead for its claims.  Which lease: the one the worker wrote into the
 * file itself ("heartbeat=MS lease=MS pid=N"), never the reader's
 * queue.conf, which may have changed since the worker read it (SPEC 2:
 * liveness is judged from what the worker recorded).  A rewrite of the
 * record is also a heartbeat, so a reader that catches one half written
 * sees a fresh mtime and judges the worker alive whatever it parses.
 * A worker bound to its queue (sq_worker_bind) also beats from within a
 * claim, before the claim rename, whenever a heartbeat interval of the
 * monotonic clock (CLOCK_BOOTTIME, which counts a suspended host) has
 * passed since its last beat: a worker stopped in the middle of a claim
 * beats before it claims once resumed, so its fresh claims never read as
 * hung; it beats again after the rename, so a pause during the rename is
 * caught and the claim looked at again (gone: recovered meanwhile).
 * The file is made under a dot name, locked, recorded, then renamed into
 * place, so no one ever sees it unlocked or empty while its worker lives.
 * Only flock(2) is used on these files, never fcntl locks (SPEC 2).
 *
 * A job outlives its worker when it started processes of its own: the
 * parent-death signal reaches the worker's child, not its children.  So
 * each job also holds a lock, run/job.TOKEN.ID, named after its claim's
 * w= token and message ID so that recovery finds it from the claim alone
 * (a batch job's one file has a name per claim, hard links).  The job
 * inherits the locked descriptor, and so does everything it forks: the
 * lock is free only once the whole tree has ended.  It carries the
 * worker's record and heartbeat, so a tree that lives on (or is stopped)
 * keeps the claim at most a lease past the worker's last beat.  The
 * descriptor the job gets is read-only, so that no stray write of the job
 * spoils or rewrites the record (the worker writes it through one of its
 * own), and a record that does not parse is judged by the queue's lease.
 * A job of the same user may still touch the file (its mtime) on
 * purpose, as the worker does at a heartbeat: it then keeps its claim as
 * one that runs on does.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define RUN_FLAGS	(O_CLOEXEC | O_NOFOLLOW)

int
sq_worker_token(char *buf, size_t size)
{
	static const char alphabet[] =
	    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	size_t i, len = 12;

	if (size <= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (i = 0; i < len; i++)
		buf[i] = alphabet[arc4random_uniform(sizeof(alphabet) - 1)];
	buf[len] = '\0';
	return 0;
}

static int
run_fd(struct sq_queue *q)
{
	return queue_subdir_open(q->fd, SQ_DIR_RUN, 1);
}

/* The record of sq_worker_record into buf (96 bytes); its length. */
static int
record_format(char *buf, int64_t heartbeat_ms, int64_t lease_ms)
{
	return snprintf(buf, 96, "heartbeat=%lld lease=%lld pid=%ld\n",
	    (long long)heartbeat_ms, (long long)lease_ms, (long)getpid());
}

int
sq_worker_record(int fd, int64_t heartbeat_ms, int64_t lease_ms)
{
	char buf[96];
	int len;

	len = record_format(buf, heartbeat_ms, lease_ms);
	if (pwrite(fd, buf, (size_t)len, 0) == len && ftruncate(fd, len) == 0)
		return futimens(fd, NULL);
	if (errno != ENOSPC && errno != EDQUOT)
		return -1;
	/*
	 * No room for the record (a full disk): an empty file, which never
	 * needs room, says "judge me by the queue's lease" (recorded_lease),
	 * rather than a record cut short or the one of a worker before.
	 */
	if (ftruncate(fd, 0) == -1 || futimens(fd, NULL) == -1)
		return -1;
	return 1;
}

int
sq_worker_recorded(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -1;
	return st.st_size > 0;
}

#define RECORD_MAX_MS	(100LL * 365 * 86400 * 1000)	/* 100 years */

/*
 * The lease recorded in an open lock file, in ms: 0 for an empty file
 * (a worker that records nothing: judge by the queue's lease), -1 for a
 * record that does not parse (caught half written: alive).  A job lock
 * (job set) is written in full before its job starts, never rewritten:
 * a record of one that does not parse, or whose figures no worker
 * writes, was spoilt since, and reads as empty (0), never as alive for
 * good.
 */
static int64_t
recorded_lease(int fd, int job)
{
	char buf[96];
	long long beat, lease;
	ssize_t n;

	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return n == 0 || job ? 0 : -1;
	buf[n] = '\0';
	if (sscanf(buf, "heartbeat=%lld lease=%lld", &beat, &lease) != 2 ||
	    beat <= 0 || lease <= 0)
		return job ? 0 : -1;
	if (job && (beat > RECORD_MAX_MS || lease > RECORD_MAX_MS))
		return 0;
	/*
	 * No duration is longer than RECORD_MAX_MS (sq_duration_parse): a
	 * larger figure was not written by a worker, and must neither keep
	 * its claims forever nor overflow.
	 */
	if (beat > RECORD_MAX_MS)
		beat = RECORD_MAX_MS;
	if (lease > RECORD_MAX_MS)
		lease = RECORD_MAX_MS;
	return lease > 3 * beat ? lease : 3 * beat;
}

/*
 * Anyone who may look into run/ may read a lock file, whatever the
 * worker's umask: flock(2) on a read-only descriptor is how others judge
 * it live (probe), and what it records is no secret.  The file's status
 * goes into *st (its device and inode, for the caller's checks).
 */
static int
lock_readable_st(int fd, struct stat *st)
{
	if (fstat(fd, st) == -1)
		return -1;
	if ((st->st_mode & 0444) == 0444)
		return 0;
	return fchmod(fd, (st->st_mode & 0777) | 0444);
}

static int
lock_readable(int fd)
{
	struct stat st;

	return lock_readable_st(fd, &st);
}

/*
 * No room for a new file in run/ (ENOSPC, EDQUOT: no inode or directory
 * block left): take over the lock file of a dead worker instead, renamed
 * to tmp in dfd (a rename needs no new inode).  Its name goes, so its
 * claims read as dead, as once gc removes it.  Returns the locked
 * descriptor or -1 with errno ENOSPC when there is none.
 */
static int
lock_file_adopt(int dfd, const char *tmp)
{
	struct dirent *e;
	DIR *d;
	int fd = -1, lfd;

	if ((lfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1 || (d = fdopendir(lfd)) == NULL) {
		if (lfd != -1)
			close(lfd);
		errno = ENOSPC;
		return -1;
	}
	while (fd == -1 && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, SQ_WORKER_PREFIX,
		    sizeof(SQ_WORKER_PREFIX) - 1) != 0 ||
		    (fd = sq_open_regular(dfd, e->d_name, O_RDWR, 0, NULL)) ==
		    -1)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == -1 ||
		    sq_rename(dfd, e->d_name, dfd, tmp) == -1) {
			close(fd);
			fd = -1;
		}
	}
	closedir(d);
	if (fd == -1)
		errno = ENOSPC;
	return fd;
}

/*
 * Make run/worker.TOKEN under a dot name, lock and record it, and rename
 * it into place: over a file of that name when replace is set (the
 * worker's own, whose lock was lost), else never over one.  On a full
 * disk, a dead worker's file serves (lock_file_adopt), and the record may
 * be empty (sq_worker_record).
 */
static int
lock_file_make(struct sq_queue *q, const char *token, int64_t heartbeat_ms,
    int64_t lease_ms, int replace)
{
	char tmp[64], name[64];
	int dfd, fd = -1, saved;

	snprintf(tmp, sizeof(tmp), ".%s%s", SQ_WORKER_PREFIX, token);
	snprintf(name, sizeof(name), "%s%s", SQ_WORKER_PREFIX, token);
	if ((dfd = run_fd(q)) == -1)
		return -1;
	fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | RUN_FLAGS, 0666);
	if (fd == -1 && (errno == ENOSPC || errno == EDQUOT))
		fd = lock_file_adopt(dfd, tmp);
	if (fd == -1 || share_file(q->share, fd) == -1 ||
	    lock_readable(fd) == -1 || flock(fd, LOCK_EX | LOCK_NB) == -1 ||
	    sq_worker_record(fd, heartbeat_ms, lease_ms) == -1 ||
	    (replace ? renameat(dfd, tmp, dfd, name) :
	    sq_rename(dfd, tmp, dfd, name)) == -1)
		goto fail;
	close(dfd);
	return fd;
fail:
	saved = errno;
	if (fd != -1) {
		unlinkat(dfd, tmp, 0);
		close(fd);
	}
	close(dfd);
	errno = saved;
	return -1;
}

int
sq_worker_register(struct sq_queue *q, const char *token,
    int64_t heartbeat_ms, int64_t lease_ms)
{
	return lock_file_make(q, token, heartbeat_ms, lease_ms, 0);
}

int
sq_worker_lost(const struct sq_queue *q, int beat_errno)
{
	struct stat st;

	if (q->live_ms <= 0)
		return 0;
	if (beat_errno != 0)
		return sq_error_stale(beat_errno) || beat_errno == ENOENT;
	return fstat(q->live_fd, &st) == -1 ? sq_error_stale(errno) :
	    st.st_nlink == 0;
}

int
sq_worker_relock(struct sq_queue *q, const char *token, int64_t lease_ms)
{
	int fd;

	if (q->live_ms <= 0) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = lock_file_make(q, token, q->live_ms, lease_ms, 1)) == -1)
		return -1;
	close(q->live_fd);
	sq_worker_bind(q, fd, q->live_ms);
	return fd;
}

int
sq_worker_heartbeat(int fd)
{
	return futimens(fd, NULL);
}

void
sq_worker_bind(struct sq_queue *q, int fd, int64_t heartbeat_ms)
{
	q->live_fd = fd;
	q->live_ms = heartbeat_ms;
	q->live_at = sq_mono_ms();
}

int
sq_worker_beat(struct sq_queue *q)
{
	if (q->live_ms <= 0)
		return 0;
	if (futimens(q->live_fd, NULL) == -1)
		return -1;
	q->live_at = sq_mono_ms();
	return 0;
}

int
sq_worker_fresh(struct sq_queue *q)
{
	if (q->live_ms <= 0 || sq_mono_ms() - q->live_at < q->live_ms)
		return 0;
	return sq_worker_beat(q) == -1 ? -1 : 1;
}

int64_t
sq_worker_since(const struct sq_queue *q)
{
	return q->live_ms > 0 ? sq_mono_ms() - q->live_at : -1;
}

void
sq_worker_unregister(struct sq_queue *q, const char *token, int fd)
{
	char name[64];
	int dfd;

	snprintf(name, sizeof(name), "%s%s", SQ_WORKER_PREFIX, token);
	/* Unlink while still holding the lock: no one sees it free first. */
	if ((dfd = run_fd(q)) != -1) {
		unlinkat(dfd, name, 0);
		close(dfd);
	}
	close(fd);
}

/*
 * Probe a lock file in the run/ directory dfd.  For a live worker judged
 * by its heartbeat, *hung_ms (when not NULL) is set to the time its
 * heartbeat turns older than its lease, if it does not beat before: when
 * to probe again to find it hung with no delay.  Else it is left alone.
 */
static enum sq_worker_state
probe(struct sq_queue *q, int dfd, const char *name, int64_t now_ms,
    int reap, int job, int64_t *hung_ms)
{
	struct stat st;
	int64_t lease, beat_ms;
	int fd;
	enum sq_worker_state state;

	/*
	 * Read-only: probing must not look like a worker's close-write.
	 * A worker's lock is a regular file: anything else planted under
	 * its name is no worker, and never reaped (qadmin check reports it).
	 */
	if ((fd = sq_open_regular(dfd, name, O_RDONLY, 0, NULL)) == -1)
		return errno == ENOENT || errno == SQ_ENOTREG ?
		    SQ_WORKER_DEAD : SQ_WORKER_ALIVE;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		state = SQ_WORKER_DEAD;
		if (reap)
			unlinkat(dfd, name, 0);
	} else if (errno == EWOULDBLOCK && fstat(fd, &st) == 0 &&
	    (lease = recorded_lease(fd, job)) != -1) {
		if (lease == 0)
			lease = q->conf.lease_ms;
		beat_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000;
		if (now_ms - beat_ms > lease)
			state = SQ_WORKER_HUNG;
		else {
			state = SQ_WORKER_ALIVE;
			if (hung_ms != NULL)
				*hung_ms = beat_ms + lease + 1;
		}
	} else
		state = SQ_WORKER_ALIVE;
	close(fd);
	return state;
}

enum sq_worker_state
worker_probe_at(struct sq_queue *q, const char *token, int64_t now_ms,
    int64_t *hung_ms)
{
	char name[64];
	enum sq_worker_state state;
	int dfd;

	snprintf(name, sizeof(name), "%s%s", SQ_WORKER_PREFIX, token);
	if ((dfd = run_fd(q)) == -1)
		return SQ_WORKER_ALIVE;		/* cannot tell: leave it */
	state = probe(q, dfd, name, now_ms, 0, 0, hung_ms);
	close(dfd);
	return state;
}

enum sq_worker_state
sq_worker_probe(struct sq_queue *q, const char *token, int64_t now_ms)
{
	return worker_probe_at(q, token, now_ms, NULL);
}

int
sq_workers_check(struct sq_queue *q, int64_t now_ms)
{
	return workers_check(q, now_ms, NULL);
}

int
workers_check(struct sq_queue *q, int64_t now_ms, const char *own)
{
	const size_t plen = sizeof(SQ_WORKER_PREFIX) - 1;
	struct dirent *e;
	DIR *d;
	int dfd, found = 0;

	if ((dfd = run_fd(q)) == -1)
		return -1;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, SQ_WORKER_PREFIX, plen) != 0 ||
		    (own != NULL && strcmp(e->d_name + plen, own) == 0))
			continue;
		if (!sq_entry_regular(dirfd(d), e->d_name, e->d_type))
			continue;	/* no worker's lock */
		/* A dead worker's file goes now: its claims read as dead. */
		if (probe(q, dirfd(d), e->d_name, now_ms, 1, 0, NULL) !=
		    SQ_WORKER_ALIVE)
			found = 1;
	}
	closedir(d);
	return found;
}

/* run/job.TOKEN.ID into buf (size > SQ_NAME_MAX). */
static int
job_name(char *buf, size_t size, const char *token, const char *id)
{
	if ((size_t)snprintf(buf, size, "%s%s.%s", SQ_JOB_PREFIX, token, id) >=
	    size || strlen(buf) > SQ_NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * run/ of q, kept open in q->runfd for the job locks: a worker makes and
 * removes one per job, and opening and closing run/ around each call
 * would cost as many system calls again as the lock itself.  fresh drops
 * the one kept and opens run/ anew (making it when missing): for a name
 * to make, not found because run/ was removed or replaced since.
 */
static int
job_dir(struct sq_queue *q, int fresh)
{
	if (q->run_open && fresh) {
		close(q->runfd);
		q->run_open = 0;
	}
	if (!q->run_open) {
		if ((q->runfd = run_fd(q)) == -1)
			return -1;
		q->run_open = 1;
	}
	return q->runfd;
}

/*
 * A job lock's name, name in dfd, was found taken (EEXIST) by a create
 * or a link: a leftover of this worker, whose claim was settled, when it
 * is a regular file, removed here so that the caller makes it again.
 * Anything else there (a FIFO, a symlink, a directory, a socket, a
 * device: planted) is never removed, opened or followed (spoolq(5)
 * "Entries that are not regular files"): qadmin check reports it and
 * check --repair moves it to quarantine/.  Returns 0 (removed, or gone
 * meanwhile), or -1 with errno (SQ_ENOTREG for such an entry).
 */
static int
job_leftover_remove(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISREG(st.st_mode)) {
		errno = SQ_ENOTREG;
		return -1;
	}
	return unlinkat(dfd, name, 0) == -1 && errno != ENOENT ? -1 : 0;
}

int
sq_job_lock(struct sq_queue *q, const char *token, const char *id,
    int64_t heartbeat_ms, int64_t lease_ms)
{
	char name[SQ_NAME_MAX + 2], rec[96];
	struct stat st, own;
	ssize_t n;
	int dfd, fd, wfd = -1, len, saved;

	if (job_name(name, sizeof(name), token, id) == -1 ||
	    (dfd = job_dir(q, 0)) == -1)
		return -1;
	/*
	 * No dot name and rename, as for the worker's lock: the job lock
	 * is looked at only once its worker is gone, and a job lock that
	 * is still free or empty then belongs to a job that never ran.
	 * A regular file of this name is a leftover of this worker (one
	 * that could not be removed): its claim was settled, so replace it;
	 * anything else there is refused (job_leftover_remove).
	 * The locked description goes to the job, so it is read-only: a
	 * job that writes to it by mistake cannot spoil the record.
	 */
	fd = openat(dfd, name, O_RDONLY | O_CREAT | O_EXCL | RUN_FLAGS, 0666);
	if (fd == -1 && errno == ENOENT && (dfd = job_dir(q, 1)) != -1)
		fd = openat(dfd, name, O_RDONLY | O_CREAT | O_EXCL | RUN_FLAGS,
		    0666);
	if (fd == -1 && errno == EEXIST && job_leftover_remove(dfd, name) ==
	    0)
		fd = openat(dfd, name, O_RDONLY | O_CREAT | O_EXCL | RUN_FLAGS,
		    0666);
	if (fd == -1) {
		saved = errno;
		errno = saved == EEXIST ? SQ_ENOTREG : saved;
		return -1;	/* nothing of ours to remove */
	}
	if (share_file(q->share, fd) == -1 || lock_readable_st(fd, &own) ==
	    -1 || flock(fd, LOCK_EX | LOCK_NB) == -1)
		goto fail;
	/*
	 * The record goes through a descriptor of the worker's own, never
	 * passed on, opened once the file is locked: no one removes a held
	 * lock of a live worker meanwhile (O_NONBLOCK: nor blocks on a FIFO
	 * planted in its place).  The file is new: one write is the whole
	 * record, and its mtime the first beat.  Without room for it
	 * (ENOSPC, EDQUOT) the file is left empty, judged by the queue's
	 * lease (recorded_lease), never with part of a record, which would
	 * read as alive for good.  The descriptor keeps O_NONBLOCK, which
	 * changes nothing for a regular file, rather than an fcntl(2) to
	 * take it off; own is the locked file's status from
	 * lock_readable_st (a chmod does not change which file it is).
	 */
	len = record_format(rec, heartbeat_ms, lease_ms);
	if ((wfd = sq_open_regular(dfd, name, O_WRONLY | O_NONBLOCK, 0,
	    &st)) == -1)
		goto fail;
	if (st.st_dev != own.st_dev || st.st_ino != own.st_ino) {
		errno = ESTALE;	/* replaced since: not ours to write */
		goto fail;
	}
	if ((n = pwrite(wfd, rec, (size_t)len, 0)) != len) {
		if (n == -1 && errno != ENOSPC && errno != EDQUOT)
			goto fail;
		if (ftruncate(wfd, 0) == -1)
			goto fail;
	}
	close(wfd);
	return fd;
fail:
	saved = errno;
	if (wfd != -1)
		close(wfd);
	/* Our file only: what took its name meanwhile stays. */
	if (fstat(fd, &own) == 0 && fstatat(dfd, name, &st,
	    AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == own.st_dev &&
	    st.st_ino == own.st_ino)
		unlinkat(dfd, name, 0);
	close(fd);
	errno = saved;
	return -1;
}

int
sq_job_lock_link(struct sq_queue *q, const char *token, const char *id,
    const char *also)
{
	char name[SQ_NAME_MAX + 2], link[SQ_NAME_MAX + 2];
	int dfd, rc;

	if (job_name(name, sizeof(name), token, id) == -1 ||
	    job_name(link, sizeof(link), token, also) == -1 ||
	    (dfd = job_dir(q, 0)) == -1)
		return -1;
	rc = linkat(dfd, name, dfd, link, 0);
	if (rc == -1 && errno == EEXIST && job_leftover_remove(dfd, link) ==
	    0)
		rc = linkat(dfd, name, dfd, link, 0);	/* a leftover */
	if (rc == -1 && errno == EEXIST)
		errno = SQ_ENOTREG;	/* taken again meanwhile */
	return rc;
}

void
sq_job_unlock(struct sq_queue *q, const char *token, const char *id)
{
	char name[SQ_NAME_MAX + 2];
	int dfd;

	if (job_name(name, sizeof(name), token, id) == -1 ||
	    (dfd = job_dir(q, 0)) == -1)
		return;
	unlinkat(dfd, name, 0);
}

enum sq_worker_state
job_probe_at(struct sq_queue *q, const char *token, const char *id,
    int64_t now_ms, int reap, int64_t *hung_ms)
{
	char name[SQ_NAME_MAX + 2];
	enum sq_worker_state state;
	int dfd;

	if (job_name(name, sizeof(name), token, id) == -1)
		return SQ_WORKER_DEAD;		/* no such lock is ever made */
	if ((dfd = subdir_open(q->fd, SQ_DIR_RUN, 0)) == -1)
		return errno == ENOENT ? SQ_WORKER_DEAD : SQ_WORKER_ALIVE;
	state = probe(q, dfd, name, now_ms, reap, 1, hung_ms);
	close(dfd);
	return state;
}

enum sq_worker_state
sq_job_probe(struct sq_queue *q, const char *token, const char *id,
    int64_t now_ms)
{
	return job_probe_at(q, token, id, now_ms, 0, NULL);
}

int
sq_slot_take(struct sq_queue *q, unsigned nslots, int *fdp)
{
	char name[32];
	unsigned i;
	int dfd, fd;

	if ((dfd = run_fd(q)) == -1)
		return -1;
	for (i = 0; i < nslots; i++) {
		snprintf(name, sizeof(name), "%s%u", SQ_SLOT_PREFIX, i);
		fd = sq_open_regular(dfd, name, O_RDWR | O_CREAT, 0666, NULL);
		if (fd == -1 && errno == SQ_ENOTREG)
			continue;	/* something planted: not a slot */
		if (fd == -1) {
			close(dfd);
			return -1;
		}
		share_file(q->share, fd);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			close(dfd);
			*fdp = fd;
			return 0;
		}
		close(fd);
		if (errno != EWOULDBLOCK) {
			close(dfd);
			return -1;
		}
	}
	close(dfd);
	return 1;
}

int
sq_failure_write(struct sq_queue *q, const char *id, const char *text,
    size_t len)
{
	char name[SQ_ID_MAX + 16], tmp[SQ_ID_MAX + 48];
	int afd, fd, rc = -1, saved;

	if ((afd = sq_state_attr(q, 1)) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s%s", id, SQ_FAILURE_SUFFIX);
	snprintf(tmp, sizeof(tmp), ".%s.%ld", name, (long)getpid());
	fd = sq_open_regular(afd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666,
	    NULL);
	if (fd == -1)
		goto out;
	share_file(q->share, fd);
	if (sq_write_all(fd, text, len) == -1 || close(fd) == -1 ||
	    renameat(afd, tmp, afd, name) == -1) {
		saved = errno;
		unlinkat(afd, tmp, 0);
		errno = saved;
		goto out;
	}
	rc = 0;
out:
	saved = errno;
	close(afd);
	errno = saved;
	return rc;
}

/* Move the claim cur/name back to new/; uncount: the attempt too. */
static int
give_back(struct sq_queue *q, const char *name, int uncount)
{
	char back[SQ_NAME_MAX + 1];
	struct sq_name n;

	if (sq_name_parse(&n, name) == -1 || n.lease < 0) {
		errno = EINVAL;
		return -1;
	}
	if (uncount)
		released_name(&n);
	else
		ready_name(&n);
	/* Made though reported failed: given back (settle_move). */
	if (settle_move(q, q->curfd, name, SQ_DIR_NEW, q->newfd, &n, back) ==
	    -1)
		return -1;
	/* Offered again at once, ahead of newer names (best effort). */
	(void)index_offer(q, back);
	return 0;
}

int
sq_release(struct sq_queue *q, const char *name)
{
	return give_back(q, name, 1);
}

int
sq_unclaim(struct sq_queue *q, const char *name)
{
	int saved;

	if (give_back(q, name, 0) == 0)
		return 0;
	saved = errno;
	(void)index_lower_maint(q, sq_now_ms());
	errno = saved;
	return -1;
}
