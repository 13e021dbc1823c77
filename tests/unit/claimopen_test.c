/*
 * claimopen_test.c - sq_claim_open, a claim that opens each body: every
 * claimed message comes with its body open and its size, read as sent;
 * an entry planted under a name of the claim index after its snapshot
 * was taken (a FIFO, a symlink to a file outside, a directory, a socket)
 * is never handed out, never followed, never blocks, and is put back
 * under its name in new/ (for qadmin check); a body that cannot be
 * opened for another reason (EMFILE) is claimed with no descriptor, for
 * the caller's open to meet that reason; and the claim costs no fstatat(2)
 * of the claimed name, only the status of the open file.
 *
 * fstatat(2) is interposed to count the looks at names of cur/.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"
#include "tap_queue.h"

#define N	8

static int cur_fd = -1;		/* the queue's cur/, once open */
static int cur_stats;		/* fstatat(2) of a name in cur/ */

int
fstatat(int dfd, const char *name, struct stat *st, int flags)
{
	if (cur_fd != -1 && dfd == cur_fd && name[0] != '\0')
		cur_stats++;
	return (int)syscall(SYS_newfstatat, dfd, name, st, flags);
}

/* Send the n bodies "body0".. into q, one batch. */
static int
send_n(struct sq_queue *q, size_t n)
{
	struct sq_batch b;
	char body[32];
	size_t i;

	sq_batch_begin(&b, q, NULL, NULL);
	for (i = 0; i < n; i++) {
		snprintf(body, sizeof(body), "body%zu", i);
		if (sq_batch_add(&b, body, strlen(body)) == -1) {
			sq_batch_abort(&b);
			(void)sq_batch_end(&b);
			return -1;
		}
	}
	return sq_batch_end(&b);
}

/* The names of new/, sorted, into names (at most max); how many. */
static size_t
new_names(struct sq_queue *q, char (*names)[SQ_NAME_MAX + 1], size_t max)
{
	struct dirent **v;
	int i, n;
	size_t k = 0;

	n = scandirat(q->fd, SQ_DIR_NEW, &v, NULL, alphasort);
	for (i = 0; i < n; i++) {
		if (v[i]->d_name[0] != '.' && k < max)
			strlcpy(names[k++], v[i]->d_name, sizeof(names[0]));
		free(v[i]);
	}
	if (n > 0)
		free(v);
	return k;
}

/* Put a socket in new/ under name. */
static int
plant_socket(struct sq_queue *q, const char *name)
{
	struct sockaddr_un sa;
	int s, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlcpy(sa.sun_path, name, sizeof(sa.sun_path)) >=
	    sizeof(sa.sun_path) || fchdir(q->newfd) == -1 ||
	    (s = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return -1;
	rc = bind(s, (struct sockaddr *)&sa, sizeof(sa));
	close(s);
	return rc;
}

/* Read the whole of fd (size bytes) into buf and close it. */
static int
read_body(int fd, off_t size, char *buf, size_t bufsize)
{
	ssize_t n;

	if (size < 0 || (size_t)size >= bufsize) {
		close(fd);
		return -1;
	}
	n = read(fd, buf, bufsize - 1);
	close(fd);
	if (n != size)
		return -1;
	buf[n] = '\0';
	return 0;
}

int
main(void)
{
	struct tap_queue t;
	struct sq_queue q;
	struct sq_claim c[N];
	char names[N][SQ_NAME_MAX + 1], outside[PATH_MAX], buf[64];
	struct stat before, after, st;
	size_t got, i, k;
	struct rlimit lim, low;
	int64_t next;
	int fd, all, rc, e;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	cur_fd = q.curfd;
	snprintf(outside, sizeof(outside), "%s/outside", t.dir);
	fd = open(outside, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ok(fd != -1 && write(fd, "secret", 6) == 6 && close(fd) == 0,
	    "a file outside the queue");
	ok(stat(outside, &before) == 0, "its status");

	/* Every claim opened, its body and size as sent. */
	ok(send_n(&q, 3) == 0, "send 3");
	cur_stats = 0;
	ok(sq_claim_open(&q, 60000, NULL, c, N, &got, &next) == 0 &&
	    got == 3, "claim 3 with their bodies open (%zu)", got);
	k = (size_t)cur_stats;
	all = 1;
	for (i = 0; i < got; i++) {
		snprintf(names[0], sizeof(names[0]), "body%zu", i);
		all &= c[i].fd != -1 && c[i].size == (off_t)strlen(names[0]) &&
		    read_body(c[i].fd, c[i].size, buf, sizeof(buf)) == 0 &&
		    strcmp(buf, names[0]) == 0 && sq_ack(&q, c[i].name) == 0;
	}
	ok(all, "each body read whole from its descriptor, then acked");
	ok(k == 0, "no fstatat of a claimed name (%zu)", k);

	/* sq_claim opens nothing, and looks at the name it claimed. */
	cur_stats = 0;
	ok(send_n(&q, 1) == 0 && sq_claim(&q, 60000, NULL, c, N, &got,
	    &next) == 0 && got == 1 && c[0].fd == -1 && c[0].size == -1,
	    "sq_claim leaves fd at -1");
	ok(cur_stats == 1, "sq_claim: one fstatat of the claimed name (%d)",
	    cur_stats);
	ok(sq_ack(&q, c[0].name) == 0, "acked");

	/*
	 * The index takes its snapshot at the first claim; then four of its
	 * names are taken by what is no message.
	 */
	ok(send_n(&q, 6) == 0, "send 6");
	ok(new_names(&q, names, N) == 6, "6 in new/");
	ok(sq_claim_open(&q, 60000, NULL, c, 1, &got, &next) == 0 &&
	    got == 1 && c[0].fd != -1, "claim the first: the snapshot is "
	    "taken");
	close(c[0].fd);
	ok(sq_ack(&q, c[0].name) == 0, "acked");
	ok(unlinkat(q.newfd, names[1], 0) == 0 &&
	    mkfifoat(q.newfd, names[1], 0644) == 0, "a FIFO as the second");
	ok(unlinkat(q.newfd, names[2], 0) == 0 &&
	    symlinkat(outside, q.newfd, names[2]) == 0,
	    "a symlink to the file outside as the third");
	ok(unlinkat(q.newfd, names[3], 0) == 0 &&
	    mkdirat(q.newfd, names[3], 0755) == 0, "a directory as the "
	    "fourth");
	ok(unlinkat(q.newfd, names[4], 0) == 0 &&
	    plant_socket(&q, names[4]) == 0, "a socket as the fifth");
	ok(sq_claim_open(&q, 60000, NULL, c, N, &got, &next) == 0 &&
	    got == 1 && c[0].fd != -1 && c[0].size == 5 &&
	    read_body(c[0].fd, c[0].size, buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "body5") == 0, "only the sixth is handed out (%zu)",
	    got);
	ok(sq_ack(&q, c[0].name) == 0, "acked");
	ok(fstatat(q.newfd, names[1], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISFIFO(st.st_mode), "the FIFO is back in new/ under its name");
	ok(fstatat(q.newfd, names[2], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode), "the symlink too");
	ok(fstatat(q.newfd, names[3], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode), "the directory too");
	ok(fstatat(q.newfd, names[4], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISSOCK(st.st_mode), "the socket too");
	ok(tap_queue_count(&t, SQ_DIR_CUR) == 0, "nothing is left in cur/");
	ok(stat(outside, &after) == 0 && after.st_size == before.st_size &&
	    after.st_atim.tv_sec == before.st_atim.tv_sec &&
	    after.st_atim.tv_nsec == before.st_atim.tv_nsec,
	    "the file outside was not read");
	for (k = 1; k <= 4; k++)
		(void)unlinkat(q.newfd, names[k], k == 3 ? AT_REMOVEDIR : 0);

	/*
	 * No descriptor left (EMFILE): claimed with none, and the caller's
	 * open meets the error.  The snapshot is taken first, so the claim
	 * itself opens nothing more.
	 */
	ok(send_n(&q, 2) == 0, "send 2");
	ok(sq_claim_open(&q, 60000, NULL, c, 1, &got, &next) == 0 &&
	    got == 1 && c[0].fd != -1, "claim the first");
	close(c[0].fd);
	ok(sq_ack(&q, c[0].name) == 0, "acked");
	ok(getrlimit(RLIMIT_NOFILE, &lim) == 0 && (fd = dup(0)) != -1 &&
	    close(fd) == 0, "the lowest free descriptor: %d", fd);
	low = lim;
	low.rlim_cur = (rlim_t)fd;
	ok(setrlimit(RLIMIT_NOFILE, &low) == 0, "no descriptor left");
	rc = sq_claim_open(&q, 60000, NULL, c, 1, &got, &next);
	fd = sq_open_regular(q.curfd, c[0].name, O_RDONLY, 0, NULL);
	e = errno;
	ok(setrlimit(RLIMIT_NOFILE, &lim) == 0, "descriptors again");
	ok(rc == 0 && got == 1 && c[0].fd == -1,
	    "the second is claimed, with no descriptor (%zu, fd %d)", got,
	    c[0].fd);
	ok(fd == -1 && e == EMFILE, "the caller's open says EMFILE");
	ok(sq_ack(&q, c[0].name) == 0, "acked");

	tap_queue_remove(&t, &q);
	return tap_done();
}
