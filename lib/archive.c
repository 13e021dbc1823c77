/*
 * archive.c - queues as replayable logs (queue key archive = yes).
 *
 * With archive on, an ack renames cur/NAME to archive/ID,a=k instead of
 * unlinking it (one rename, like every transition), and the message's
 * attributes stay in attr/.  Replay sends archived bodies again as new
 * messages (new IDs, the original ID kept as the attribute original-id,
 * the group of a grouped message kept), so the archive is an offset-free log without a second storage engine.
 * retention (age, from the time of archiving: the file's ctime) and
 * retention_bytes (the oldest go first) bound it; qadmin gc enforces
 * them.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)

static int
archive_fd(struct sq_queue *q, int create)
{
	return subdir_open(q->fd, SQ_DIR_ARCHIVE, create);
}

int
archive_message(struct sq_queue *q, const char *name, struct sq_name *n,
    char *newname)
{
	int fd, rc, saved;

	if ((fd = archive_fd(q, 1)) == -1)
		return -1;
	ready_name(n);
	/* Made though reported failed: archived (settle_move). */
	rc = settle_move(q, q->curfd, name, SQ_DIR_ARCHIVE, fd, n, newname);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

struct archived {
	dir_entry_fn	*fn;
	void		*arg;
};

static int
only_messages(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct archived *a = arg;

	if (name[0] == '.' || !S_ISREG(st->st_mode))
		return 0;
	return a->fn(dfd, name, st, a->arg);
}

/* Walk archive/ calling fn(dirfd, name, stat) for each regular file. */
static int
archive_each(struct sq_queue *q, dir_entry_fn *fn, void *arg)
{
	struct archived a = { fn, arg };
	int fd, rc, saved;

	if ((fd = archive_fd(q, 0)) == -1)
		return errno == ENOENT ? 0 : -1;
	rc = dir_each(fd, only_messages, &a);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

struct replay {
	struct sq_queue	*q, *to;
	int64_t		 since_ms;
	int		 dry_run;
	sq_replay_fn	*fn;
	void		*arg;
	size_t		 n;
};

/* Copy the routing key and attributes of the original, then add ours. */
struct attrs {
	struct sq_attr	 a[SQ_ATTRS_MAX];
	char		*own[SQ_ATTRS_MAX * 2 + 1];
	size_t		 n, nown;
	char		*key;
};

static int
keep_attr(const char *name, const char *value, void *arg)
{
	struct attrs *t = arg;
	char *v;

	if ((v = strdup(value)) == NULL)
		return -1;
	t->own[t->nown++] = v;
	if (name == NULL) {
		t->key = v;
		return 0;
	}
	if (t->n == SQ_ATTRS_MAX - 1 || strcmp(name, "original-id") == 0)
		return 0;		/* room for original-id */
	if ((t->own[t->nown] = strdup(name)) == NULL)
		return -1;
	t->a[t->n].name = t->own[t->nown++];
	t->a[t->n++].value = v;
	return 0;
}

static int
replay_one(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct replay *r = arg;
	struct sq_msgopts o;
	struct sq_batch b;
	struct sq_name n;
	struct attrs t;
	int64_t sent;
	size_t i;
	int fd, rc = -1;

	if (sq_name_parse(&n, name) == -1)
		return 0;
	sent = sq_id_time_ms(n.id);
	if ((sent >= 0 ? sent : SQ_MTIME_MS(st)) < r->since_ms)
		return 0;
	if (r->dry_run) {
		r->n++;
		if (r->fn != NULL)
			r->fn(n.id, NULL, r->arg);
		return 0;
	}
	memset(&t, 0, sizeof(t));
	memset(&o, 0, sizeof(o));
	if (n.has_attr && sq_attr_each(r->q, n.id, keep_attr, &t) == -1 &&
	    errno != ENOENT)
		goto out;
	t.a[t.n].name = "original-id";
	t.a[t.n++].value = n.id;
	o.key = t.key;
	/* In its group again: the g= of the archived name is its key. */
	o.group = n.group[0] != '\0' ? n.group : NULL;
	o.attrs = t.a;
	o.nattrs = t.n;
	if ((fd = sq_open_regular(dfd, name, O_RDONLY, 0, NULL)) == -1)
		goto out;
	sq_batch_begin(&b, r->to, NULL, NULL);
	if (sq_batch_options(&b, &o) == 0 && sq_batch_add_fd(&b, fd) == 0 &&
	    sq_batch_end(&b) == 0 && b.committed == 1) {
		r->n++;
		if (r->fn != NULL)
			r->fn(n.id, "", r->arg);
		rc = 0;
	} else
		sq_batch_end(&b);
	close(fd);
out:
	for (i = 0; i < t.nown; i++)
		free(t.own[i]);
	return rc;
}


struct entry {
	int64_t	 ms;
	off_t	 size;
	char	*name;
};

struct trim {
	struct entry	*e;
	size_t		 n, alloc;
	uint64_t	 bytes;
};

static int
trim_collect(int dfd, const char *name, const struct stat *st, void *arg)
{
	struct trim *t = arg;
	void *p;

	(void)dfd;
	if (t->n == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 256;
		if ((p = reallocarray(t->e, t->alloc, sizeof(*t->e))) == NULL)
			return -1;
		t->e = p;
	}
	if ((t->e[t->n].name = strdup(name)) == NULL)
		return -1;
	t->e[t->n].ms = (int64_t)st->st_ctim.tv_sec * 1000 +
	    st->st_ctim.tv_nsec / 1000000;
	t->e[t->n++].size = st->st_size;
	t->bytes += (uint64_t)st->st_size;
	return 0;
}

static int
cmp_age(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->ms < y->ms ? -1 : x->ms > y->ms;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name,
	    ((const struct entry *)b)->name);
}

int
sq_archive_replay(struct sq_queue *q, struct sq_queue *to, int64_t since_ms,
    int dry_run, sq_replay_fn *fn, void *arg, size_t *n)
{
	struct replay r = { q, to, since_ms, dry_run, fn, arg, 0 };
	struct trim t;
	struct stat st;
	size_t i;
	int fd, rc = 0;

	/* In send order, as a log is read: sorted by name (the ID). */
	memset(&t, 0, sizeof(t));
	if (archive_each(q, trim_collect, &t) == -1) {
		rc = -1;
		goto out;
	}
	sort(t.e, t.n, sizeof(*t.e), cmp_name);
	if (t.n > 0 && (fd = archive_fd(q, 0)) != -1) {
		for (i = 0; i < t.n && rc == 0; i++)
			if (fstatat(fd, t.e[i].name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0)
				rc = replay_one(fd, t.e[i].name, &st, &r);
		close(fd);
	}
out:
	for (i = 0; i < t.n; i++)
		free(t.e[i].name);
	free(t.e);
	*n = r.n;
	return rc;
}

int
sq_archive_trim(struct sq_queue *q, int64_t now_ms, int dry_run,
    sq_trim_fn *fn, void *arg)
{
	struct trim t;
	struct sq_name n;
	size_t i;
	int fd, rc = 0, old, big;

	if (q->conf.retention_ms == 0 && q->conf.retention_bytes == 0)
		return 0;
	memset(&t, 0, sizeof(t));
	if (archive_each(q, trim_collect, &t) == -1) {
		rc = -1;
		goto out;
	}
	/* Oldest first: age goes by the clock, size from the oldest on. */
	sort(t.e, t.n, sizeof(*t.e), cmp_age);
	if ((fd = archive_fd(q, 0)) == -1)
		goto out;
	for (i = 0; i < t.n; i++) {
		old = q->conf.retention_ms > 0 &&
		    now_ms - t.e[i].ms > q->conf.retention_ms;
		big = q->conf.retention_bytes > 0 &&
		    t.bytes > q->conf.retention_bytes;
		if (!old && !big)
			break;
		if (!dry_run) {
			if (unlinkat(fd, t.e[i].name, 0) == -1 &&
			    errno != ENOENT) {
				rc = -1;
				break;
			}
			if (sq_name_parse(&n, t.e[i].name) == 0) {
				if (n.has_attr)
					attr_remove(q, n.id);
				failure_remove(q, n.id);
			}
		}
		t.bytes -= (uint64_t)t.e[i].size;
		if (fn != NULL)
			fn(t.e[i].name, old ? "older than retention" :
			    "over retention_bytes", arg);
	}
	close(fd);
out:
	for (i = 0; i < t.n; i++)
		free(t.e[i].name);
	free(t.e);
	return rc;
}
