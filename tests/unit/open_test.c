/*
 * open_test.c - sq_open_regular and sq_entry_regular: only a regular
 * file is ever opened; a symlink, FIFO, socket or directory is refused
 * with SQ_ENOTREG, at once (a FIFO without a writer never blocks), and
 * nothing is created or followed.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"

static int dfd;

/* Open name with flags; the result's errno, or 0 when it opened. */
static int
refused(const char *name, int flags)
{
	int fd;

	errno = 0;
	if ((fd = sq_open_regular(dfd, name, flags, 0666, NULL)) == -1)
		return errno;
	close(fd);
	return 0;
}

static void
plant(void)
{
	struct sockaddr_un sa;
	int s, fd;

	fd = openat(dfd, "file", O_WRONLY | O_CREAT | O_EXCL, 0666);
	ok(fd != -1 && write(fd, "body", 4) == 4 && close(fd) == 0,
	    "a regular file");
	ok(mkfifoat(dfd, "fifo", 0666) == 0, "a FIFO");
	ok(mkdirat(dfd, "dir", 0777) == 0, "a directory");
	ok(symlinkat("file", dfd, "filelink") == 0, "a symlink to the file");
	ok(symlinkat("fifo", dfd, "fifolink") == 0, "a symlink to the FIFO");
	ok(symlinkat("nowhere", dfd, "dangling") == 0, "a dangling symlink");
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strlcpy(sa.sun_path, "sock", sizeof(sa.sun_path));
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	/* bind(2) takes a path: made relative to the test directory. */
	ok(fchdir(dfd) == 0 && s != -1 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	    "a socket");
	if (s != -1)
		close(s);
}

static void
test_open(void)
{
	static const char *const bad[] = {
		"fifo", "dir", "filelink", "fifolink", "dangling", "sock",
	};
	static const int modes[] = {
		O_RDONLY, O_RDWR, O_WRONLY, O_RDWR | O_CREAT,
		O_WRONLY | O_CREAT | O_TRUNC,
	};
	struct stat st;
	size_t i, j;
	int fd, fl;
	char buf[8];

	fd = sq_open_regular(dfd, "file", O_RDONLY, 0, &st);
	ok(fd != -1 && S_ISREG(st.st_mode) && st.st_size == 4,
	    "a regular file opens, fstat'ed");
	fl = fcntl(fd, F_GETFL);
	ok(fl != -1 && !(fl & O_NONBLOCK), "O_NONBLOCK is taken off again");
	ok((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "close-on-exec");
	ok(read(fd, buf, sizeof(buf)) == 4 && memcmp(buf, "body", 4) == 0,
	    "the body reads");
	close(fd);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (j = 0; j < sizeof(modes) / sizeof(modes[0]); j++)
			ok(refused(bad[i], modes[j]) == SQ_ENOTREG,
			    "%s refused (flags %#o) with SQ_ENOTREG", bad[i],
			    (unsigned)modes[j]);
	ok(faccessat(dfd, "nowhere", F_OK, AT_SYMLINK_NOFOLLOW) == -1 &&
	    errno == ENOENT, "O_CREAT through a dangling symlink made nothing");
	ok(refused("missing", O_RDONLY) == ENOENT, "a missing file: ENOENT");
	fd = sq_open_regular(dfd, "new", O_RDWR | O_CREAT, 0600, &st);
	ok(fd != -1 && S_ISREG(st.st_mode), "O_CREAT makes a regular file");
	if (fd != -1)
		close(fd);
	fd = sq_open_regular(dfd, "file", O_RDONLY | O_NONBLOCK, 0, &st);
	fl = fd != -1 ? fcntl(fd, F_GETFL) : -1;
	ok(fl != -1 && (fl & O_NONBLOCK) && S_ISREG(st.st_mode) &&
	    st.st_size == 4, "O_NONBLOCK asked for is kept");
	ok(fd != -1 && read(fd, buf, sizeof(buf)) == 4 &&
	    memcmp(buf, "body", 4) == 0, "the body reads with it");
	if (fd != -1)
		close(fd);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(refused(bad[i], O_RDONLY | O_NONBLOCK) == SQ_ENOTREG,
		    "%s refused with O_NONBLOCK asked for", bad[i]);
	fd = sq_open_regular(dfd, "file", O_WRONLY | O_APPEND, 0, NULL);
	ok(fd != -1 && (fcntl(fd, F_GETFL) & O_APPEND) != 0,
	    "O_APPEND is kept");
	if (fd != -1)
		close(fd);
}

static void
test_entries(void)
{
	struct dirent *e;
	DIR *d;
	int fd, regular = 0, others = 0;

	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
	if ((d = fdopendir(fd)) == NULL) {
		ok(0, "opendir");
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (sq_entry_regular(dirfd(d), e->d_name, e->d_type))
			regular++;
		else
			others++;
		ok(sq_entry_regular(dirfd(d), e->d_name, DT_UNKNOWN) ==
		    sq_entry_regular(dirfd(d), e->d_name, e->d_type),
		    "%s: DT_UNKNOWN asks the file system, alike", e->d_name);
	}
	closedir(d);
	ok(regular == 2 && others == 6, "2 regular entries, 6 others (%d, %d)",
	    regular, others);
	ok(sq_entry_regular(dfd, "gone", DT_UNKNOWN) == 0,
	    "a vanished entry is not regular");
}

int
main(void)
{
	char tmpl[] = "/tmp/spoolq-open-test.XXXXXX";
	pid_t pid;

	/* A FIFO that blocked would hang here: fail instead. */
	alarm(20);
	if (mkdtemp(tmpl) == NULL || (dfd = open(tmpl, O_RDONLY |
	    O_DIRECTORY)) == -1) {
		perror(tmpl);
		return 1;
	}
	plant();
	test_open();
	test_entries();
	close(dfd);
	if (chdir("/") == -1)
		return 1;
	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", tmpl, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return tap_done();
}
