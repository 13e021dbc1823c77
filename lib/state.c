/*
 * state.c - the message states by name, their directories (attr/ too),
 * walking the messages of one state as a stream, and the held flag of a
 * whole queue (QUEUE/held: claims find nothing while it is there).
 *
 * A state is a directory; its messages are the names in it that do not
 * start with '.'.  Walking never follows a symlink and never opens a
 * file: each entry is fstatat'ed with AT_SYMLINK_NOFOLLOW, and what is
 * not a regular file is reported as such for the caller to judge.
 * Memory stays constant whatever the size of the directory.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static const struct {
	const char	*name, *dir;
} states[SQ_NSTATES + 1] = {
	[SQ_STATE_READY] = { "ready", SQ_DIR_NEW },
	[SQ_STATE_INFLIGHT] = { "inflight", SQ_DIR_CUR },
	[SQ_STATE_RETRY] = { "retry", SQ_DIR_RETRY },
	[SQ_STATE_DEAD] = { "dead", SQ_DIR_DEAD },
	[SQ_STATE_HELD] = { "held", SQ_DIR_HOLD },
	[SQ_STATE_GROUPED] = { "grouped", SQ_DIR_GROUPS },
};

const char *
sq_state_name(enum sq_state st)
{
	return states[st].name;
}

const char *
sq_state_dir(enum sq_state st)
{
	return states[st].dir;
}

int
sq_state_parse(const char *s, enum sq_state *st)
{
	int i;

	for (i = 0; i <= SQ_STATE_GROUPED; i++)
		if (strcmp(s, states[i].name) == 0 ||
		    strcmp(s, states[i].dir) == 0) {
			*st = (enum sq_state)i;
			return 0;
		}
	errno = EINVAL;
	return -1;
}

int
sq_state_open(struct sq_queue *q, enum sq_state st, int create)
{
	if (st == SQ_STATE_GROUPED) {
		errno = EINVAL;
		return -1;
	}
	return queue_subdir_open(q->fd, states[st].dir, create);
}

int
sq_msg_each(struct sq_queue *q, enum sq_state st, sq_msg_fn *fn, void *arg)
{
	struct sq_msg m;
	struct dirent *e;
	DIR *d;
	int fd, rc = 0;

	if (st == SQ_STATE_GROUPED)
		return sq_group_each(q, fn, arg);
	if ((fd = sq_state_open(q, st, 0)) == -1)
		return errno == ENOENT && st == SQ_STATE_HELD ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		memset(&m, 0, sizeof(m));
		m.state = st;
		m.dirfd = dirfd(d);
		m.name = e->d_name;
		m.parsed = sq_name_parse(&m.n, e->d_name) == 0;
		if (fstatat(m.dirfd, e->d_name, &m.st, AT_SYMLINK_NOFOLLOW) ==
		    -1) {
			if (errno == ENOENT)
				continue;	/* moved on meanwhile */
			rc = -1;
			break;
		}
		rc = fn(&m, arg);
	}
	closedir(d);
	return rc == 1 ? 0 : rc;
}

struct finder {
	const char	*id;
	struct sq_msg	*out;
	char		*name;
	struct sq_msg	 stray;		/* the first entry not a regular file */
	char		 stray_name[SQ_NAME_MAX + 1];	/* its name, or "" */
};

static int
match_id(const struct sq_msg *m, void *arg)
{
	struct finder *f = arg;

	if (!m->parsed || strcmp(m->n.id, f->id) != 0)
		return 0;
	if (!S_ISREG(m->st.st_mode)) {
		if (f->stray_name[0] == '\0') {
			f->stray = *m;
			strlcpy(f->stray_name, m->name,
			    sizeof(f->stray_name));
		}
		return 0;
	}
	*f->out = *m;
	strlcpy(f->name, m->name, SQ_NAME_MAX + 1);
	f->out->name = f->name;
	f->out->dirfd = -1;
	return 1;
}

int
sq_msg_find(struct sq_queue *q, const char *id, struct sq_msg *out,
    char *name)
{
	struct finder f;
	int st;

	memset(&f, 0, sizeof(f));
	f.id = id;
	f.out = out;
	f.name = name;
	name[0] = '\0';
	for (st = 0; st < SQ_NSTATES; st++) {
		if (sq_msg_each(q, (enum sq_state)st, match_id, &f) == -1)
			return -1;
		if (name[0] != '\0')
			return 0;
	}
	/* Waiting behind its group's head. */
	if (sq_group_each(q, match_id, &f) == -1)
		return -1;
	if (name[0] != '\0')
		return 0;
	if (f.stray_name[0] != '\0') {
		/* Only something planted has the ID: say so. */
		*out = f.stray;
		strlcpy(name, f.stray_name, SQ_NAME_MAX + 1);
		out->name = name;
		out->dirfd = -1;
		errno = SQ_ENOTREG;
		return -1;
	}
	errno = ENOENT;
	return -1;
}

int
attr_dir(struct sq_queue *q)
{
	if (!q->attr_open) {
		if ((q->attrfd = subdir_open(q->fd, SQ_DIR_ATTR, 0)) == -1)
			return -1;
		q->attr_open = 1;
	}
	return q->attrfd;
}

int
sq_state_attr(struct sq_queue *q, int create)
{
	return subdir_open(q->fd, SQ_DIR_ATTR, create);
}

int
sq_queue_hold(struct sq_queue *q, int on)
{
	int fd;

	if (!on)
		return unlinkat(q->fd, SQ_HELD_FILE, 0) == -1 && errno != ENOENT ?
		    -1 : 0;
	/* Never blocks on a FIFO planted there: SQ_ENOTREG instead. */
	fd = sq_open_regular(q->fd, SQ_HELD_FILE, O_WRONLY | O_CREAT, 0666,
	    NULL);
	if (fd == -1)
		return -1;
	share_file(q->share, fd);	/* a marker: anyone may remove it */
	return close(fd);
}

int
sq_queue_held(struct sq_queue *q)
{
	struct stat st;

	/* Only the regular file qadmin hold makes holds the queue. */
	return fstatat(q->fd, SQ_HELD_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}
