/*
 * settle_test.c - settles (ack, retry, dead letter, reject, touch,
 * release, the ack of an archiving queue) whose rename or unlink the
 * file system made but reported failed: an NFS server whose reply was
 * lost answers the request sent again with ENOENT, or the call says EIO.
 * Each must count as made, where it went, and a lease really lost (the
 * ID gone on under another name) must still say ENOENT.
 *
 * renameat2(2) and unlinkat(2) are interposed as tap_lie.h does (lie:
 * the next move or unlink is made, then said failed), and fstatat(2) and
 * clock_gettime(2) too: this program's own definitions, which
 * libspoolq.a's calls bind to.  blind: the look after the lie fails too,
 * so only a try after a wait can tell; steal: the next unlink is not
 * made, the message is recovered into new/ instead and EIO said; skew:
 * seconds added to the real time.  fdopendir(3) counts the directories
 * listed.  The file system is NFS to the library (tap_lie.h) but where
 * a test sets tap_lie_local.
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spoolq.h"
#include "tap.h"
#include "tap_queue.h"
#include "tap_lie.h"

static int blind;	/* and the fstatat after it fails with EIO */
static time_t skew;	/* seconds added to CLOCK_REALTIME */
static int newfd = -1;	/* new/ of the queue under test, for steal */
static int listings;	/* directories listed (fdopendir) */

/* Instead of an unlink: the message recovered into new/ meanwhile. */
static int
recover(int dfd, const char *name, int e)
{
	char ready[SQ_NAME_MAX + 1];

	snprintf(ready, sizeof(ready), "%.*s,a=1", (int)strcspn(name, ","),
	    name);
	if (syscall(SYS_renameat2, dfd, name, newfd, ready, 0) == -1)
		return -1;
	errno = e;
	return -1;
}

/* A network file system: the unlink said failed with EIO. */
static int
steal(int dfd, const char *name, int flags)
{
	(void)flags;
	return recover(dfd, name, EIO);
}

/* A local one: the unlink found the name gone, ENOENT. */
static int
race(int dfd, const char *name, int flags)
{
	(void)flags;
	return recover(dfd, name, ENOENT);
}

DIR *
fdopendir(int fd)
{
	static DIR *(*real)(int);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fdopendir");
	listings++;
	return real(fd);
}

int
fstatat(int dfd, const char *name, struct stat *st, int flags)
{
	if (blind && !lie) {
		blind = 0;
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_newfstatat, dfd, name, st, flags);
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	long rc = syscall(SYS_clock_gettime, id, ts);

	if (rc == 0 && id == CLOCK_REALTIME)
		ts->tv_sec += skew;
	return (int)rc;
}

/* Whether name is a regular file in sub/ of t. */
static int
there(const struct tap_queue *t, const char *sub, const char *name)
{
	char path[PATH_MAX * 2];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", t->path, sub, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* What a settle_again step does. */
enum action { ACK, RETRY, REJECT, TOUCH, RELEASE };

struct step {
	enum action	 a;
	const char	*name;
	char		 newname[SQ_NAME_MAX + 1];
	int		 dead;
};

static int
step_run(struct sq_queue *q, void *arg)
{
	struct step *s = arg;

	switch (s->a) {
	case ACK:
		return sq_ack(q, s->name);
	case RETRY:
		return sq_retry(q, s->name, 60000, NULL, s->newname, &s->dead);
	case REJECT:
		return sq_reject(q, s->name, NULL, s->newname);
	case TOUCH:
		return sq_touch(q, s->name, 600000, s->newname);
	case RELEASE:
		return sq_release(q, s->name);
	}
	return -1;
}

/* Between tries: time goes on, so a name made again would differ. */
static void
step_wait(int tries, int e, int64_t wait_ms, void *arg)
{
	(void)tries;
	(void)e;
	(void)wait_ms;
	(void)arg;
	skew += 10;
}

/*
 * Settle a fresh claim by a; the first try made but said failed (blind:
 * and the look after it failed).  Returns the result of sq_settle_again,
 * with the tries made in *tries and the new name in s.
 */
static int
settle(struct sq_queue *q, enum action a, int blinded, struct step *s,
    struct sq_claim *c, int *tries)
{
	memset(s, 0, sizeof(*s));
	s->a = a;
	s->name = c->name;
	lie = 1;
	blind = blinded;
	return sq_settle_again(q, step_run, s, step_wait, tries);
}

static void
made(const struct tap_queue *t, struct sq_queue *q, int blinded)
{
	const char *how = blinded ? "in doubt, then" : "at once";
	struct sq_claim c;
	struct step s;
	int tries, rc;

	ok(tap_lie_send_claim(q, &c) == 0, "send and claim");
	rc = settle(q, ACK, blinded, &s, &c, &tries);
	ok(rc == 0 && tap_queue_count(t, SQ_DIR_CUR) == 0 &&
	    tap_queue_count(t, SQ_DIR_NEW) == 0,
	    "ack made but said failed: made (%s; %d tries)", how, tries);
	ok(tries == 1 + blinded, "ack: %d tries", tries);

	ok(tap_lie_send_claim(q, &c) == 0, "send and claim");
	rc = settle(q, RETRY, blinded, &s, &c, &tries);
	ok(rc == 0 && !s.dead && there(t, SQ_DIR_RETRY, s.newname) &&
	    tap_queue_count(t, SQ_DIR_CUR) == 0,
	    "retry made but said failed: made, in retry/ as told (%s)", how);
	ok(tries == 1 + blinded, "retry: %d tries", tries);

	ok(tap_lie_send_claim(q, &c) == 0, "send and claim");
	rc = settle(q, TOUCH, blinded, &s, &c, &tries);
	ok(rc == 0 && there(t, SQ_DIR_CUR, s.newname) &&
	    strcmp(s.newname, c.name) != 0 &&
	    tap_queue_count(t, SQ_DIR_CUR) == 1,
	    "touch made but said failed: made, the receipt told (%s)", how);
	strlcpy(c.name, s.newname, sizeof(c.name));
	rc = settle(q, REJECT, blinded, &s, &c, &tries);
	ok(rc == 0 && there(t, SQ_DIR_DEAD, s.newname) &&
	    tap_queue_count(t, SQ_DIR_CUR) == 0,
	    "reject made but said failed: made, in dead/ as told (%s)", how);

	ok(tap_lie_send_claim(q, &c) == 0, "send and claim");
	rc = settle(q, RELEASE, blinded, &s, &c, &tries);
	ok(rc == 0 && tap_queue_count(t, SQ_DIR_NEW) == 1 &&
	    tap_queue_count(t, SQ_DIR_CUR) == 0,
	    "release made but said failed: made, back in new/ (%s)", how);
	ok(tap_lie_claim(q, &c) == 0 && sq_ack(q, c.name) == 0 &&
	    tap_queue_count(t, SQ_DIR_NEW) == 0,
	    "claim it again and ack it");
}

static void
lost(const struct tap_queue *t, struct sq_queue *q)
{
	struct sq_claim c;
	struct step s;
	int tries, rc;

	/* The unlink failed and the message went on: the lease was lost. */
	ok(tap_lie_send_claim(q, &c) == 0, "send and claim");
	newfd = q->newfd;
	tap_lie_unlink = steal;
	memset(&s, 0, sizeof(s));
	s.a = ACK;
	s.name = c.name;
	errno = 0;
	rc = sq_settle_again(q, step_run, &s, NULL, &tries);
	ok(rc == -1 && errno == ENOENT && tap_lie_unlink == NULL &&
	    tap_queue_count(t, SQ_DIR_NEW) == 1,
	    "ack not made, its ID now in new/: lease lost (ENOENT)");
	ok(tap_lie_claim(q, &c) == 0 && sq_ack(q, c.name) == 0 &&
	    tap_queue_count(t, SQ_DIR_NEW) == 0,
	    "claim it again and ack it");
	/* Gone before any try: lost, no look. */
	ok(tap_lie_send_claim(q, &c) == 0 && sq_ack(q, c.name) == 0,
	    "send, claim and ack");
	errno = 0;
	ok(sq_ack(q, c.name) == -1 && errno == ENOENT,
	    "an ack of a receipt already settled still says ENOENT");
	errno = 0;
	ok(sq_retry(q, c.name, 0, NULL, s.newname, &s.dead) == -1 &&
	    errno == ENOENT, "and so does a retry");
}

/*
 * On a local file system an unlink said failed was not made: the name
 * gone means the message was moved on, a lost lease, told without
 * listing a directory.  On NFS the same race is judged by a look at
 * the states, in turn until its ID is found: every one for an ack made.
 */
static void
local(const struct tap_queue *t, struct sq_queue *q)
{
	struct sq_claim c;
	struct step s;
	int tries, rc;

	ok(tap_lie_send_claim(q, &c) == 0, "send and claim");
	newfd = q->newfd;
	tap_lie_local = 1;
	tap_lie_unlink = race;
	memset(&s, 0, sizeof(s));
	s.a = ACK;
	s.name = c.name;
	listings = 0;
	errno = 0;
	rc = sq_settle_again(q, step_run, &s, NULL, &tries);
	ok(rc == -1 && errno == ENOENT && tries == 1 &&
	    tap_queue_count(t, SQ_DIR_NEW) == 1,
	    "local: ack of a message recovered meanwhile: lease lost (ENOENT)");
	ok(listings == 0, "local: no directory listed (%d)", listings);
	tap_lie_local = 0;
	ok(tap_lie_claim(q, &c) == 0, "claim it again");
	tap_lie_unlink = race;
	s.name = c.name;
	listings = 0;
	errno = 0;
	rc = sq_settle_again(q, step_run, &s, NULL, &tries);
	ok(rc == -1 && errno == ENOENT && tap_queue_count(t, SQ_DIR_NEW) == 1 &&
	    listings >= 1,
	    "NFS: the same race looks until new/ (%d listings): lost",
	    listings);
	ok(tap_lie_claim(q, &c) == 0, "claim it again");
	s.name = c.name;
	listings = 0;
	lie = 1;
	rc = sq_settle_again(q, step_run, &s, NULL, &tries);
	/* new/, cur/, retry/, dead/: hold/ is made on demand. */
	ok(rc == 0 && tries == 1 && tap_queue_count(t, SQ_DIR_NEW) == 0 &&
	    tap_queue_count(t, SQ_DIR_CUR) == 0 && listings >= SQ_STATE_HELD,
	    "NFS: an ack made but said failed looks in each state (%d "
	    "listings): made", listings);
}

/*
 * In a queue of its own with key = value: a settle by a, made but said
 * failed and the look after it failing, ends in dir.
 */
static void
alone(const char *key, const char *value, enum action a, const char *dir)
{
	const char *const keys[] = { key }, *const values[] = { value };
	struct tap_queue t;
	struct sq_queue q;
	struct sq_claim c;
	struct step s;
	int tries;

	tap_queue_make(&t, &q, keys, values, 1);
	ok(tap_lie_send_claim(&q, &c) == 0 && settle(&q, a, 1, &s, &c, &tries) ==
	    0 && tap_queue_count(&t, dir) == 1 &&
	    tap_queue_count(&t, SQ_DIR_CUR) == 0 && tries == 2,
	    "%s=%s: a settle made but said failed is made, in %s/", key,
	    value, dir);
	tap_queue_remove(&t, &q);
}

int
main(void)
{
	struct tap_queue t;
	struct sq_queue q;

	tap_queue_make(&t, &q, NULL, NULL, 0);
	made(&t, &q, 0);
	made(&t, &q, 1);
	lost(&t, &q);
	local(&t, &q);
	tap_queue_remove(&t, &q);
	alone("max_attempts", "1", RETRY, SQ_DIR_DEAD);
	alone("archive", "yes", ACK, SQ_DIR_ARCHIVE);
	return tap_done();
}
