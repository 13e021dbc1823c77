/*
 * queuearg_test.c - sq_queue_open_arg opens a queue argument as the tools
 * do (SPEC 1): a name under the root it is given or under $SPOOLQ_DIR, a
 * path when it holds a slash; a bad name, a missing queue and a root that
 * is too long fail with their errno and a message that names them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"

int
main(void)
{
	char root[] = "/tmp/spoolq-queuearg.XXXXXX";
	char path[PATH_MAX], err[PATH_MAX + 256], want[PATH_MAX + 64];
	char longroot[PATH_MAX + 8];
	struct sq_queue q;

	if (mkdtemp(root) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/jobs", root);
	if (sq_queue_create(path, NULL, NULL, 0, err, sizeof(err)) == -1)
		return 1;
	ok(sq_queue_open_arg(&q, root, "jobs", err, sizeof(err)) == 0,
	    "a name under the root given");
	is_str(q.path, path, "opens root/NAME");
	sq_queue_close(&q);
	setenv("SPOOLQ_DIR", root, 1);
	ok(sq_queue_open_arg(&q, NULL, "jobs", err, sizeof(err)) == 0,
	    "a name under $SPOOLQ_DIR when root is NULL");
	sq_queue_close(&q);
	setenv("SPOOLQ_DIR", "/nonexistent", 1);
	ok(sq_queue_open_arg(&q, NULL, path, err, sizeof(err)) == 0,
	    "an argument with a slash is a path, whatever the root");
	is_str(q.path, path, "opens the path as given");
	sq_queue_close(&q);
	errno = 0;
	ok(sq_queue_open_arg(&q, root, "-jobs", err, sizeof(err)) == -1 &&
	    errno == EINVAL, "a bad queue name is EINVAL");
	is_str(err, "-jobs: bad queue name", "and says so");
	errno = 0;
	ok(sq_queue_open_arg(&q, root, "nosuch", err, sizeof(err)) == -1 &&
	    errno == ENOENT, "a missing queue is ENOENT");
	snprintf(want, sizeof(want), "%s/nosuch: no such queue", root);
	is_str(err, want, "and names its path");
	memset(longroot, 'r', sizeof(longroot) - 1);
	longroot[0] = '/';
	longroot[sizeof(longroot) - 1] = '\0';
	errno = 0;
	ok(sq_queue_open_arg(&q, longroot, "jobs", err, sizeof(err)) == -1 &&
	    errno == ENAMETOOLONG, "a root longer than PATH_MAX");
	ok(strncmp(err, "spool root: ", 12) == 0, "names the spool root: %s",
	    err);
	if (sq_queue_destroy(path, 1, NULL, 0) == -1)
		fprintf(stderr, "# %s: %s\n", path, strerror(errno));
	rmdir(root);
	return tap_done();
}
