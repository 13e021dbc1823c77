/*
 * check.c - the check and repair of a queue's tree.
 *
 * Invariants: nothing here removes a message.  gc removes only files
 * outside the state directories (tmp/, attr/, run/); check --repair
 * changes state directories only by single renames (a name to its
 * proper form, or out of the way into quarantine/), mkdir(2), chmod and
 * chown.  Every entry is lstat'ed (fstatat AT_SYMLINK_NOFOLLOW): a
 * symlink is never followed, a FIFO or device never opened, and no
 * message file is opened at all.  Several links to one message are not a
 * fault: fan-out shares one body between queues that way.
 *
 * Consumers may run meanwhile.  A rename that finds its source gone
 * (ENOENT) lost a race to a consumer, whose move is as good; the finding
 * is then dropped.  The commit point of each repair is its one rename.
 *
 * Memory is constant: duplicated IDs are found with a fixed bitmap of ID
 * hashes (1 MiB) and a second pass over the few suspects it flags.
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
#include "repair.h"

#define DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
#define PATH_SIZE	(SQ_NAME_MAX + 64)	/* "quarantine/retry/NAME.q9" */
#define SEEN_BYTES	(1024 * 1024)	/* 8 Mbit of ID hashes seen */

/* ------------------------------------------------------------- check */

/* A message whose ID hashed like another's: compared by name. */
struct cand {
	char		*id, *name;
	enum sq_state	 state;
	unsigned	 attempts;
	int		 fit;
};

struct checker {
	struct sq_queue	 q;		/* opened leniently */
	struct stat	 qst;		/* the queue directory */
	int		 fds[SQ_NSTATES];	/* -1: missing */
	int		 act;		/* repair for real */
	int		 plan;		/* say what a repair would do */
	int		 moved;		/* a repair renamed a message */
	int64_t		 now_ms;
	sq_problem_fn	*fn;
	void		*arg;
	struct sq_check_result *res;
	unsigned char	*seen;		/* bitmap of ID hashes seen */
	uint64_t	*hash;		/* hashes whose bit was already set */
	size_t		 nhash, hashalloc;
	uint64_t	*dup;		/* hashes seen twice, sorted */
	size_t		 ndup;
	struct cand	*cand;
	size_t		 ncand, candalloc;
};

/* Hand a finding to the caller and count it. */
static void
found(struct checker *c, struct sq_problem *p)
{
	c->res->found++;
	if (p->repaired)
		c->res->repaired++;
	c->fn(p, c->arg);
}

/* Set p up for a repair by action to `to`; 1 when it is to be made. */
static int
plan_repair(struct checker *c, struct sq_problem *p, const char *action,
    const char *to)
{
	p->action = action;
	p->to = to;
	return c->act;
}

/* The repair's result: rc 0 made, -1 failed with errno. */
static void
repair_done(struct sq_problem *p, int rc)
{
	if (rc == 0)
		p->repaired = 1;
	else
		p->error = errno;
}

/*
 * mkdir name in the directory dfd, unless it is there, with the queue
 * directory's mode (a group-shared queue stays shared whatever our
 * umask) and, for root, its owner.
 */
static int
make_dir(struct checker *c, int dfd, const char *name)
{
	struct stat st;
	int fd, rc = 0, saved;

	if (mkdirat(dfd, name, 0700) == -1) {
		if (errno != EEXIST)
			return -1;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
		return 0;
	}
	if ((fd = openat(dfd, name, DIR_FLAGS)) == -1)
		return -1;
	if (fchmod(fd, c->qst.st_mode & 07777) == -1 || (geteuid() == 0 &&
	    fchown(fd, c->qst.st_uid, c->qst.st_gid) == -1))
		rc = -1;
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* quarantine/DIR/NAME (quarantine/NAME for dir NULL) into to. */
static void
quarantine_path(char *to, const char *dir, const char *name)
{
	if (dir != NULL)
		snprintf(to, PATH_SIZE, "%s/%s/%s", SQ_DIR_QUARANTINE, dir,
		    name);
	else
		snprintf(to, PATH_SIZE, "%s/%s", SQ_DIR_QUARANTINE, name);
}

/* Make quarantine/ and quarantine/DIR on demand; open the latter. */
static int
quarantine_open(struct checker *c, const char *dir)
{
	char sub[PATH_SIZE];

	if (make_dir(c, c->q.fd, SQ_DIR_QUARANTINE) == -1)
		return -1;
	if (dir == NULL)
		return openat(c->q.fd, SQ_DIR_QUARANTINE, DIR_FLAGS);
	snprintf(sub, sizeof(sub), "%s/%s", SQ_DIR_QUARANTINE, dir);
	if (make_dir(c, c->q.fd, sub) == -1)
		return -1;
	return openat(c->q.fd, sub, DIR_FLAGS);
}

/*
 * The problem p is mended by moving the entry name of dfd (in the
 * queue's directory dir, NULL for the queue itself) out of the way, into
 * quarantine/DIR/NAME (to, PATH_SIZE bytes), with ".qN" added on a clash.
 * Moved only when repairing for real.
 */
static void
quarantine(struct checker *c, struct sq_problem *p, int dfd, const char *dir,
    const char *name, char *to)
{
	char used[NAME_MAX + 1];
	int qfd, rc, saved;

	quarantine_path(to, dir, name);
	if (!plan_repair(c, p, "quarantine", to))
		return;
	if ((qfd = quarantine_open(c, dir)) == -1) {
		repair_done(p, -1);
		return;
	}
	if ((rc = move_quarantine(dfd, name, qfd, used, sizeof(used))) == 0)
		quarantine_path(to, dir, used);
	saved = errno;
	close(qfd);
	errno = saved;
	repair_done(p, rc);
}

/* ----------------------------------------------------- the tree */

static const struct {
	const char	*name;
	int		 required;	/* sq_queue_open needs it */
} subdirs[] = {
	{ SQ_DIR_TMP, 1 }, { SQ_DIR_NEW, 1 }, { SQ_DIR_CUR, 1 },
	{ SQ_DIR_RETRY, 1 }, { SQ_DIR_DEAD, 1 }, { SQ_DIR_ATTR, 0 },
	{ SQ_DIR_RUN, 0 }, { SQ_DIR_HOLD, 0 }, { SQ_DIR_QUARANTINE, 0 },
	{ SQ_DIR_ARCHIVE, 0 }, { SQ_DIR_DEDUP, 0 },
};

/*
 * The directories that hold no messages but regular files all the same
 * (bodies being written, sidecars, kept bodies, locks, markers): every
 * entry in them, dot names too, must be one (spoolq(5) LAYOUT).
 */
static const char *const file_dirs[] = {
	SQ_DIR_TMP, SQ_DIR_ATTR, SQ_DIR_ARCHIVE, SQ_DIR_RUN, SQ_DIR_DEDUP,
};
#define NFILE_DIRS	(sizeof(file_dirs) / sizeof(file_dirs[0]))
#define NSUBDIRS	(sizeof(subdirs) / sizeof(subdirs[0]))

/*
 * Owner and write bits of the entry name in dfd (path for the report).
 * Owner: the queue's, or, in a group-writable queue, its group's
 * (spoolq(5): a group shares a queue through the group and umask 007).
 */
static void
check_perms(struct checker *c, int dfd, const char *name, const char *path,
    const char *id, struct stat *st)
{
	char what[128], to[32];
	struct sq_problem p;
	mode_t extra;

	if (st->st_uid != c->qst.st_uid && !((c->qst.st_mode & S_IWGRP) &&
	    st->st_gid == c->qst.st_gid)) {
		memset(&p, 0, sizeof(p));
		p.path = path;
		p.id = id;
		snprintf(what, sizeof(what), "owned by uid %u, not by the "
		    "queue's owner %u", (unsigned)st->st_uid,
		    (unsigned)c->qst.st_uid);
		p.what = what;
		snprintf(to, sizeof(to), "%u:%u", (unsigned)c->qst.st_uid,
		    (unsigned)c->qst.st_gid);
		if (plan_repair(c, &p, "chown", to))
			repair_done(&p, fchownat(dfd, name, c->qst.st_uid,
			    c->qst.st_gid, AT_SYMLINK_NOFOLLOW));
		if (p.error == ENOENT)
			return;
		found(c, &p);
	}
	extra = st->st_mode & (S_IWGRP | S_IWOTH) & ~c->qst.st_mode;
	if (extra != 0) {
		memset(&p, 0, sizeof(p));
		p.path = path;
		p.id = id;
		snprintf(what, sizeof(what), "writable by %s (mode %04o, "
		    "queue %04o)", extra == S_IWOTH ? "others" : extra ==
		    S_IWGRP ? "group" : "group and others",
		    (unsigned)(st->st_mode & 07777),
		    (unsigned)(c->qst.st_mode & 07777));
		p.what = what;
		snprintf(to, sizeof(to), "%04o",
		    (unsigned)(st->st_mode & 07777 & ~extra));
		/* glibc does NOFOLLOW through O_PATH: nothing is opened. */
		if (plan_repair(c, &p, "chmod", to))
			repair_done(&p, fchmodat(dfd, name, st->st_mode &
			    07777 & ~extra, AT_SYMLINK_NOFOLLOW));
		if (p.error == ENOENT)
			return;
		found(c, &p);
	}
}

/*
 * A subdirectory that is not a directory: report, and move it out of the
 * way.  Returns 1 when it is gone (or, on a dry run, would be), so that
 * a required one is made anew.
 */
static int
check_notdir(struct checker *c, const char *name, const struct stat *st)
{
	char what[64], to[PATH_SIZE];
	struct sq_problem p;

	memset(&p, 0, sizeof(p));
	p.path = name;
	snprintf(what, sizeof(what), "not a directory (%s)",
	    sq_mode_name(st->st_mode));
	p.what = what;
	/* quarantine/ itself cannot go into quarantine/. */
	if (strcmp(name, SQ_DIR_QUARANTINE) != 0)
		quarantine(c, &p, c->q.fd, NULL, name, to);
	if (p.error == ENOENT)
		return 1;
	found(c, &p);
	return p.repaired || (p.action != NULL && c->plan);
}

/* One subdirectory: there, a directory, owned and moded as the queue. */
static int
check_subdir(struct checker *c, size_t i)
{
	const char *name = subdirs[i].name;
	struct sq_problem p;
	struct stat st;

	if (fstatat(c->q.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			check_perms(c, c->q.fd, name, name, NULL, &st);
			return 0;
		}
		if (!check_notdir(c, name, &st))
			return 0;
	} else if (errno != ENOENT)
		return -1;
	if (!subdirs[i].required)
		return 0;
	memset(&p, 0, sizeof(p));
	p.path = name;
	p.what = "missing directory";
	if (plan_repair(c, &p, "mkdir", name))
		repair_done(&p, make_dir(c, c->q.fd, name));
	found(c, &p);
	return 0;
}

/* What a walk of one of the file_dirs needs. */
struct file_walk {
	struct checker	*c;
	const char	*dir;
};

/* An entry of one of the file_dirs that is not a regular file. */
static int
check_file_entry(int dfd, const char *name, const struct stat *st,
    void *arg)
{
	struct file_walk *w = arg;
	char path[PATH_SIZE], what[64], to[PATH_SIZE];
	struct sq_problem p;

	if (S_ISREG(st->st_mode))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", w->dir, name);
	snprintf(what, sizeof(what), "not a regular file (%s)",
	    sq_mode_name(st->st_mode));
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.what = what;
	quarantine(w->c, &p, dfd, w->dir, name, to);
	if (p.error != ENOENT)
		found(w->c, &p);
	return 0;
}

/* Every entry of tmp/, attr/, archive/, run/ and dedup/ is a file. */
static int
check_file_dirs(struct checker *c)
{
	struct file_walk w;
	size_t i;
	int fd, rc = 0, saved;

	w.c = c;
	for (i = 0; i < NFILE_DIRS && rc == 0; i++) {
		if ((fd = subdir_open(c->q.fd, file_dirs[i], 0)) == -1) {
			if (errno == ENOENT || errno == ENOTDIR ||
			    errno == ELOOP)
				continue;	/* reported with the tree */
			return -1;
		}
		w.dir = file_dirs[i];
		rc = dir_each(fd, check_file_entry, &w);
		saved = errno;
		close(fd);
		errno = saved;
	}
	return rc;
}

/* The flag held, when there, is a regular file like queue.conf. */
static void
check_held(struct checker *c)
{
	char what[64], to[PATH_SIZE];
	struct sq_problem p;
	struct stat st;

	if (fstatat(c->q.fd, SQ_HELD_FILE, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    S_ISREG(st.st_mode))
		return;
	memset(&p, 0, sizeof(p));
	p.path = SQ_HELD_FILE;
	snprintf(what, sizeof(what), "not a regular file (%s)",
	    sq_mode_name(st.st_mode));
	p.what = what;
	quarantine(c, &p, c->q.fd, NULL, SQ_HELD_FILE, to);
	if (p.error != ENOENT)
		found(c, &p);
}

/* queue.conf: a regular file whose every line loads. */
static void
check_conf(struct checker *c)
{
	char err[512], what[640], to[PATH_SIZE];
	struct sq_problem p;
	struct stat st;

	memset(&p, 0, sizeof(p));
	p.path = SQ_CONF_FILE;
	if (fstatat(c->q.fd, SQ_CONF_FILE, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return;			/* optional: every key has a default */
	if (!S_ISREG(st.st_mode)) {
		/*
		 * No tool can use the queue while it is there (78): out of
		 * the way, the defaults apply until qadmin config set
		 * writes a new one.
		 */
		snprintf(what, sizeof(what), "not a regular file (%s)",
		    sq_mode_name(st.st_mode));
		p.what = what;
		quarantine(c, &p, c->q.fd, NULL, SQ_CONF_FILE, to);
		if (p.error != ENOENT)
			found(c, &p);
		return;
	}
	check_perms(c, c->q.fd, SQ_CONF_FILE, SQ_CONF_FILE, NULL, &st);
	if (sq_conf_load(&c->q.conf, c->q.fd, SQ_CONF_FILE, err,
	    sizeof(err)) == 0)
		return;
	/*
	 * err is "queue.conf:LINE: KEY: reason" or "queue.conf: reason",
	 * as every config error reads (SPEC 3).
	 */
	snprintf(what, sizeof(what), "%s", err);
	p.what = what;
	found(c, &p);
}

/* The descriptor c->q holds for state st, or -1 (none, or not open). */
static int
queue_state_fd(const struct checker *c, enum sq_state st)
{
	switch (st) {
	case SQ_STATE_READY:
		return c->q.newfd;
	case SQ_STATE_INFLIGHT:
		return c->q.curfd;
	case SQ_STATE_RETRY:
		return c->q.retryfd;
	case SQ_STATE_DEAD:
		return c->q.deadfd;
	default:
		return -1;
	}
}

/*
 * Open path leniently into c->q: every subdirectory that is there, the
 * settings when they load.  Reports (and repairs) the tree on the way.
 */
static int
check_tree(struct checker *c, const char *path)
{
	struct stat st;
	size_t i, there = 0;

	if ((c->q.fd = open(path, DIR_FLAGS)) == -1) {
		if (errno == ELOOP)
			errno = ENOTDIR;
		return -1;
	}
	if (fstat(c->q.fd, &c->qst) == -1)
		return -1;
	c->q.dev = c->qst.st_dev;
	for (i = 0; i < NSUBDIRS; i++)
		if (subdirs[i].required && fstatat(c->q.fd, subdirs[i].name,
		    &st, AT_SYMLINK_NOFOLLOW) == 0)
			there++;
	if (there == 0 && faccessat(c->q.fd, SQ_CONF_FILE, F_OK,
	    AT_SYMLINK_NOFOLLOW) == -1) {
		errno = ENOTDIR;	/* nothing of a queue: leave it be */
		return -1;
	}
	for (i = 0; i < NSUBDIRS; i++)
		if (check_subdir(c, i) == -1)
			return -1;
	check_conf(c);
	c->q.tmpfd = openat(c->q.fd, SQ_DIR_TMP, DIR_FLAGS);
	c->q.newfd = openat(c->q.fd, SQ_DIR_NEW, DIR_FLAGS);
	c->q.curfd = openat(c->q.fd, SQ_DIR_CUR, DIR_FLAGS);
	c->q.retryfd = openat(c->q.fd, SQ_DIR_RETRY, DIR_FLAGS);
	c->q.deadfd = openat(c->q.fd, SQ_DIR_DEAD, DIR_FLAGS);
	/* A state the queue holds open is not opened twice (a small fd limit). */
	for (i = 0; i < SQ_NSTATES; i++)
		if ((c->fds[i] = queue_state_fd(c, (enum sq_state)i)) == -1)
			c->fds[i] = sq_state_open(&c->q, (enum sq_state)i, 0);
	return 0;
}

/* ----------------------------------------------------- the messages */

static const char *const field_names[] = {
	[0] = "lease", [1] = "worker token", [2] = "due time", [3] = "reason",
};

static const char *
state_noun(enum sq_state st)
{
	switch (st) {
	case SQ_STATE_READY:
		return "a ready message";
	case SQ_STATE_INFLIGHT:
		return "an inflight message";
	case SQ_STATE_RETRY:
		return "a retry message";
	case SQ_STATE_DEAD:
		return "a dead letter";
	default:
		return "a held message";
	}
}

/*
 * Whether n fits state st (spoolq(5): l and w only in cur/, t only in
 * retry/, r only in dead/ and new/, where a dead letter of another queue
 * keeps it (dead_letter); cur/ needs l, retry/ t, dead/ r).  When it
 * does not, why gets e.g. "lease in a ready message" and *proper the
 * name it should have, in state *to.
 */
static int
name_fits(enum sq_state st, const struct sq_name *n, int64_t now_ms,
    char *why, size_t size, struct sq_name *proper, enum sq_state *to)
{
	int has[4], allowed[4] = { 0, 0, 0, 0 }, i, bad = 0;
	const char *missing = NULL;
	char list[64] = "";

	has[0] = n->lease >= 0;
	has[1] = n->token[0] != '\0';
	has[2] = n->due >= 0;
	has[3] = n->reason[0] != '\0';
	*proper = *n;
	*to = st;
	switch (st) {
	case SQ_STATE_INFLIGHT:
		allowed[0] = allowed[1] = 1;
		if (!has[0]) {
			/* No lease: no claim.  Give it back to new/. */
			missing = "lease";
			ready_name(proper);
			*to = SQ_STATE_READY;
		} else {
			proper->due = -1;
			proper->reason[0] = '\0';
		}
		break;
	case SQ_STATE_RETRY:
		allowed[2] = 1;
		missing = has[2] ? NULL : "due time";
		retry_name(proper, has[2] ? n->due : SQ_MS_TO_S_CEIL(now_ms));
		break;
	case SQ_STATE_DEAD:
		allowed[3] = 1;
		missing = has[3] ? NULL : "reason";
		dead_name(proper, has[3] ? n->reason : "unknown");
		break;
	case SQ_STATE_READY:
		/* A dead letter from another queue shows why it came. */
		allowed[3] = 1;
		ready_name(proper);
		strlcpy(proper->reason, n->reason, sizeof(proper->reason));
		break;
	default:
		ready_name(proper);
		break;
	}
	for (i = 0; i < 4; i++)
		if (has[i] && !allowed[i]) {
			if (bad++)
				strlcat(list, ", ", sizeof(list));
			strlcat(list, field_names[i], sizeof(list));
		}
	if (missing == NULL && bad == 0)
		return 1;
	snprintf(why, size, "%s%s%s%s in %s", missing ? "no " : "",
	    missing ? missing : "", missing && bad ? ", but " : "", list,
	    state_noun(st));
	return 0;
}

/* Rename an unfit name to its proper form (or give a lease-less claim back). */
static void
check_fields(struct checker *c, const struct sq_msg *m, const char *path)
{
	char why[160], to[PATH_SIZE], newname[SQ_NAME_MAX + 1];
	struct sq_name proper;
	struct sq_problem p;
	enum sq_state tost;

	if (name_fits(m->state, &m->n, c->now_ms, why, sizeof(why), &proper,
	    &tost))
		return;
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.id = m->n.id;
	p.what = why;
	if (sq_name_format(newname, sizeof(newname), &proper) == -1) {
		found(c, &p);		/* no proper form fits in a name */
		return;
	}
	snprintf(to, sizeof(to), "%s/%s", sq_state_dir(tost), newname);
	if (plan_repair(c, &p, tost == m->state ? "rename" : "recover", to)) {
		if (c->fds[tost] == -1)
			p.error = ENOTDIR;	/* its state has no directory */
		else {
			repair_done(&p, move_rename(m->dirfd, m->name,
			    c->fds[tost], newname));
			if (p.error == ENOENT)
				return;		/* a consumer moved it */
			c->moved |= p.repaired;
		}
	}
	found(c, &p);
}

static uint64_t
hash_id(const char *id)
{
	return fnv1a(FNV1A_BASIS, id, strlen(id));
}

/*
 * Note the ID hash h of one message.  A fixed bitmap remembers hashes
 * seen; only a hash whose bit was already set (a duplicate, or a rare
 * collision of two) is kept in c->hash for the second pass.  So memory
 * stays at SEEN_BYTES plus the few suspects, whatever the queue's length:
 * at 300,000 messages about 5,000 suspects, 40 kB.
 */
static int
push_hash(struct checker *c, uint64_t h)
{
	uint64_t *p, bit = h % (SEEN_BYTES * 8);
	size_t n;

	if (c->seen == NULL && (c->seen = calloc(SEEN_BYTES, 1)) == NULL)
		return -1;
	if (!(c->seen[bit / 8] & (1u << (bit % 8)))) {
		c->seen[bit / 8] |= (unsigned char)(1u << (bit % 8));
		return 0;
	}
	if (c->nhash == c->hashalloc) {
		n = c->hashalloc ? c->hashalloc * 2 : 1024;
		if ((p = reallocarray(c->hash, n, sizeof(*p))) == NULL)
			return -1;
		c->hash = p;
		c->hashalloc = n;
	}
	c->hash[c->nhash++] = h;
	return 0;
}

/* Pass 1: each entry of each state, on its own. */
static int
check_entry(const struct sq_msg *m, void *arg)
{
	struct checker *c = arg;
	char path[PATH_SIZE], what[64], to[PATH_SIZE];
	struct sq_problem p;
	struct stat st = m->st;

	snprintf(path, sizeof(path), "%s/%s", sq_state_dir(m->state), m->name);
	memset(&p, 0, sizeof(p));
	p.path = path;
	if (!S_ISREG(st.st_mode) || !m->parsed) {
		if (!S_ISREG(st.st_mode)) {
			snprintf(what, sizeof(what), "not a regular file (%s)",
			    sq_mode_name(st.st_mode));
			p.what = what;
		} else
			p.what = "unparsable name";
		if (m->parsed)
			p.id = m->n.id;
		quarantine(c, &p, m->dirfd, sq_state_dir(m->state), m->name,
		    to);
		if (p.error != ENOENT)
			found(c, &p);
		return 0;
	}
	if (push_hash(c, hash_id(m->n.id)) == -1)
		return -1;
	/*
	 * More than one link is how fan-out shares one body between queues
	 * (lib/fanout.c), so a link count is not a fault in itself.
	 */
	check_perms(c, m->dirfd, m->name, path, m->n.id, &st);
	check_fields(c, m, path);
	return 0;
}

static int
cmp_hash(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Pass 2: the messages whose ID hash was seen twice, by name. */
static int
collect_cand(const struct sq_msg *m, void *arg)
{
	struct checker *c = arg;
	struct sq_name proper;
	struct cand *p;
	enum sq_state to;
	uint64_t h;
	char why[160];
	size_t n;

	if (!m->parsed || !S_ISREG(m->st.st_mode))
		return 0;
	h = hash_id(m->n.id);
	if (bsearch(&h, c->dup, c->ndup, sizeof(*c->dup), cmp_hash) == NULL)
		return 0;
	if (c->ncand == c->candalloc) {
		n = c->candalloc ? c->candalloc * 2 : 16;
		if ((p = reallocarray(c->cand, n, sizeof(*p))) == NULL)
			return -1;
		c->cand = p;
		c->candalloc = n;
	}
	p = &c->cand[c->ncand];
	p->state = m->state;
	p->attempts = m->n.attempts;
	p->fit = name_fits(m->state, &m->n, c->now_ms, why, sizeof(why),
	    &proper, &to);
	p->id = strdup(m->n.id);
	p->name = strdup(m->name);
	if (p->id == NULL || p->name == NULL) {
		free(p->id);
		free(p->name);
		return -1;
	}
	c->ncand++;
	return 0;
}

/* Which copy of an ID to keep: the most advanced state comes first. */
static int
state_rank(enum sq_state st)
{
	static const int rank[SQ_NSTATES] = {
		[SQ_STATE_INFLIGHT] = 0, [SQ_STATE_READY] = 1,
		[SQ_STATE_RETRY] = 2, [SQ_STATE_HELD] = 3, [SQ_STATE_DEAD] = 4,
	};

	return rank[st];
}

/* By ID; within one, the copy to keep first. */
static int
cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int d;

	if ((d = strcmp(x->id, y->id)) != 0)
		return d;
	if (x->fit != y->fit)
		return y->fit - x->fit;
	if (state_rank(x->state) != state_rank(y->state))
		return state_rank(x->state) - state_rank(y->state);
	if (x->attempts != y->attempts)
		return x->attempts > y->attempts ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
cand_there(struct checker *c, const struct cand *k)
{
	struct stat st;

	return fstatat(c->fds[k->state], k->name, &st, AT_SYMLINK_NOFOLLOW) ==
	    0 && S_ISREG(st.st_mode);
}

/*
 * v is a second copy of keep's ID.  Both names must be there, keep's
 * before and after v's: a single message moving from one name to the
 * other during the walks is not found under both at once.
 */
static void
check_dup(struct checker *c, const struct cand *keep, const struct cand *v)
{
	char path[PATH_SIZE], what[PATH_SIZE + 32], to[PATH_SIZE];
	struct sq_problem p;
	const char *dir = sq_state_dir(v->state);

	if (!cand_there(c, keep) || !cand_there(c, v) || !cand_there(c, keep))
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, v->name);
	snprintf(what, sizeof(what), "duplicate ID (kept %s/%s)",
	    sq_state_dir(keep->state), keep->name);
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.id = v->id;
	p.what = what;
	quarantine(c, &p, c->fds[v->state], dir, v->name, to);
	if (p.error != ENOENT)
		found(c, &p);
}

static int
check_dups(struct checker *c)
{
	size_t i, j;
	int st;

	if (c->nhash == 0)
		return 0;
	sort(c->hash, c->nhash, sizeof(*c->hash), cmp_hash);
	/* The suspect hashes, once each, over the start of the array. */
	for (i = 0; i < c->nhash; i++)
		if (c->ndup == 0 || c->hash[c->ndup - 1] != c->hash[i])
			c->hash[c->ndup++] = c->hash[i];
	if (c->ndup == 0)
		return 0;
	c->dup = c->hash;
	for (st = 0; st < SQ_NSTATES; st++)
		if (c->fds[st] != -1 && sq_msg_each(&c->q, (enum sq_state)st,
		    collect_cand, c) == -1)
			return -1;
	if (c->ncand < 2)
		return 0;		/* the others moved on meanwhile */
	sort(c->cand, c->ncand, sizeof(*c->cand), cmp_cand);
	for (i = 0; i < c->ncand; i = j)
		for (j = i + 1; j < c->ncand &&
		    strcmp(c->cand[j].id, c->cand[i].id) == 0; j++)
			check_dup(c, &c->cand[i], &c->cand[j]);
	return 0;
}

/*
 * An entry of groups/ or groups/KEY/ (path, as the report names it) that
 * is not of its kind (a regular file or a directory): noun says what it
 * stands for.  Reported, and moved into quarantine/groups/ when
 * repairing.  Returns 1 when moved (or, on a dry run, would be).
 */
static int
check_odd(struct checker *c, int dfd, const char *name, const struct stat *st,
    const char *path, const char *noun)
{
	char what[96], to[PATH_SIZE];
	struct sq_problem p;

	memset(&p, 0, sizeof(p));
	p.path = path;
	snprintf(what, sizeof(what), "%s not a %s (%s)", noun,
	    strcmp(noun, "group") == 0 ? "directory" : "regular file",
	    sq_mode_name(st->st_mode));
	p.what = what;
	quarantine(c, &p, dfd, SQ_DIR_GROUPS, name, to);
	if (p.error == ENOENT)
		return 0;		/* renamed meanwhile: not ours */
	found(c, &p);
	return p.repaired || (p.action != NULL && c->plan);
}

/* Whether the group directory dfd holds a baton other than name. */
static int
baton_beside(int dfd, const char *name)
{
	struct dirent *e;
	DIR *d;
	int other = 0;

	if ((d = dir_stream(dfd)) == NULL)
		return 0;
	while (!other && (e = readdir(d)) != NULL)
		other = strcmp(e->d_name, name) != 0 &&
		    (strcmp(e->d_name, SQ_GROUP_FREE) == 0 ||
		    strncmp(e->d_name, SQ_GROUP_HEAD,
		    sizeof(SQ_GROUP_HEAD) - 1) == 0 ||
		    strncmp(e->d_name, SQ_GROUP_GONE,
		    sizeof(SQ_GROUP_GONE) - 1) == 0);
	closedir(d);
	return other;
}

/*
 * A baton of groups/KEY/ (spoolq(5) "Message groups") must be a regular
 * file.  Another kind works as one, by rename, but is no file a tool
 * opens: it goes into quarantine/groups/, and a regular baton of the
 * same name is made in its place, unless the group has another baton
 * beside it (one planted there): that one then serves alone.  Never two batons: the quarantine is a
 * rename of the baton itself, which only one of its racers wins; from
 * then until the new one is made the group has none, so that nobody can
 * take it (a claim of the head is undone into its group, a settle leaves
 * the baton for the group's maintenance), and the maintenance of the
 * check, run after, hands it on.
 */
static int
check_baton(struct checker *c, int dfd, const char *name, const struct stat *st,
    const char *path)
{
	struct sq_problem p;
	int fd, moved;

	if (S_ISREG(st->st_mode))
		return 0;
	moved = check_odd(c, dfd, name, st, path, "baton");
	/* Planted beside the group's baton: nothing takes its place. */
	if (!moved || baton_beside(dfd, name))
		return 0;
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.what = "baton moved into quarantine";
	if (plan_repair(c, &p, "make", path)) {
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0666);
		if (fd != -1) {
			(void)share_file(dir_share(dfd), fd);
			close(fd);
		}
		repair_done(&p, fd == -1 ? -1 : 0);
	}
	found(c, &p);
	return 0;
}

/* The walk of one group's directory, groups/KEY/. */
struct group_walk {
	struct checker	*c;
	const char	*key;
};

/*
 * An entry of groups/KEY/: a baton (the groups' maintenance judges
 * those), or a message waiting in its group, which must be a regular
 * file whose name parses and carries g=KEY.  What is not goes into
 * quarantine/groups/, like a stray entry of a state.  Other names of
 * the groups' own (a comma or a dot first: add markers, the order file)
 * are left to the group code, but every entry that is not a regular
 * file goes, whatever its name (spoolq(5)): the group code skips it,
 * and nothing else would ever remove it.
 */
static int
check_grouped(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct group_walk *w = arg;
	char path[PATH_SIZE], what[64], to[PATH_SIZE];
	struct sq_problem p;
	struct sq_name n;
	struct stat lst = *st;
	int parsed;

	snprintf(path, sizeof(path), "%s/%s/%s", SQ_DIR_GROUPS, w->key, name);
	if (strcmp(name, SQ_GROUP_FREE) == 0 || strncmp(name, SQ_GROUP_HEAD,
	    sizeof(SQ_GROUP_HEAD) - 1) == 0 || strncmp(name, SQ_GROUP_GONE,
	    sizeof(SQ_GROUP_GONE) - 1) == 0)
		return check_baton(w->c, dfd, name, st, path);
	if (name[0] == ',' || name[0] == '.') {
		if (!S_ISREG(st->st_mode))
			check_odd(w->c, dfd, name, st, path,
			    strcmp(name, SQ_GROUP_ORDER) == 0 ? "order file" :
			    strncmp(name, SQ_GROUP_ADD,
			    sizeof(SQ_GROUP_ADD) - 1) == 0 ? "add marker" :
			    "entry");
		return 0;
	}
	memset(&p, 0, sizeof(p));
	p.path = path;
	parsed = sq_name_parse(&n, name) == 0;
	if (parsed)
		p.id = n.id;
	if (!S_ISREG(st->st_mode)) {
		snprintf(what, sizeof(what), "not a regular file (%s)",
		    sq_mode_name(st->st_mode));
		p.what = what;
	} else if (!parsed)
		p.what = "unparsable name";
	else if (strcmp(n.group, w->key) != 0)
		p.what = "name without its group's g= field";
	else {
		check_perms(w->c, dfd, name, path, n.id, &lst);
		return 0;
	}
	quarantine(w->c, &p, dfd, SQ_DIR_GROUPS, name, to);
	if (p.error != ENOENT)
		found(w->c, &p);
	return 0;
}

/*
 * An entry of groups/ itself: a group's directory (also one being made,
 * .new.*, or removed, .gc.*) must be a directory, groups/,maint a
 * regular file; other names are left alone.  1 when the entry was of the
 * wrong kind (reported, and moved into quarantine/groups/ when
 * repairing): a send makes the group anew.
 */
static int
check_groups_entry(struct checker *c, int gsfd, const char *name)
{
	char path[PATH_SIZE];
	struct stat st;
	int dir;

	if (strcmp(name, SQ_GROUP_MAINT) == 0)
		dir = 0;
	else if (sq_group_key_valid(name, strlen(name)) ||
	    strncmp(name, ".new.", 5) == 0 || strncmp(name, ".gc.", 4) == 0)
		dir = 1;
	else
		return 0;
	if (fstatat(gsfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", SQ_DIR_GROUPS, name);
	(void)check_odd(c, gsfd, name, &st, path, dir ? "group" :
	    "maintenance stamp");
	return 1;
}

/*
 * The order file of groups/KEY/ (gfd), a hint of the next heads, must
 * check and name them in their order (group_order_wrong); a wrong one is
 * removed, and the next settle that lists the group writes it anew.
 */
static void
check_order(struct checker *c, int gfd, const char *key)
{
	char path[PATH_SIZE];
	struct sq_problem p;

	memset(&p, 0, sizeof(p));
	if ((p.what = group_order_wrong(gfd, key)) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s/%s", SQ_DIR_GROUPS, key,
	    SQ_GROUP_ORDER);
	p.path = path;
	if (plan_repair(c, &p, "remove", "-"))
		repair_done(&p, unlinkat(gfd, SQ_GROUP_ORDER, 0));
	if (p.error == ENOENT)
		return;			/* removed by a settle meanwhile */
	found(c, &p);
}

/* The messages waiting in groups/KEY/, for every group. */
static int
check_group_dirs(struct checker *c)
{
	struct group_walk w;
	struct dirent *e;
	DIR *d;
	int gsfd, gfd, rc = 0, saved;

	if ((gsfd = subdir_open(c->q.fd, SQ_DIR_GROUPS, 0)) == -1)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ?
		    0 : -1;
	if ((d = fdopendir(gsfd)) == NULL) {
		saved = errno;
		close(gsfd);
		errno = saved;
		return -1;
	}
	w.c = c;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (check_groups_entry(c, dirfd(d), e->d_name) ||
		    !sq_group_key_valid(e->d_name, strlen(e->d_name)))
			continue;
		/* Not checked is not sound: only a group gone is skipped. */
		if ((gfd = subdir_open(dirfd(d), e->d_name, 0)) == -1) {
			if (errno != ENOENT && errno != ENOTDIR &&
			    errno != ELOOP)
				rc = -1;
			continue;
		}
		w.key = e->d_name;
		rc = dir_each(gfd, check_grouped, &w);
		if (rc == 0)
			check_order(c, gfd, e->d_name);
		saved = errno;
		close(gfd);
		errno = saved;
	}
	saved = errno;
	closedir(d);
	errno = saved;
	return rc;
}

/* A half-done group state, as sq_group_maintain found or mended it. */
static void
group_found(const char *key, const char *what, const char *action,
    void *arg)
{
	struct checker *c = arg;
	struct sq_problem p;
	char path[PATH_SIZE];

	memset(&p, 0, sizeof(p));
	snprintf(path, sizeof(path), "%s/%s", SQ_DIR_GROUPS, key);
	p.path = path;
	p.what = what;
	if (action != NULL && (c->act || c->plan)) {
		p.action = action;
		p.to = path;
		p.repaired = c->act;
	}
	found(c, &p);
}

/*
 * Groups (spoolq(5) "Message groups"): what a crash left half-way, found
 * by the groups' own maintenance, forced, and without changes unless
 * repairing.
 */
static void
check_groups(struct checker *c)
{
	if (c->q.tmpfd == -1 || c->q.newfd == -1 || c->q.curfd == -1 ||
	    c->q.retryfd == -1)
		return;
	(void)sq_group_maintain(&c->q, c->now_ms, SQ_GROUP_FORCE |
	    (c->act ? 0 : SQ_GROUP_DRY), group_found, c);
}

static void
check_free(struct checker *c)
{
	size_t i;
	int saved = errno;

	for (i = 0; i < SQ_NSTATES; i++)
		if (c->fds[i] != -1 &&
		    c->fds[i] != queue_state_fd(c, (enum sq_state)i))
			close(c->fds[i]);
	sq_queue_close(&c->q);
	for (i = 0; i < c->ncand; i++) {
		free(c->cand[i].id);
		free(c->cand[i].name);
	}
	free(c->cand);
	free(c->hash);
	free(c->seen);
	errno = saved;
}

int
sq_queue_check(const char *path, int flags, sq_problem_fn *fn, void *arg,
    struct sq_check_result *res)
{
	struct checker c;
	size_t i;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	memset(res, 0, sizeof(*res));
	c.q.fd = c.q.tmpfd = c.q.newfd = c.q.curfd = c.q.retryfd =
	    c.q.deadfd = c.q.index_fd = -1;
	for (i = 0; i < SQ_NSTATES; i++)
		c.fds[i] = -1;
	sq_conf_defaults(&c.q.conf);
	if (strlcpy(c.q.path, path, sizeof(c.q.path)) >= sizeof(c.q.path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	c.act = (flags & SQ_CHECK_REPAIR) && !(flags & SQ_CHECK_DRY_RUN);
	c.plan = (flags & SQ_CHECK_REPAIR) && (flags & SQ_CHECK_DRY_RUN);
	c.now_ms = sq_now_ms();
	c.fn = fn;
	c.arg = arg;
	c.res = res;
	if (check_tree(&c, path) == -1)
		goto out;
	for (i = 0; i < SQ_NSTATES; i++)
		if (c.fds[i] != -1 && sq_msg_each(&c.q, (enum sq_state)i,
		    check_entry, &c) == -1)
			goto out;
	if (check_dups(&c) == -1 || check_file_dirs(&c) == -1 ||
	    check_group_dirs(&c) == -1)
		goto out;
	check_held(&c);
	check_groups(&c);
	/* Renamed names are not in the claim index: list new/ again. */
	if (c.moved)
		(void)sq_queue_refresh(&c.q);
	rc = 0;
out:
	check_free(&c);
	return rc;
}
