/*
 * attrdir_test.c - sidecars are named, read and removed relative to the
 * queue's own attr/ directory, never through the path "attr/ID": a
 * symbolic link put in attr/'s place after the queue was opened (by
 * anyone who may write the queue directory) leads no tool to read or
 * remove files outside the spool.  Both ways are tried: a handle that
 * had attr/ open before the swap keeps working on the real one; a handle
 * that had not finds the link and touches nothing.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"
#include "tap_queue.h"

#define N	3

/* sq_attr_each: keep the value of "colour". */
static int
colour(const char *name, const char *value, void *arg)
{
	if (name != NULL && strcmp(name, "colour") == 0)
		strlcpy(arg, value, 32);
	return 0;
}

/* Put a file named name with text into the directory dir. */
static int
plant(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX + SQ_NAME_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp);
}

/* Whether dir holds name. */
static int
there(const char *dir, const char *name)
{
	char path[PATH_MAX + SQ_NAME_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/*
 * sq_ack_many of more than two claims looks whether attr/ holds anything
 * before it tries to remove failure records: it must look at the attr/
 * it removes them from, the one the handle keeps open, not at what the
 * path attr/ leads to now.  attr/ is put aside after the records were
 * written (the handle has it open: it read a sidecar), and in its place
 * an empty directory (kind 0) or a symbolic link to one outside the
 * queue (kind 1): the acks still remove the records from the real attr/,
 * and nothing is read through the link.
 */
static void
ack_many_swapped(int kind)
{
	static const char *const kinds[] = { "an empty directory",
	    "a link to an empty directory outside" };
	struct tap_queue t;
	struct sq_queue q;
	struct sq_attr a = { "colour", "blue" };
	struct sq_msgopts o;
	struct sq_batch b;
	struct sq_claim c[N];
	char names[N][SQ_NAME_MAX + 1], real[PATH_MAX + 16], got[32];
	char outside[PATH_MAX], link[PATH_MAX + 8], fail[SQ_ID_MAX + 16];
	size_t i, n, left = 0;
	int64_t next;
	int errs[N], written = 1;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	memset(&o, 0, sizeof(o));
	o.attrs = &a;
	o.nattrs = 1;
	sq_batch_begin(&b, &q, NULL, NULL);
	(void)sq_batch_options(&b, &o);
	for (i = 0; i < N; i++)
		(void)sq_batch_add(&b, "x", 1);
	ok(sq_batch_end(&b) == 0 && sq_claim(&q, 60000, NULL, c, N, &n,
	    &next) == 0 && n == N, "%s: %d sent and claimed", kinds[kind], N);
	got[0] = '\0';
	ok(sq_attr_each(&q, c[0].n.id, colour, got) == 0 &&
	    strcmp(got, "blue") == 0, "  a sidecar read: attr/ open");
	for (i = 0; i < N; i++) {
		written &= sq_failure_write(&q, c[i].n.id, "status=exit 1\n",
		    14) == 0;
		memcpy(names[i], c[i].name, sizeof(names[i]));
	}
	ok(written, "  a failure record each");
	snprintf(link, sizeof(link), "%s/attr", t.path);
	snprintf(real, sizeof(real), "%s/attr.real", t.path);
	snprintf(outside, sizeof(outside), "%s/outside", t.dir);
	ok(rename(link, real) == 0 && (kind == 0 ? mkdir(link, 0700) :
	    mkdir(outside, 0700) == 0 ? symlink(outside, link) : -1) == 0,
	    "  attr/ put aside, %s in its place", kinds[kind]);
	ok(sq_ack_many(&q, names, N, errs) == 0, "  the %d acked at once", N);
	for (i = 0; i < N; i++) {
		snprintf(fail, sizeof(fail), "%s%s", c[i].n.id,
		    SQ_FAILURE_SUFFIX);
		left += there(real, fail);
	}
	ok(left == 0, "  their failure records went from the real attr/ "
	    "(%zu left)", left);
	(void)unlink(link);
	(void)rmdir(link);
	(void)rename(real, link);
	tap_queue_remove(&t, &q);
}

int
main(void)
{
	struct tap_queue t;
	struct sq_queue q, early;
	struct sq_attr a = { "colour", "blue" };
	struct sq_msgopts o;
	struct sq_batch b;
	struct sq_claim c[N];
	char outside[PATH_MAX], why[256], got[32], fail[SQ_ID_MAX + 16];
	char link[PATH_MAX + 8];
	size_t i, n;
	int64_t next;
	int planted = 1;

	tap_queue_make(&t, &q, NULL, NULL, 0);

	/* N messages with a sidecar, claimed, each with a failure record. */
	memset(&o, 0, sizeof(o));
	o.attrs = &a;
	o.nattrs = 1;
	sq_batch_begin(&b, &q, NULL, NULL);
	ok(sq_batch_options(&b, &o) == 0, "options with an attribute");
	for (i = 0; i < N; i++)
		(void)sq_batch_add(&b, "x", 1);
	ok(sq_batch_end(&b) == 0, "%d sent", N);
	ok(sq_claim(&q, 60000, NULL, c, N, &n, &next) == 0 && n == N &&
	    c[0].n.has_attr, "%d claimed, with sidecars", N);
	for (i = 0; i < N; i++)
		(void)sq_failure_write(&q, c[i].n.id, "status=exit 1\n", 14);

	/* A handle that read a sidecar before the swap. */
	ok(sq_queue_open(&early, t.path, why, sizeof(why)) == 0,
	    "a second handle");
	got[0] = '\0';
	ok(sq_attr_each(&early, c[0].n.id, colour, got) == 0 &&
	    strcmp(got, "blue") == 0, "it reads the first sidecar: %s", got);

	/* attr/ swapped for a link to a directory of look-alikes. */
	snprintf(outside, sizeof(outside), "%s/outside", t.dir);
	snprintf(link, sizeof(link), "%s/attr", t.path);
	ok(mkdir(outside, 0700) == 0, "a directory outside the queue");
	for (i = 0; i < N; i++) {
		snprintf(fail, sizeof(fail), "%s%s", c[i].n.id,
		    SQ_FAILURE_SUFFIX);
		planted &= plant(outside, c[i].n.id, "attr colour red\n") ==
		    0 && plant(outside, fail, "outside\n") == 0;
	}
	ok(planted, "look-alike sidecars and failure records in it");
	ok(renameat(q.fd, SQ_DIR_ATTR, q.fd, "attr.real") == 0 &&
	    symlink(outside, link) == 0, "attr/ replaced by a link to it");

	/* The handle without attr/ open: nothing read, nothing removed. */
	got[0] = '\0';
	(void)sq_attr_each(&q, c[1].n.id, colour, got);
	ok(strcmp(got, "red") != 0, "no sidecar read through the link "
	    "(got \"%s\")", got);
	ok(sq_ack(&q, c[1].name) == 0, "the second acked");
	ok(there(outside, c[1].n.id), "the look-alike of its sidecar is "
	    "still there");
	snprintf(fail, sizeof(fail), "%s%s", c[1].n.id, SQ_FAILURE_SUFFIX);
	ok(there(outside, fail), "and of its failure record");

	/* The handle with attr/ open: the real one, still. */
	got[0] = '\0';
	ok(sq_attr_each(&early, c[2].n.id, colour, got) == 0 &&
	    strcmp(got, "blue") == 0, "the early handle reads the real "
	    "sidecar: %s", got);
	ok(sq_ack(&early, c[2].name) == 0, "the third acked");
	ok(there(outside, c[2].n.id), "the look-alike of its sidecar is "
	    "still there");
	snprintf(fail, sizeof(fail), "attr.real/%s", c[2].n.id);
	ok(!there(t.path, fail), "its real sidecar went with it");

	(void)unlink(link);
	(void)renameat(q.fd, "attr.real", q.fd, SQ_DIR_ATTR);
	sq_queue_close(&early);
	tap_queue_remove(&t, &q);

	ack_many_swapped(0);
	ack_many_swapped(1);
	return tap_done();
}
