/*
 * dedup_test.c - a batch that defers its deduplicated sends
 * (sq_batch_defer_dedup), as qbridge in sends a fetched batch: every
 * message once, the next send of each ID dropped, and a process killed
 * (SIGKILL) before or in the middle of the commit loses nothing and
 * makes no duplicate once the same IDs are sent again.  On a local file
 * system the markers of a batch are one file, a line per ID: a name
 * linked to it without its line (a crash between the two) lets its ID
 * through once, and a void name of it is made anew, never written into.
 * A marker's name taken by a non-file fails the send at once, or, set
 * aside, sends its message alone to dead/, the rest going on.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
 * The line of the marker file dedup/KEY that is KEY's into line (size
 * bytes): the one ending with " KEY" (a batch's file), else a first line
 * of five fields or fewer.  Returns 1 when found.
 */
static int
marker_line(const struct tap_queue *t, const char *key, char *line,
    size_t size)
{
	char path[PATH_MAX + 64], *buf, *p, *nl, f[6][256];
	ssize_t len;
	int fd, k, found = 0;

	snprintf(path, sizeof(path), "%s/dedup/%s", t->path, key);
	if ((buf = malloc(1 << 20)) == NULL ||
	    (fd = open(path, O_RDONLY)) == -1) {
		free(buf);
		return 0;
	}
	len = read(fd, buf, (1 << 20) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	for (p = buf; !found && *p != '\0'; p = nl) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		else
			*nl++ = '\0';
		k = sscanf(p, "%255s %255s %255s %255s %255s %255s", f[0], f[1],
		    f[2], f[3], f[4], f[5]);
		if ((k == 6 && strcmp(f[5], key) == 0) || (k < 6 && p == buf)) {
			strlcpy(line, p, size);
			found = 1;
		}
	}
	free(buf);
	return found;
}

/*
 * The markers of the n IDs "id-i" each have a line "MSGID pending MS ..."
 * with MSGID a message in new/: a committed batch leaves them so, its
 * bodies gone from tmp/ (no "sent" written per message).
 */
static int
markers_pending(const struct tap_queue *t, int n)
{
	char key[32], buf[1024], id[160], state[16];
	char msg[PATH_MAX + 200];
	struct stat st;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "id-%d", i);
		if (!marker_line(t, key, buf, sizeof(buf)) ||
		    sscanf(buf, "%159s %15s", id, state) != 2 ||
		    strcmp(state, "pending") != 0)
			return 0;
		snprintf(msg, sizeof(msg), "%s/new/%s", t->path, id);
		if (stat(msg, &st) == -1)
			return 0;
	}
	return 1;
}

/* The links of dedup/id-i: how many names its file has; -1 if none. */
static int
marker_links(const struct tap_queue *t, int i)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/dedup/id-%d", t->path, i);
	return stat(path, &st) == 0 ? (int)st.st_nlink : -1;
}

/* dedup/id-i and dedup/id-j are one file. */
static int
marker_same(const struct tap_queue *t, int i, int j)
{
	char a[PATH_MAX + 64], b[PATH_MAX + 64];
	struct stat sa, sb;

	snprintf(a, sizeof(a), "%s/dedup/id-%d", t->path, i);
	snprintf(b, sizeof(b), "%s/dedup/id-%d", t->path, j);
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	    sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
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
	ok(marker_links(&t, 0) == SQ_DEDUP_BATCH && marker_same(&t, 0,
	    SQ_DEDUP_BATCH - 1) && marker_links(&t, SQ_DEDUP_BATCH) ==
	    N - SQ_DEDUP_BATCH && marker_same(&t, SQ_DEDUP_BATCH, N - 1) &&
	    !marker_same(&t, 0, N - 1),
	    "  the markers of each commit are one file: %d and %d names",
	    SQ_DEDUP_BATCH, N - SQ_DEDUP_BATCH);
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
 * A grouped send is not deferred: one after an ungrouped send of the
 * same ID in the same batch must not wait for the marker that the batch
 * itself holds locked (the bounded wait would end in EBUSY and fail the
 * whole batch, each time the broker gives it again).
 */
static void
repeat_grouped_in_batch(void)
{
	struct tap_queue t;
	struct sq_queue q;
	struct sq_msgopts o;
	struct sq_batch b;
	int rc;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	sq_batch_begin(&b, &q, NULL, NULL);
	sq_batch_defer_dedup(&b);
	memset(&o, 0, sizeof(o));
	o.dedup_id = "same";
	rc = sq_batch_options(&b, &o) == 0 && sq_batch_add(&b, "a", 1) == 0;
	memset(&o, 0, sizeof(o));
	o.dedup_id = "same";
	o.group = "G";
	rc = rc && sq_batch_options(&b, &o) == 0 &&
	    sq_batch_add(&b, "b", 1) == 0;
	ok(sq_batch_end(&b) == 0 && rc, "one ID ungrouped, then grouped, in "
	    "a deferred batch: no wait on its own marker");
	ok(b.dropped == 1 && tap_queue_count(&t, "new") == 1 &&
	    tap_queue_count(&t, "tmp") == 0, "  the first sent, the second "
	    "dropped, nothing left in tmp/");
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
	ok(markers_pending(&t, n), "  each marker keeps its own line, "
	    "pending, its message in new/");
	tap_queue_remove(&t, &q);
}

/* Send body (a string) with the dedup ID key alone.  Its duplicates or -1. */
static long
send_one(struct sq_queue *q, const char *key, const char *body)
{
	struct sq_msgopts o;
	struct sq_batch b;

	memset(&o, 0, sizeof(o));
	o.dedup_id = key;
	sq_batch_begin(&b, q, NULL, NULL);
	if (sq_batch_options(&b, &o) == -1 ||
	    sq_batch_add(&b, body, strlen(body)) == -1 ||
	    sq_batch_end(&b) == -1)
		return -1;
	return (long)b.dropped;
}

/*
 * A crash between a name's link to its batch's file and its line: the
 * name leads to the file, which has no line of its ID.  That ID's next
 * send goes through, once, under a marker of its own; the file and the
 * other IDs' lines stay as they were.
 */
static void
link_without_line(void)
{
	struct tap_queue t;
	struct sq_queue q;
	char a[PATH_MAX + 64], b[PATH_MAX + 64];

	tap_queue_make(&t, &q, NULL, NULL, 0);
	send_all(&q, 10, 1);
	snprintf(a, sizeof(a), "%s/dedup/id-0", t.path);
	snprintf(b, sizeof(b), "%s/dedup/id-10", t.path);
	ok(link(a, b) == 0 && marker_links(&t, 0) == 11,
	    "a name linked to a batch's file without its line");
	ok(send_one(&q, "id-10", "body-10") == 0 &&
	    tap_queue_count(&t, "new") == 11 && bodies_once(&t, 11),
	    "  its ID goes through once");
	ok(marker_links(&t, 10) == 1 && marker_links(&t, 0) == 10,
	    "  under a marker of its own");
	ok(send_one(&q, "id-10", "body-10") == 1 &&
	    send_one(&q, "id-3", "body-3") == 1 &&
	    tap_queue_count(&t, "new") == 11 && markers_pending(&t, 10),
	    "  then it and the others are dropped again");
	tap_queue_remove(&t, &q);
}

/*
 * A void (expired) name of a batch's file is removed and made anew by
 * its next send: the file is never written into, and the other IDs keep
 * their lines.
 */
static void
void_shared(void)
{
	struct tap_queue t;
	struct sq_queue q;
	char line[1024];
	struct timespec ts = { 0, 20 * 1000000 };

	tap_queue_make(&t, &q, NULL, NULL, 0);
	send_all(&q, 10, 1);
	q.conf.dedup_window_ms = 1;
	nanosleep(&ts, NULL);		/* the markers are older than 1 ms */
	ok(send_one(&q, "id-5", "body-5") == 0 &&
	    tap_queue_count(&t, "new") == 11,
	    "an ID of an expired batch's file goes through");
	ok(marker_links(&t, 5) == 1 && marker_links(&t, 0) == 9 &&
	    marker_line(&t, "id-6", line, sizeof(line)) &&
	    marker_line(&t, "id-0", line, sizeof(line)) &&
	    marker_line(&t, "id-5", line, sizeof(line)),
	    "  under a marker of its own; the file keeps the others' lines");
	q.conf.dedup_window_ms = 5 * 60 * 1000;
	ok(send_one(&q, "id-5", "body-5") == 1 &&
	    send_one(&q, "id-6", "body-6") == 1,
	    "  within the window again, both dropped");
	tap_queue_remove(&t, &q);
}

/* What is planted under a marker's name: never opened, never replaced. */
static const char *const kinds[] = { "symlink", "FIFO", "directory" };
#define NKINDS	(sizeof(kinds) / sizeof(kinds[0]))
#define OUTSIDE	"outside\n"

/*
 * Plant dedup/key of the queue t as kinds[k]: a symlink to the file
 * t->dir/outside (made, holding OUTSIDE), a FIFO, a directory.
 */
static int
plant(const struct tap_queue *t, const char *key, size_t k)
{
	char path[PATH_MAX + 64], out[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/dedup", t->path);
	if (mkdir(path, 0777) == -1 && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/dedup/%s", t->path, key);
	snprintf(out, sizeof(out), "%s/outside", t->dir);
	switch (k) {
	case 0:
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1)
			return -1;
		if (write(fd, OUTSIDE, strlen(OUTSIDE)) == -1) {
			close(fd);
			return -1;
		}
		close(fd);
		return symlink(out, path);
	case 1:
		return mkfifo(path, 0644);
	default:
		return mkdir(path, 0777);
	}
}

/*
 * dedup/key of t is still kinds[k], and the file a symlink leads to
 * still holds OUTSIDE alone.
 */
static int
still_planted(const struct tap_queue *t, const char *key, size_t k)
{
	char path[PATH_MAX + 64], buf[64];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/dedup/%s", t->path, key);
	if (lstat(path, &st) == -1 || (k == 0 && !S_ISLNK(st.st_mode)) ||
	    (k == 1 && !S_ISFIFO(st.st_mode)) ||
	    (k == 2 && !S_ISDIR(st.st_mode)))
		return 0;
	if (k != 0)
		return 1;
	snprintf(path, sizeof(path), "%s/outside", t->dir);
	if ((fd = open(path, O_RDONLY)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n == (ssize_t)strlen(OUTSIDE) && memcmp(buf, OUTSIDE,
	    (size_t)n) == 0;
}

static int nasides;
static char aside_id[SQ_ID_MAX];

static void
aside(const char *id, void *arg)
{
	(void)arg;
	nasides++;
	strlcpy(aside_id, id, sizeof(aside_id));
}

/*
 * The one name in dead/ of t, into name (size bytes), and its body into
 * body (bsize bytes).  Returns 1 when dead/ holds exactly one message.
 */
static int
only_dead(const struct tap_queue *t, char *name, size_t size, char *body,
    size_t bsize)
{
	char path[PATH_MAX + 16];
	struct dirent *e;
	ssize_t n;
	int fd, found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/dead", t->path);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.') {
			found++;
			strlcpy(name, e->d_name, size);
		}
	closedir(d);
	if (found != 1)
		return 0;
	snprintf(path, sizeof(path), "%s/dead/%s", t->path, name);
	if ((fd = open(path, O_RDONLY)) == -1)
		return 0;
	n = read(fd, body, bsize - 1);
	close(fd);
	body[n > 0 ? n : 0] = '\0';
	return n >= 0;
}

/*
 * Send "body-i" with dedup ID "id-i" for i < 5 as one deferred batch,
 * as qbridge in does, set aside or not.  Returns the index of the first
 * add that failed (its errno in *e), or 5 when all went.
 */
static int
send_five(struct sq_queue *q, int set_aside, long *dropped, int *e)
{
	struct sq_msgopts o;
	struct sq_batch b;
	char key[32], body[32];
	int i;

	*e = 0;
	sq_batch_begin(&b, q, NULL, NULL);
	sq_batch_defer_dedup(&b);
	if (set_aside)
		sq_batch_set_aside(&b, aside, NULL);
	for (i = 0; i < 5; i++) {
		memset(&o, 0, sizeof(o));
		snprintf(key, sizeof(key), "id-%d", i);
		snprintf(body, sizeof(body), "body-%d", i);
		o.dedup_id = key;
		if (sq_batch_options(&b, &o) == -1 ||
		    sq_batch_add(&b, body, strlen(body)) == -1) {
			*e = errno;
			sq_batch_abort(&b);
			(void)sq_batch_end(&b);
			return i;
		}
	}
	if (sq_batch_end(&b) == -1) {
		*e = errno;
		return -1;
	}
	*dropped = (long)b.dropped;
	return 5;
}

/* Send "body-5" with dedup ID "id-5", set aside (deferred).  0 or -1. */
static int
send_six(struct sq_queue *q)
{
	struct sq_msgopts o;
	struct sq_batch b;

	sq_batch_begin(&b, q, NULL, NULL);
	sq_batch_defer_dedup(&b);
	sq_batch_set_aside(&b, aside, NULL);
	memset(&o, 0, sizeof(o));
	o.dedup_id = "id-5";
	if (sq_batch_options(&b, &o) == -1 ||
	    sq_batch_add(&b, "body-5", 6) == -1) {
		sq_batch_abort(&b);
		(void)sq_batch_end(&b);
		return -1;
	}
	return sq_batch_end(&b);
}

/*
 * The name of a marker taken by a non-file, in a deferred batch.  Not
 * set aside, the send fails at once with SQ_ENOTREG and takes the
 * batch with it, nothing left behind.  Set aside (qbridge in), that
 * message alone goes to dead/ as ID,r=badmarker, body intact, and every
 * other goes on; sent again, it is dropped as a duplicate of its
 * set-aside (its marker dedup/ID,badmarker), unless that name is taken
 * too.  The entries are never touched.
 */
static void
planted_batch(size_t k)
{
	struct tap_queue t;
	struct sq_queue q;
	char name[SQ_NAME_MAX + 1], body[64], want[SQ_NAME_MAX + 1];
	long dropped = -1;
	int e;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	ok(plant(&t, "id-2", k) == 0, "dedup/id-2 a %s", kinds[k]);
	ok(send_five(&q, 0, &dropped, &e) == 2 && e == SQ_ENOTREG,
	    "  a deferred batch: its send fails at once, SQ_ENOTREG");
	ok(tap_queue_count(&t, "new") == 0 && tap_queue_count(&t, "tmp") ==
	    0 && tap_queue_count(&t, "dead") == 0,
	    "  the batch taken back whole: nothing in new/, tmp/, dead/");
	nasides = 0;
	ok(send_five(&q, 1, &dropped, &e) == 5 && dropped == 0,
	    "  set aside: every add and the commit succeed");
	snprintf(want, sizeof(want), "%s,r=badmarker", aside_id);
	ok(nasides == 1 && only_dead(&t, name, sizeof(name), body,
	    sizeof(body)) && strcmp(name, want) == 0 &&
	    strcmp(body, "body-2") == 0,
	    "  its message alone in dead/, r=badmarker, named to the "
	    "callback: %s", name);
	ok(tap_queue_count(&t, "new") == 4 && tap_queue_count(&t, "tmp") ==
	    0 && markers_pending(&t, 2),
	    "  the other four in new/, their markers pending, tmp/ empty");
	ok(send_five(&q, 1, &dropped, &e) == 5 && dropped == 5 &&
	    nasides == 1 && tap_queue_count(&t, "dead") == 1 &&
	    tap_queue_count(&t, "new") == 4,
	    "  the same again: all five dropped, the fifth found set aside "
	    "(dedup/id-2,badmarker), not set aside twice");
	ok(still_planted(&t, "id-2", k), "  the %s left as it was",
	    kinds[k]);
	/* The set-aside's own marker taken too: set aside each time. */
	ok(plant(&t, "id-5" SQ_DEDUP_ASIDE, k) == 0 && plant(&t, "id-5", k) ==
	    0, "dedup/id-5 and dedup/id-5" SQ_DEDUP_ASIDE " %ss", kinds[k]);
	ok(send_six(&q) == 0 && send_six(&q) == 0 && nasides == 3 &&
	    tap_queue_count(&t, "dead") == 3,
	    "  its sends set aside each time, without a marker");
	ok(still_planted(&t, "id-5", k) &&
	    still_planted(&t, "id-5" SQ_DEDUP_ASIDE, k),
	    "  both %ss left as they were", kinds[k]);
	tap_queue_remove(&t, &q);
}

/*
 * A send that is not deferred (a grouped one, qsend's), its marker's
 * name taken: set aside, it keeps its group, expiry and sidecar in
 * dead/; not, it fails with SQ_ENOTREG and leaves nothing.
 */
static void
planted_grouped(void)
{
	struct tap_queue t;
	struct sq_queue q;
	struct sq_msgopts o;
	struct sq_batch b;
	struct sq_name n;
	char name[SQ_NAME_MAX + 1], body[64], path[PATH_MAX + SQ_ID_MAX + 8];
	int rc;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	plant(&t, "g-1", 1);
	memset(&o, 0, sizeof(o));
	o.dedup_id = "g-1";
	o.group = "G";
	o.key = "k.x";
	o.expires_ms = sq_now_ms() + 3600 * 1000;
	sq_batch_begin(&b, &q, NULL, NULL);
	rc = sq_batch_options(&b, &o) == 0 ? sq_batch_add(&b, "gb", 2) : 0;
	ok(rc == -1 && errno == SQ_ENOTREG,
	    "a grouped send, its marker a FIFO: SQ_ENOTREG");
	sq_batch_abort(&b);
	(void)sq_batch_end(&b);
	ok(tap_queue_count(&t, "tmp") == 0 && tap_queue_count(&t, "new") ==
	    0 && tap_queue_count(&t, "attr") <= 0 &&
	    tap_queue_count(&t, "dead") == 0, "  nothing left anywhere");
	nasides = 0;
	sq_batch_begin(&b, &q, NULL, NULL);
	sq_batch_defer_dedup(&b);
	sq_batch_set_aside(&b, aside, NULL);
	ok(sq_batch_options(&b, &o) == 0 && sq_batch_add(&b, "gb", 2) == 0 &&
	    sq_batch_end(&b) == 0 && b.set_aside == 1 && nasides == 1,
	    "  set aside: it succeeds, counted once");
	ok(only_dead(&t, name, sizeof(name), body, sizeof(body)) &&
	    strcmp(body, "gb") == 0 && sq_name_parse(&n, name) == 0 &&
	    strcmp(n.id, aside_id) == 0 && strcmp(n.group, "G") == 0 &&
	    strcmp(n.reason, "badmarker") == 0 && n.has_attr &&
	    n.expires > 0, "  in dead/ with g, e, h and r=badmarker: %s",
	    name);
	snprintf(path, sizeof(path), "%s/attr/%s", t.path, aside_id);
	ok(access(path, F_OK) == 0 && tap_queue_count(&t, "tmp") == 0,
	    "  its sidecar kept, tmp/ empty");
	ok(still_planted(&t, "g-1", 1), "  the FIFO left as it was");
	tap_queue_remove(&t, &q);
}

/*
 * Fan-out: each queue's copy commits on its own, so a marker name taken
 * in the second queue must fail the send before the first queue's copy
 * is published: nothing in either.
 */
static void
planted_fanout(void)
{
	struct tap_queue t1, t2;
	struct sq_queue q[2];
	struct sq_batch b[2];
	struct sq_msgopts o;
	size_t done = 9;
	int rc;

	tap_queue_make(&t1, &q[0], NULL, NULL, 0);
	tap_queue_make(&t2, &q[1], NULL, NULL, 0);
	plant(&t2, "f-1", 0);
	memset(&o, 0, sizeof(o));
	o.dedup_id = "f-1";
	sq_batch_begin(&b[0], &q[0], NULL, NULL);
	sq_batch_begin(&b[1], &q[1], NULL, NULL);
	rc = sq_batch_options(&b[0], &o) == 0 &&
	    sq_batch_options(&b[1], &o) == 0 ?
	    sq_fanout_add(b, 2, "fb", 2, &done) : 0;
	ok(rc == -1 && errno == SQ_ENOTREG && done == 0,
	    "fan-out, the second queue's marker a symlink: SQ_ENOTREG, "
	    "delivered to none");
	sq_batch_abort(&b[0]);
	sq_batch_abort(&b[1]);
	(void)sq_batch_end(&b[0]);
	(void)sq_batch_end(&b[1]);
	ok(tap_queue_count(&t1, "new") == 0 && tap_queue_count(&t1, "tmp") ==
	    0 && tap_queue_count(&t2, "new") == 0 &&
	    tap_queue_count(&t2, "tmp") == 0,
	    "  no copy in the first queue, nothing in either tmp/");
	ok(still_planted(&t2, "f-1", 0), "  the symlink left, its target "
	    "unread");
	tap_queue_remove(&t2, &q[1]);
	tap_queue_remove(&t1, &q[0]);
}

int
main(void)
{
	size_t k;

	whole();
	repeat_in_batch();
	repeat_grouped_in_batch();
	killed(100, 0, 0, 100, 0,
	    "a sender ends with its batch written, uncommitted");
	/* The 129th body is written when the first 128 are committed. */
	killed(N, 60, 1, 129 - 60, 1,
	    "a sender killed in its first commit, after 60 renames");
	killed(N, 150, 1, N - 150, 0,
	    "a sender killed in its second commit, after 150 renames");
	link_without_line();
	void_shared();
	for (k = 0; k < NKINDS; k++)
		planted_batch(k);
	planted_grouped();
	planted_fanout();
	return tap_done();
}
