/*
 * tap_queue.h - the queue a C unit test works in: made and opened in a
 * directory of its own under $TMPDIR (else /tmp), removed with all it
 * holds at the end.  Include after tap.h and spoolq.h.
 */
#ifndef SPOOLQ_TAP_QUEUE_H
#define SPOOLQ_TAP_QUEUE_H

#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tap_queue {
	char		dir[PATH_MAX - 8];	/* $TMPDIR/spoolq-unit.XXXXXX */
	char		path[PATH_MAX];		/* dir/q */
};

/*
 * tap_queue_make - make the directory spoolq-unit.XXXXXX under $TMPDIR,
 * else /tmp (its path into t->dir), the queue t->dir/q (t->path) with
 * the n settings keys[i] = values[i] (n may be 0), and open it into q.
 * On failure no test can run: print "not ok 1 - make a queue: why" and
 * the plan, and exit 1.
 */
static void
tap_queue_make(struct tap_queue *t, struct sq_queue *q,
    const char *const *keys, const char *const *values, size_t n)
{
	const char *tmp = getenv("TMPDIR");
	char why[512] = "TMPDIR: too long";
	int len;

	len = snprintf(t->dir, sizeof(t->dir), "%s/spoolq-unit.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (len < 0 || (size_t)len >= sizeof(t->dir))
		goto fail;
	if (mkdtemp(t->dir) == NULL) {
		snprintf(why, sizeof(why), "%.400s: %s", t->dir,
		    strerror(errno));
		goto fail;
	}
	snprintf(t->path, sizeof(t->path), "%s/q", t->dir);
	if (sq_queue_create(t->path, keys, values, n, why, sizeof(why)) ==
	    -1 || sq_queue_open(q, t->path, why, sizeof(why)) == -1)
		goto fail;
	return;
fail:
	printf("not ok 1 - make a queue: %s\n1..1\n", why);
	exit(1);
}

/*
 * tap_queue_count - the entries of the directory sub of the queue t (not
 * those whose names start with "."), or -1 when it cannot be read.
 */
static inline int
tap_queue_count(const struct tap_queue *t, const char *sub)
{
	char path[PATH_MAX + 16];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", t->path, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * tap_queue_remove - close q (unless NULL: closed already) and remove
 * t->dir with all that the test left in it (rm -rf, run without a
 * shell).  A failure is a failed test.
 */
static void
tap_queue_remove(struct tap_queue *t, struct sq_queue *q)
{
	pid_t pid;
	int st = -1;

	if (q != NULL)
		sq_queue_close(q);
	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", "--", t->dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
			;
	if (st != 0)
		ok(0, "remove %s", t->dir);
}

#endif
