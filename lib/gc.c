/*
 * gc.c - upkeep on an operator's request: what maintenance would do now
 * (for dry runs), and garbage collection of what crashes and settled
 * messages leave behind.
 *
 * Invariant: nothing here removes a message still to be delivered.  gc
 * removes only files outside the state directories (tmp/, attr/, run/,
 * dedup/), what the archive's retention no longer keeps, and, beside the
 * queues, what a destroy that was stopped left under its dot name (the
 * queue or exchange was doomed once renamed so: nothing renames it back).  Every entry
 * is lstat'ed, never followed; a FIFO is never opened.  Memory is
 * constant per directory walked, except for the names of the sidecars in
 * attr/ (sorted, to look IDs up) and the archive's list when it is
 * trimmed by size.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "repair.h"

#define DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
#define PATH_SIZE	(SQ_NAME_MAX + 64)	/* "quarantine/retry/NAME.q9" */

/* ------------------------------------------------------------- recover */

struct plan {
	struct sq_queue	*q;
	int64_t		 now_ms;
	int		 have_run;	/* run/ exists: workers can be probed */
	struct sq_maint	*m;
	sq_move_fn	*fn;
	void		*arg;
};

static void
plan_say(struct plan *p, const struct sq_msg *msg, enum sq_state to)
{
	struct sq_move mv;

	mv.name = msg->name;
	mv.id = msg->n.id;
	mv.from = msg->state;
	mv.to = to;
	if (p->fn != NULL)
		p->fn(&mv, p->arg);
}

static void
plan_next(struct sq_maint *m, int64_t at_s)
{
	if (at_s >= 0 && at_s * 1000 < m->next_ms)
		m->next_ms = at_s * 1000;
}

/* claim.c promote(): due when t is absent or has come. */
static int
plan_retry(const struct sq_msg *msg, void *arg)
{
	struct plan *p = arg;

	if (!msg->parsed || !S_ISREG(msg->st.st_mode))
		return 0;	/* as claim.c: messages only */
	if (msg->n.due > 0 && msg->n.due * 1000 > p->now_ms) {
		plan_next(p->m, msg->n.due);
		return 0;
	}
	p->m->promoted++;
	plan_say(p, msg, SQ_STATE_READY);
	return 0;
}

/* claim.c recover(): a worker's claim by its worker and job, others by l. */
static int
plan_claim(const struct sq_msg *msg, void *arg)
{
	struct plan *p = arg;
	int dead;

	if (!msg->parsed || !S_ISREG(msg->st.st_mode))
		return 0;	/* as claim.c: messages only */
	if (msg->n.token[0] != '\0') {
		/* Without run/ every lock file is gone: the worker is dead. */
		if (p->have_run && (sq_worker_probe(p->q, msg->n.token,
		    p->now_ms) == SQ_WORKER_ALIVE || sq_job_probe(p->q,
		    msg->n.token, msg->n.id, p->now_ms) == SQ_WORKER_ALIVE))
			return 0;
	} else if (msg->n.lease < 0 || msg->n.lease * 1000 > p->now_ms) {
		plan_next(p->m, msg->n.lease);
		return 0;
	}
	dead = msg->n.attempts >= p->q->conf.max_attempts;
	(*(dead ? &p->m->dead : &p->m->recovered))++;
	plan_say(p, msg, dead ? SQ_STATE_DEAD : SQ_STATE_READY);
	return 0;
}

int
sq_queue_maintain_plan(struct sq_queue *q, int64_t now_ms, struct sq_maint *m,
    sq_move_fn *fn, void *arg)
{
	struct plan p;
	struct stat st;

	memset(m, 0, sizeof(*m));
	m->next_ms = INT64_MAX;
	p.q = q;
	p.now_ms = now_ms;
	p.m = m;
	p.fn = fn;
	p.arg = arg;
	/* sq_worker_probe would make a missing run/: a dry run must not. */
	p.have_run = fstatat(q->fd, SQ_DIR_RUN, &st, AT_SYMLINK_NOFOLLOW) ==
	    0 && S_ISDIR(st.st_mode);
	if (sq_msg_each(q, SQ_STATE_RETRY, plan_retry, &p) == -1 ||
	    sq_msg_each(q, SQ_STATE_INFLIGHT, plan_claim, &p) == -1)
		return -1;
	return 0;
}

/* ------------------------------------------------------------- gc */

struct gc {
	struct sq_queue	*q;
	int64_t		 now_ms;
	int64_t		 tmp_age_ms;
	int		 dry_run;
	sq_gc_fn	*fn;
	void		*arg;
	int		 err;		/* errno of the first failure */
	/* attr/ sidecars, sorted, and which of them belong to a message */
	char		**side;
	unsigned char	*live;
	size_t		 nside, sidealloc;
};

/*
 * Remove dir/name (the entry name of dfd), or say that it would be.  A
 * failure is the result unless kept: then it is only reported.
 */
static void
gc_unlink(struct gc *g, int dfd, const char *dir, const char *name,
    const char *reason, int kept)
{
	char path[PATH_SIZE];
	struct sq_gc_item it;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	it.path = path;
	it.reason = reason;
	it.error = 0;
	it.dead = 0;
	it.kept = 0;
	if (!g->dry_run && unlinkat(dfd, name, 0) == -1) {
		if (errno == ENOENT)
			return;		/* gone meanwhile */
		it.error = errno;
		it.kept = kept;
		if (g->err == 0 && !kept)
			g->err = errno;
	}
	if (g->fn != NULL)
		g->fn(&it, g->arg);
}

static void
gc_remove(struct gc *g, int dfd, const char *dir, const char *name,
    const char *reason)
{
	gc_unlink(g, dfd, dir, name, reason, 0);
}

/* Report a file gc leaves because it cannot look into it; no failure. */
static void
gc_cannot(struct gc *g, const char *dir, const char *name,
    const char *reason, int error)
{
	char path[PATH_SIZE];
	struct sq_gc_item it;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	it.path = path;
	it.reason = reason;
	it.error = error;
	it.dead = 0;
	it.kept = 1;
	if (g->fn != NULL)
		g->fn(&it, g->arg);
}

/* maildir(5): a file in tmp/ untouched for 36 h is a dead delivery. */
static int
gc_tmp(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct gc *g = arg;
	char age[32], reason[64];
	struct sq_name n;

	if (!S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode))
		return 0;
	if (g->now_ms - SQ_MTIME_MS(st) <= g->tmp_age_ms)
		return 0;
	/* A message taken by qrecv -A stays while its body is shown. */
	if (sq_name_parse(&n, name) == 0 && n.lease * 1000 > g->now_ms)
		return 0;
	sq_duration_format(g->tmp_age_ms, age, sizeof(age));
	snprintf(reason, sizeof(reason), "older than %s", age);
	gc_remove(g, dfd, SQ_DIR_TMP, name, reason);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect the sidecars of attr/ old enough to go if orphaned. */
static int
gc_attr_collect(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct gc *g = arg;
	char **side;
	size_t n;

	if (!S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode))
		return 0;
	if (g->now_ms - SQ_MTIME_MS(st) <= SQ_GC_LEFTOVER_AGE_MS)
		return 0;
	if (name[0] == '.') {
		/* sq_failure_write's temporary, left by a crash */
		gc_remove(g, dfd, SQ_DIR_ATTR, name, "interrupted write, "
		    "older than 1h");
		return 0;
	}
	if (g->nside == g->sidealloc) {
		n = g->sidealloc ? g->sidealloc * 2 : 64;
		if ((side = reallocarray(g->side, n, sizeof(*side))) == NULL)
			return -1;
		g->side = side;
		g->sidealloc = n;
	}
	if ((g->side[g->nside] = strdup(name)) == NULL)
		return -1;
	g->nside++;
	return 0;
}

/* Mark the sidecar called name, if there is one, as belonging. */
static void
gc_mark(struct gc *g, const char *name)
{
	char **hit;
	const char *key = name;

	hit = bsearch(&key, g->side, g->nside, sizeof(*g->side), cmp_str);
	if (hit != NULL)
		g->live[hit - g->side] = 1;
}

/*
 * A message (or a file that may be one: any name, parsable or not) is
 * here: its sidecars attr/ID and attr/ID.failure belong.
 */
static int
gc_attr_mark(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct gc *g = arg;
	char id[PATH_SIZE];
	size_t len;

	(void)dfd;
	(void)st;
	if (name[0] == '.')
		return 0;
	len = strcspn(name, ",");
	if (len >= SQ_ID_MAX)
		return 0;
	memcpy(id, name, len);
	id[len] = '\0';
	gc_mark(g, id);
	strlcat(id, SQ_FAILURE_SUFFIX, sizeof(id));
	gc_mark(g, id);
	return 0;
}

/* The same for a message waiting in its group. */
static int
gc_attr_mark_grouped(const struct sq_msg *m, void *arg)
{
	return gc_attr_mark(m->dirfd, m->name, &m->st, arg);
}

/*
 * Mark the sidecars of every message found in a state, waiting in a
 * group, in tmp/ (being sent) or in quarantine/ (kept for a person).
 */
static int
gc_attr_walk(struct gc *g)
{
	static const char *const places[] = {
		SQ_DIR_NEW, SQ_DIR_CUR, SQ_DIR_RETRY, SQ_DIR_DEAD, SQ_DIR_HOLD,
		SQ_DIR_TMP, SQ_DIR_ARCHIVE,
		SQ_DIR_QUARANTINE "/" SQ_DIR_NEW,
		SQ_DIR_QUARANTINE "/" SQ_DIR_CUR,
		SQ_DIR_QUARANTINE "/" SQ_DIR_RETRY,
		SQ_DIR_QUARANTINE "/" SQ_DIR_DEAD,
		SQ_DIR_QUARANTINE "/" SQ_DIR_HOLD,
		SQ_DIR_QUARANTINE "/" SQ_DIR_GROUPS,
	};
	size_t i;
	int fd, rc;

	for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		if ((fd = openat(g->q->fd, places[i], DIR_FLAGS)) == -1) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		rc = dir_each(fd, gc_attr_mark, g);
		close(fd);
		if (rc == -1)
			return -1;
	}
	return sq_msg_each(g->q, SQ_STATE_GROUPED, gc_attr_mark_grouped, g);
}

/*
 * Sidecars whose ID is in no state.  A message that moves between
 * states while they are walked can be missed once; only a sidecar missed
 * by two walks in a row goes.
 */
static int
gc_attr(struct gc *g)
{
	size_t i, left;
	int afd, rc = -1;

	if ((afd = sq_state_attr(g->q, 0)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (dir_each(afd, gc_attr_collect, g) == -1)
		goto out;
	if (g->nside == 0) {
		rc = 0;
		goto out;
	}
	sort(g->side, g->nside, sizeof(*g->side), cmp_str);
	if ((g->live = calloc(g->nside, 1)) == NULL || gc_attr_walk(g) == -1)
		goto out;
	for (i = left = 0; i < g->nside; i++)
		left += !g->live[i];
	if (left > 0 && gc_attr_walk(g) == -1)
		goto out;
	for (i = 0; i < g->nside; i++) {
		if (g->live[i])
			continue;
		gc_remove(g, afd, SQ_DIR_ATTR, g->side[i],
		    strlen(g->side[i]) > sizeof(SQ_FAILURE_SUFFIX) - 1 &&
		    strcmp(g->side[i] + strlen(g->side[i]) -
		    (sizeof(SQ_FAILURE_SUFFIX) - 1), SQ_FAILURE_SUFFIX) == 0 ?
		    "failure record of no message" : "sidecar of no message");
	}
	rc = 0;
out:
	close(afd);
	return rc;
}

/*
 * run/job.TOKEN.ID: the lock of a job whose worker died before it could
 * remove it.  It goes once free (every process of the job has ended) and
 * its worker is not alive; a held one still keeps its claim, or, past
 * its lease, at least stands for a job tree that still runs.  The worker
 * is probed first, and a live worker's job locks are not even opened:
 * the shared lock of a probe, taken the moment a worker makes one,
 * would make the worker's own lock of it fail.
 */
static void
gc_job(struct gc *g, int dfd, const char *name)
{
	char token[SQ_TOKEN_MAX];
	const char *rest = name + sizeof(SQ_JOB_PREFIX) - 1, *dot;

	if ((dot = strchr(rest, '.')) == NULL || dot == rest ||
	    (size_t)(dot - rest) >= sizeof(token))
		return;		/* no job lock's name */
	memcpy(token, rest, (size_t)(dot - rest));
	token[dot - rest] = '\0';
	if (sq_worker_probe(g->q, token, g->now_ms) != SQ_WORKER_ALIVE &&
	    sq_job_probe(g->q, token, dot + 1, g->now_ms) == SQ_WORKER_DEAD)
		gc_unlink(g, dfd, SQ_DIR_RUN, name, "lock of an ended job", 1);
}

/*
 * run/worker.* of dead workers; run/.worker.* left by a killed start;
 * run/index, the shared claim index of older versions, which nothing
 * reads any more; run/index.HOST of a host that has not claimed for 36 h
 * (a consumer saves its index at least once a minute); run/job.* of
 * jobs that ended (gc_job).
 */
static int
gc_run(int dfd, const char *name, const struct stat *st, void *arg)
{
	static const char prefix[] = SQ_WORKER_PREFIX;
	static const char index[] = SQ_INDEX_PREFIX;
	const char *ixname = index + sizeof(SQ_DIR_RUN);
	struct gc *g = arg;
	int fd;

	/* Probing opens the file: only ever a regular one. */
	if (!S_ISREG(st->st_mode))
		return 0;
	if (strcmp(name, SQ_INDEX_OLD) == 0) {
		gc_remove(g, dfd, SQ_DIR_RUN, name, "claim index of an older "
		    "version");
		return 0;
	}
	if (strncmp(name, ixname, strlen(ixname)) == 0) {
		if (g->now_ms - SQ_MTIME_MS(st) > SQ_GC_INDEX_AGE_MS)
			gc_remove(g, dfd, SQ_DIR_RUN, name, "claim index of "
			    "a host idle for 36h");
		return 0;
	}
	if (strncmp(name, SQ_JOB_PREFIX, sizeof(SQ_JOB_PREFIX) - 1) == 0)
		gc_job(g, dfd, name);
	else if (strncmp(name, prefix, sizeof(prefix) - 1) == 0) {
		/*
		 * Another user's file that we may not read (made before lock
		 * files were readable by all): its lock cannot be probed.  A
		 * heartbeat within the lease says it lives, so nothing is
		 * said of it; an older one is worth saying.
		 */
		if ((fd = sq_open_regular(dfd, name, O_RDONLY, 0, NULL)) ==
		    -1) {
			if (errno != ENOENT && (errno != EACCES ||
			    g->now_ms - SQ_MTIME_MS(st) > g->q->conf.lease_ms))
				gc_cannot(g, SQ_DIR_RUN, name, "worker lock "
				    "file, cannot probe", errno);
			return 0;
		}
		close(fd);
		if (sq_worker_probe(g->q, name + sizeof(prefix) - 1,
		    g->now_ms) == SQ_WORKER_DEAD)
			gc_unlink(g, dfd, SQ_DIR_RUN, name, "dead worker", 1);
	} else if (name[0] == '.' && strncmp(name + 1, prefix,
	    sizeof(prefix) - 1) == 0 &&
	    g->now_ms - SQ_MTIME_MS(st) > SQ_GC_LEFTOVER_AGE_MS)
		gc_remove(g, dfd, SQ_DIR_RUN, name, "worker start left over, "
		    "older than 1h");
	return 0;
}

/* dedup/ markers older than dedup_window, unless a sender holds one. */
static int
gc_dedup(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct gc *g = arg;
	int fd;

	if (!S_ISREG(st->st_mode) ||
	    g->now_ms - SQ_MTIME_MS(st) <= g->q->conf.dedup_window_ms)
		return 0;
	if ((fd = sq_open_regular(dfd, name, O_RDONLY, 0, NULL)) == -1)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		gc_remove(g, dfd, "dedup", name, "older than dedup_window");
	close(fd);
	return 0;
}

/*
 * Ready and waiting messages past their expiry go to dead/ with
 * r=expired, as a consumer meeting them would do (SPEC 5: "by the next
 * consumer that meets it or by qadmin gc"), those waiting in their
 * groups too.  One rename each; a group's baton held by the message is
 * then handed on.
 */
static int
gc_expire(const struct sq_msg *m, void *arg)
{
	struct gc *g = arg;
	struct sq_name n = m->n;
	struct sq_gc_item it;
	char path[PATH_SIZE];
	int fd;

	if (!m->parsed || !S_ISREG(m->st.st_mode) || !expired(g->q, &n,
	    g->now_ms))
		return 0;
	if (m->state == SQ_STATE_GROUPED)
		snprintf(path, sizeof(path), "%s/%s/%s", SQ_DIR_GROUPS,
		    n.group, m->name);
	else
		snprintf(path, sizeof(path), "%s/%s", sq_state_dir(m->state),
		    m->name);
	it.path = path;
	it.reason = SQ_REASON_EXPIRED;
	it.error = 0;
	it.dead = 1;
	it.kept = 0;
	if (!g->dry_run) {
		dead_name(&n, SQ_REASON_EXPIRED);
		fd = m->state == SQ_STATE_READY ? g->q->newfd :
		    m->state == SQ_STATE_RETRY ? g->q->retryfd : m->dirfd;
		if (dead_letter_forward(g->q, fd, m->name, &n, NULL) != 1 &&
		    move_message(fd, m->name, g->q->deadfd, &n, NULL) == -1) {
			if (errno == ENOENT)
				return 0;	/* a consumer was quicker */
			it.error = errno;
			if (g->err == 0)
				g->err = errno;
		} else
			sq_group_release(g->q, &n);
	}
	if (g->fn != NULL)
		g->fn(&it, g->arg);
	return 0;
}

/* Report an archived file trimmed by sq_archive_trim. */
static void
gc_trimmed(const char *name, const char *why, void *arg)
{
	struct gc *g = arg;
	char path[PATH_SIZE];
	struct sq_gc_item it;

	snprintf(path, sizeof(path), "%s/%s", SQ_DIR_ARCHIVE, name);
	it.path = path;
	it.reason = why;
	it.error = 0;
	it.dead = 0;
	it.kept = 0;
	if (g->fn != NULL)
		g->fn(&it, g->arg);
}

static void
gc_free(struct gc *g)
{
	size_t i;

	for (i = 0; i < g->nside; i++)
		free(g->side[i]);
	free(g->side);
	free(g->live);
}

int
sq_queue_gc(struct sq_queue *q, int64_t now_ms, int64_t tmp_age_ms,
    int dry_run, sq_gc_fn *fn, void *arg)
{
	struct gc g;
	int fd, rc = -1;

	if (tmp_age_ms < 0) {
		errno = EINVAL;
		return -1;
	}
	memset(&g, 0, sizeof(g));
	g.q = q;
	g.now_ms = now_ms;
	g.tmp_age_ms = tmp_age_ms;
	g.dry_run = dry_run;
	g.fn = fn;
	g.arg = arg;
	if (dir_each(q->tmpfd, gc_tmp, &g) == -1 || gc_attr(&g) == -1)
		goto out;
	if ((fd = openat(q->fd, SQ_DIR_RUN, DIR_FLAGS)) != -1) {
		rc = dir_each(fd, gc_run, &g);
		close(fd);
		if (rc == -1)
			goto out;
	} else if (errno != ENOENT)
		goto out;
	if ((fd = openat(q->fd, "dedup", DIR_FLAGS)) != -1) {
		rc = dir_each(fd, gc_dedup, &g);
		close(fd);
		if (rc == -1)
			goto out;
	} else if (errno != ENOENT)
		goto out;
	/* Groups first: a head's expiry promotes the next into new/. */
	if (sq_archive_trim(q, now_ms, dry_run, gc_trimmed, &g) == -1 ||
	    sq_msg_each(q, SQ_STATE_GROUPED, gc_expire, &g) == -1 ||
	    sq_msg_each(q, SQ_STATE_READY, gc_expire, &g) == -1 ||
	    sq_msg_each(q, SQ_STATE_RETRY, gc_expire, &g) == -1)
		goto out;
	rc = 0;
	if (g.err != 0) {
		errno = g.err;
		rc = -1;
	}
out:
	gc_free(&g);
	return rc;
}

/* ------------------------------------------------------------- spool */

/*
 * Whether name is one a destroy renames a queue or an exchange to before
 * it removes it (sq_queue_destroy, sq_exchange_destroy): DESTROY_PREFIX,
 * the destroyer's pid in decimal, a dot and 8 lowercase hex digits, and
 * nothing else.  *pid gets the pid.
 */
static int
destroy_name(const char *name, pid_t *pid)
{
	const char *p = name + sizeof(SQ_DESTROY_PREFIX) - 1;
	long long v = 0;
	size_t n, i;

	if (strncmp(name, SQ_DESTROY_PREFIX, sizeof(SQ_DESTROY_PREFIX) - 1) !=
	    0)
		return 0;
	n = strspn(p, "0123456789");
	if (n == 0 || n > 10 || p[n] != '.')
		return 0;
	for (i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	p += n + 1;
	if (strspn(p, "0123456789abcdef") != 8 || p[8] != '\0' || v <= 0 ||
	    v > INT_MAX)
		return 0;
	*pid = (pid_t)v;
	return 1;
}

struct spool_gc {
	int64_t		 now_ms;
	int		 dry_run;
	int		 young;		/* spool_young: a change seen */
	int		 err;
	sq_gc_fn	*fn;
	void		*arg;
};

/* A directory directly in a leftover changed within the hour: young. */
static int
young_dir(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct spool_gc *g = arg;

	(void)dfd;
	(void)name;
	if (S_ISDIR(st->st_mode) &&
	    g->now_ms - SQ_MTIME_MS(st) <= SQ_GC_LEFTOVER_AGE_MS)
		g->young = 1;
	return 0;
}

/*
 * Whether the destroy that left fd (named for pid) may still be at work:
 * its pid is a live process of this host, or the directory, or one
 * directly in it (a state directory being emptied), had an entry removed
 * within SQ_GC_LEFTOVER_AGE_MS.
 */
static int
destroy_running(struct spool_gc *g, int fd, pid_t pid)
{
	struct stat st;

	if (kill(pid, 0) == 0 || errno == EPERM)
		return 1;
	if (fstat(fd, &st) == -1 ||
	    g->now_ms - SQ_MTIME_MS(&st) <= SQ_GC_LEFTOVER_AGE_MS)
		return 1;
	g->young = 0;
	if (dir_each(fd, young_dir, g) == -1)
		return 1;
	return g->young;
}

/* One entry of the spool directory: a destroy's leftover goes. */
static int
gc_spool_entry(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct spool_gc *g = arg;
	struct sq_gc_item it;
	pid_t pid;
	int fd;

	if (!S_ISDIR(st->st_mode) || !destroy_name(name, &pid))
		return 0;
	if ((fd = openat(dfd, name, DIR_FLAGS)) == -1)
		return 0;	/* gone, or replaced by a link meanwhile */
	if (destroy_running(g, fd, pid)) {
		close(fd);
		return 0;
	}
	it.path = name;
	it.reason = "left by an interrupted destroy, unchanged for 1h";
	it.error = 0;
	it.dead = 0;
	it.kept = 0;
	if (!g->dry_run && (remove_tree(fd) == -1 ||
	    (unlinkat(dfd, name, AT_REMOVEDIR) == -1 && errno != ENOENT))) {
		it.error = errno;
		if (g->err == 0)
			g->err = errno;
	}
	close(fd);
	if (g->fn != NULL)
		g->fn(&it, g->arg);
	return 0;
}

int
sq_spool_gc(const char *dir, int64_t now_ms, int dry_run, sq_gc_fn *fn,
    void *arg)
{
	struct spool_gc g;
	int dfd, rc, saved;

	memset(&g, 0, sizeof(g));
	g.now_ms = now_ms;
	g.dry_run = dry_run;
	g.fn = fn;
	g.arg = arg;
	/* The spool root itself may be a link (as at create and destroy). */
	if ((dfd = open(dir, (DIR_FLAGS) & ~O_NOFOLLOW)) == -1)
		return -1;
	rc = dir_each(dfd, gc_spool_entry, &g);
	saved = errno;
	close(dfd);
	if (rc == 0 && g.err != 0) {
		saved = g.err;
		rc = -1;
	}
	errno = saved;
	return rc;
}
