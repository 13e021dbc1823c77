/*
 * index.c - the claim index of one host, run/index.HOST: which ready
 * names a claim tries next, so that a claim costs the same at any
 * backlog (SPEC 6).  claim.c decides when to list, take and maintain;
 * this module owns the file and its format (spoolq(5), The claim index).
 *
 * The file is a cache of hints, never authoritative: the claim rename
 * decides every race, and whatever the file holds, a claim ends up
 * trying every name in new/.  Its parts:
 *
 *	header	one text line of IX_HDR bytes: magic, generation, the end
 *		of the snapshot, its cursor, the side list's cursor, length
 *		and checksum, the maintenance time, when the last one began
 *		and retry/'s mtime then, who is listing new/ since when, and a
 *		checksum of the line itself;
 *	side	IX_SIDE bytes at IX_HDR: sorted NUL-terminated names moved
 *		back into new/ (promoted, recovered) after the snapshot was
 *		taken: older IDs that must join the claim order at once.  A
 *		process may keep those it moves in its struct sq_queue and
 *		write them together (index_offer_later), at the latest when
 *		it next locks the index or closes the queue;
 *	blocks	from IX_BLOCKS, IX_BLOCK bytes each: a text block header
 *		(generation, bytes used, checksum) and NUL-terminated names,
 *		the sorted snapshot of the oldest INDEX_MAX names of new/.
 *
 * Validity is judged by content alone, never by size: a header whose
 * line does not re-format to itself or whose checksum fails, a side list
 * or block whose checksum fails, or a block of another generation (a
 * crash between writing blocks and header, a host of the same name on a
 * shared file system) all read as "used up", so the next claim lists
 * new/ again.  Blocks are written before the header: the header is the
 * commit point of a new snapshot, and each snapshot draws a random
 * generation, so no old block is ever read as part of a new one.
 *
 * The file is kept per host: all consumers of one host reach it through
 * one mount, where flock(2) and the page cache agree; other hosts keep
 * their own, so no client ever works from a copy another client changed
 * behind its cache.  The lock guards only reads and writes of this file;
 * no rename, listing or maintenance happens under it.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define IX_HDR		256		/* bytes of the header line */
#define IX_SIDE		(32 * 1024)	/* bytes of the side list */
#define IX_BLOCK	(16 * 1024)	/* bytes of one snapshot block */
#define IX_BHDR		40		/* bytes of a block's header */
#define IX_BLOCKS	(IX_HDR + IX_SIDE)	/* offset of block 0 */
#define IX_MAGIC	"spoolq-index-2"
#define IX_FIELDS	"%-15s %016llx %020lld %020lld %05u %05u %016llx " \
			"%020lld %020lld %020lld %010ld %020lld"
#define INDEX_WAIT_MS	2000		/* then claim without the index */
#define OFFER_WAIT_MS	100		/* then leave a name to the listing */
#define OFFER_FLUSH_MS	100		/* names kept in a queue this long */

/* ------------------------------------------------------------- format */

uint64_t
fnv1a(uint64_t h, const void *p, size_t len)
{
	const unsigned char *s = p;

	while (len-- > 0) {
		h ^= *s++;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The checksum of a block's names: bound to its generation. */
static uint64_t
block_sum(uint64_t gen, const char *names, size_t used)
{
	return fnv1a(fnv1a(FNV1A_BASIS, &gen, sizeof(gen)), names, used);
}

/* Format the header of ix into hdr (IX_HDR bytes, no NUL). */
static void
header_format(const struct index *ix, char *hdr)
{
	char line[IX_HDR + 1];
	int len;

	len = snprintf(line, sizeof(line), IX_FIELDS, IX_MAGIC,
	    (unsigned long long)ix->gen, (long long)ix->end,
	    (long long)ix->cursor, ix->side_cur, ix->side_used,
	    (unsigned long long)ix->side_sum, (long long)ix->maint_ms,
	    (long long)ix->maint_at_ms, (long long)ix->retry_ns,
	    (long)ix->list_pid,
	    (long long)ix->list_ms);
	snprintf(line + len, sizeof(line) - (size_t)len, " %016llx",
	    (unsigned long long)fnv1a(FNV1A_BASIS, line, (size_t)len));
	len = (int)strlen(line);
	memset(line + len, ' ', IX_HDR - (size_t)len);
	line[IX_HDR - 1] = '\n';
	memcpy(hdr, line, IX_HDR);
}

/* An empty index: no snapshot, no side list, maintenance due. */
static void
index_empty(struct index *ix)
{
	ix->gen = 0;
	ix->cursor = ix->end = IX_BLOCKS;
	ix->side_cur = ix->side_used = 0;
	ix->side_sum = fnv1a(FNV1A_BASIS, "", 0);
	ix->maint_ms = 0;
	ix->maint_at_ms = 0;
	ix->retry_ns = 0;
	ix->list_pid = 0;
	ix->list_ms = 0;
}

/*
 * Read the header: one that does not format back to itself byte for byte
 * (so every field is in range and its checksum holds) reads as empty.
 */
static void
index_read(struct index *ix)
{
	char hdr[IX_HDR + 1], again[IX_HDR], magic[16];
	unsigned long long gen, sum, ssum;
	long long end, cursor, maint, mat, retry, lms;
	unsigned int scur, sused;
	long pid;

	index_empty(ix);
	if (pread(ix->fd, hdr, IX_HDR, 0) != IX_HDR)
		return;
	hdr[IX_HDR] = '\0';
	if (sscanf(hdr, "%15s %16llx %20lld %20lld %5u %5u %16llx %20lld "
	    "%20lld %20lld %10ld %20lld %16llx", magic, &gen, &end, &cursor,
	    &scur, &sused, &ssum, &maint, &mat, &retry, &pid, &lms, &sum) !=
	    13 ||
	    strcmp(magic, IX_MAGIC) != 0 || end < IX_BLOCKS ||
	    cursor < IX_BLOCKS || cursor > end || sused > IX_SIDE ||
	    scur > sused)
		return;
	ix->gen = gen;
	ix->end = end;
	ix->cursor = cursor;
	ix->side_cur = scur;
	ix->side_used = sused;
	ix->side_sum = ssum;
	ix->maint_ms = maint;
	ix->maint_at_ms = mat;
	ix->retry_ns = retry;
	ix->list_pid = (pid_t)pid;
	ix->list_ms = lms;
	header_format(ix, again);
	if (memcmp(hdr, again, IX_HDR) != 0)
		index_empty(ix);
}

int
index_save(struct index *ix)
{
	char hdr[IX_HDR];

	header_format(ix, hdr);
	return pwrite(ix->fd, hdr, IX_HDR, 0) == IX_HDR ? 0 : -1;
}

void
index_reset(struct index *ix)
{
	ix->cursor = ix->end;
	ix->side_cur = ix->side_used = 0;
	ix->side_sum = fnv1a(FNV1A_BASIS, "", 0);
}

/* ------------------------------------------------------------- lock */

int
index_path(char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "%s%s", SQ_INDEX_PREFIX,
	    short_host()) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static void
offer_forget(struct sq_queue *q)
{
	q->offered_len = 0;
	q->offered_ms = 0;
}

/*
 * The names q keeps (index_offer) go on the side list of ix, locked,
 * and its header is saved; a side list that cannot take them is reset,
 * so that new/ is listed again.
 */
static void
offer_merge(struct sq_queue *q, struct index *ix)
{
	if (index_side_add(ix, q->offered, q->offered_len) == -1)
		index_reset(ix);
	(void)index_save(ix);
	offer_forget(q);
}

/*
 * index_lock, waiting wait_ms at most.  Whoever takes the lock of q's
 * index first writes what q keeps for it.
 */
static int
index_lock_wait(struct sq_queue *q, struct index *ix, int64_t wait_ms)
{
	char path[sizeof(SQ_INDEX_PREFIX) + HOST_NAME_MAX];

	if (q->index_fd == -1) {
		if (index_path(path, sizeof(path)) == -1)
			return -1;
		q->index_fd = sq_open_regular(q->fd, path, O_RDWR | O_CREAT,
		    0666, NULL);
		if (q->index_fd == -1)
			return -1;
		share_file(q->share, q->index_fd);
	}
	ix->fd = q->index_fd;
	/*
	 * Bounded: a holder that was stopped must not stop every consumer
	 * (SPEC 2).  Busy reads as EBUSY: the caller does without.
	 */
	switch (sq_backoff_lock(ix->fd, LOCK_EX, wait_ms)) {
	case 0:
		break;
	case 1:
		errno = EBUSY;
		return -1;
	default:
		return -1;
	}
	index_read(ix);
	if (q->offered_len > 0)
		offer_merge(q, ix);
	return 0;
}

int
index_lock(struct sq_queue *q, struct index *ix)
{
	return index_lock_wait(q, ix, INDEX_WAIT_MS);
}

void
index_unlock(struct index *ix)
{
	flock(ix->fd, LOCK_UN);
}

int
index_lower_maint(struct sq_queue *q, int64_t at_ms)
{
	struct index ix;
	int rc = 0;

	if (index_lock(q, &ix) == -1)
		return -1;
	if (at_ms < ix.maint_ms) {
		ix.maint_ms = at_ms;
		rc = index_save(&ix);
	}
	index_unlock(&ix);
	return rc;
}

int
index_offer_flush(struct sq_queue *q)
{
	struct index ix;

	if (q->offered_len == 0)
		return 0;
	/* Briefly: the names are in new/ anyway, found at the next listing. */
	if (index_lock_wait(q, &ix, OFFER_WAIT_MS) == -1) {
		offer_forget(q);
		return -1;
	}
	index_unlock(&ix);		/* the lock took them */
	return 0;
}

int
index_offer(struct sq_queue *q, const char *name)
{
	if (index_offer_later(q, name) == -1)
		return -1;
	return index_offer_flush(q);
}

int
index_offer_later(struct sq_queue *q, const char *name)
{
	size_t at = q->offered_len, len = strlen(name) + 1;
	int64_t now = sq_now_ms();

	if (len > sizeof(q->offered)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* Within bounds whatever offered_len says. */
	if (at > sizeof(q->offered) - len) {
		if (index_offer_flush(q) == -1)
			return -1;
		at = 0;
	}
	memcpy(q->offered + at, name, len);
	q->offered_len = at + len;
	if (q->offered_ms == 0)
		q->offered_ms = now;
	else if (now - q->offered_ms >= OFFER_FLUSH_MS || now < q->offered_ms)
		return index_offer_flush(q);
	return 0;
}

int
sq_queue_refresh(struct sq_queue *q)
{
	struct index ix;
	int rc;

	if (index_lock(q, &ix) == -1)
		return errno == ENOENT || errno == SQ_ENOTREG ? 0 : -1;
	index_reset(&ix);
	ix.maint_ms = 0;
	rc = index_save(&ix);
	index_unlock(&ix);
	return rc;
}

/* ------------------------------------------------------------- take */

/* What one take has read of the file. */
struct reader {
	struct index	*ix;
	char		 side[IX_SIDE];
	char		 block[IX_BLOCK];
	int64_t		 loaded;	/* offset of the block in block[] */
	size_t		 used;		/* its bytes of names */
};

/* Load the side list; a damaged one resets the whole index. */
static int
side_load(struct reader *r)
{
	struct index *ix = r->ix;

	if (ix->side_cur >= ix->side_used)
		return 0;
	if (pread(ix->fd, r->side, ix->side_used, IX_HDR) !=
	    (ssize_t)ix->side_used ||
	    fnv1a(FNV1A_BASIS, r->side, ix->side_used) != ix->side_sum ||
	    r->side[ix->side_used - 1] != '\0') {
		index_reset(ix);
		return -1;
	}
	return 0;
}

/* Load the block at off; 0, or -1 when it is not of this snapshot. */
static int
block_load(struct reader *r, int64_t off)
{
	char bhdr[IX_BHDR + 1], again[IX_BHDR + 1];
	unsigned long long gen, sum;
	unsigned int used;

	if (r->loaded == off)
		return 0;
	r->loaded = -1;
	if (pread(r->ix->fd, r->block, IX_BLOCK, off) != IX_BLOCK)
		return -1;
	memcpy(bhdr, r->block, IX_BHDR);
	bhdr[IX_BHDR] = '\0';		/* sscanf must not run past it */
	if (sscanf(bhdr, "%16llx %5u %16llx", &gen, &used, &sum) != 3 ||
	    gen != r->ix->gen || used > IX_BLOCK - IX_BHDR)
		return -1;
	snprintf(again, sizeof(again), "%016llx %05u %016llx\n", gen, used,
	    sum);
	if (memcmp(again, r->block, IX_BHDR) != 0 || block_sum(gen,
	    r->block + IX_BHDR, used) != sum ||
	    (used > 0 && r->block[IX_BHDR + used - 1] != '\0'))
		return -1;
	r->loaded = off;
	r->used = used;
	return 0;
}

/* The snapshot name at the cursor (moved past used-up blocks), or NULL. */
static const char *
snapshot_next(struct reader *r)
{
	struct index *ix = r->ix;
	int64_t blk, within;

	while (ix->cursor < ix->end) {
		blk = IX_BLOCKS + (ix->cursor - IX_BLOCKS) / IX_BLOCK *
		    IX_BLOCK;
		within = ix->cursor - blk - IX_BHDR;
		if (within < 0) {
			ix->cursor = blk + IX_BHDR;
			continue;
		}
		if (block_load(r, blk) == -1) {
			index_reset(ix);
			return NULL;
		}
		if ((size_t)within < r->used)
			return r->block + IX_BHDR + within;
		ix->cursor = blk + IX_BLOCK;
	}
	return NULL;
}

/* Copy name into pick, or skip it when it cannot be a name. */
static size_t
pick_name(char (*pick)[SQ_NAME_MAX + 1], size_t n, const char *name)
{
	if (strlcpy(pick[n], name, sizeof(pick[n])) >= sizeof(pick[n]))
		return n;
	return n + 1;
}

size_t
index_take(struct index *ix, char (*pick)[SQ_NAME_MAX + 1], size_t max)
{
	struct reader *r;
	const char *side, *snap;
	size_t n = 0;
	int cmp;

	if ((r = malloc(sizeof(*r))) == NULL) {
		index_reset(ix);	/* the next claim lists new/ itself */
		return 0;
	}
	r->ix = ix;
	r->loaded = -1;
	(void)side_load(r);
	while (n < max) {
		side = ix->side_cur < ix->side_used ? r->side + ix->side_cur :
		    NULL;
		snap = snapshot_next(r);
		if (side == NULL && snap == NULL)
			break;
		/* Both in ID order: the older of the two goes first. */
		cmp = side == NULL ? 1 : snap == NULL ? -1 : strcmp(side, snap);
		if (cmp <= 0) {
			n = pick_name(pick, n, side);
			ix->side_cur += (unsigned int)strlen(side) + 1;
		}
		if (cmp >= 0) {
			if (cmp > 0)
				n = pick_name(pick, n, snap);
			ix->cursor += (int64_t)strlen(snap) + 1;
		}
	}
	free(r);
	return n;
}

/* ------------------------------------------------------------- write */

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
index_side_add(struct index *ix, const char *names, size_t len)
{
	char *buf, **v, *p;
	size_t n = 0, i, used = 0, have;
	int rc = -1;

	have = ix->side_used - ix->side_cur;
	if (len == 0)
		return 0;
	if (have + len > IX_SIDE) {
		index_reset(ix);	/* too many: list new/ again */
		return 1;
	}
	if ((buf = malloc(2 * (size_t)IX_SIDE)) == NULL)
		return -1;
	if (names[len - 1] != '\0') {
		free(buf);
		errno = EINVAL;
		return -1;
	}
	if (have > 0 && (pread(ix->fd, buf, ix->side_used, IX_HDR) !=
	    (ssize_t)ix->side_used || fnv1a(FNV1A_BASIS, buf,
	    ix->side_used) != ix->side_sum ||
	    buf[ix->side_used - 1] != '\0')) {
		free(buf);
		index_reset(ix);
		return 1;
	}
	memmove(buf, buf + ix->side_cur, have);
	memcpy(buf + have, names, len);
	if ((v = reallocarray(NULL, have + len, sizeof(*v))) == NULL)
		goto out;
	for (p = buf; p < buf + have + len; p += strlen(p) + 1)
		v[n++] = p;
	sort(v, n, sizeof(*v), cmp_names);
	p = buf + IX_SIDE;
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
			continue;
		memcpy(p + used, v[i], strlen(v[i]) + 1);
		used += strlen(v[i]) + 1;
	}
	free(v);
	if (pwrite(ix->fd, p, used, IX_HDR) != (ssize_t)used)
		goto out;
	ix->side_cur = 0;
	ix->side_used = (unsigned int)used;
	ix->side_sum = fnv1a(FNV1A_BASIS, p, used);
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Write one block of names at block number blk. */
static int
block_write(struct index *ix, char *block, size_t used, int64_t blk)
{
	char bhdr[IX_BHDR + 1];

	snprintf(bhdr, sizeof(bhdr), "%016llx %05u %016llx\n",
	    (unsigned long long)ix->gen, (unsigned int)used,
	    (unsigned long long)block_sum(ix->gen, block + IX_BHDR, used));
	memcpy(block, bhdr, IX_BHDR);
	memset(block + IX_BHDR + used, 0, IX_BLOCK - IX_BHDR - used);
	return pwrite(ix->fd, block, IX_BLOCK, IX_BLOCKS + blk * IX_BLOCK) ==
	    IX_BLOCK ? 0 : -1;
}

int
index_install(struct index *ix, const struct names *l)
{
	char *block;
	size_t i, len, used = 0;
	int64_t blk = 0;
	int rc = -1;

	if ((block = malloc(IX_BLOCK)) == NULL)
		return -1;
	do
		ix->gen = ((uint64_t)arc4random() << 32) | arc4random();
	while (ix->gen == 0);
	for (i = 0; i < l->n; i++) {
		len = strlen(l->v[i]) + 1;
		if (IX_BHDR + used + len > IX_BLOCK) {
			if (block_write(ix, block, used, blk++) == -1)
				goto out;
			used = 0;
		}
		memcpy(block + IX_BHDR + used, l->v[i], len);
		used += len;
	}
	if (used > 0 && block_write(ix, block, used, blk++) == -1)
		goto out;
	ix->end = IX_BLOCKS + blk * IX_BLOCK;
	ix->cursor = blk > 0 ? IX_BLOCKS + IX_BHDR : ix->end;
	ix->list_pid = 0;
	ix->list_ms = 0;
	/* The header is the commit point; a longer old tail goes after. */
	if (index_save(ix) == -1)
		goto out;
	(void)ftruncate(ix->fd, ix->end);
	rc = 0;
out:
	free(block);
	if (rc == -1)
		index_reset(ix);
	return rc;
}

/* ------------------------------------------------------------- listing */

/* Keep l->v[0..n) a heap with the greatest name on top. */
static void
sift_down(char **v, size_t n, size_t i)
{
	size_t c;
	char *t;

	while ((c = 2 * i + 1) < n) {
		if (c + 1 < n && strcmp(v[c + 1], v[c]) > 0)
			c++;
		if (strcmp(v[i], v[c]) >= 0)
			break;
		t = v[i];
		v[i] = v[c];
		v[c] = t;
		i = c;
	}
}

static void
sift_up(char **v, size_t i)
{
	char *t;

	while (i > 0 && strcmp(v[(i - 1) / 2], v[i]) < 0) {
		t = v[i];
		v[i] = v[(i - 1) / 2];
		v[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

/* Offer name to the bounded heap l: kept when among the max oldest. */
static int
names_offer(struct names *l, size_t max, const char *name)
{
	char *s, **v;
	size_t alloc;

	if (l->n == max) {
		if (strcmp(name, l->v[0]) >= 0)
			return 0;
		if ((s = strdup(name)) == NULL)
			return -1;
		free(l->v[0]);
		l->v[0] = s;
		sift_down(l->v, l->n, 0);
		return 0;
	}
	if (l->n == l->alloc) {
		alloc = l->alloc ? l->alloc * 2 : 1024;
		if (alloc > max)
			alloc = max;
		if ((v = reallocarray(l->v, alloc, sizeof(*v))) == NULL)
			return -1;
		l->v = v;
		l->alloc = alloc;
	}
	if ((l->v[l->n] = strdup(name)) == NULL)
		return -1;
	sift_up(l->v, l->n++);
	return 0;
}

int
names_list(int dfd, size_t max, struct names *l)
{
	struct dirent *e;
	DIR *d;
	size_t i;
	char *t;
	int rc = 0;

	memset(l, 0, sizeof(*l));
	if (max == 0)
		return 0;
	if ((d = dir_stream(dfd)) == NULL)
		return -1;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strchr(e->d_name, '\n') != NULL)
			continue;
		/* Only regular files are messages: the rest never gets in. */
		if (!sq_entry_regular(dirfd(d), e->d_name, e->d_type))
			continue;
		rc = names_offer(l, max, e->d_name);
	}
	closedir(d);
	if (rc == -1) {
		names_free(l);
		return -1;
	}
	/* Heap sort: the greatest goes last, one by one. */
	for (i = l->n; i > 1; i--) {
		t = l->v[0];
		l->v[0] = l->v[i - 1];
		l->v[i - 1] = t;
		sift_down(l->v, i - 1, 0);
	}
	return 0;
}

void
names_free(struct names *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}
