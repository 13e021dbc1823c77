/*
 * group.c - message groups: one message of a group at a time, in ID order.
 *
 * A grouped message carries its group's key in its name (g=KEY).  Only
 * one message of a group, its head, is ever in new/, cur/ or retry/; the
 * others wait in groups/KEY/ under their own names.  Which message is the
 * head is decided by the group's baton, one empty file in groups/KEY/
 * that only ever changes its name:
 *
 *	groups/KEY/,free	no head: the group may advance
 *	groups/KEY/,head=ID	message ID is the head
 *	groups/KEY/,gone=ID	ID's head is being looked for (recovery)
 *
 * Every step is one rename, so two processes racing for it are decided by
 * the file system (the loser gets ENOENT), on one host or several on a
 * shared file system, and a crash between steps leaves a state that
 * sq_group_maintain finishes (spoolq(5) "Message groups"):
 *
 *	send	tmp/ID -> groups/KEY/ID,g=KEY		commit: the send
 *	take	,free -> ,head=ID (the oldest waiting)	commit: ID is head
 *	promote	groups/KEY/ID... -> new/ID... (retry/)	ID becomes claimable
 *	claim	new/ -> cur/ as always; then ,head=ID must exist, else the
 *		claim is undone into groups/KEY/ (the claim hook, admit)
 *	settle	ack, dead letter or take of the head	commit: as always
 *	free	,head=ID -> ,free			then take again
 *
 * retry/, a recovery and a release keep the baton: the head stays head
 * until it is settled, so nothing of its group is claimed meanwhile.  The
 * directory of a group is made whole, baton inside, under a dot name and
 * renamed into place, so that a group never has two batons.
 *
 * A consumer never looks into groups/: claims see at most one message
 * per group, so their cost does not depend on how many wait, and a batch
 * of claims holds at most one message per group.  The cost of a step is
 * one listing of its own group's directory at most: the settle of a head
 * usually takes the next one from the group's order file, groups/KEY/.order,
 * a sorted hint that a listing leaves for the settles after it (below).
 * Whatever adds to a group's directory (a send, a claim undone into it)
 * marks the add, groups/KEY/,add.RAND, and removes the order file before
 * its rename, so that a crash at any point leaves a right order file or
 * none.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define GROUP_GRACE_MS	5000		/* a younger baton is not judged */
#define GROUP_IDLE_MS	(60LL * 60 * 1000)	/* then an idle group goes */
#define GC_BATON	",head=.gc"	/* the baton of a group being removed */
#define GC_PREFIX	".gc."		/* groups/.gc.KEY.RAND: being removed */
#define GROUP_EVERY_MS	10000		/* maintenance at most this often */
#define GROUP_MAINT	SQ_GROUP_MAINT	/* groups/,maint: its last pass */
#define BATON_MAX	(sizeof(SQ_GROUP_HEAD) + SQ_ID_MAX)
#define ORDER_FILE	SQ_GROUP_ORDER	/* groups/KEY/.order: the next heads */
#define ORDER_MAGIC	"spoolq-order-2 "	/* then inode, seal, newline */
#define ORDER_HEAD	(sizeof(ORDER_MAGIC) - 1 + 16 + 1 + 16 + 1)
#define ORDER_END	".\n"		/* its last line: written whole */
#define ORDER_MIN	16		/* waiting: worth an order file */
#define ORDER_NAMES	256		/* names one order file holds */
#define ORDER_BYTES	(ORDER_NAMES * (SQ_NAME_MAX + 1) + 64)
#define ADD_MARK	SQ_GROUP_ADD	/* groups/KEY/,add.RAND: an add */

/* ------------------------------------------------------------- keys */

int
sq_group_key(const char *group, char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a, 64 bits */
	const unsigned char *p;

	if (group[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (sq_group_key_valid(group, strlen(group))) {
		strlcpy(key, group, SQ_GROUP_MAX);
		return 0;
	}
	for (p = (const unsigned char *)group; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	snprintf(key, SQ_GROUP_MAX, "h%016llx", (unsigned long long)h);
	return 0;
}

int
sq_group_of(const char *name, char *key)
{
	struct sq_name n;

	if (sq_name_parse(&n, name) == -1 || n.group[0] == '\0')
		return 0;
	strlcpy(key, n.group, SQ_GROUP_MAX);
	return 1;
}

/* ------------------------------------------------------- directories */

static void
baton(char *buf, const char *kind, const char *id)
{
	snprintf(buf, BATON_MAX, "%s%s", kind, id);
}

/*
 * Make groups/KEY whole: a dot directory holding ,free, renamed into
 * place.  Losing the race to another maker is no error.
 */
static int
group_make(struct sq_queue *q, int gsfd, const char *key)
{
	char tmp[64];
	int dfd, fd, rc, saved;

	snprintf(tmp, sizeof(tmp), ".new.%s.%08x", key, arc4random());
	if (mkdir_shared(gsfd, tmp) == -1)
		return -1;
	if ((dfd = subdir_open(gsfd, tmp, 0)) == -1)
		goto undo;
	fd = openat(dfd, SQ_GROUP_FREE, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC | O_NOFOLLOW, 0666);
	if (fd == -1) {
		close(dfd);
		goto undo;
	}
	share_file(q->share, fd);
	close(fd);
	close(dfd);
	rc = sq_rename(gsfd, tmp, gsfd, key);
	if (rc == 0)
		return 0;
	if (errno != EEXIST && errno != ENOTEMPTY)
		goto undo;
	/* Made by another: ours goes. */
	if ((dfd = subdir_open(gsfd, tmp, 0)) != -1) {
		unlinkat(dfd, SQ_GROUP_FREE, 0);
		close(dfd);
	}
	unlinkat(gsfd, tmp, AT_REMOVEDIR);
	return 0;
undo:
	saved = errno;
	if ((dfd = subdir_open(gsfd, tmp, 0)) != -1) {
		unlinkat(dfd, SQ_GROUP_FREE, 0);
		close(dfd);
	}
	unlinkat(gsfd, tmp, AT_REMOVEDIR);
	errno = saved;
	return -1;
}

/*
 * groups/ of q, opened once and kept with the queue (made first when
 * create is set).  The descriptor belongs to q: never closed here.
 */
static int
groups_dir(struct sq_queue *q, int create)
{
	if (!q->groups_open) {
		if ((q->groupsfd = queue_subdir_open(q->fd, SQ_DIR_GROUPS,
		    create)) == -1)
			return -1;
		q->groups_open = 1;
	}
	return q->groupsfd;
}

/*
 * Whether errno e of opening an entry of groups/ as a directory means
 * that it is no group (a file, FIFO or symlink planted there) or that it
 * went meanwhile: a walk skips it, and fails on any other error (EMFILE,
 * EACCES, EIO), since a group it did not list is not known to be empty.
 */
static int
group_gone(int e)
{
	return e == ENOENT || e == ENOTDIR || e == ELOOP;
}

/* Open groups/KEY (made whole first when create is set). */
static int
group_open(struct sq_queue *q, const char *key, int create)
{
	int gsfd, fd;

	if ((gsfd = groups_dir(q, create)) == -1)
		return -1;
	fd = subdir_open(gsfd, key, 0);
	if (fd == -1 && errno == ENOENT && create &&
	    group_make(q, gsfd, key) == 0)
		fd = subdir_open(gsfd, key, 0);
	return fd;
}

int
group_dir_of(struct sq_queue *q, const char *name)
{
	struct sq_name n;
	int gsfd;

	if (sq_name_parse(&n, name) == -1 || n.group[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if ((gsfd = groups_dir(q, 0)) == -1)
		return -1;
	return subdir_open(gsfd, n.group, 0);
}

/* What one listing of groups/KEY shows. */
struct gview {
	char		baton[BATON_MAX];	/* the first baton met, or "" */
	int		nbatons;
	int		nmarks;			/* add markers (,add.*) */
	size_t		waiting;
	char		first[SQ_NAME_MAX + 1];	/* oldest waiting, or "" */
	char		firstid[SQ_ID_MAX];
	const char	*want;			/* look for this ID too */
	char		wanted[SQ_NAME_MAX + 1];	/* its name, or "" */
	struct stat	baton_st;
};

/*
 * Whether the ID of the name e (up to its first comma) sorts before the
 * ID held in id; names are compared without being parsed, so that a
 * listing costs little more than reading it.
 */
static int
id_before(const char *e, const char *id)
{
	size_t a = strcspn(e, ","), b = strlen(id);
	int c = memcmp(e, id, a < b ? a : b);

	return c < 0 || (c == 0 && a < b);
}

static int
id_is(const char *e, const char *id)
{
	size_t a = strcspn(e, ",");

	return strncmp(e, id, a) == 0 && id[a] == '\0';
}

/*
 * One entry of groups/KEY into *v (see group_scan).  The oldest waiting
 * entry of the chunk being read is kept as a pointer, *best, and copied
 * into v once per chunk (best_flush): readdir often gives names newest
 * first.
 */
static void
scan_one(int gfd, const char *name, unsigned char type, int bad,
    int stat_baton, struct gview *v, const char **best)
{
	struct sq_name n;

	if (name[0] == ',') {
		if (strncmp(name, ADD_MARK, sizeof(ADD_MARK) - 1) == 0)
			v->nmarks++;
		if (strcmp(name, SQ_GROUP_FREE) != 0 &&
		    strncmp(name, SQ_GROUP_HEAD, sizeof(SQ_GROUP_HEAD) - 1) !=
		    0 && strncmp(name, SQ_GROUP_GONE,
		    sizeof(SQ_GROUP_GONE) - 1) != 0)
			return;
		if (v->nbatons++ == 0) {
			strlcpy(v->baton, name, sizeof(v->baton));
			if (stat_baton)
				(void)fstatat(gfd, name, &v->baton_st,
				    AT_SYMLINK_NOFOLLOW);
		}
		return;
	}
	if (name[0] == '.' || (type != DT_REG && type != DT_UNKNOWN) ||
	    (bad && sq_name_parse(&n, name) == -1) ||
	    !sq_entry_regular(gfd, name, type))
		return;
	v->waiting++;
	if (*best == NULL ? v->first[0] == '\0' ||
	    id_before(name, v->firstid) : id_before(name, *best))
		*best = name;
	if (v->want != NULL && id_is(name, v->want))
		strlcpy(v->wanted, name, sizeof(v->wanted));
}

static void
best_flush(struct gview *v, const char **best)
{
	if (*best == NULL)
		return;
	strlcpy(v->first, *best, sizeof(v->first));
	memcpy(v->firstid, v->first, strcspn(v->first, ","));
	v->firstid[strcspn(v->first, ",")] = '\0';
	*best = NULL;
}

static int	scan_local(struct sq_queue *, int);

/* group_scan flags. */
#define SCAN_STAT_BATON	1	/* stat the baton into v->baton_st */
#define SCAN_FRESH	2	/* gfd was just opened: read from where it is */
#define SCAN_LOCAL	4	/* a local file system (fs_remote): see below */
#define DIRENT_MAX	(sizeof(struct dirent64) + 8)	/* one entry, at most */

/*
 * List groups/KEY (gfd) into *v: its baton (stat'ed into v->baton_st
 * with SCAN_STAT_BATON), how many wait, the oldest waiting by ID and,
 * when want is set, the name of that ID.  Names that do not parse, dot
 * names and what is not a regular file are skipped (qadmin check
 * reports them).  The directory is read with getdents64(2) on gfd
 * itself, from its start (with SCAN_FRESH the caller has just opened it,
 * so that it is there without an lseek): a settle lists its group once,
 * and no more system calls than that.  A local file system fills the
 * buffer with as many entries as fit, so with SCAN_LOCAL a read that
 * left room for one more entry of any name was the last, and the call
 * that would say so is not made; a network or FUSE file system may give
 * fewer at a time (one reply's worth) and is read until it gives none.
 * 0 or -1 with errno.
 */
static int
group_scan(int gfd, const char *want, int flags, struct gview *v)
{
	char buf[32 * 1024] __attribute__((aligned(8)));
	const char *best;
	struct dirent64 *e;
	struct sq_name n;
	ssize_t got, pos;
	int bad = 0;

again:
	memset(v, 0, sizeof(*v));
	v->want = want;
	if (!(flags & SCAN_FRESH) && lseek(gfd, 0, SEEK_SET) == -1)
		return -1;
	flags &= ~SCAN_FRESH;		/* read now: the next scan rewinds */
	while ((got = getdents64(gfd, buf, sizeof(buf))) > 0) {
		best = NULL;
		for (pos = 0; pos < got; pos += e->d_reclen) {
			e = (struct dirent64 *)(void *)(buf + pos);
			scan_one(gfd, e->d_name, e->d_type, bad,
			    flags & SCAN_STAT_BATON, v, &best);
		}
		best_flush(v, &best);
		if ((flags & SCAN_LOCAL) && (size_t)got <= sizeof(buf) -
		    DIRENT_MAX)
			break;		/* room for more: there was no more */
	}
	if (got == -1)
		return -1;
	/* A name that does not parse came first: list again, parsing all. */
	if (!bad && v->first[0] != '\0' && sq_name_parse(&n, v->first) == -1) {
		bad = 1;
		goto again;
	}
	return 0;
}

/* Whether name is a regular file in the directory dfd: one fstatat(2). */
static int
regular_at(int dfd, const char *name, struct stat *st)
{
	return fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st->st_mode);
}

/* The ID a baton names (after ,head= or ,gone=), or NULL for ,free. */
static const char *
baton_id(const char *b)
{
	if (strncmp(b, SQ_GROUP_HEAD, sizeof(SQ_GROUP_HEAD) - 1) == 0)
		return b + sizeof(SQ_GROUP_HEAD) - 1;
	if (strncmp(b, SQ_GROUP_GONE, sizeof(SQ_GROUP_GONE) - 1) == 0)
		return b + sizeof(SQ_GROUP_GONE) - 1;
	return NULL;
}

/*
 * Where the promotion of groups/KEY/name puts it at now_ms (ms since the
 * epoch), into *n: retry/ while its t is still to come, else new/.
 * Returns the directory's descriptor, or -1 with EINVAL for a name that
 * does not parse.
 */
static int
promoted(struct sq_queue *q, const char *name, int64_t now_ms,
    struct sq_name *n)
{
	char reason[SQ_REASON_MAX];
	int tofd;

	if (sq_name_parse(n, name) == -1) {
		errno = EINVAL;
		return -1;
	}
	/* A dead letter forwarded in keeps its reason until its claim. */
	strlcpy(reason, n->reason, sizeof(reason));
	tofd = q->newfd;
	if (n->due >= 0 && n->due * 1000 > now_ms) {
		tofd = q->retryfd;
		retry_name(n, n->due);
	} else
		ready_name(n);
	strlcpy(n->reason, reason, sizeof(n->reason));
	return tofd;
}

/* Promote groups/KEY/name, whose ID holds the baton, to new/ or retry/. */
static int
promote(struct sq_queue *q, int gfd, const char *name)
{
	char moved[SQ_NAME_MAX + 1];
	struct sq_name n;
	int tofd;

	if ((tofd = promoted(q, name, sq_now_ms(), &n)) == -1)
		return -1;
	if (move_message(gfd, name, tofd, &n, moved) == -1)
		return -1;
	if (tofd == q->retryfd)
		(void)index_lower_maint(q, n.due * 1000);
	else	/* an older ID: claimed at once, not after the snapshot */
		(void)index_offer_later(q, moved);
	return 0;
}

/*
 * Advance the open group gfd: take a free baton for the oldest waiting
 * message and promote it, or finish the promotion of the head (roll).
 */
static int
advance(struct sq_queue *q, int gfd)
{
	char to[BATON_MAX], headid[SQ_ID_MAX];
	struct gview v;
	const char *id;

	if (group_scan(gfd, NULL, scan_local(q, gfd), &v) == -1)
		return -1;
	/* Two batons (one planted): none is taken, see baton_drop. */
	if (v.nbatons != 1 || v.waiting == 0)
		return 0;
	if (strcmp(v.baton, SQ_GROUP_FREE) == 0) {
		baton(to, SQ_GROUP_HEAD, v.firstid);
		if (sq_rename(gfd, SQ_GROUP_FREE, gfd, to) == -1)
			return errno == ENOENT || errno == EEXIST ? 0 : -1;
		return promote(q, gfd, v.first) == -1 && errno != ENOENT ?
		    -1 : 0;
	}
	if ((id = baton_id(v.baton)) == NULL ||
	    strncmp(v.baton, SQ_GROUP_HEAD, sizeof(SQ_GROUP_HEAD) - 1) != 0)
		return 0;
	/* The head waits still: a promotion was cut short; finish it. */
	if (strcmp(id, v.firstid) == 0)
		return promote(q, gfd, v.first) == -1 && errno != ENOENT ?
		    -1 : 0;
	if (strcmp(id, v.firstid) < 0)
		return 0;	/* older than all that wait: not waiting */
	strlcpy(headid, id, sizeof(headid));	/* v is listed anew */
	if (group_scan(gfd, headid, scan_local(q, gfd), &v) == -1)
		return -1;
	if (v.wanted[0] == '\0')
		return 0;
	return promote(q, gfd, v.wanted) == -1 && errno != ENOENT ? -1 : 0;
}

int
sq_group_advance(struct sq_queue *q, const char *key)
{
	int gfd, rc, saved;

	if ((gfd = group_open(q, key, 0)) == -1)
		return errno == ENOENT ? 0 : -1;
	rc = advance(q, gfd);
	saved = errno;
	close(gfd);
	errno = saved;
	return rc;
}

/* ------------------------------------------------------- order file */

/*
 * The order file of a group (spoolq(5) "Message groups"): groups/KEY/.order
 * holds the names that waited in the group when a settle listed it, from
 * the head it chose on, sorted, one a line, between a first line and
 * ORDER_END.  The settle of a head takes the name after it from there
 * instead of listing the directory again, so that settling a group of
 * many waiting messages costs the same per message as a small one.  It
 * is a hint, never trusted on its own, and the baton's rename still
 * decides who is head.  Whatever adds a message to the group's directory
 * (a send, a claim undone, a removal undone) first makes its add marker,
 * groups/KEY/,add.RAND, then removes .order, unless it is a send of
 * messages all newer than the file's last name, which the file still
 * holds in order (order_keeps), then renames, then removes its marker
 * (add_begin, add_end).  The file is made before the listing it holds,
 * and none is written when that listing shows a marker (order_write):
 * a file made before an add's removal is removed by it, one made after
 * sees the marker, so no order file ever misses a message added since,
 * whenever the adder is killed (a marker it leaves goes with the group's
 * maintenance, after GROUP_GRACE_MS).  Its first line, ORDER_MAGIC, the
 * file's own inode number and a seal, a 64-bit hash of that number and of
 * the lines after it (order_seal), is checked before anything in it is used:
 * a file that was not written whole by order_write for that very inode
 * (written or edited by hand, copied, cut short by a crash) does not
 * check, is removed, and the group's directory is listed, which writes a
 * right one.  The name it gives must also be of the group and younger
 * than the head.  Whatever else is wrong with it (missing, used up,
 * naming a message that is gone) sends the settle back to listing the
 * directory.
 */

/* The order file of gfd goes: it may no longer hold all. */
static void
order_drop(int gfd)
{
	(void)unlinkat(gfd, ORDER_FILE, 0);
}

/*
 * The seal of an order file: a 64-bit hash of its inode number ino and
 * of the len bytes at p (the lines after the first), eight at a time.
 */
static uint64_t
order_seal(uint64_t ino, const char *p, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ ino, w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, p, len);
	h = (h ^ w ^ ((uint64_t)len << 56)) * 0x100000001b3ULL;
	return h ^ (h >> 32);
}

/* The first line of the order file of inode ino, sealing body (blen). */
static void
order_first_line(char *line, uint64_t ino, const char *body, size_t blen)
{
	char tmp[ORDER_HEAD + 1];

	snprintf(tmp, sizeof(tmp), "%s%016llx %016llx\n", ORDER_MAGIC,
	    (unsigned long long)ino,
	    (unsigned long long)order_seal(ino, body, blen));
	memcpy(line, tmp, ORDER_HEAD);
}

/*
 * Read the order file of gfd into buf (ORDER_BYTES, NUL-terminated) and
 * check its first line and seal; its status goes into *st.  1 when it
 * checks, with *body at the line after the first; 0 when there is none
 * (or an empty one, being written); -1 when there is one that does not
 * check.
 */
static int
order_read(int gfd, char *buf, char **body, struct stat *st)
{
	char line[ORDER_HEAD];
	ssize_t len;
	int fd;

	/* Never followed nor waited on; only a regular file is read. */
	fd = openat(gfd, ORDER_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1)
		return 0;
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		close(fd);
		return 0;	/* qadmin check reports it */
	}
	len = read(fd, buf, ORDER_BYTES - 1);
	close(fd);
	if (len == 0)
		return 0;
	if (len < (ssize_t)(ORDER_HEAD + sizeof(ORDER_END) - 1) ||
	    memcmp(buf + len - (sizeof(ORDER_END) - 1), ORDER_END,
	    sizeof(ORDER_END) - 1) != 0)
		return -1;
	order_first_line(line, (uint64_t)st->st_ino, buf + ORDER_HEAD,
	    (size_t)len - ORDER_HEAD);
	if (memcmp(buf, line, ORDER_HEAD) != 0)
		return -1;
	buf[len] = '\0';
	*body = buf + ORDER_HEAD;
	return 1;
}

/*
 * Whether the order file of gfd may stay through an add of messages whose
 * oldest ID is first: when it checks and its last name is older than
 * first, for it still names the oldest waiting from the head on, in
 * their order.  A file being written (empty) may not: its listing may
 * miss the add.
 */
static int
order_keeps(int gfd, const char *first)
{
	struct stat st;
	char *buf, *body, *last;
	size_t len;
	int keep = 0;

	if ((buf = malloc(ORDER_BYTES)) == NULL)
		return 0;
	if (order_read(gfd, buf, &body, &st) == 1 &&
	    (len = strlen(body)) > sizeof(ORDER_END) - 1) {
		/* The line before the last, ".". */
		body[len - sizeof(ORDER_END)] = '\0';
		last = strrchr(body, '\n');
		last = last == NULL ? body : last + 1;
		keep = *last != '\0' && id_before(last, first);
	}
	free(buf);
	return keep;
}

/*
 * Begin an add to the group directory a->fd: make the add's marker, then
 * remove the order file, unless a->first is set and the file checks and
 * ends before it (order_keeps).  From the marker on, no order file is
 * written until the marker goes (order_write), so that the rename that
 * follows can never leave one that misses its message, killed or not.
 * A marker that cannot be made (a full disk) leaves a->mark empty: the
 * order file is then judged again after the rename (add_end), which
 * keeps concurrent settles right but not a crash between the two.
 */
static void
add_begin(struct group_add *a)
{
	int fd;

	snprintf(a->mark, sizeof(a->mark), "%s%08x%08x", ADD_MARK,
	    arc4random(), arc4random());
	fd = openat(a->fd, a->mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0666);
	if (fd == -1)
		a->mark[0] = '\0';
	else
		close(fd);
	if (a->first == NULL || !order_keeps(a->fd, a->first))
		order_drop(a->fd);
}

/*
 * End the add to a->fd (its renames made): remove its marker.  Without
 * one, or when the group's maintenance removed it meanwhile (an adder
 * stopped for longer than GROUP_GRACE_MS), an order file written since
 * may miss the add: it is judged again as add_begin did.
 */
static void
add_end(struct group_add *a)
{
	if (a->mark[0] == '\0' || (unlinkat(a->fd, a->mark, 0) == -1 &&
	    errno == ENOENT)) {
		if (a->first == NULL || !order_keeps(a->fd, a->first))
			order_drop(a->fd);
	}
	a->mark[0] = '\0';
}

/* The line of body (lines of an order file) naming the ID id, or NULL. */
static const char *
order_line(const char *body, const char *id)
{
	const char *p, *e;
	size_t idlen = strlen(id);

	for (p = body; *p != '\0'; p = e + 1) {
		if ((e = strchr(p, '\n')) == NULL)
			return NULL;
		if (strncmp(p, id, idlen) == 0 && (p[idlen] == ',' ||
		    p + idlen == e))
			return p;
	}
	return NULL;
}

/*
 * The name after the head id of group key in body, the lines of an order
 * file of gfd, into next; *line (when line is not NULL) gets the head's
 * line in body.  1 when found and still waiting (a regular file in gfd),
 * 0 when there is no usable one, -1 when it names a message of another
 * group, or one older than the head.
 */
static int
order_find(int gfd, const char *body, const char *id, const char *key,
    char *next, const char **line)
{
	struct stat st;
	struct sq_name n;
	const char *p, *e;

	if ((p = order_line(body, id)) == NULL)
		return 0;		/* the head is not in it */
	if (line != NULL)
		*line = p;
	p = strchr(p, '\n') + 1;
	if ((e = strchr(p, '\n')) == NULL || (size_t)(e - p) > SQ_NAME_MAX ||
	    e == p || *p == '.')
		return 0;		/* used up */
	memcpy(next, p, (size_t)(e - p));
	next[e - p] = '\0';
	if (sq_name_parse(&n, next) == -1 || strcmp(n.group, key) != 0 ||
	    strcmp(n.id, id) <= 0)
		return -1;
	/* Still waiting, a regular file: else the directory is listed. */
	return fstatat(gfd, next, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

/*
 * The order files this process read, kept so that settling the next head
 * of a group costs one fstatat(2) of the file instead of reading it again
 * (spoolq(5) "Message groups").  A kept copy is used only while
 * groups/KEY/.order is still the very file it was read from: the same
 * device, inode, size, modification and change times.  No order file is
 * ever written again once written whole: a new one is a new file, made
 * and written once by order_write, which gives it a modification time
 * with random nanoseconds, so that a new file that gets the inode number
 * of a removed one does not pass for it.  Kept only on a local file
 * system (fs_remote): a client of a shared one may answer from its own
 * cache for a file that another host removed.  Up to CACHE_SLOTS groups,
 * one a slot by a hash of the key, each copy holding the lines from the
 * head it was read for on, CACHE_BYTES at most; a copy that does not
 * give the next head (used up, cut there, the next gone) is dropped and
 * the file read again.
 */
#define CACHE_SLOTS	1024
#define CACHE_BYTES	2048

struct order_copy {
	char		key[SQ_GROUP_MAX];
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec	mtim, ctim;
	char		body[];		/* lines, NUL-terminated */
};

struct sq_group_cache {
	int			 local;		/* 0: copies are never kept */
	char			*buf;		/* ORDER_BYTES: order_next reads */
	struct order_copy	*slot[CACHE_SLOTS];	/* CACHE_BYTES each */
};

void
group_cache_free(struct sq_queue *q)
{
	size_t i;

	if (q->group_cache == NULL)
		return;
	for (i = 0; i < CACHE_SLOTS; i++)
		free(q->group_cache->slot[i]);
	free(q->group_cache->buf);
	free(q->group_cache);
	q->group_cache = NULL;
}

/* The cache of q, made first (gfd: a group's directory); NULL: none. */
static struct sq_group_cache *
group_cache(struct sq_queue *q, int gfd)
{
	if (q->group_cache == NULL) {
		if ((q->group_cache = calloc(1, sizeof(*q->group_cache))) ==
		    NULL)
			return NULL;
		q->group_cache->local = !fs_remote(gfd);
	}
	return q->group_cache;
}

/* SCAN_LOCAL when groups/ of q is on a local file system, else 0. */
static int
scan_local(struct sq_queue *q, int gfd)
{
	struct sq_group_cache *c = group_cache(q, gfd);

	return c != NULL && c->local ? SCAN_LOCAL : 0;
}

/*
 * The buffer (ORDER_BYTES) into which q reads order files to settle by
 * them, made once and kept until sq_queue_close, so that a settle costs
 * no allocation of it; NULL when it cannot be made.
 */
static char *
order_buffer(struct sq_queue *q, int gfd)
{
	struct sq_group_cache *c;

	if ((c = group_cache(q, gfd)) == NULL)
		return NULL;
	if (c->buf == NULL)
		c->buf = malloc(ORDER_BYTES);
	return c->buf;
}

/* The slot of group key in the cache of q, made first; NULL: none. */
static struct order_copy **
cache_slot(struct sq_queue *q, int gfd, const char *key)
{
	uint32_t h = 2166136261U;	/* FNV-1a, 32 bits */
	const unsigned char *p;

	if (group_cache(q, gfd) == NULL || !q->group_cache->local)
		return NULL;
	for (p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 16777619U;
	return &q->group_cache->slot[h % CACHE_SLOTS];
}

static int
same_file(const struct order_copy *c, const struct stat *st)
{
	return c->dev == st->st_dev && c->ino == st->st_ino &&
	    c->size == st->st_size &&
	    c->mtim.tv_sec == st->st_mtim.tv_sec &&
	    c->mtim.tv_nsec == st->st_mtim.tv_nsec &&
	    c->ctim.tv_sec == st->st_ctim.tv_sec &&
	    c->ctim.tv_nsec == st->st_ctim.tv_nsec;
}

/*
 * Keep a copy of the lines of the order file of group key (status st)
 * that checked, from p, the line of the head, on, in the slot (made once,
 * of CACHE_BYTES, then used again).  Best effort.
 */
static void
cache_keep(struct order_copy **slot, const char *key, const struct stat *st,
    const char *p)
{
	struct order_copy *c;
	const char *e, *end;
	size_t len;

	/* Whole lines (each ends in a newline), CACHE_BYTES at most. */
	for (e = p; *e != '\0'; e = end) {
		end = strchr(e, '\n') + 1;
		if ((size_t)(end - p) > CACHE_BYTES)
			break;
	}
	len = (size_t)(e - p);
	if (*slot == NULL &&
	    (*slot = malloc(sizeof(**slot) + CACHE_BYTES + 1)) == NULL)
		return;
	c = *slot;
	strlcpy(c->key, key, sizeof(c->key));
	c->dev = st->st_dev;
	c->ino = st->st_ino;
	c->size = st->st_size;
	c->mtim = st->st_mtim;
	c->ctim = st->st_ctim;
	memcpy(c->body, p, len);
	c->body[len] = '\0';
}

/*
 * The next head after n by the copy of its group's order file kept in
 * q, into next: 1 when found (as order_find), else 0, the copy dropped.
 */
static int
order_kept(struct sq_queue *q, int gfd, const struct sq_name *n, char *next)
{
	struct order_copy **slot;
	struct stat st;

	if (q->group_cache == NULL || !q->group_cache->local ||
	    (slot = cache_slot(q, gfd, n->group)) == NULL || *slot == NULL ||
	    strcmp((*slot)->key, n->group) != 0)
		return 0;
	if (fstatat(gfd, ORDER_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && same_file(*slot, &st) &&
	    order_find(gfd, (*slot)->body, n->id, n->group, next, NULL) == 1)
		return 1;
	(*slot)->key[0] = '\0';	/* dropped: its memory serves again */
	return 0;
}

/*
 * The next head after n by the order file of gfd, read now (and kept in
 * q): 1 when found, 0 when there is no usable one, -1 when the file does
 * not check (order_read) or names a message of another group, or one
 * older than the head (order_find).
 */
static int
order_next(struct sq_queue *q, int gfd, const struct sq_name *n, char *next)
{
	struct order_copy **slot;
	struct stat st;
	const char *line;
	char *buf, *body;
	int rc;

	if ((buf = order_buffer(q, gfd)) == NULL)
		return 0;
	if ((rc = order_read(gfd, buf, &body, &st)) == 1) {
		rc = order_find(gfd, body, n->id, n->group, next, &line);
		if (rc == 1 && (slot = cache_slot(q, gfd, n->group)) != NULL)
			cache_keep(slot, n->group, &st, line);
	}
	return rc;
}

/*
 * Release the head n by the order file: hand the baton to the name after
 * it and promote that.  1 when done, 0 when the directory must be listed.
 */
static int
release_ordered(struct sq_queue *q, int gfd, const struct sq_name *n)
{
	char from[BATON_MAX], to[BATON_MAX], next[SQ_NAME_MAX + 1];
	char nextid[SQ_ID_MAX];
	size_t len;
	int found;

	if ((found = order_kept(q, gfd, n, next)) == 0 &&
	    (found = order_next(q, gfd, n, next)) == -1)
		order_drop(gfd);	/* wrong: the listing writes it anew */
	if (found != 1 || (len = strcspn(next, ",")) >= sizeof(nextid))
		return 0;
	memcpy(nextid, next, len);
	nextid[len] = '\0';
	baton(from, SQ_GROUP_HEAD, n->id);
	baton(to, SQ_GROUP_HEAD, nextid);
	if (sq_rename(gfd, from, gfd, to) == -1)
		return 0;
	(void)promote(q, gfd, next);
	return 1;
}

/*
 * Write the order file of gfd for the head first, just chosen by a
 * listing and not yet promoted.  The file is made first and listed into
 * after: an add that made its marker and removed .order before the file
 * was made shows its marker in the listing (until its rename is done
 * and the listing has its message), and then there is no order file;
 * one that began after removes the file.  When first is not the oldest
 * of that listing (an older one came meanwhile), there is no order file
 * either.  Once written, the file gets a modification time with
 * random nanoseconds, by which a kept copy knows it (order_kept).  Best
 * effort.
 */
static void
order_write(struct sq_queue *q, int gfd, const char *first)
{
	struct timespec ts[2];
	struct stat st;
	struct sq_name n;
	struct names l;
	size_t i, len, used, kept = 0;
	char *buf;
	int fd;

	order_drop(gfd);
	if ((buf = malloc(ORDER_BYTES)) == NULL)
		return;
	fd = openat(gfd, ORDER_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0666);
	if (fd == -1) {
		free(buf);
		return;
	}
	share_file(q->share, fd);
	if (fstat(fd, &st) == -1 || names_list(gfd, ORDER_NAMES + 4, &l) == -1)
		goto drop;
	used = ORDER_HEAD;		/* the first line comes last */
	for (i = 0; i < l.n && kept < ORDER_NAMES; i++) {
		/* An add under way: its message may be missing here. */
		if (strncmp(l.v[i], ADD_MARK, sizeof(ADD_MARK) - 1) == 0) {
			kept = 0;
			break;
		}
		if (l.v[i][0] == ',' || sq_name_parse(&n, l.v[i]) == -1)
			continue;
		if (kept == 0 && strcmp(l.v[i], first) != 0)
			break;		/* an older one came: no file */
		len = strlen(l.v[i]);
		memcpy(buf + used, l.v[i], len);
		buf[used + len] = '\n';
		used += len + 1;
		kept++;
	}
	names_free(&l);
	if (kept < 2)
		goto drop;
	memcpy(buf + used, ORDER_END, sizeof(ORDER_END) - 1);
	used += sizeof(ORDER_END) - 1;
	order_first_line(buf, (uint64_t)st.st_ino, buf + ORDER_HEAD,
	    used - ORDER_HEAD);
	if (write(fd, buf, used) != (ssize_t)used)
		goto drop;
	/* A time of its own: a copy of an older file is never taken for it. */
	clock_gettime(CLOCK_REALTIME, &ts[1]);
	ts[1].tv_nsec = (long)arc4random_uniform(1000000000);
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	if (futimens(fd, ts) == -1)
		goto drop;
	close(fd);
	free(buf);
	return;
drop:
	close(fd);
	order_drop(gfd);
	free(buf);
}

/*
 * Whether the order file of gfd, the directory of group key, could lead
 * a settle astray (qadmin check): NULL when it is fine or absent, else
 * what is wrong.  Right is a file that checks (order_read) whose names
 * after the head, up to the first one that is gone, are the oldest
 * waiting messages in their order.  Reads the file and lists gfd; -1
 * from the listing is taken as fine.
 */
const char *
group_order_wrong(int gfd, const char *key)
{
	const char *why = NULL, *id;
	struct stat st;
	struct names l;
	struct gview v;
	struct sq_name n;
	char *buf, *p, *e;
	size_t i = 0, idlen;
	int rc;

	if ((buf = malloc(ORDER_BYTES)) == NULL)
		return NULL;
	if ((rc = order_read(gfd, buf, &p, &st)) != 1) {
		free(buf);
		return rc == 0 ? NULL : "order file that does not check "
		    "(written by hand or cut short)";
	}
	if (group_scan(gfd, NULL, 0, &v) == -1 || v.nbatons != 1 ||
	    strncmp(v.baton, SQ_GROUP_HEAD, sizeof(SQ_GROUP_HEAD) - 1) != 0 ||
	    names_list(gfd, ORDER_NAMES + 4, &l) == -1) {
		free(buf);
		return NULL;
	}
	id = baton_id(v.baton);
	idlen = strlen(id);
	/* The head's line, then each line against the next waiting name. */
	for (; *p != '\0' && (e = strchr(p, '\n')) != NULL; p = e + 1)
		if (strncmp(p, id, idlen) == 0 && (p[idlen] == ',' ||
		    p + idlen == e))
			break;
	for (p = *p != '\0' ? strchr(p, '\n') + 1 : p; *p != '\0' &&
	    *p != '.' && (e = strchr(p, '\n')) != NULL; p = e + 1) {
		*e = '\0';
		if (fstatat(gfd, p, &st, AT_SYMLINK_NOFOLLOW) == -1)
			break;		/* gone: the settle lists from here */
		while (i < l.n && (l.v[i][0] == ',' ||
		    sq_name_parse(&n, l.v[i]) == -1 ||
		    strcmp(n.group, key) != 0 || strcmp(n.id, id) <= 0))
			i++;		/* not waiting behind the head */
		if (i == l.n)
			break;		/* beyond the listing */
		if (strcmp(p, l.v[i++]) != 0) {
			why = "order file that names the next heads out "
			    "of their order";
			break;
		}
	}
	names_free(&l);
	free(buf);
	return why;
}

/* ------------------------------------------------------- transitions */

int
group_publish_into(struct sq_queue *q, struct group_add *a, int fromfd,
    const char *from, const char *name, const char *key)
{
	struct stat st;
	int saved, tries;

	for (tries = 0;; tries++) {
		if (a->fd == -1) {
			if ((a->fd = group_open(q, key, 1)) == -1)
				return -1;
			add_begin(a);
		}
		if (move_rename_judged(fromfd, from, a->fd, name) == 0)
			return 0;
		saved = errno;
		/* The group's directory was removed as idle meanwhile. */
		if (saved == ENOENT && tries < 3 && fstatat(fromfd, from,
		    &st, AT_SYMLINK_NOFOLLOW) == 0) {
			add_end(a);
			close(a->fd);
			a->fd = -1;
			continue;
		}
		errno = saved;
		return -1;
	}
}

void
group_publish_done(struct sq_queue *q, struct group_add *a)
{
	struct stat st;

	add_end(a);
	if (q->conf.durability == SQ_DURABILITY_FSYNC)
		(void)fsync(a->fd);
	/* Sent: the rest is the group's business, never the send's. */
	if (fstatat(a->fd, SQ_GROUP_FREE, &st, AT_SYMLINK_NOFOLLOW) == 0)
		(void)advance(q, a->fd);
	close(a->fd);
	a->fd = -1;
}

int
sq_group_publish(struct sq_queue *q, const char *tmpname, const char *name,
    const char *key)
{
	return group_publish_from(q, q->tmpfd, tmpname, name, key);
}

int
group_publish_from(struct sq_queue *q, int fromfd, const char *from,
    const char *name, const char *key)
{
	struct group_add a;
	char id[SQ_ID_MAX];
	int saved;

	/* Its ID: the name up to its first field. */
	strlcpy(id, name, sizeof(id));
	id[strcspn(id, ",")] = '\0';
	memset(&a, 0, sizeof(a));
	a.fd = -1;
	a.first = id;
	if (group_publish_into(q, &a, fromfd, from, name, key) == -1) {
		saved = errno;
		if (a.fd != -1) {
			add_end(&a);
			close(a.fd);
		}
		errno = saved;
		return -1;
	}
	group_publish_done(q, &a);
	return 0;
}

/*
 * The group gfd has more than one baton, which no step of the group code
 * makes: one was put there by hand (a ,free planted while id was head).
 * The baton of id, whose head is settled, goes (when it is a regular
 * file, as the group code makes them), so that the other is the group's
 * only one, and the group advances by it: it never stays stuck, and no
 * baton is taken while two are there (advance), so that a second head is
 * never let out while the first is in flight.
 */
static void
baton_drop(struct sq_queue *q, int gfd, const char *id)
{
	char b[BATON_MAX];
	struct stat st;
	int i;

	for (i = 0; i < 2; i++) {
		baton(b, i == 0 ? SQ_GROUP_HEAD : SQ_GROUP_GONE, id);
		if (regular_at(gfd, b, &st) && unlinkat(gfd, b, 0) == 0) {
			(void)advance(q, gfd);
			return;
		}
	}
}

void
sq_group_release(struct sq_queue *q, const struct sq_name *n)
{
	char to[BATON_MAX];
	struct gview v;
	const char *id;
	int gfd, tries;

	if (n->group[0] == '\0' || (gfd = group_open(q, n->group, 0)) == -1)
		return;
	/* The next head named by the order file: no listing. */
	if (release_ordered(q, gfd, n)) {
		close(gfd);
		return;
	}
	/*
	 * Hand the baton straight to the oldest waiting message, or free
	 * it.  A recovery may turn ,head= into ,gone= and back meanwhile:
	 * then list again.
	 */
	for (tries = 0; tries < 3; tries++) {
		if (group_scan(gfd, NULL, scan_local(q, gfd) |
		    (tries == 0 ? SCAN_FRESH : 0), &v) == -1)
			break;
		if (v.nbatons > 1) {
			baton_drop(q, gfd, n->id);
			break;
		}
		if (v.nbatons != 1 ||
		    (id = baton_id(v.baton)) == NULL || strcmp(id, n->id) != 0)
			break;
		if (v.waiting > 0)
			baton(to, SQ_GROUP_HEAD, v.firstid);
		else
			strlcpy(to, SQ_GROUP_FREE, sizeof(to));
		if (sq_rename(gfd, v.baton, gfd, to) == -1)
			continue;
		if (v.waiting >= ORDER_MIN)
			order_write(q, gfd, v.first);
		if (v.waiting > 0)
			(void)promote(q, gfd, v.first);
		else {
			order_drop(gfd);
			(void)advance(q, gfd);	/* a send meanwhile */
		}
		break;
	}
	close(gfd);
}

int
sq_group_admit(struct sq_queue *q, const char *curname,
    const struct sq_name *n)
{
	char head[BATON_MAX], path[SQ_GROUP_MAX + BATON_MAX + 1];
	struct group_add a;
	struct sq_name m;
	struct gview v;
	struct stat st;
	int gfd, gsfd, rc, saved;

	baton(head, SQ_GROUP_HEAD, n->id);
	/*
	 * The common case in one call: the baton names this head.  Only a
	 * look, so KEY is not opened on its own (a link planted there could
	 * only make this claim stand, which whoever may plant it can do).
	 */
	snprintf(path, sizeof(path), "%s/%s", n->group, head);
	if ((gsfd = groups_dir(q, 1)) != -1 &&
	    fstatat(gsfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode))
		return 1;
	if ((gfd = group_open(q, n->group, 1)) == -1)
		return -1;
	if (fstatat(gfd, head, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		close(gfd);
		return 1;
	}
	/* An idle group: when none older waits, the baton is taken here. */
	if (group_scan(gfd, NULL, SCAN_FRESH | scan_local(q, gfd), &v) == -1)
		goto fail;
	if (strcmp(v.baton, SQ_GROUP_FREE) == 0 && v.nbatons == 1 &&
	    (v.waiting == 0 || strcmp(n->id, v.firstid) < 0) &&
	    sq_rename(gfd, SQ_GROUP_FREE, gfd, head) == 0) {
		close(gfd);
		return 1;
	}
	/* Not the head: it waits in its group, the attempt not counted. */
	m = *n;
	released_name(&m);
	memset(&a, 0, sizeof(a));
	a.fd = gfd;
	add_begin(&a);
	rc = move_message(q->curfd, curname, gfd, &m, NULL);
	saved = errno;
	add_end(&a);
	if (rc == 0)
		rc = advance(q, gfd);
	else if (saved == ENOENT)
		rc = 0;
	else
		errno = saved;
	saved = errno;
	close(gfd);
	errno = saved;
	return rc == -1 ? -1 : 0;
fail:
	saved = errno;
	close(gfd);
	errno = saved;
	return -1;
}

/* ------------------------------------------------------------ upkeep */

/* A sorted set of IDs. */
struct idset {
	char	**v;
	size_t	  n, alloc;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
idset_add(struct idset *s, const char *id)
{
	void *p;

	if (s->n == s->alloc) {
		size_t n = s->alloc ? s->alloc * 2 : 64;

		if ((p = reallocarray(s->v, n, sizeof(*s->v))) == NULL)
			return -1;
		s->v = p;
		s->alloc = n;
	}
	if ((s->v[s->n] = strdup(id)) == NULL)
		return -1;
	s->n++;
	return 0;
}

static int
idset_has(const struct idset *s, const char *id)
{
	return s->n > 0 && bsearch(&id, s->v, s->n, sizeof(*s->v),
	    cmp_str) != NULL;
}

static void
idset_free(struct idset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Add the IDs of grouped names in the directory dfd to s (not sorted). */
static int
grouped_ids(int dfd, struct idset *s)
{
	struct dirent *e;
	struct sq_name n;
	DIR *d;
	int rc = 0;

	if ((d = dir_stream(dfd)) == NULL)
		return -1;
	while (rc == 0 && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && strstr(e->d_name, ",g=") != NULL &&
		    sq_name_parse(&n, e->d_name) == 0 && n.group[0] != '\0')
			rc = idset_add(s, n.id);
	closedir(d);
	return rc;
}

/*
 * The heads of new/, cur/ and retry/, in the order a head can move once
 * its baton is under review: cur/, retry/, new/, and cur/ again (a claim
 * of it, about to be undone into its group, which is looked at last).
 */
static int
heads_now(struct sq_queue *q, int again, struct idset *s)
{
	if (grouped_ids(q->curfd, s) == -1 ||
	    grouped_ids(q->retryfd, s) == -1 ||
	    grouped_ids(q->newfd, s) == -1 ||
	    (again && grouped_ids(q->curfd, s) == -1))
		return -1;
	sort(s->v, s->n, sizeof(*s->v), cmp_str);
	return 0;
}

/*
 * A baton whose head was not seen: the group, the baton's name and, when
 * the group's order file gave it, the head's name in its group (else "").
 */
struct suspect {
	char	key[SQ_GROUP_MAX];
	char	baton[BATON_MAX];
	char	name[SQ_NAME_MAX + 1];
};

struct upkeep {
	struct sq_queue		*q;
	int			 gsfd;
	int64_t			 now_ms;
	int			 flags;
	sq_group_report_fn	*report;
	void			*arg;
	struct suspect		*sus;
	size_t			 nsus, asus;
};

static void
say(struct upkeep *u, const char *key, const char *what, const char *action)
{
	if (u->report != NULL)
		u->report(key, what, action, u->arg);
}

static int
suspect_add(struct upkeep *u, const char *key, const char *b,
    const char *name)
{
	void *p;

	if (u->nsus == u->asus) {
		size_t n = u->asus ? u->asus * 2 : 16;

		if ((p = reallocarray(u->sus, n, sizeof(*u->sus))) == NULL)
			return -1;
		u->sus = p;
		u->asus = n;
	}
	strlcpy(u->sus[u->nsus].key, key, SQ_GROUP_MAX);
	strlcpy(u->sus[u->nsus].baton, b, BATON_MAX);
	strlcpy(u->sus[u->nsus].name, name, SQ_NAME_MAX + 1);
	u->nsus++;
	return 0;
}

/*
 * Move the messages waiting in dfd, the directory of group key being
 * removed, back into groups/KEY (made anew), each an add there, and
 * advance it.  The add markers of dfd go: no order file of it is read
 * again.  An entry under a marker's name that is not a regular file is
 * no marker: planted, it stays for qadmin check to report, never removed
 * here.  0 or -1.
 */
static int
regroup(struct sq_queue *q, int dfd, const char *key)
{
	struct group_add a;
	struct dirent *e;
	struct sq_name n;
	DIR *d;
	int fd, moved = 0, rc = 0, saved;

	if ((d = dir_stream(dfd)) == NULL)
		return -1;
	fd = dirfd(d);
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ADD_MARK, sizeof(ADD_MARK) - 1) == 0 &&
		    sq_entry_regular(fd, e->d_name, e->d_type))
			(void)unlinkat(fd, e->d_name, 0);
		if (e->d_name[0] == '.' || e->d_name[0] == ',' ||
		    sq_name_parse(&n, e->d_name) == -1 ||
		    !sq_entry_regular(fd, e->d_name, e->d_type))
			continue;
		memset(&a, 0, sizeof(a));
		if ((a.fd = group_open(q, key, 1)) == -1) {
			rc = -1;
			break;
		}
		add_begin(&a);
		if (move_rename(fd, e->d_name, a.fd, e->d_name) == 0)
			moved++;
		else if (errno != ENOENT)
			rc = -1;
		saved = errno;
		add_end(&a);
		close(a.fd);
		errno = saved;
	}
	closedir(d);
	if (moved > 0)
		(void)sq_group_advance(q, key);
	return rc;
}

/*
 * Remove name, a directory of groups/ that a removal renamed away from
 * groups/KEY, once what waits in it is back in its group: a sender that
 * opened the directory before it moved may still publish into it.
 */
static int
group_unmake(struct sq_queue *q, int gsfd, const char *name, const char *key)
{
	int dfd, tries;

	for (tries = 0; tries < 3; tries++) {
		if ((dfd = subdir_open(gsfd, name, 0)) == -1)
			return errno == ENOENT ? 0 : -1;
		if (regroup(q, dfd, key) == -1) {
			close(dfd);
			return -1;
		}
		unlinkat(dfd, GC_BATON, 0);
		unlinkat(dfd, SQ_GROUP_FREE, 0);
		order_drop(dfd);
		close(dfd);
		if (unlinkat(gsfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != ENOTEMPTY && errno != EEXIST)
			return -1;
	}
	return 0;			/* the next pass goes on */
}

/*
 * An idle group's directory goes, so that groups/ does not grow with every
 * group ever used: its free baton is taken for the removal (,head=.gc:
 * nobody advances the group meanwhile), the directory is renamed out of
 * the way, and removed once empty.  A send that comes meanwhile makes the
 * group anew.
 */
static int
group_retire(struct upkeep *u, int gfd, const char *key)
{
	char moved[SQ_GROUP_MAX + 32];
	int saved;

	if (sq_rename(gfd, SQ_GROUP_FREE, gfd, GC_BATON) == -1)
		return errno == ENOENT ? 0 : -1;
	snprintf(moved, sizeof(moved), "%s%s.%08x", GC_PREFIX, key,
	    arc4random());
	if (sq_rename(u->gsfd, key, u->gsfd, moved) == -1) {
		saved = errno;
		(void)sq_rename(gfd, GC_BATON, gfd, SQ_GROUP_FREE);
		errno = saved;
		return -1;
	}
	return group_unmake(u->q, u->gsfd, moved, key);
}

/*
 * Whether the group directory gfd holds an entry that is not a regular
 * file, which the group code never makes: planted.  Such a group is not
 * retired, for its directory could not be removed and would be left
 * outside groups/KEY, where qadmin check reports the entry and --repair
 * moves it into quarantine/groups/; the group goes at a pass after that.
 */
static int
holds_odd(int gfd)
{
	struct dirent *e;
	DIR *d;
	int odd = 0;

	if ((d = dir_stream(gfd)) == NULL)
		return 1;		/* cannot tell: keep the group */
	while (!odd && (e = readdir(d)) != NULL)
		odd = strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0 &&
		    !sq_entry_regular(dirfd(d), e->d_name, e->d_type);
	closedir(d);
	return odd;
}

/* Whether the group directory gfd saw no change for GROUP_IDLE_MS. */
static int
idle(struct upkeep *u, int gfd)
{
	struct stat st;

	return fstat(gfd, &st) == 0 &&
	    u->now_ms - SQ_MTIME_MS(&st) >= GROUP_IDLE_MS;
}

/*
 * Remove the add markers of the group directory gfd made longer ago than
 * the grace (by their modification time, which nothing changes after the
 * marker is made): left by an adder that was killed (add_begin), they
 * would keep the group from ever getting an order file again.  One that
 * is younger may be an add under way; what is not a regular file is no
 * marker (order_write's listing skips it).  Best effort.
 */
static void
marks_sweep(struct upkeep *u, int gfd)
{
	struct dirent *e;
	struct stat st;
	DIR *d;

	if ((d = dir_stream(gfd)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, ADD_MARK, sizeof(ADD_MARK) - 1) == 0 &&
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    0 && S_ISREG(st.st_mode) &&
		    u->now_ms - SQ_MTIME_MS(&st) >= GROUP_GRACE_MS)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

/*
 * Judge group key (gfd) by its order file alone, without listing its
 * directory, whose cost grows with what waits in it (spoolq(5) "Message
 * groups"): settles hand the baton down the file's lines and promote each
 * head out of the directory, so the lines still waiting there come after
 * those gone, and the head is the last one gone or, cut short before its
 * promotion, the first one waiting.  That boundary is found by halving,
 * one fstatat(2) of a line's name per step, and ,head=ID is looked for at
 * both.  Found, the group is judged as a listing would judge it: a head
 * still waiting is promoted, a baton older than the grace whose head has
 * gone becomes a suspect, with its name.  Returns 1 when judged, 0 when
 * the directory must be listed instead (a free baton, no order file or
 * one that does not check or hold this group's names, no head at the
 * boundary: lines removed by hand, a head not from the file), -1 on an
 * error.  The listing, not this, counts batons and sweeps add markers:
 * a marker left by a killed adder keeps the group from getting a new
 * order file, so the group is listed once the one it has is used up.
 */
static int
upkeep_ordered(struct upkeep *u, int gfd, const char *key)
{
	char b[BATON_MAX], id[SQ_ID_MAX], name[SQ_NAME_MAX + 1];
	const char *line[ORDER_NAMES];
	struct sq_name n;
	struct stat st;
	char *buf, *body, *p, *e;
	size_t nl = 0, lo, hi, mid, at, len;
	int64_t age;

	if (regular_at(gfd, SQ_GROUP_FREE, &st) ||
	    (buf = order_buffer(u->q, gfd)) == NULL ||
	    order_read(gfd, buf, &body, &st) != 1)
		return 0;
	for (p = body; *p != '.' && (e = strchr(p, '\n')) != NULL; p = e + 1) {
		*e = '\0';
		if (nl == ORDER_NAMES || sq_name_parse(&n, p) == -1 ||
		    strcmp(n.group, key) != 0)
			return 0;
		line[nl++] = p;
	}
	if (nl == 0)
		return 0;
	/* The first line still waiting: lo (nl when none is). */
	for (lo = 0, hi = nl; lo < hi; ) {
		mid = lo + (hi - lo) / 2;
		if (regular_at(gfd, line[mid], &st))
			hi = mid;
		else
			lo = mid + 1;
	}
	for (at = lo > 0 ? lo - 1 : lo; at <= lo && at < nl; at++) {
		if ((len = strcspn(line[at], ",")) >= sizeof(id))
			return 0;
		memcpy(id, line[at], len);
		id[len] = '\0';
		baton(b, SQ_GROUP_HEAD, id);
		if (regular_at(gfd, b, &st))
			break;
	}
	if (at > lo || at == nl)
		return 0;
	strlcpy(name, line[at], sizeof(name));	/* buf serves settles too */
	if (at == lo) {
		say(u, key, "head waits in its group", "promote");
		return advance(u->q, gfd) == -1 ? -1 : 1;
	}
	age = u->now_ms - ((int64_t)st.st_ctim.tv_sec * 1000 +
	    st.st_ctim.tv_nsec / 1000000);
	if (age >= GROUP_GRACE_MS && suspect_add(u, key, b, name) == -1)
		return -1;
	return 1;
}

/* First look at one group: advance, roll forward, or suspect its head. */
static int
upkeep_group(struct upkeep *u, const char *key)
{
	struct gview v;
	const char *id;
	char headid[SQ_ID_MAX];
	int64_t age;
	int gfd, rc = 0;

	if ((gfd = subdir_open(u->gsfd, key, 0)) == -1)
		return group_gone(errno) ? 0 : -1;
	/* A pass of its own accord; qadmin's look at every entry. */
	if (!(u->flags & (SQ_GROUP_DRY | SQ_GROUP_FORCE)) &&
	    (rc = upkeep_ordered(u, gfd, key)) != 0) {
		rc = rc == -1 ? -1 : 0;
		goto done;
	}
	if (group_scan(gfd, NULL, SCAN_STAT_BATON | SCAN_FRESH |
	    scan_local(u->q, gfd), &v) == -1)
		goto fail;
	if (v.nmarks > 0 && !(u->flags & SQ_GROUP_DRY))
		marks_sweep(u, gfd);
	if (v.nbatons != 1) {
		say(u, key, v.nbatons == 0 ? "no baton" :
		    "more than one baton", NULL);
		goto done;
	}
	if ((id = baton_id(v.baton)) == NULL) {
		if (v.waiting > 0) {
			say(u, key, "baton free while messages wait",
			    "advance");
			if (!(u->flags & SQ_GROUP_DRY))
				rc = advance(u->q, gfd);
		} else if (!(u->flags & SQ_GROUP_DRY) && idle(u, gfd) &&
		    !holds_odd(gfd))
			rc = group_retire(u, gfd, key);
		goto done;
	}
	age = u->now_ms - ((int64_t)v.baton_st.st_ctim.tv_sec * 1000 +
	    v.baton_st.st_ctim.tv_nsec / 1000000);
	if (id[0] == '.') {
		/* A removal that stopped before moving the directory. */
		if (!(u->flags & SQ_GROUP_DRY) && ((u->flags &
		    SQ_GROUP_FORCE) || age >= GROUP_GRACE_MS) &&
		    sq_rename(gfd, v.baton, gfd, SQ_GROUP_FREE) == 0)
			rc = advance(u->q, gfd);
		goto done;
	}
	/*
	 * Whether the head waits in its group: the oldest waiting is it, or
	 * is younger (then it does not); only an older one waiting needs
	 * the name looked for, in a second listing.
	 */
	strlcpy(headid, id, sizeof(headid));	/* v may be listed anew */
	if (v.waiting > 0 && strcmp(headid, v.firstid) == 0)
		strlcpy(v.wanted, v.first, sizeof(v.wanted));
	else if (v.waiting > 0 && strcmp(headid, v.firstid) > 0 &&
	    group_scan(gfd, headid, 0, &v) == -1)
		goto fail;
	if (v.wanted[0] != '\0') {
		if (strncmp(v.baton, SQ_GROUP_HEAD,
		    sizeof(SQ_GROUP_HEAD) - 1) == 0) {
			say(u, key, "head waits in its group", "promote");
			if (!(u->flags & SQ_GROUP_DRY))
				rc = advance(u->q, gfd);
			goto done;
		}
	}
	if (v.baton[1] == 'g' || (u->flags & SQ_GROUP_FORCE) ||
	    age >= GROUP_GRACE_MS)
		rc = suspect_add(u, key, v.baton, "");
done:
	close(gfd);
	return rc;
fail:
	close(gfd);
	return -1;
}

/*
 * Whether the head of suspect s is where a promotion put it, found by its
 * name: new/ or retry/ under the names promoted() gives its name in the
 * group or, when that is not known, new/ID,g=KEY, the name of a head sent
 * without attempts, expiry or attributes.  Up to two fstatat(2) calls
 * instead of listings of new/ and retry/, whose cost grows with the
 * backlog, while heads wait there behind it.  A head renamed since
 * (claimed, retried, recovered) is not found so, and is looked for in
 * the listings.
 */
static int
head_found(struct upkeep *u, const struct suspect *s)
{
	char name[SQ_NAME_MAX + 1];
	struct sq_name n;
	struct stat st;
	int i, tofd;

	if (s->name[0] == '\0') {
		memset(&n, 0, sizeof(n));
		n.lease = n.due = n.expires = -1;
		strlcpy(n.id, baton_id(s->baton), sizeof(n.id));
		strlcpy(n.group, s->key, sizeof(n.group));
		return sq_name_format(name, sizeof(name), &n) == 0 &&
		    regular_at(u->q->newfd, name, &st);
	}
	/* Ready in new/, then, when it has a t, still waiting in retry/. */
	for (i = 0; i < 2; i++) {
		if ((tofd = promoted(u->q, s->name, i == 0 ? INT64_MAX : 0,
		    &n)) == -1 || (i == 1 && tofd != u->q->retryfd))
			return 0;
		if (sq_name_format(name, sizeof(name), &n) == 0 &&
		    regular_at(tofd, name, &st))
			return 1;
	}
	return 0;
}

/*
 * Judge the suspects, whose heads were not waiting in their groups: those
 * found by name (head_found) or seen in cur/, retry/ or new/ are fine.  The others' batons become
 * ,gone=ID; from then on no claim of ID stands (admit wants ,head=ID), so
 * ID can only move on towards its group.  Looked for again in that order,
 * a head found gets its baton back, one not found frees it.
 */
static int
upkeep_suspects(struct upkeep *u)
{
	struct idset seen = { 0 };
	char to[BATON_MAX];
	const char *id;
	struct gview v;
	size_t i;
	int gfd, rc = -1, lost, alive, listed = 0;

	for (i = 0; i < u->nsus; i++) {
		id = baton_id(u->sus[i].baton);
		if (u->sus[i].baton[1] == 'h') {
			/* Listed once, for the first not found by name. */
			alive = head_found(u, &u->sus[i]);
			if (!alive && !listed) {
				if (heads_now(u->q, 0, &seen) == -1)
					goto out;
				listed = 1;
			}
			if (alive || idset_has(&seen, id)) {
				u->sus[i].baton[0] = '\0';
				continue;
			}
		}
		if (u->flags & SQ_GROUP_DRY) {
			say(u, u->sus[i].key, "baton held by a message that "
			    "is gone", "free");
			u->sus[i].baton[0] = '\0';
			continue;
		}
		if (u->sus[i].baton[1] == 'h') {
			if ((gfd = subdir_open(u->gsfd, u->sus[i].key, 0)) ==
			    -1)
				goto out;
			baton(to, SQ_GROUP_GONE, id);
			if (sq_rename(gfd, u->sus[i].baton, gfd, to) == -1)
				u->sus[i].baton[0] = '\0';	/* moved on */
			else
				strlcpy(u->sus[i].baton, to, BATON_MAX);
			close(gfd);
		}
	}
	idset_free(&seen);
	for (i = 0; i < u->nsus && u->sus[i].baton[0] == '\0'; i++)
		;
	if (i == u->nsus) {
		rc = 0;			/* all alive: nothing to look again for */
		goto out;
	}
	if (heads_now(u->q, 1, &seen) == -1)
		goto out;
	for (i = 0; i < u->nsus; i++) {
		if (u->sus[i].baton[0] == '\0')
			continue;
		id = baton_id(u->sus[i].baton);
		if ((gfd = subdir_open(u->gsfd, u->sus[i].key, 0)) == -1)
			goto out;
		if (group_scan(gfd, id, 0, &v) == -1) {
			close(gfd);
			goto out;
		}
		lost = !idset_has(&seen, id) && v.wanted[0] == '\0';
		baton(to, lost ? "" : SQ_GROUP_HEAD, lost ? SQ_GROUP_FREE :
		    id);
		if (sq_rename(gfd, u->sus[i].baton, gfd, to) == 0) {
			if (lost)
				say(u, u->sus[i].key, "baton held by a "
				    "message that is gone", "free");
			(void)advance(u->q, gfd);
		} else if (lost && errno == EEXIST) {
			/* A ,free planted beside it: that one serves. */
			say(u, u->sus[i].key, "baton held by a message that "
			    "is gone, beside another", "free");
			baton_drop(u->q, gfd, id);
		}
		close(gfd);
	}
	rc = 0;
out:
	idset_free(&seen);
	return rc;
}

/* Whether the entry name of groups/ changed longer ago than the grace. */
static int
old_entry(struct upkeep *u, const char *name)
{
	struct stat st;

	return fstatat(u->gsfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    u->now_ms - ((int64_t)st.st_ctim.tv_sec * 1000 +
	    st.st_ctim.tv_nsec / 1000000) >= GROUP_GRACE_MS;
}

/*
 * Whether a pass is due (groups/,maint older than GROUP_EVERY_MS); when
 * not, the next is due GROUP_EVERY_MS after the last (sq_group_tick).
 */
static int
pass_due(struct upkeep *u)
{
	struct stat st;
	int fd;

	if (u->flags & (SQ_GROUP_FORCE | SQ_GROUP_DRY))
		return 1;
	if (fstatat(u->gsfd, GROUP_MAINT, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && u->now_ms - SQ_MTIME_MS(&st) <
	    GROUP_EVERY_MS && SQ_MTIME_MS(&st) <= u->now_ms) {
		/* Another's pass: this process's next comes 10 s after it. */
		u->q->group_ms = SQ_MTIME_MS(&st) + GROUP_EVERY_MS;
		return 0;
	}
	fd = sq_open_regular(u->gsfd, GROUP_MAINT, O_WRONLY | O_CREAT, 0666,
	    NULL);
	if (fd != -1) {
		share_file(u->q->share, fd);
		(void)futimens(fd, NULL);
		close(fd);
	}
	return 1;
}

int
sq_group_maintain(struct sq_queue *q, int64_t now_ms, int flags,
    sq_group_report_fn *report, void *arg)
{
	struct upkeep u;
	struct dirent *e;
	DIR *d;
	int rc = 0, saved;

	memset(&u, 0, sizeof(u));
	u.q = q;
	u.now_ms = now_ms;
	u.flags = flags;
	u.report = report;
	u.arg = arg;
	if ((u.gsfd = groups_dir(q, 0)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!pass_due(&u))
		return 0;
	if ((d = dir_stream(u.gsfd)) == NULL) {
		rc = -1;
		goto out;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ".new.", 5) == 0 &&
		    !(flags & SQ_GROUP_DRY) && old_entry(&u, e->d_name)) {
			/* A group made by a crashed maker: never visible. */
			int dfd = subdir_open(u.gsfd, e->d_name, 0);

			if (dfd != -1) {
				unlinkat(dfd, SQ_GROUP_FREE, 0);
				close(dfd);
			}
			unlinkat(u.gsfd, e->d_name, AT_REMOVEDIR);
			continue;
		}
		if (strncmp(e->d_name, GC_PREFIX, sizeof(GC_PREFIX) - 1) == 0 &&
		    !(flags & SQ_GROUP_DRY) && ((flags & SQ_GROUP_FORCE) ||
		    old_entry(&u, e->d_name))) {
			/* A removal that stopped half-way: finish it. */
			char key[SQ_GROUP_MAX];
			const char *k = e->d_name + sizeof(GC_PREFIX) - 1;
			size_t len = strcspn(k, ".");

			if (len > 0 && len < sizeof(key)) {
				memcpy(key, k, len);
				key[len] = '\0';
				rc = group_unmake(q, u.gsfd, e->d_name, key);
			}
			continue;
		}
		if (sq_group_key_valid(e->d_name, strlen(e->d_name)))
			rc = upkeep_group(&u, e->d_name);
	}
	closedir(d);
	if (rc == 0 && u.nsus > 0)
		rc = upkeep_suspects(&u);
out:
	saved = errno;
	free(u.sus);
	errno = saved;
	return rc;
}

int
sq_group_tick(struct sq_queue *q, int64_t now_ms, int64_t *next_ms)
{
	if (now_ms >= q->group_ms || q->group_ms - now_ms > GROUP_EVERY_MS) {
		q->group_ms = now_ms + GROUP_EVERY_MS;
		if (sq_group_maintain(q, now_ms, 0, NULL, NULL) == -1 &&
		    errno != ENOENT)
			return -1;
	}
	if (q->groups_open && q->group_ms < *next_ms)
		*next_ms = q->group_ms;
	return 0;
}

/* ------------------------------------------------------------- stats */

int
sq_group_stats(struct sq_queue *q, struct sq_group_stats *s)
{
	struct idset cur = { 0 };
	struct dirent *e;
	struct gview v;
	const char *id;
	DIR *d;
	int gsfd, gfd, rc = 0, saved;

	memset(s, 0, sizeof(*s));
	if ((gsfd = groups_dir(q, 0)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (grouped_ids(q->curfd, &cur) == -1)
		goto fail;
	sort(cur.v, cur.n, sizeof(*cur.v), cmp_str);
	if ((d = dir_stream(gsfd)) == NULL)
		goto fail;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (!sq_group_key_valid(e->d_name, strlen(e->d_name)))
			continue;
		/* Skipped only when no group (or gone): else no count. */
		if ((gfd = subdir_open(gsfd, e->d_name, 0)) == -1) {
			if (!group_gone(errno))
				rc = -1;
			continue;
		}
		rc = group_scan(gfd, NULL, 0, &v);
		close(gfd);
		s->groups++;
		s->waiting += v.waiting;
		if ((id = baton_id(v.baton)) == NULL || id[0] == '.')
			continue;
		s->held++;
		if (idset_has(&cur, id))
			s->inflight++;
		if (v.waiting > 0)
			s->blocked++;
	}
	saved = errno;
	closedir(d);
	idset_free(&cur);
	errno = saved;
	return rc;
fail:
	idset_free(&cur);
	return -1;
}

/* ------------------------------------------------------------- walks */

/*
 * Call fn for each entry of gfd, the directory of group key: see
 * sq_group_each.  gfd is read as the stream itself, not a copy, so that
 * a walk holds one descriptor for the group (a small fd limit): it is
 * closed here.
 */
static int
each_waiting(int gfd, const char *key, sq_msg_fn *fn, void *arg)
{
	struct dirent *e;
	struct sq_msg m;
	DIR *d;
	int fd, rc = 0, saved;

	if ((d = fdopendir(gfd)) == NULL) {
		saved = errno;
		close(gfd);
		errno = saved;
		return -1;
	}
	fd = dirfd(d);
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || e->d_name[0] == ',')
			continue;
		memset(&m, 0, sizeof(m));
		m.state = SQ_STATE_GROUPED;
		m.dirfd = fd;
		m.name = e->d_name;
		/* A name of another group, or none, is no message here. */
		m.parsed = sq_name_parse(&m.n, e->d_name) == 0 &&
		    strcmp(m.n.group, key) == 0;
		if (fstatat(fd, e->d_name, &m.st, AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)
				continue;
			rc = -1;
			break;
		}
		rc = fn(&m, arg);
	}
	closedir(d);
	return rc;
}

/*
 * An entry of groups/ itself that is no group directory (a FIFO, a
 * symlink, a file planted there) goes to fn as an unparsed entry, so
 * that stats count it stray and ls shows it, as they do in the states.
 * A directory, even under a name that is no key, is qadmin check's.
 */
static int
each_stray(int gsfd, const char *name, sq_msg_fn *fn, void *arg)
{
	struct sq_msg m;

	memset(&m, 0, sizeof(m));
	m.state = SQ_STATE_GROUPED;
	m.dirfd = gsfd;
	m.name = name;
	if (fstatat(gsfd, name, &m.st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(m.st.st_mode))
		return 0;
	return fn(&m, arg);
}

int
sq_group_each(struct sq_queue *q, sq_msg_fn *fn, void *arg)
{
	struct dirent *e;
	DIR *d;
	int gsfd, gfd, rc = 0, saved;

	if ((gsfd = groups_dir(q, 0)) == -1)
		return errno == ENOENT ? 0 : -1;
	if ((d = dir_stream(gsfd)) == NULL)
		return -1;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || e->d_name[0] == ',')
			continue;	/* ours: groups/,maint, groups/.new.* */
		if (sq_group_key_valid(e->d_name, strlen(e->d_name)) &&
		    (gfd = subdir_open(gsfd, e->d_name, 0)) != -1)
			rc = each_waiting(gfd, e->d_name, fn, arg);
		else if (sq_group_key_valid(e->d_name, strlen(e->d_name)) &&
		    !group_gone(errno))
			rc = -1;	/* a group not listed: no full walk */
		else
			rc = each_stray(dirfd(d), e->d_name, fn, arg);
	}
	saved = errno;
	closedir(d);
	errno = saved;
	return rc == 1 ? 0 : rc;
}
