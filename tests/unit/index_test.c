/*
 * index_test.c - the claim index of one host (lib/index.c): a listing
 * keeps the oldest names in bounded memory, a take merges the side list
 * and the snapshot in ID order, a side list that does not fit sends the
 * next claim to list new/ again, and a consumer that stopped or died
 * while listing new/ holds up the others of its host only for a bound.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"
#include "tap_queue.h"

/* Make files 0000..n-1 (4 digits) in dfd, in a shuffled order. */
static int
make_files(int dfd, int n)
{
	char name[16];
	int i, k, fd;

	for (i = 0; i < n; i++) {
		k = (i * 7919) % n;
		snprintf(name, sizeof(name), "%04d", k % 10000);
		if ((fd = openat(dfd, name, O_WRONLY | O_CREAT, 0644)) == -1)
			return -1;
		close(fd);
	}
	return 0;
}

static void
test_listing(const char *dir)
{
	char path[PATH_MAX], want[16];
	struct names l;
	int dfd, i, sorted = 1;

	snprintf(path, sizeof(path), "%s/list", dir);
	if (mkdir(path, 0755) == -1 ||
	    (dfd = open(path, O_RDONLY | O_DIRECTORY)) == -1 ||
	    make_files(dfd, 1000) == -1) {
		ok(0, "make a directory of 1000 names");
		return;
	}
	ok(names_list(dfd, 10, &l) == 0 && l.n == 10,
	    "a listing bounded to 10 names keeps 10 of 1000");
	ok(l.alloc <= 10, "and holds no room for more (%zu)", l.alloc);
	for (i = 0; i < (int)l.n; i++) {
		snprintf(want, sizeof(want), "%04d", i % 10000);
		if (strcmp(l.v[i], want) != 0)
			sorted = 0;
	}
	ok(sorted, "the oldest 10, sorted");
	names_free(&l);
	ok(names_list(dfd, 5000, &l) == 0 && l.n == 1000 &&
	    strcmp(l.v[0], "0000") == 0 && strcmp(l.v[999], "0999") == 0,
	    "a bound above the count keeps them all, sorted");
	names_free(&l);
	close(dfd);
}

static void
test_take(struct sq_queue *q)
{
	static char *snap[] = { "b", "d", "f" };
	static const char side[] = "g\0c\0a\0d\0e";
	char pick[16][SQ_NAME_MAX + 1], got[64] = "", big[40000];
	struct names l = { snap, 3, 3 };
	struct index ix;
	size_t i, n;

	if (index_lock(q, &ix) == -1) {
		ok(0, "lock the index: %s", strerror(errno));
		return;
	}
	ok(index_install(&ix, &l) == 0, "install a snapshot b d f");
	ok(index_side_add(&ix, side, sizeof(side)) == 0,
	    "add a e c g d to the side list");
	n = index_take(&ix, pick, 16);
	for (i = 0; i < n; i++)
		strlcat(got, pick[i], sizeof(got));
	is_str(got, "abcdefg", "a take merges them in ID order, once each");
	ok(index_take(&ix, pick, 16) == 0, "then the index is used up");
	ok(index_install(&ix, &l) == 0, "a new snapshot");
	memset(big, 'x', sizeof(big));
	for (i = 100; i < sizeof(big); i += 101)
		big[i] = '\0';
	big[sizeof(big) - 1] = '\0';
	ok(index_side_add(&ix, big, sizeof(big)) == 1,
	    "a side list that does not fit is refused");
	ok(index_take(&ix, pick, 16) == 0,
	    "and the index reads as used up, so new/ is listed again");
	(void)index_save(&ix);
	index_unlock(&ix);
}

/* What another process sees of q's side list: its names, concatenated. */
static void
side_seen(const char *path, char *got, size_t size)
{
	char pick[16][SQ_NAME_MAX + 1], err[512];
	struct sq_queue other;
	struct index ix;
	size_t i, n;

	got[0] = '\0';
	if (sq_queue_open(&other, path, err, sizeof(err)) == -1) {
		strlcpy(got, err, size);
		return;
	}
	if (index_lock(&other, &ix) == 0) {
		n = index_take(&ix, pick, 16);
		for (i = 0; i < n; i++)
			strlcat(got, pick[i], size);
		index_unlock(&ix);	/* not saved: the names stay */
	}
	sq_queue_close(&other);
}

static void
test_offer(const char *path)
{
	char got[64], err[512], name[64];
	struct sq_queue q;
	struct index ix;
	int i, flushed = 0, fails = 0;

	if (sq_queue_open(&q, path, err, sizeof(err)) == -1) {
		ok(0, "open %s: %s", path, err);
		return;
	}
	ok(index_lock(&q, &ix) == 0, "lock the index");
	index_reset(&ix);
	(void)index_save(&ix);
	index_unlock(&ix);
	ok(index_offer_later(&q, "c") == 0 && index_offer_later(&q, "a") == 0,
	    "offer c and a");
	side_seen(path, got, sizeof(got));
	is_str(got, "", "they are kept in the queue, not yet written");
	ok(index_lock(&q, &ix) == 0, "the next lock of the index");
	index_unlock(&ix);
	side_seen(path, got, sizeof(got));
	is_str(got, "ac", "writes them onto the side list, in ID order");
	ok(q.offered_len == 0, "and forgets them");
	ok(index_offer_later(&q, "b") == 0, "offer b");
	q.offered_ms -= 1000;		/* kept for a second */
	ok(index_offer_later(&q, "d") == 0, "then d");
	side_seen(path, got, sizeof(got));
	is_str(got, "abcd", "names kept long enough are written at the next "
	    "offer");
	for (i = 0; i < 200 && !flushed; i++) {
		snprintf(name, sizeof(name), "e%03d-%040d", i, 0);
		if (index_offer_later(&q, name) == -1)
			fails++;
		flushed = q.offered_len < (size_t)(i + 1) * (strlen(name) + 1);
	}
	ok(fails == 0, "offer names of 45 bytes");
	ok(flushed && i * (strlen(name) + 1) > SQ_OFFER_BYTES,
	    "names that no longer fit are written (after %d)", i);
	side_seen(path, got, sizeof(got));
	ok(strncmp(got, "abcde000-", 9) == 0, "onto the side list: %.12s...",
	    got);
	ok(index_lock(&q, &ix) == 0, "lock the index");
	index_reset(&ix);
	(void)index_save(&ix);
	index_unlock(&ix);
	ok(index_offer_later(&q, "f") == 0, "offer f");
	sq_queue_close(&q);
	side_seen(path, got, sizeof(got));
	is_str(got, "f", "the close of the queue writes what it keeps");
	if (sq_queue_open(&q, path, err, sizeof(err)) == -1) {
		ok(0, "open %s: %s", path, err);
		return;
	}
	ok(index_offer_later(&q, "b") == 0 && index_offer(&q, "a") == 0,
	    "offer b for later, then a at once");
	side_seen(path, got, sizeof(got));
	is_str(got, "abf", "both are written at once");
	sq_queue_close(&q);
}

/* Mark the index as being listed by pid since now; make it used up. */
static int
mark_listing(struct sq_queue *q, pid_t pid)
{
	struct index ix;
	int rc;

	if (index_lock(q, &ix) == -1)
		return -1;
	index_reset(&ix);
	ix.list_pid = pid;
	ix.list_ms = sq_now_ms();
	rc = index_save(&ix);
	index_unlock(&ix);
	return rc;
}

static pid_t
listed_by(struct sq_queue *q)
{
	struct index ix;

	if (index_lock(q, &ix) == -1)
		return -1;
	index_unlock(&ix);
	return ix.list_pid;
}

static void
test_lister(struct sq_queue *q)
{
	struct sq_claim out[2];
	struct sq_batch b;
	size_t got;
	int64_t next;
	pid_t pid;

	sq_batch_begin(&b, q, NULL, NULL);
	if (sq_batch_add(&b, "one", 3) == -1 ||
	    sq_batch_add(&b, "two", 3) == -1 || sq_batch_end(&b) == -1) {
		ok(0, "send: %s", strerror(errno));
		return;
	}
	/* A lister stopped (SIGSTOP) in the middle of its listing. */
	if ((pid = fork()) == 0) {
		pause();
		_exit(0);
	}
	kill(pid, SIGSTOP);
	ok(mark_listing(q, pid) == 0, "a stopped consumer is listing new/");
	ok(sq_claim(q, 0, NULL, out, 1, &got, &next) == 0 && got == 1,
	    "a claim still claims, after a bounded wait, by listing itself");
	ok(listed_by(q) == 0, "and the index is no longer marked as listed");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* A lister that died: its process is gone, nothing to wait for. */
	ok(mark_listing(q, pid) == 0, "a dead consumer was listing new/");
	ok(sq_claim(q, 0, NULL, out, 1, &got, &next) == 0 && got == 1,
	    "a claim claims");
	ok(listed_by(q) == 0, "the mark is gone");
}

int
main(void)
{
	struct tap_queue t;
	struct sq_queue q;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	test_listing(t.dir);
	test_take(&q);
	test_lister(&q);
	sq_queue_close(&q);
	test_offer(t.path);
	tap_queue_remove(&t, NULL);
	return tap_done();
}
