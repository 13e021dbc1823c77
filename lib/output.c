/*
 * output.c - the job output store of qworker --output (output.h).
 *
 * Files are made under a dot name that carries the worker's token, so
 * two workers never write one file, and renamed into place once the job
 * has ended: the rename is the commit point, and .status is renamed last.
 * A later attempt replaces the files of an earlier one (rename(2) over
 * them): these are records, not messages.  Every name is opened with
 * O_NOFOLLOW relative to the directory's descriptor and must be a
 * regular file (sq_open_regular, as everywhere in a queue), and gc removes
 * only regular files with the store's suffixes, never following anything.
 * The directory shares with its group as the spool does: made under a
 * set-group-ID, group-writable parent it takes the parent's group bits,
 * and in such a directory every file is made group-readable and writable
 * (dir_share, share_file), whatever the worker's umask.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define FILE_FLAGS	(O_CLOEXEC | O_NOFOLLOW)
#define NAME_SIZE	(SQ_ID_MAX + SQ_TOKEN_MAX + 16)

int
sq_output_open(const char *path, int create)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len;
	int fd;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | FILE_FLAGS)) != -1)
		return fd;
	if (errno != ENOENT || !create)
		goto refused;
	/* "dir/" is made as "dir". */
	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (len = strlen(buf); len > 1 && buf[len - 1] == '/'; len--)
		buf[len - 1] = '\0';
	if (mkdir_path(buf) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | FILE_FLAGS)) != -1)
		return fd;
refused:
	/* O_NOFOLLOW on a symbolic link to a directory says ENOTDIR. */
	if (errno == ENOTDIR && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		errno = ELOOP;
	return -1;
}

/*
 * Create name in dfd (O_EXCL: a leftover of the same name is replaced),
 * a regular file shared as the directory is.
 */
static int
create_file(int dfd, const char *name)
{
	int fd, saved;

	(void)unlinkat(dfd, name, 0);
	if ((fd = sq_open_regular(dfd, name, O_WRONLY | O_CREAT | O_EXCL,
	    0666, NULL)) == -1)
		return -1;
	if (share_file(dir_share(dfd), fd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(dfd, name, 0);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The dot name of a file being written: .ID.TOKEN.SUFFIX */
static int
temp_name(char *buf, const char *id, const char *token, const char *suffix)
{
	if ((size_t)snprintf(buf, NAME_SIZE, ".%s.%s%s", id, token, suffix) >=
	    NAME_SIZE) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
sq_output_create(int dfd, const char *id, const char *token,
    const char *suffix)
{
	char tmp[NAME_SIZE];

	if (temp_name(tmp, id, token, suffix) == -1)
		return -1;
	return create_file(dfd, tmp);
}

int
sq_output_commit(int dfd, const char *id, const char *token,
    const char *suffix)
{
	char tmp[NAME_SIZE], name[NAME_SIZE];

	if (temp_name(tmp, id, token, suffix) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s%s", id, suffix);
	return renameat(dfd, tmp, dfd, name);
}

void
sq_output_discard(int dfd, const char *id, const char *token,
    const char *suffix)
{
	char tmp[NAME_SIZE];
	int saved = errno;

	if (temp_name(tmp, id, token, suffix) == 0)
		(void)unlinkat(dfd, tmp, 0);
	errno = saved;
}

int
sq_output_status(int dfd, const char *id, const char *token,
    const char *text, size_t len)
{
	char tmp[NAME_SIZE];
	int fd, saved;

	if (temp_name(tmp, id, token, SQ_OUTPUT_STATUS) == -1)
		return -1;
	if ((fd = create_file(dfd, tmp)) == -1)
		return -1;
	if (sq_write_all(fd, text, len) == -1 || close(fd) == -1) {
		saved = errno;
		unlinkat(dfd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (sq_output_commit(dfd, id, token, SQ_OUTPUT_STATUS) == -1) {
		saved = errno;
		unlinkat(dfd, tmp, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

int
sq_output_read(int dfd, const char *id, const char *suffix)
{
	char name[NAME_SIZE];

	if ((size_t)snprintf(name, sizeof(name), "%s%s", id, suffix) >=
	    sizeof(name)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return sq_open_regular(dfd, name, O_RDONLY, 0, NULL);
}

/* Whether name ends in one of the store's suffixes. */
static int
ours(const char *name)
{
	static const char *const suffixes[] = {
		SQ_OUTPUT_OUT, SQ_OUTPUT_ERR, SQ_OUTPUT_STATUS,
	};
	size_t i, len = strlen(name), slen;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		slen = strlen(suffixes[i]);
		if (len > slen && strcmp(name + len - slen, suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

/* Whether the stamp says a collection ran within the last hour. */
static int
collected_lately(int dfd, int64_t now_ms)
{
	struct stat st;

	if (fstatat(dfd, SQ_OUTPUT_STAMP, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return 0;
	return now_ms - ((int64_t)st.st_mtim.tv_sec * 1000 +
	    st.st_mtim.tv_nsec / 1000000) < SQ_OUTPUT_GC_EVERY_MS;
}

/* Touch the stamp (made if missing); a failure only means more gc. */
static void
stamp(int dfd)
{
	int fd;

	fd = sq_open_regular(dfd, SQ_OUTPUT_STAMP, O_WRONLY | O_CREAT, 0666,
	    NULL);
	if (fd == -1)
		return;
	(void)share_file(dir_share(dfd), fd);
	(void)futimens(fd, NULL);
	close(fd);
}

int
sq_output_gc(int dfd, int64_t now_ms, int64_t age_ms, int force,
    size_t *removed)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd, first = 0;

	*removed = 0;
	if (age_ms <= 0 || (!force && collected_lately(dfd, now_ms)))
		return 0;
	stamp(dfd);
	if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (!ours(e->d_name) || fstatat(dirfd(d), e->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (now_ms - ((int64_t)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000) <= age_ms)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			(*removed)++;
		else if (errno != ENOENT && first == 0)
			first = errno;
	}
	closedir(d);
	if (first != 0) {
		errno = first;
		return -1;
	}
	return 0;
}
