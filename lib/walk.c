/*
 * walk.c - directories: walking one in constant memory, for upkeep code
 * that must see every entry (dot names too) without following or opening
 * any; opening a subdirectory made on demand; mkdir -p; splitting a path;
 * copying a file into a directory, durably, with the directory's sharing.
 *
 * Group sharing (spoolq(5), "Sharing a queue"): a directory that has the
 * set-group-ID bit and is group-writable is shared by its group.  What we
 * make in it takes the group's access from it, whatever our umask: a
 * directory its group bits and set-group-ID, a file group read and write.
 * Nothing we make is ever writable by others there.
 *
 * fs_remote tells the file systems that other hosts write to, whose
 * clients cache names, attributes and contents (SPEC 2, "Waiting").
 */
#include <sys/stat.h>
#include <sys/vfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

DIR *
dir_stream(int dfd)
{
	DIR *d;
	int fd, saved;

	if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}

int
dir_each(int dfd, dir_entry_fn *fn, void *arg)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int rc = 0;

	if ((d = dir_stream(dfd)) == NULL)
		return -1;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1) {
			if (errno == ENOENT)
				continue;	/* gone meanwhile */
			rc = -1;
			break;
		}
		rc = fn(dirfd(d), e->d_name, &st, arg);
	}
	closedir(d);
	return rc;
}

mode_t
dir_share(int dfd)
{
	struct stat st;

	if (fstat(dfd, &st) == -1 || !(st.st_mode & S_ISGID) ||
	    !(st.st_mode & S_IWGRP))
		return 0;
	return S_ISGID | (st.st_mode & S_IRWXG);
}

int
share_file(mode_t share, int fd)
{
	struct stat st;
	mode_t want;

	if (share == 0)
		return 0;
	if (fstat(fd, &st) == -1)
		return -1;
	want = ((st.st_mode & 0777) | S_IRGRP | S_IWGRP) & ~S_IWOTH;
	if ((st.st_mode & 0777) == want || st.st_uid != geteuid())
		return 0;	/* as wanted, or another user's to set */
	return fchmod(fd, want);
}

int
mkdir_shared(int dfd, const char *name)
{
	struct stat st;
	mode_t share;
	int fd, rc, saved;

	if (mkdirat(dfd, name, 0777) == -1)
		return -1;
	if ((share = dir_share(dfd)) == 0)
		return 0;
	if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		return -1;
	rc = fstat(fd, &st);
	if (rc == 0 && (st.st_mode & 07777) != (((st.st_mode & 0777) | share) &
	    ~S_IWOTH))
		rc = fchmod(fd, ((st.st_mode & 0777) | share) & ~S_IWOTH);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
subdir_open(int dfd, const char *name, int create)
{
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd != -1 || errno != ENOENT || !create)
		return fd;
	/* Another process may make it first: that is as good. */
	if (mkdir_shared(dfd, name) == -1 && errno != EEXIST)
		return -1;
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
}

int
queue_subdir_open(int qfd, const char *name, int create)
{
	struct stat st;
	int fd;

	fd = subdir_open(qfd, name, 0);
	if (fd != -1 || errno != ENOENT || !create)
		return fd;
	if ((fd = subdir_open(qfd, name, 1)) == -1)
		return -1;
	if (fstatat(qfd, SQ_DIR_TMP, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		close(fd);
		(void)unlinkat(qfd, name, AT_REMOVEDIR);
		errno = ENOENT;
		return -1;
	}
	return fd;
}

int
mkdir_path(const char *buf)
{
	char parent[PATH_MAX];
	const char *slash, *base;
	int pfd, rc, saved;

	if ((slash = strrchr(buf, '/')) == NULL) {
		strlcpy(parent, ".", sizeof(parent));
		base = buf;
	} else {
		memcpy(parent, buf, slash - buf);
		parent[slash == buf ? 1 : slash - buf] = '\0';
		if (slash == buf)
			parent[0] = '/';
		base = slash + 1;
	}
	if (*base == '\0')
		return 0;		/* "dir/": made as "dir" */
	/* O_PATH: like mkdir(2), it needs no more than search permission. */
	if ((pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = mkdir_shared(pfd, base);
	saved = errno;
	close(pfd);
	errno = saved;
	return rc == -1 && errno != EEXIST ? -1 : 0;
}

int
make_dirs(const char *path)
{
	char buf[PATH_MAX], *p;

	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir_path(buf) == -1)
			return -1;
		*p = '/';
	}
	return mkdir_path(buf);
}

/* Split path into its parent directory and last component. */
int
path_split(const char *path, char *parent, size_t psize, char *base,
    size_t bsize)
{
	char buf[PATH_MAX], *slash;
	size_t len;

	len = strlcpy(buf, path, sizeof(buf));
	if (len >= sizeof(buf))
		goto toolong;
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	if ((slash = strrchr(buf, '/')) == NULL) {
		strlcpy(parent, ".", psize);
		slash = buf - 1;
	} else if (slash == buf)
		strlcpy(parent, "/", psize);
	else {
		*slash = '\0';
		if (strlcpy(parent, buf, psize) >= psize)
			goto toolong;
	}
	if (strlcpy(base, slash + 1, bsize) >= bsize)
		goto toolong;
	if (base[0] == '\0' || strcmp(base, ".") == 0 ||
	    strcmp(base, "..") == 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
toolong:
	errno = ENAMETOOLONG;
	return -1;
}

int
copy_file(int fromfd, const char *name, int tofd, const char *tmpname)
{
	char buf[64 * 1024];
	ssize_t n = -1;
	int in, out, rc = -1, saved;

	if ((in = sq_open_regular(fromfd, name, O_RDONLY, 0, NULL)) == -1)
		return -1;
	out = sq_open_regular(tofd, tmpname, O_WRONLY | O_CREAT | O_EXCL,
	    0666, NULL);
	if (out == -1)
		goto out;
	if (share_file(dir_share(tofd), out) == 0)
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (sq_write_all(out, buf, (size_t)n) == -1)
				break;
	if (n == 0 && fsync(out) == 0)
		rc = 0;
	saved = errno;
	if (close(out) == -1 && rc == 0)
		rc = -1;
	if (rc == -1)
		unlinkat(tofd, tmpname, 0);
	errno = saved;
out:
	saved = errno;
	close(in);
	errno = saved;
	return rc;
}

/* statfs f_type values of file systems that other hosts write to. */
static const long remote_fs[] = {
	0x6969,			/* NFS */
	0x65735546,		/* FUSE */
	0x517b,			/* SMB */
	(long)0xff534d42,	/* CIFS */
	(long)0xfe534d42,	/* SMB2 */
	0x00c36400,		/* Ceph */
	0x01161970,		/* GFS2 */
	0x47504653,		/* GPFS */
	0x5346414f,		/* AFS */
	0x0bd00bd0,		/* Lustre */
	0x01021997,		/* 9p */
	0x7461636f,		/* OCFS2 */
	0x73757245,		/* Coda */
	0x564c,			/* NCP */
};

int
fs_remote(int fd)
{
	struct statfs sf;
	size_t i;

	if (fstatfs(fd, &sf) == -1)
		return 0;
	for (i = 0; i < sizeof(remote_fs) / sizeof(remote_fs[0]); i++)
		if ((long)sf.f_type == remote_fs[i])
			return 1;
	return 0;
}
