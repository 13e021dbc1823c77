/*
 * output_test.c - the job output store of qworker --output: files made
 * under dot names and renamed into place, links never followed, gc by
 * age at most once an hour.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"

#define ID	"1764425000.000000001.42_0_0a0b0c0d.host"
#define DAY_MS	(24LL * 60 * 60 * 1000)

static char dir[] = "/tmp/spoolq-output-test.XXXXXX";

/* The text of dir/name, or "" (a static buffer). */
static const char *
slurp(const char *name)
{
	static char buf[256];
	char path[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY)) == -1)
		return buf;
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

static int
exists(const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* Make dir/name with an mtime age_ms ago. */
static void
aged(const char *name, int64_t age_ms)
{
	char path[512];
	struct timespec ts[2];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT, 0644)) != -1)
		close(fd);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age_ms / 1000;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	utimensat(AT_FDCWD, path, ts, 0);
}

static void
test_write(int dfd)
{
	int fd;

	fd = sq_output_create(dfd, ID, "tok", SQ_OUTPUT_OUT);
	ok(fd != -1, "create the file of a running job");
	ok(exists("." ID ".tok.out") && !exists(ID ".out"),
	    "it is written under its dot name");
	ok(write(fd, "hello\n", 6) == 6 && close(fd) == 0, "written");
	ok(sq_output_commit(dfd, ID, "tok", SQ_OUTPUT_OUT) == 0,
	    "commit renames it into place");
	is_str(slurp(ID ".out"), "hello\n", "ID.out holds what was written");
	ok(!exists("." ID ".tok.out"), "no dot name is left");

	/* A later attempt replaces it; a planted link is replaced too. */
	ok(symlinkat("/etc/passwd", dfd, ID ".status") == 0, "plant a link");
	ok(sq_output_status(dfd, ID, "tok", "status=exit 0\n", 14) == 0,
	    "write the status");
	is_str(slurp(ID ".status"), "status=exit 0\n", "ID.status in place");
	fd = sq_output_read(dfd, ID, SQ_OUTPUT_STATUS);
	ok(fd != -1, "read it back");
	close(fd);
	ok(symlinkat("/etc/passwd", dfd, ID ".err") == 0, "plant a link");
	ok(sq_output_read(dfd, ID, SQ_OUTPUT_ERR) == -1 && errno == SQ_ENOTREG,
	    "a link is not followed when read");
	ok(sq_output_read(dfd, "nosuch", SQ_OUTPUT_STATUS) == -1 &&
	    errno == ENOENT, "a missing file is ENOENT");
	fd = sq_output_create(dfd, ID, "tok", SQ_OUTPUT_ERR);
	ok(fd != -1 && close(fd) == 0 && sq_output_commit(dfd, ID, "tok",
	    SQ_OUTPUT_ERR) == 0, "commit over the link");
	fd = sq_output_read(dfd, ID, SQ_OUTPUT_ERR);
	ok(fd != -1, "ID.err is a regular file now");
	close(fd);
	fd = sq_output_create(dfd, ID, "tok2", SQ_OUTPUT_OUT);
	close(fd);
	sq_output_discard(dfd, ID, "tok2", SQ_OUTPUT_OUT);
	ok(!exists("." ID ".tok2.out"), "discard removes a job's file");
}

static void
test_gc(int dfd)
{
	int64_t now = (int64_t)time(NULL) * 1000;
	size_t removed;

	unlink(SQ_OUTPUT_STAMP);
	aged("old.out", 8 * DAY_MS);
	aged("old.err", 8 * DAY_MS);
	aged("old.status", 8 * DAY_MS);
	aged(".old.tok.out", 8 * DAY_MS);
	aged("young.out", 6 * DAY_MS);
	aged("notes.txt", 30 * DAY_MS);
	ok(symlinkat("/etc/passwd", dfd, "link.out") == 0, "a link to keep");
	ok(sq_output_gc(dfd, now, SQ_OUTPUT_AGE_MS, 0, &removed) == 0,
	    "gc runs");
	ok(removed == 4, "four old files removed (%zu)", removed);
	ok(!exists("old.out") && !exists("old.err") && !exists("old.status") &&
	    !exists(".old.tok.out"), "the old ones are gone");
	ok(exists("young.out") && exists("notes.txt") && exists("link.out"),
	    "young files, other names and links stay");
	ok(exists(SQ_OUTPUT_STAMP), "the stamp is made");
	aged("old.out", 8 * DAY_MS);
	ok(sq_output_gc(dfd, now, SQ_OUTPUT_AGE_MS, 0, &removed) == 0 &&
	    removed == 0 && exists("old.out"), "within the hour, no gc");
	ok(sq_output_gc(dfd, now, SQ_OUTPUT_AGE_MS, 1, &removed) == 0 &&
	    removed == 1, "forced, it runs");
	aged("old.out", 8 * DAY_MS);
	ok(sq_output_gc(dfd, now, 0, 1, &removed) == 0 && removed == 0 &&
	    exists("old.out"), "age 0 keeps everything");
}

static void
test_open(void)
{
	char path[512], link[512];
	int fd;

	snprintf(path, sizeof(path), "%s/sub", dir);
	ok(sq_output_open(path, 0) == -1 && errno == ENOENT,
	    "a missing directory is not made without create");
	fd = sq_output_open(path, 1);
	ok(fd != -1, "made with create");
	close(fd);
	snprintf(link, sizeof(link), "%s/sublink", dir);
	ok(symlink(path, link) == 0, "a link to it");
	ok(sq_output_open(link, 1) == -1 && errno == ELOOP,
	    "a link to a directory is refused (ELOOP)");
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	ok(sq_output_open(path, 1) == -1 && errno == ENOTDIR,
	    "a file is not a directory");
}

int
main(void)
{
	char cmd[600];
	int dfd;

	if (mkdtemp(dir) == NULL || chdir(dir) == -1) {
		perror(dir);
		return 1;
	}
	dfd = sq_output_open(dir, 0);
	ok(dfd != -1, "open the directory");
	test_write(dfd);
	test_gc(dfd);
	test_open();
	close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
