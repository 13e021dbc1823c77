/*
 * spool.c - the spool root, queue names, and whole queues: create, open,
 * count, destroy.
 *
 * A queue is opened once into directory descriptors and every later path
 * is resolved relative to them (*at calls), so a rename of a parent or a
 * symlink planted later cannot redirect a tool.  A queue appears whole or
 * not at all: it is built under a dot name beside its place and renamed.
 */
#include <sys/stat.h>
#include <sys/vfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)

static const char *const state_dirs[] = {
	SQ_DIR_TMP, SQ_DIR_NEW, SQ_DIR_CUR, SQ_DIR_RETRY, SQ_DIR_DEAD,
	SQ_DIR_ATTR, SQ_DIR_RUN,
};
#define NSTATE_DIRS	(sizeof(state_dirs) / sizeof(state_dirs[0]))

int
sq_spool_root(char *buf, size_t size, const char *dir)
{
	const char *env, *home;
	int n;

	if (dir == NULL && (env = getenv("SPOOLQ_DIR")) != NULL && *env != '\0')
		dir = env;
	if (dir == NULL && geteuid() == 0)
		dir = "/var/spool/spoolq";
	if (dir != NULL)
		n = snprintf(buf, size, "%s", dir);
	else if ((env = getenv("XDG_STATE_HOME")) != NULL && *env == '/')
		n = snprintf(buf, size, "%s/spoolq", env);
	else if ((home = getenv("HOME")) != NULL && *home != '\0')
		n = snprintf(buf, size, "%s/.local/state/spoolq", home);
	else {
		errno = ENOENT;
		return -1;
	}
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
sq_queue_path(char *buf, size_t size, const char *root, const char *arg)
{
	int n;

	if (strchr(arg, '/') != NULL)
		n = snprintf(buf, size, "%s", arg);
	else if (!sq_queue_name_valid(arg)) {
		errno = EINVAL;
		return -1;
	} else
		n = snprintf(buf, size, "%s/%s", root, arg);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
remove_tree(int fd)
{
	DIR *d;
	struct dirent *e;
	int sub, rc = 0, dfd;

	if ((dfd = dup(fd)) == -1 || (d = fdopendir(dfd)) == NULL) {
		if (dfd != -1)
			close(dfd);
		return -1;
	}
	rewinddir(d);	/* the offset is fd's: read to the end before */
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, e->d_name, 0) == 0)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = -1;
			continue;
		}
		if ((sub = openat(fd, e->d_name, DIR_FLAGS)) == -1) {
			rc = -1;
			continue;
		}
		if (remove_tree(sub) == -1)
			rc = -1;
		close(sub);
		if (unlinkat(fd, e->d_name, AT_REMOVEDIR) == -1)
			rc = -1;
	}
	closedir(d);
	return rc;
}

static int
write_conf(int qfd, const char *const *keys, const char *const *values,
    size_t n)
{
	FILE *fp;
	int fd;
	size_t i;

	fd = openat(qfd, SQ_CONF_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0666);
	if (fd == -1 || share_file(dir_share(qfd), fd) == -1 ||
	    (fp = fdopen(fd, "w")) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	fprintf(fp, "[queue]\n");
	for (i = 0; i < n; i++)
		fprintf(fp, "%s = %s\n", keys[i], values[i]);
	if (fflush(fp) == EOF || fsync(fileno(fp)) == -1) {
		fclose(fp);
		return -1;
	}
	return fclose(fp);
}

int
sq_queue_create(const char *path, const char *const *keys,
    const char *const *values, size_t n, char *why, size_t whysize)
{
	char parent[PATH_MAX], base[NAME_MAX + 1], tmp[NAME_MAX + 1];
	struct sq_conf conf;
	size_t i;
	int pfd = -1, qfd = -1, saved;

	sq_conf_defaults(&conf);
	for (i = 0; i < n; i++) {
		char reason[200];

		if (sq_conf_set(&conf, keys[i], values[i], reason,
		    sizeof(reason)) == -1) {
			snprintf(why, whysize, "%s: %s", keys[i], reason);
			errno = EINVAL;
			return -1;
		}
	}
	if (path_split(path, parent, sizeof(parent), base, sizeof(base)) == -1)
		return -1;
	if (make_dirs(parent) == -1 || (pfd = open(parent, DIR_FLAGS & ~O_NOFOLLOW))
	    == -1)
		return -1;
	if (faccessat(pfd, base, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		close(pfd);
		errno = EEXIST;
		return -1;
	}
	snprintf(tmp, sizeof(tmp), ".create.%ld.%08x", (long)getpid(),
	    arc4random());
	if (mkdir_shared(pfd, tmp) == -1 ||
	    (qfd = openat(pfd, tmp, DIR_FLAGS)) == -1)
		goto fail;
	for (i = 0; i < NSTATE_DIRS; i++)
		if (mkdir_shared(qfd, state_dirs[i]) == -1)
			goto fail;
	if (n > 0 && write_conf(qfd, keys, values, n) == -1)
		goto fail;
	if (fsync(qfd) == -1 || sq_rename(pfd, tmp, pfd, base) == -1)
		goto fail;
	fsync(pfd);
	close(qfd);
	close(pfd);
	return 0;
fail:
	saved = errno;
	if (qfd != -1) {
		remove_tree(qfd);
		close(qfd);
	}
	unlinkat(pfd, tmp, AT_REMOVEDIR);
	close(pfd);
	/* A directory renamed onto a non-empty one answers ENOTEMPTY. */
	errno = saved == ENOTEMPTY ? EEXIST : saved;
	return -1;
}

const char *
sq_queue_real(struct sq_queue *q)
{
	if (q->real[0] == '\0' && realpath(q->path, q->real) == NULL)
		strlcpy(q->real, q->path, sizeof(q->real));
	return q->real;
}

void
sq_queue_close(struct sq_queue *q)
{
	int *fds[] = { &q->fd, &q->tmpfd, &q->newfd, &q->curfd, &q->retryfd,
	    &q->deadfd, &q->index_fd };
	size_t i;

	(void)sq_counter_flush(q, 1);
	if (q->fd >= 0 && q->offered_len > 0)
		(void)index_offer_flush(q);
	if (q->groups_open)
		close(q->groupsfd);
	q->groups_open = 0;
	if (q->run_open)
		close(q->runfd);
	q->run_open = 0;
	if (q->attr_open)
		close(q->attrfd);
	q->attr_open = 0;
	q->attr_fs = 0;
	dead_letter_close(q);
	group_cache_free(q);
	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] != -1)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

void
dead_letter_close(struct sq_queue *q)
{
	if (q->dl_to == NULL)
		return;
	sq_queue_close(q->dl_to);
	free(q->dl_to);
	q->dl_to = NULL;
}

const char *
sq_queue_blame(const struct sq_queue *q, int mode)
{
	static const char *const dirs[] = {
		SQ_DIR_TMP, SQ_DIR_NEW, SQ_DIR_CUR, SQ_DIR_RETRY, SQ_DIR_DEAD,
		SQ_DIR_ATTR, SQ_DIR_RUN, SQ_DIR_HOLD, SQ_DIR_ARCHIVE, "dedup",
	};
	size_t i;
	int saved = errno;
	const char *d = NULL;

	if (q->fd < 0)
		return NULL;
	for (i = 0; d == NULL && i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (faccessat(q->fd, dirs[i], mode, AT_EACCESS) == -1 &&
		    (errno == EACCES || errno == EPERM))
			d = dirs[i];
	errno = saved;
	return d;
}

/*
 * The state directory name of the queue dfd (at path) could not be
 * opened (errno): say why in err and return the errno to fail with.  A
 * directory that is missing or is something else makes the queue broken
 * (SQ_EBROKEN) when its queue.conf or two other state directories are
 * there; else it is no queue at all (ENOTDIR): a lone cur/ does not make
 * a queue of a directory that qack is given a path into.
 */
static int
dir_missing(int dfd, const char *path, const char *name, char *err,
    size_t errsize)
{
	static const char *const required[] = {
		SQ_DIR_TMP, SQ_DIR_NEW, SQ_DIR_CUR, SQ_DIR_RETRY, SQ_DIR_DEAD,
	};
	struct stat st;
	size_t i;
	int e = errno, there = 0;

	if (e != ENOENT && e != ENOTDIR && e != ELOOP) {
		snprintf(err, errsize, "%s/%s: %s", path, name, strerror(e));
		return e;
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (fstatat(dfd, required[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			there++;
	if (there < 2 && faccessat(dfd, SQ_CONF_FILE, F_OK,
	    AT_SYMLINK_NOFOLLOW) == -1) {
		snprintf(err, errsize, "%s: not a queue: %s/: %s", path, name,
		    strerror(e));
		return ENOTDIR;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISDIR(st.st_mode))
		snprintf(err, errsize, "%s/%s: not a directory (%s)", path,
		    name, sq_mode_name(st.st_mode));
	else
		snprintf(err, errsize, "%s/%s: %s", path, name,
		    strerror(ENOENT));
	return SQ_EBROKEN;
}

/* Open the queue's directories; the settings stay at their defaults. */
static int
open_dirs(struct sq_queue *q, const char *path, char *err, size_t errsize)
{
	struct {
		int		*fd;
		const char	*name;
	} dirs[] = {
		{ &q->tmpfd, SQ_DIR_TMP }, { &q->newfd, SQ_DIR_NEW },
		{ &q->curfd, SQ_DIR_CUR }, { &q->retryfd, SQ_DIR_RETRY },
		{ &q->deadfd, SQ_DIR_DEAD },
	};
	struct stat st;
	size_t i;
	int saved;

	memset(q, 0, sizeof(*q));
	q->fd = q->tmpfd = q->newfd = q->curfd = q->retryfd = q->deadfd =
	    q->index_fd = -1;
	sq_conf_defaults(&q->conf);
	if (strlcpy(q->path, path, sizeof(q->path)) >= sizeof(q->path)) {
		errno = ENAMETOOLONG;
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((q->fd = open(path, DIR_FLAGS)) == -1) {
		saved = errno == ELOOP ? ENOTDIR : errno;
		snprintf(err, errsize, "%s: %s", path, saved == ENOENT ?
		    "no such queue" : saved == ENOTDIR ? "not a queue" :
		    strerror(saved));
		goto fail;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if ((*dirs[i].fd = openat(q->fd, dirs[i].name, DIR_FLAGS)) ==
		    -1) {
			saved = dir_missing(q->fd, path, dirs[i].name, err,
			    errsize);
			goto fail;
		}
	}
	if (fstat(q->fd, &st) == -1) {
		saved = errno;
		snprintf(err, errsize, "%s: %s", path, strerror(saved));
		goto fail;
	}
	q->dev = st.st_dev;
	q->share = (st.st_mode & S_ISGID) && (st.st_mode & S_IWGRP) ?
	    S_ISGID | (st.st_mode & S_IRWXG) : 0;
	return 0;
fail:
	sq_queue_close(q);
	errno = saved;
	return -1;
}

int
sq_queue_open_dirs(struct sq_queue *q, const char *path, char *err,
    size_t errsize)
{
	return open_dirs(q, path, err, errsize);
}

int
sq_queue_reopen(struct sq_queue *q)
{
	struct sq_queue fresh;
	char err[PATH_MAX + 64];
	int *fds[] = { &q->fd, &q->tmpfd, &q->newfd, &q->curfd, &q->retryfd,
	    &q->deadfd, &q->index_fd };
	int *to[] = { &fresh.fd, &fresh.tmpfd, &fresh.newfd, &fresh.curfd,
	    &fresh.retryfd, &fresh.deadfd, &fresh.index_fd };
	size_t i;

	if (open_dirs(&fresh, q->path, err, sizeof(err)) == -1)
		return -1;
	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] != -1)
			close(*fds[i]);
		*fds[i] = *to[i];
	}
	q->dev = fresh.dev;
	q->share = fresh.share;
	if (q->run_open)
		close(q->runfd);	/* opened again on demand */
	q->run_open = 0;
	if (q->attr_open)
		close(q->attrfd);	/* likewise */
	q->attr_open = 0;
	q->attr_fs = 0;
	dead_letter_close(q);		/* likewise */
	return 0;
}

const char *
sq_queue_moved(const struct sq_queue *q)
{
	const struct {
		int		 fd;
		const char	*name;
	} dirs[] = {
		{ q->tmpfd, SQ_DIR_TMP }, { q->newfd, SQ_DIR_NEW },
		{ q->curfd, SQ_DIR_CUR }, { q->retryfd, SQ_DIR_RETRY },
		{ q->deadfd, SQ_DIR_DEAD },
	};
	struct stat open, named;
	size_t i;

	/*
	 * The queue directory itself first: destroyed (and maybe made
	 * anew) or renamed, its state directories are all in place under
	 * the descriptor, and gone for everyone else.
	 */
	if (fstat(q->fd, &open) == 0 && (stat(q->path, &named) == -1 ||
	    named.st_dev != open.st_dev || named.st_ino != open.st_ino))
		return ".";
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (fstat(dirs[i].fd, &open) == 0 && (fstatat(q->fd,
		    dirs[i].name, &named, AT_SYMLINK_NOFOLLOW) == -1 ||
		    named.st_dev != open.st_dev || named.st_ino != open.st_ino))
			return dirs[i].name;
	return NULL;
}

int
sq_error_stale(int e)
{
	return e == EBADF || e == EBADFD || e == ESTALE || e == ENOTCONN ||
	    e == EIO || e == ETIMEDOUT || e == ECONNABORTED ||
	    e == ECONNRESET || e == EHOSTDOWN || e == EHOSTUNREACH ||
	    e == EAGAIN || e == EINTR;
}

int
sq_queue_open(struct sq_queue *q, const char *path, char *err, size_t errsize)
{
	char conf[PATH_MAX + sizeof(SQ_CONF_FILE) + 1];
	int saved;

	if (open_dirs(q, path, err, errsize) == -1)
		return -1;
	snprintf(conf, sizeof(conf), "%s/%s", path, SQ_CONF_FILE);
	if (sq_conf_load(&q->conf, q->fd, conf, err, errsize) == -1) {
		saved = errno;
		sq_queue_close(q);
		errno = saved;
		return -1;
	}
	return 0;
}

int
sq_queue_open_arg(struct sq_queue *q, const char *root, const char *arg,
    char *err, size_t errsize)
{
	char rootbuf[PATH_MAX], path[PATH_MAX];

	if (sq_spool_root(rootbuf, sizeof(rootbuf), root) == -1) {
		snprintf(err, errsize, "spool root: %s", strerror(errno));
		return -1;
	}
	if (sq_queue_path(path, sizeof(path), rootbuf, arg) == -1) {
		snprintf(err, errsize, "%s: %s", arg, errno == EINVAL ?
		    "bad queue name" : strerror(errno));
		return -1;
	}
	return sq_queue_open(q, path, err, errsize);
}

/* A stream of the directory fd of its own, apart from fd's offset. */
static DIR *
listing(int fd)
{
	DIR *d;
	int dfd;

	if ((dfd = openat(fd, ".", DIR_FLAGS)) == -1)
		return NULL;
	if ((d = fdopendir(dfd)) == NULL)
		close(dfd);
	return d;
}

/* Count the non-dot entries of dir (in q). */
static int
count_dir(int fd, size_t *n)
{
	DIR *d;
	struct dirent *e;

	*n = 0;
	if ((d = listing(fd)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			(*n)++;
	closedir(d);
	return 0;
}

int
sq_queue_count(struct sq_queue *q, struct sq_counts *c)
{
	struct sq_group_stats gs;

	if (count_dir(q->newfd, &c->ready) == -1 ||
	    count_dir(q->curfd, &c->inflight) == -1 ||
	    count_dir(q->retryfd, &c->retry) == -1 ||
	    count_dir(q->deadfd, &c->dead) == -1 ||
	    sq_group_stats(q, &gs) == -1)
		return -1;
	c->ready += gs.waiting;	/* ready, behind their groups' heads */
	return 0;
}

/*
 * The sealing of a queue being destroyed, under its own name before it
 * is renamed aside, so that a destroy killed at any step leaves every
 * message where the tools (and qadmin check --repair, which makes missing
 * directories again) find it.  A tool that opened the queue before keeps
 * descriptors of its directories, and a rename into one of them still
 * lands (a send, a dead letter forwarded from another queue, a move).
 * Removing a directory is the one step that decides such a race: rmdir(2)
 * fails with ENOTEMPTY while anything is in it, and once it is gone a
 * rename into it fails with ENOENT, which the sender reports.  So each
 * directory a message can arrive in is removed empty, one by one, and a
 * message found in one at that moment stops the destroy.
 */
#define SEAL_TRIES	16	/* rmdir attempts of one directory */

/*
 * Open the directory name of pfd into *fd and a listing of it, or return
 * NULL with errno (ENOENT: it is gone) and nothing open.
 */
static DIR *
listing_at(int pfd, const char *name, int *fd)
{
	DIR *d;
	int saved;

	if ((*fd = openat(pfd, name, DIR_FLAGS)) == -1)
		return NULL;
	if ((d = listing(*fd)) == NULL) {
		saved = errno;
		close(*fd);
		errno = saved;
	}
	return d;
}

/* Whether name, in a directory being sealed, is a message (1) or not. */
typedef int	seal_real_fn(const char *name);

static int
seal_msg(const char *name)
{
	return name[0] != '.';
}

static int
seal_none(const char *name)
{
	(void)name;
	return 0;
}

/* A message waiting in a group's directory: not a baton, marker or order. */
static int
seal_grouped(const char *name)
{
	return name[0] != '.' && name[0] != ',';
}

/* A name in groups/ being sealed that a group's directory may take. */
static int
seal_group_key(const char *name)
{
	return sq_group_key_valid(name, strlen(name));
}

/*
 * Remove the entry name of fd, and all under it when it is a directory.
 * Returns 0 (gone already too) or -1 with errno.
 */
static int
remove_entry(int fd, const char *name)
{
	int sub, rc;

	if (unlinkat(fd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	if ((sub = openat(fd, name, DIR_FLAGS)) == -1)
		return errno == ENOENT ? 0 : -1;
	rc = remove_tree(sub);
	close(sub);
	if (unlinkat(fd, name, AT_REMOVEDIR) == -1 && errno != ENOENT)
		rc = -1;
	return rc;
}

/*
 * Remove the directory name of pfd if it holds no message (real): what
 * else is in it goes first, each entry by the name it was judged by, so
 * that a message renamed in after the judgment is never removed with
 * the rest (it stops the rmdir(2) that follows, and the next look finds
 * it).  Returns 0 when it is gone (or was not there), 1 when a message
 * is in it (it is then left, with what else is still in it), -1 with
 * errno.  *emptied is set when something was removed from it.
 */
static int
seal_dir(int pfd, const char *name, seal_real_fn *real, int *emptied)
{
	struct dirent *e;
	DIR *d;
	int fd, tries, found;

	for (tries = 0; tries < SEAL_TRIES; tries++) {
		if (unlinkat(pfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != ENOTEMPTY && errno != EEXIST)
			return -1;
		if ((d = listing_at(pfd, name, &fd)) == NULL)
			return errno == ENOENT ? 0 : -1;
		found = 0;
		while (!found && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			if (real(e->d_name))
				found = 1;
			else if (remove_entry(fd, e->d_name) == 0)
				*emptied = 1;
		}
		closedir(d);
		close(fd);
		if (found)
			return 1;
	}
	errno = EBUSY;
	return -1;
}

/* Give the group key of gsfd a free baton, when it has none. */
static void
free_baton(int gsfd, const char *key)
{
	int gfd, fd;

	if ((gfd = openat(gsfd, key, DIR_FLAGS)) == -1)
		return;
	fd = openat(gfd, SQ_GROUP_FREE, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0666);
	if (fd != -1)
		close(fd);
	close(gfd);
}

/*
 * Seal groups/ of qfd: each group's directory, then groups/ itself.  A
 * group that had its baton removed before a message arrived gets a free
 * one back, which the groups' upkeep advances.  Returns as seal_dir.
 */
static int
seal_groups(int qfd)
{
	struct dirent *e;
	DIR *d;
	int gsfd, rc, tries, emptied;

	for (tries = 0; tries < SEAL_TRIES; tries++) {
		if ((d = listing_at(qfd, SQ_DIR_GROUPS, &gsfd)) == NULL)
			return errno == ENOENT ? 0 : -1;
		rc = 0;
		while (rc == 0 && (e = readdir(d)) != NULL) {
			if (!sq_group_key_valid(e->d_name, strlen(e->d_name)))
				continue;
			emptied = 0;
			rc = seal_dir(gsfd, e->d_name, seal_grouped, &emptied);
			if (rc == -1 && errno == ENOTDIR)	/* not a group */
				rc = remove_entry(gsfd, e->d_name);
			if (rc == 1 && emptied)
				free_baton(gsfd, e->d_name);
		}
		closedir(d);
		close(gsfd);
		if (rc != 0)
			return rc;
		emptied = 0;
		if ((rc = seal_dir(qfd, SQ_DIR_GROUPS, seal_group_key,
		    &emptied)) != 1)
			return rc;
		/* A group made meanwhile: seal it too. */
	}
	errno = EBUSY;
	return -1;
}

/*
 * Seal the queue qfd: tmp/ first, so that no send can begin, then every
 * directory a message can be renamed into.  Returns 0 when all are gone,
 * 1 when a message arrived in one (its name into *where), -1 with errno.
 */
static int
seal_queue(int qfd, const char **where)
{
	static const struct {
		const char	*name;
		seal_real_fn	*real;
	} dirs[] = {
		{ SQ_DIR_TMP, seal_none }, { SQ_DIR_NEW, seal_msg },
		{ SQ_DIR_RETRY, seal_msg }, { SQ_DIR_CUR, seal_msg },
		{ SQ_DIR_ARCHIVE, seal_msg }, { SQ_DIR_DEAD, seal_msg },
		{ SQ_DIR_HOLD, seal_msg },
	};
	size_t i;
	int rc, emptied;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		emptied = 0;
		*where = dirs[i].name;
		if ((rc = seal_dir(qfd, dirs[i].name, dirs[i].real, &emptied))
		    != 0)
			return rc;
	}
	*where = SQ_DIR_GROUPS;
	return seal_groups(qfd);
}

/* Make again the state directories seal_queue removed from qfd. */
static int
unseal_queue(int qfd)
{
	size_t i;

	for (i = 0; i < NSTATE_DIRS; i++)
		if (mkdir_shared(qfd, state_dirs[i]) == -1 && errno != EEXIST)
			return -1;
	return 0;
}

/*
 * Count the messages of hold/ of q into *held and those archive/ keeps
 * (acked, for replay) into *archived, none where a directory is missing.
 */
static int
count_kept(struct sq_queue *q, size_t *held, size_t *archived)
{
	int fd, rc;

	*held = *archived = 0;
	if ((fd = sq_state_open(q, SQ_STATE_HELD, 0)) != -1) {
		rc = count_dir(fd, held);
		close(fd);
		if (rc == -1)
			return -1;
	} else if (errno != ENOENT)
		return -1;
	if ((fd = subdir_open(q->fd, SQ_DIR_ARCHIVE, 0)) == -1)
		return errno == ENOENT ? 0 : -1;
	rc = count_dir(fd, archived);
	close(fd);
	return rc;
}

/*
 * Say into why which directories of q hold messages, with how many, as
 * "2 in new/, 1 in archive/ (acknowledged, kept for replay)".  Returns
 * the number of messages, or -1 with errno (why left as it was) when
 * they could not be counted.
 */
static ssize_t
count_holders(struct sq_queue *q, char *why, size_t whysize)
{
	static const struct {
		const char	*dir;
		const char	*note;
	} in[] = {
		{ SQ_DIR_NEW, "" }, { SQ_DIR_GROUPS, "" }, { SQ_DIR_CUR, "" },
		{ SQ_DIR_RETRY, "" }, { SQ_DIR_DEAD, "" }, { SQ_DIR_HOLD, "" },
		{ SQ_DIR_ARCHIVE, " (acknowledged, kept for replay)" },
	};
	size_t n[sizeof(in) / sizeof(in[0])];
	struct sq_group_stats gs;
	size_t i, len = 0, total = 0;

	/*
	 * Each directory listed once: sq_queue_count's ready (the groups'
	 * waiting added) less the waiting of a listing of groups/ made
	 * after it wraps below zero for a grouped send landing between.
	 */
	if (count_dir(q->newfd, &n[0]) == -1 ||
	    count_dir(q->curfd, &n[2]) == -1 ||
	    count_dir(q->retryfd, &n[3]) == -1 ||
	    count_dir(q->deadfd, &n[4]) == -1 ||
	    sq_group_stats(q, &gs) == -1 || count_kept(q, &n[5], &n[6]) == -1)
		return -1;
	n[1] = gs.waiting;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		if (n[i] == 0)
			continue;
		if (len < whysize)
			len += (size_t)snprintf(why + len, whysize - len,
			    "%s%zu in %s/%s", total > 0 ? ", " : "", n[i],
			    in[i].dir, in[i].note);
		total += n[i];
	}
	return (ssize_t)total;
}

int
sq_queue_destroy(const char *path, int force, char *why, size_t whysize)
{
	char parent[PATH_MAX], base[NAME_MAX + 1], tmp[NAME_MAX + 1], err[64];
	const char *where;
	struct sq_queue q;
	ssize_t held;
	int pfd, rc, saved, tries;

	if (whysize > 0)
		why[0] = '\0';
	/* Without its settings: a queue with a broken queue.conf can go. */
	if (open_dirs(&q, path, err, sizeof(err)) == -1)
		return -1;
	/* Messages not counted are not known to be there: no ENOTEMPTY. */
	if (!force && (held = count_holders(&q, why, whysize)) != 0) {
		saved = held == -1 ? errno : ENOTEMPTY;
		sq_queue_close(&q);
		errno = saved;
		return -1;
	}
	/*
	 * What arrived since the count, or arrives now through a descriptor
	 * opened before, stops the destroy: the queue, sealed under its own
	 * name, is made whole again and refused as a queue that is not
	 * empty.  A destroy killed meanwhile leaves the queue under its name
	 * with directories missing, which qadmin check --repair makes.
	 */
	if (!force && (rc = seal_queue(q.fd, &where)) != 0) {
		saved = rc == 1 ? ENOTEMPTY : errno;
		/*
		 * The count of groups/ passes over what is no message there
		 * (a FIFO planted in a group's directory), which the seal
		 * leaves too.
		 */
		if (rc == 1 && strcmp(where, SQ_DIR_GROUPS) == 0)
			snprintf(why, whysize, "a message came in %s/, or "
			    "something that is no message is there (qadmin "
			    "check)", where);
		else if (rc == 1)
			snprintf(why, whysize, "a message came in %s/", where);
		if (unseal_queue(q.fd) == -1)
			saved = errno;
		else
			fsync(q.fd);
		sq_queue_close(&q);
		errno = saved;
		return -1;
	}
	pfd = -1;
	snprintf(tmp, sizeof(tmp), SQ_DESTROY_PREFIX "%ld.%08x",
	    (long)getpid(), arc4random());
	if (path_split(path, parent, sizeof(parent), base, sizeof(base)) == -1 ||
	    (pfd = open(parent, DIR_FLAGS & ~O_NOFOLLOW)) == -1 ||
	    sq_rename(pfd, base, pfd, tmp) == -1) {
		saved = errno;
		if (!force)
			(void)unseal_queue(q.fd);
		if (pfd != -1)
			close(pfd);
		sq_queue_close(&q);
		errno = saved;
		return -1;
	}
	/*
	 * Past the point of no return: what a tool that has the queue open
	 * makes again meanwhile (a worker's run/) is no message, and goes
	 * too.  The queue is gone by its name whatever happens here.
	 */
	for (tries = 0; tries < SEAL_TRIES; tries++) {
		(void)remove_tree(q.fd);
		if ((rc = unlinkat(pfd, tmp, AT_REMOVEDIR)) == 0 ||
		    errno != ENOTEMPTY)
			break;
		errno = EBUSY;
	}
	saved = errno;
	close(pfd);
	sq_queue_close(&q);
	errno = saved;
	return rc;
}
