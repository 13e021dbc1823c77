/*
 * attr.c - message attributes and routing keys: the attr/ID sidecar.
 *
 * The body file stays the pure body; what a producer says about a
 * message (its routing key, NAME=VALUE attributes) lives beside it in
 * attr/ID, and the message name carries the flag h.  The sidecar is
 * keyed by the ID, which never changes, so it follows the message into
 * every state without being moved; it is removed with the message.
 * It is written (and made durable with the body) before the message is
 * published, so a consumer that sees h always finds it.
 *
 * Format, one record per line, "key ROUTING.KEY" and "attr NAME VALUE":
 * names are [A-Za-z0-9_-]{1,64}; values any bytes but NUL and newline,
 * at most SQ_ATTR_VALUE_MAX bytes.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int
sq_attr_name_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= SQ_ATTR_NAME_MAX || !(isalnum((unsigned char)s[i]) ||
		    s[i] == '_' || s[i] == '-'))
			return 0;
	return i > 0;
}

static int
value_valid(const char *s, size_t max)
{
	return strchr(s, '\n') == NULL && strlen(s) <= max;
}

int
sq_attr_check(const struct sq_msgopts *o)
{
	size_t i;

	if (o->key != NULL && !value_valid(o->key, SQ_KEY_MAX))
		goto bad;
	if (o->nattrs > SQ_ATTRS_MAX)
		goto bad;
	for (i = 0; i < o->nattrs; i++)
		if (!sq_attr_name_valid(o->attrs[i].name) ||
		    !value_valid(o->attrs[i].value, SQ_ATTR_VALUE_MAX))
			goto bad;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

int
attr_write(struct sq_queue *q, const char *id, const struct sq_msgopts *o)
{
	FILE *fp;
	size_t i;
	int afd, fd, saved;

	if ((afd = sq_state_attr(q, 1)) == -1)
		return -1;
	fd = openat(afd, id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0666);
	if (fd != -1 && share_file(q->share, fd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(afd, id, 0);
		fd = -1;
		errno = saved;
	}
	saved = errno;
	close(afd);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL) {
		if (fd != -1)
			close(fd);
		errno = saved;
		return -1;
	}
	if (o->key != NULL)
		fprintf(fp, "key %s\n", o->key);
	for (i = 0; i < o->nattrs; i++)
		fprintf(fp, "attr %s %s\n", o->attrs[i].name,
		    o->attrs[i].value);
	if (fflush(fp) == EOF || (q->conf.durability == SQ_DURABILITY_FSYNC &&
	    fsync(fileno(fp)) == -1)) {
		saved = errno;
		fclose(fp);
		attr_remove(q, id);
		errno = saved;
		return -1;
	}
	return fclose(fp);
}

int
attr_none(struct sq_queue *q)
{
	char buf[1024];
	struct dirent64 *e;
	ssize_t got, off;
	int fd, none = 1;

	/*
	 * The directory the settles look in (attr_dir, opened once without
	 * following a link), not the path attr/ again: what may be there now
	 * is not where their failure records are.  That descriptor itself,
	 * rewound (nothing else reads from its offset), and the kind of its
	 * file system looked at once: an ack of a batch costs no open,
	 * close or fstatfs(2) of attr/ beyond its listing.
	 */
	if ((fd = attr_dir(q)) == -1)
		return errno == ENOENT;
	if (q->attr_fs == 0)
		q->attr_fs = fs_remote(fd) ? 2 : 1;
	/* A remote listing may be older than a record just written. */
	if (q->attr_fs == 2 || lseek(fd, 0, SEEK_SET) == -1)
		return 0;
	/* Read with getdents64(2) itself: no stat or flags of fdopendir. */
	while (none && (got = getdents64(fd, buf, sizeof(buf))) != 0) {
		if (got == -1) {
			none = 0;
			break;
		}
		for (off = 0; none && off < got; off += e->d_reclen) {
			e = (struct dirent64 *)(void *)(buf + off);
			none = strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0;
		}
	}
	return none;
}

void
attr_remove(struct sq_queue *q, const char *id)
{
	int afd;

	if ((afd = attr_dir(q)) != -1)
		unlinkat(afd, id, 0);
}

int
sq_attr_each(struct sq_queue *q, const char *id, sq_attr_fn *fn, void *arg)
{
	char *line = NULL, *sp;
	size_t size = 0;
	ssize_t len;
	FILE *fp;
	int afd, fd, rc = 0;

	if ((afd = attr_dir(q)) == -1 ||
	    (fd = sq_open_regular(afd, id, O_RDONLY, 0, NULL)) == -1)
		return -1;
	if ((fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && (len = getline(&line, &size, fp)) != -1) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (strncmp(line, "key ", 4) == 0)
			rc = fn(NULL, line + 4, arg);
		else if (strncmp(line, "attr ", 5) == 0 &&
		    (sp = strchr(line + 5, ' ')) != NULL) {
			*sp = '\0';
			if (sq_attr_name_valid(line + 5))
				rc = fn(line + 5, sp + 1, arg);
		}
	}
	free(line);
	fclose(fp);
	return rc;
}

void
failure_remove(struct sq_queue *q, const char *id)
{
	char name[SQ_ID_MAX + sizeof(SQ_FAILURE_SUFFIX)];
	int afd;

	if ((afd = attr_dir(q)) == -1)
		return;
	snprintf(name, sizeof(name), "%s%s", id, SQ_FAILURE_SUFFIX);
	unlinkat(afd, name, 0);
}
