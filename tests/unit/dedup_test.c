/*
 * dedup_test.c - a batch that defers its deduplicated sends
 * (sq_batch_defer_dedup), as qbridge in sends a fetched batch: every
 * message once, the next send of each ID dropped, and a process killed
 * (SIGKILL) before or in the middle of the commit loses nothing and
 * makes no duplicate once the same IDs are sent again.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"
#include "tap_queue.h"

#define N	200		/* more than SQ_DEDUP_BATCH: two commits */

/* The bodies in new/: each "PREFIX-i" for i < n exactly once. */
static int
bodies_once(const struct tap_queue *t, int n)
{
	char path[PATH_MAX + 16], buf[64];
	struct dirent *e;
	int *seen, fd, i, good = 1;
	ssize_t len;
	DIR *d;

	snprintf(path, sizeof(path), "%s/new", t->path);
	if ((seen = calloc((size_t)n, sizeof(*seen))) == NULL ||
	    (d = opendir(path)) == NULL) {
		free(seen);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((fd = openat(dirfd(d), e->d_name, O_RDONLY)) == -1 ||
		    (len = read(fd, buf, sizeof(buf) - 1)) <= 0) {
			good = 0;
			if (fd != -1)
				close(fd);
			continue;
		}
		close(fd);
		buf[len] = '\0';
		if (strncmp(buf, "body-", 5) != 0 ||
		    (i = atoi(buf + 5)) < 0 || i >= n || seen[i]++ != 0)
			good = 0;
	}
	closedir(d);
	for (i = 0; i < n; i++)
		if (seen[i] != 1)
			good = 0;
	free(seen);
	return good;
}

/*
 * The markers of the n IDs "id-i" each say "MSGID pending MS ..." with
 * MSGID a message in new/: a committed batch leaves them so, its bodies
 * gone from tmp/ (no "sent" written per message).
 */
static int
markers_pending(const struct tap_queue *t, int n)
{
	char path[PATH_MAX + 64], buf[512], id[160], state[16];
	char msg[PATH_MAX + 200];
	struct stat st;
	ssize_t len;
	int i, fd;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/dedup/id-%d", t->path, i);
		if ((fd = open(path, O_RDONLY)) == -1)
			return 0;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			return 0;
		buf[len] = '\0';
		if (sscanf(buf, "%159s %15s", id, state) != 2 ||
		    strcmp(state, "pending") != 0)
			return 0;
		snprintf(msg, sizeof(msg), "%s/new/%s", t->path, id);
		if (stat(msg, &st) == -1)
			return 0;
	}
	return 1;
}

static int kill_after = -1;	/* send() kills the process at this one */
static int published;

static void
sent(const char *id, void *arg)
{
	(void)id;
	(void)arg;
	if (++published == kill_after)
		kill(getpid(), SIGKILL);
}

/*
 * Send the n messages "body-i" with dedup IDs "id-i" as one deferred
 * batch.  With commit unset, end without committing: _exit, as a crash
 * before the commit.  Returns the batch's duplicates, or -1.
 */
static long
send_all(struct sq_queue *q, int n, int commit)
{
	struct sq_msgopts o;
	struct sq_batch b;
	char key[32], body[32];
	int i;

	published = 0;
	sq_batch_begin(&b, q, sent, NULL);
	sq_batch_defer_dedup(&b);
	for (i = 0; i < n; i++) {
		memset(&o, 0, sizeof(o));
		snprintf(key, sizeof(key), "id-%d", i);
		snprintf(body, sizeof(body), "body-%d", i);
		o.dedup_id = key;
		if (sq_batch_options(&b, &o) == -1 ||
		    sq_batch_add(&b, body, strlen(body)) == -1)
			return -1;
	}
	if (!commit)
		_exit(0);
	if (sq_batch_end(&b) == -1)
		return -1;
	return (long)b.dropped;
}

/* Run send_all in a child that dies (killed, or _exit before commit). */
static int
crash(struct sq_queue *q, int n, int at, int commit)
{
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		kill_after = at;
		send_all(q, n, commit);
		_exit(3);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid ? st : -1;
}

static void
whole(void)
{
	struct tap_queue t;
	struct sq_queue q;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	ok(send_all(&q, N, 1) == 0, "a deferred batch of %d sends, none "
	    "dropped", N);
	ok(tap_queue_count(&t, "new") == N && bodies_once(&t, N),
	    "  each body once in new/");
	ok(tap_queue_count(&t, "tmp") == 0, "  nothing left in tmp/");
	ok(markers_pending(&t, N), "  each marker pending with its message "
	    "in new/");
	ok(send_all(&q, N, 1) == N, "the same IDs again: all %d dropped", N);
	ok(tap_queue_count(&t, "new") == N && bodies_once(&t, N),
	    "  still each body once");
	tap_queue_remove(&t, &q);
}

static void
repeat_in_batch(void)
{
	struct tap_queue t;
	struct sq_queue q;
	struct sq_msgopts o;
	struct sq_batch b;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	memset(&o, 0, sizeof(o));
	o.dedup_id = "same";
	sq_batch_begin(&b, &q, NULL, NULL);
	sq_batch_defer_dedup(&b);
	ok(sq_batch_options(&b, &o) == 0 && sq_batch_add(&b, "a", 1) == 0 &&
	    sq_batch_add(&b, "b", 1) == 0 && sq_batch_end(&b) == 0,
	    "one ID twice in a deferred batch: no wait on its own marker");
	ok(b.dropped == 1 && tap_queue_count(&t, "new") == 1,
	    "  one sent, one dropped");
	tap_queue_remove(&t, &q);
}

/*
 * A sender of n messages dies: killed after its at-th rename (commit
 * set), or ending before any commit.  Then tmp/ holds intmp bodies (a
 * body written but not yet marked stays there for qadmin gc: left), and
 * the same n sent again go through once each.
 */
static void
killed(int n, int at, int commit, int intmp, int left, const char *what)
{
	struct tap_queue t;
	struct sq_queue q;
	int st;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	st = crash(&q, n, at, commit);
	ok(commit ? WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL :
	    WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", what);
	ok(tap_queue_count(&t, "new") == at &&
	    tap_queue_count(&t, "tmp") == intmp,
	    "  %d published, %d in tmp/", at, intmp);
	/* Marked: the published ones, and those in tmp/ but the left. */
	ok(send_all(&q, n, 1) == at + intmp - left, "  the same IDs again: "
	    "the %d marked before dropped", at + intmp - left);
	ok(tap_queue_count(&t, "new") == n && bodies_once(&t, n),
	    "  each body once in new/: none lost, none twice");
	ok(tap_queue_count(&t, "tmp") == left, "  %d left in tmp/", left);
	tap_queue_remove(&t, &q);
}

int
main(void)
{
	whole();
	repeat_in_batch();
	killed(100, 0, 0, 100, 0,
	    "a sender ends with its batch written, uncommitted");
	/* The 129th body is written when the first 128 are committed. */
	killed(N, 60, 1, 129 - 60, 1,
	    "a sender killed in its first commit, after 60 renames");
	killed(N, 150, 1, N - 150, 0,
	    "a sender killed in its second commit, after 150 renames");
	return tap_done();
}
