/*
 * worker_test.c - what a worker's lock file record may make consumers
 * believe: a held lock whose heartbeat is old enough is hung, whatever
 * figures a hand-written record holds, and none overflows; how a bound
 * worker beats before a claim, makes a lost lock file again, and gives
 * back a claim it could not settle; how a job lock keeps the claims of a
 * worker that is gone, that run/ is opened once for all job locks, and
 * that an entry planted under a job lock's name is never removed; and
 * that a worker's claim that comes up short probes the other workers'
 * locks, not its own (openat(2) is interposed to count opens of them).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"
#include "tap_queue.h"
#include "tap_openat.h"

#define YEAR_MS		(365LL * 86400 * 1000)

static int opens_own, opens_other;	/* of run/worker.own, .other */

static void
tap_openat_seen(const char *name)
{
	if (strcmp(name, SQ_WORKER_PREFIX "own") == 0)
		opens_own++;
	else if (strcmp(name, SQ_WORKER_PREFIX "other") == 0)
		opens_other++;
}

/*
 * A claim by the worker "own" of an empty queue comes up short and
 * probes the worker locks: the other live worker's, not its own, which
 * it holds itself.
 */
static void
own_lock(struct sq_queue *q)
{
	struct sq_claim c[1];
	size_t got;
	int64_t next;
	int own, other;

	own = sq_worker_register(q, "own", 10000, 300000);
	other = sq_worker_register(q, "other", 10000, 300000);
	ok(own != -1 && other != -1, "two live workers");
	opens_own = opens_other = 0;
	ok(sq_claim(q, 0, "own", c, 1, &got, &next) == 0 && got == 0,
	    "a claim of an empty queue by one comes up short");
	ok(opens_other == 1, "the other's lock is probed (%d)", opens_other);
	ok(opens_own == 0, "its own is not (%d)", opens_own);
	opens_own = opens_other = 0;
	ok(sq_workers_check(q, sq_now_ms()) == 0 && opens_own == 1 &&
	    opens_other == 1, "sq_workers_check probes both, both alive");
	if (own != -1)
		sq_worker_unregister(q, "own", own);
	if (other != -1)
		sq_worker_unregister(q, "other", other);
}

/* Write record as run/worker.T of q, hold its lock, probe at mtime + age. */
static enum sq_worker_state
probe(struct sq_queue *q, const char *record, int64_t age_ms)
{
	enum sq_worker_state st;
	struct stat sb;
	int fd;

	fd = openat(q->fd, SQ_DIR_RUN "/" SQ_WORKER_PREFIX "T", O_RDWR |
	    O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1 || write(fd, record, strlen(record)) == -1 ||
	    flock(fd, LOCK_EX) == -1 || fstat(fd, &sb) == -1)
		return (enum sq_worker_state)-1;
	st = sq_worker_probe(q, "T", (int64_t)sb.st_mtim.tv_sec * 1000 +
	    sb.st_mtim.tv_nsec / 1000000 + age_ms);
	close(fd);
	return st;
}

/* The one name in dir of q (fd), or "" when none or more. */
static const char *
only_name(int fd, char *buf, size_t size)
{
	struct dirent *e;
	DIR *d;
	int n = 0, dfd;

	buf[0] = '\0';
	if ((dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY)) == -1 ||
	    (d = fdopendir(dfd)) == NULL)
		return buf;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && n++ == 0)
			strlcpy(buf, e->d_name, size);
	closedir(d);
	if (n != 1)
		buf[0] = '\0';
	return buf;
}

static void
liveness(struct sq_queue *q)
{
	char name[SQ_NAME_MAX + 1], path[64];
	struct sq_batch batch;
	struct sq_claim c;
	struct stat a, b;
	size_t got;
	int64_t next, since;
	int fd, nfd;

	ok(sq_worker_fresh(q) == 0 && sq_worker_since(q) == -1 &&
	    sq_worker_beat(q) == 0 && !sq_worker_lost(q, 0),
	    "no worker bound: nothing to beat, nothing lost");
	fd = sq_worker_register(q, "B", 50, 1000);
	ok(fd != -1, "register a worker");
	sq_worker_bind(q, fd, 3600000);
	ok(sq_worker_fresh(q) == 0, "just bound: no beat due");
	sq_worker_bind(q, fd, 50);
	fstat(fd, &a);
	poll(NULL, 0, 60);
	ok((since = sq_worker_since(q)) >= 60,
	    "the time since the beat is counted");
	ok(sq_worker_fresh(q) == 1 && sq_worker_since(q) < since,
	    "a heartbeat interval later, fresh beats");
	fstat(fd, &b);
	ok(b.st_mtim.tv_sec > a.st_mtim.tv_sec ||
	    (b.st_mtim.tv_sec == a.st_mtim.tv_sec &&
	    b.st_mtim.tv_nsec > a.st_mtim.tv_nsec), "the beat sets the mtime");
	ok(!sq_worker_lost(q, 0) && sq_worker_lost(q, EBADFD) &&
	    !sq_worker_lost(q, EACCES), "a dropped descriptor is a lost lock");
	snprintf(path, sizeof(path), "%s/%sB", SQ_DIR_RUN, SQ_WORKER_PREFIX);
	unlinkat(q->fd, path, 0);
	ok(sq_worker_lost(q, 0), "so is a removed lock file");
	nfd = sq_worker_relock(q, "B", 1000);
	ok(nfd != -1 && q->live_fd == nfd && !sq_worker_lost(q, 0) &&
	    sq_worker_probe(q, "B", sq_now_ms()) == SQ_WORKER_ALIVE,
	    "made again: locked, bound and alive");
	if (nfd != -1)
		fd = nfd;
	poll(NULL, 0, 60);
	since = sq_worker_since(q);
	ok(sq_worker_relock(q, "B", 1000) != -1 &&
	    sq_worker_since(q) < since, "made again over the old file, a beat");
	fd = q->live_fd;
	sq_batch_begin(&batch, q, NULL, NULL);
	if (sq_batch_add(&batch, "x", 1) == -1 || sq_batch_end(&batch) == -1)
		sq_batch_abort(&batch);
	ok(sq_claim(q, 0, "B", &c, 1, &got, &next) == 0 && got == 1 &&
	    sq_unclaim(q, c.name) == 0, "claim, then give back unsettled");
	ok(strstr(only_name(q->newfd, name, sizeof(name)), ",a=1") != NULL &&
	    strstr(name, ",w=") == NULL,
	    "given back ready, the attempt counted, no token");
	sq_worker_unregister(q, "B", fd);
	sq_worker_bind(q, -1, 0);
}

/* Whether run/job.J.id exists in q. */
static int
job_file(struct sq_queue *q, const char *id)
{
	char path[SQ_NAME_MAX + 8];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%sJ.%s", SQ_DIR_RUN, SQ_JOB_PREFIX,
	    id);
	return fstatat(q->fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/*
 * A job lock keeps the claims of a worker that is gone (J never
 * registered) while held, within its lease; a link names it per claim.
 */
static void
job_locks(struct sq_queue *q)
{
	struct sq_batch batch;
	struct sq_claim c[2];
	struct sq_maint m;
	struct stat sb;
	size_t got;
	int64_t next, now, mtime;
	int fd;

	sq_batch_begin(&batch, q, NULL, NULL);
	if (sq_batch_add(&batch, "j1", 2) == -1 ||
	    sq_batch_add(&batch, "j2", 2) == -1 || sq_batch_end(&batch) == -1)
		sq_batch_abort(&batch);
	ok(sq_claim(q, 0, "J", c, 2, &got, &next) == 0 && got == 2,
	    "claim two messages for worker J");
	fd = sq_job_lock(q, "J", c[0].n.id, 1000, 3000);
	ok(fd != -1 && sq_job_lock_link(q, "J", c[0].n.id, c[1].n.id) == 0 &&
	    job_file(q, c[0].n.id) && job_file(q, c[1].n.id),
	    "a job lock, named for each claim");
	fstat(fd, &sb);
	mtime = (int64_t)sb.st_mtim.tv_sec * 1000 +
	    sb.st_mtim.tv_nsec / 1000000;
	ok(sq_job_probe(q, "J", c[1].n.id, mtime) == SQ_WORKER_ALIVE &&
	    sq_job_probe(q, "J", c[1].n.id, mtime + 3001) == SQ_WORKER_HUNG &&
	    sq_job_probe(q, "J", "no.such", mtime) == SQ_WORKER_DEAD,
	    "held: alive within the recorded lease, hung past it");
	now = sq_now_ms();
	ok(sq_queue_maintain(q, now, &m) == 0 && m.recovered == 0 &&
	    m.next_ms <= now + 1000,
	    "its worker gone, a held job lock keeps the claims; look again");
	ok(sq_queue_maintain(q, mtime + 3001, &m) == 0 && m.recovered == 2,
	    "past its lease, they are recovered all the same");
	ok(job_file(q, c[0].n.id) && job_file(q, c[1].n.id),
	    "the held lock is left alone");
	close(fd);
	ok(sq_claim(q, 0, "J", c, 2, &got, &next) == 0 && got == 2 &&
	    (fd = sq_job_lock(q, "J", c[0].n.id, 1000, 3000)) != -1 &&
	    sq_job_lock_link(q, "J", c[0].n.id, c[1].n.id) == 0,
	    "claimed again: a leftover of the same name is replaced");
	close(fd);
	now = sq_now_ms();
	ok(sq_queue_maintain(q, now, &m) == 0 && m.recovered == 2 &&
	    !job_file(q, c[0].n.id) && !job_file(q, c[1].n.id),
	    "free: the claims are recovered at once, the lock files removed");
	ok(sq_claim(q, 0, "J", c, 1, &got, &next) == 0 && got == 1 &&
	    (fd = sq_job_lock(q, "J", c[0].n.id, 1000, 3000)) != -1,
	    "lock a job");
	sq_job_unlock(q, "J", c[0].n.id);
	ok(!job_file(q, c[0].n.id), "sq_job_unlock removes its name");
	close(fd);
}

/* Descriptors open in this process. */
static int
open_fds(void)
{
	struct dirent *e;
	DIR *d;
	int n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;		/* less opendir's own */
}

/* Remove run/ of q and every file in it. */
static int
run_remove(struct sq_queue *q)
{
	struct dirent *e;
	DIR *d;
	int dfd;

	if ((dfd = openat(q->fd, SQ_DIR_RUN, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (d = fdopendir(dfd)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0))
			unlinkat(dfd, e->d_name, 0);
	closedir(d);
	return unlinkat(q->fd, SQ_DIR_RUN, AT_REMOVEDIR);
}

/*
 * A job lock is made and removed in a run/ opened once, not once per
 * call (each job of a worker makes one), and one made after run/ was
 * removed goes into a new run/; sq_queue_close closes it.  On q opened
 * anew from path, so that no run/ is open yet.
 */
static void
job_lock_dir(const char *path)
{
	struct sq_queue qq, *q = &qq;
	char err[PATH_MAX + 64];
	int fd, i, n, n0, n1 = -1, kept = 1;

	n = open_fds();
	if (sq_queue_open(q, path, err, sizeof(err)) == -1) {
		ok(0, "open %s: %s", path, err);
		return;
	}
	n0 = open_fds();
	for (i = 0; i < 3; i++) {
		if ((fd = sq_job_lock(q, "J", "1.1.1_0_0.h", 1000, 3000)) ==
		    -1) {
			kept = 0;
			break;
		}
		sq_job_unlock(q, "J", "1.1.1_0_0.h");
		close(fd);
		if (i == 0)
			n1 = open_fds();
		else if (open_fds() != n1)
			kept = 0;
	}
	ok(kept && n0 != -1 && n1 == n0 + 1,
	    "three job locks: run/ opened once and kept (%d, then %d fds)",
	    n0, n1);
	ok(run_remove(q) == 0, "run/ removed");
	fd = sq_job_lock(q, "J", "2.2.2_0_0.h", 1000, 3000);
	ok(fd != -1 && job_file(q, "2.2.2_0_0.h") && open_fds() == n1 + 1,
	    "a job lock after that goes into a new run/, opened in place of "
	    "the old");
	sq_job_unlock(q, "J", "2.2.2_0_0.h");
	ok(!job_file(q, "2.2.2_0_0.h"), "and is removed from it");
	close(fd);
	sq_queue_close(q);
	ok(open_fds() == n, "sq_queue_close closes run/ with the rest");
}

/*
 * What takes a job lock's name that is not a regular file (a FIFO, a
 * symlink, a directory) is never removed, opened or followed by
 * sq_job_lock or sq_job_lock_link: they fail with SQ_ENOTREG and leave
 * it as it was; a regular leftover is replaced.
 */
static void
job_lock_planted(struct sq_queue *q, const char *dir)
{
	static const char *const kinds[] = { "FIFO", "symlink", "directory" };
	char path[PATH_MAX * 2], target[PATH_MAX * 2], rel[SQ_NAME_MAX + 8];
	struct stat st, was;
	size_t i;
	int fd, rc, e, kept;

	snprintf(target, sizeof(target), "%s/target", dir);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		snprintf(rel, sizeof(rel), "%s/%sJ.3.3.3_0_%zu.h", SQ_DIR_RUN,
		    SQ_JOB_PREFIX, i);
		snprintf(path, sizeof(path), "%s/%s", q->path, rel);
		unlink(target);
		close(open(target, O_WRONLY | O_CREAT, 0600));
		rc = i == 0 ? mkfifo(path, 0600) : i == 1 ?
		    symlink(target, path) : mkdir(path, 0700);
		ok(rc == 0 && lstat(path, &was) == 0, "a %s planted at %s",
		    kinds[i], rel);
		snprintf(rel, sizeof(rel), "3.3.3_0_%zu.h", i);
		fd = sq_job_lock(q, "J", rel, 1000, 3000);
		e = errno;
		kept = lstat(path, &st) == 0 && st.st_ino == was.st_ino &&
		    (st.st_mode & S_IFMT) == (was.st_mode & S_IFMT);
		ok(fd == -1 && e == SQ_ENOTREG && kept,
		    "sq_job_lock refuses it (%s) and leaves it", strerror(e));
		if (fd != -1)
			close(fd);
		ok(stat(target, &st) == 0 && st.st_size == 0,
		    "nothing written through it");
		/* A link of another job's lock onto that name: the same. */
		fd = sq_job_lock(q, "J", "4.4.4_0_0.h", 1000, 3000);
		rc = sq_job_lock_link(q, "J", "4.4.4_0_0.h", rel);
		e = errno;
		kept = lstat(path, &st) == 0 && st.st_ino == was.st_ino;
		ok(fd != -1 && rc == -1 && e == SQ_ENOTREG && kept,
		    "sq_job_lock_link refuses it too and leaves it");
		sq_job_unlock(q, "J", "4.4.4_0_0.h");
		if (fd != -1)
			close(fd);
		if (i == 2)
			rmdir(path);
		else
			unlink(path);
	}
	/* A regular leftover of this worker is replaced. */
	snprintf(path, sizeof(path), "%s/%s/%sJ.5.5.5_0_0.h", q->path,
	    SQ_DIR_RUN, SQ_JOB_PREFIX);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	fd = sq_job_lock(q, "J", "5.5.5_0_0.h", 1000, 3000);
	ok(fd != -1 && stat(path, &st) == 0 && st.st_size > 0,
	    "a regular leftover is replaced by a new job lock");
	sq_job_unlock(q, "J", "5.5.5_0_0.h");
	if (fd != -1)
		close(fd);
	unlink(target);
}

int
main(void)
{
	struct tap_queue t;
	struct sq_queue q;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	own_lock(&q);
	ok(probe(&q, "heartbeat=10000 lease=300000 pid=1\n", 0) ==
	    SQ_WORKER_ALIVE, "a fresh heartbeat is alive");
	ok(probe(&q, "heartbeat=10000 lease=300000 pid=1\n", 300001) ==
	    SQ_WORKER_HUNG, "one older than the recorded lease is hung");
	ok(probe(&q, "heartbeat=10000 lease=300000 pid=1\n", 299000) ==
	    SQ_WORKER_ALIVE, "one within the recorded lease is alive");
	ok(probe(&q, "heartbeat=10000 lease=", 1000 * YEAR_MS) ==
	    SQ_WORKER_ALIVE, "a record caught half written is alive");
	ok(probe(&q, "heartbeat=10 lease=99999999999999999999999 pid=1\n",
	    1000 * YEAR_MS) == SQ_WORKER_HUNG,
	    "a lease past any duration does not keep claims forever");
	ok(probe(&q, "heartbeat=4000000000000000000 lease=1 pid=1\n",
	    1000 * YEAR_MS) == SQ_WORKER_HUNG,
	    "nor does a heartbeat whose triple overflows");
	liveness(&q);
	job_locks(&q);
	job_lock_dir(q.path);
	job_lock_planted(&q, t.dir);
	tap_queue_remove(&t, &q);
	return tap_done();
}
