/*
 * watch.c - waiting for messages without busy polling.
 *
 * inotify on new/ is the fast path: a rename into new/ (IN_MOVED_TO) or
 * a file created there by hand (IN_CREATE) wakes the waiter, and so do
 * the removal of the queue's held flag and an arrival in retry/: no event
 * marks a due time passing, so the waiter also remembers the earliest
 * due time (t=) named by such arrivals and looks again then.  inotify only sees changes made
 * through this kernel, so on network and FUSE file systems (told by
 * statfs(2)), and where inotify is unavailable (inotify_init1 fails, the
 * watch limit is reached), the waiter also wakes every poll_interval of
 * queue.conf to look (SPEC 2, "Waiting").  An overflow of the event queue
 * (IN_Q_OVERFLOW) is itself an event: the waiter wakes and looks.  When
 * a watched directory is moved away or removed (IN_MOVE_SELF, IN_IGNORED)
 * no event will come again, and the waiter polls from then on.
 * The watch is added before the caller's first claim, so no arrival
 * between a claim and the wait is missed.
 */
#include <sys/inotify.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct sq_watch {
	int			 fd;	/* inotify, or -1 */
	int			 rwd;	/* its watch of retry/ */
	int			 poll;	/* also wake every poll_interval */
	int64_t			 due_ms; /* earliest t= seen in retry/ */
	const struct sq_conf	*conf;	/* the queue's, reloads included */
};

struct sq_watch *
sq_watch_open(struct sq_queue *q)
{
	struct sq_watch *w;
	char path[64], qpath[64], rpath[64];

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->fd = w->rwd = -1;
	w->due_ms = INT64_MAX;
	w->conf = &q->conf;
	w->poll = fs_remote(q->newfd);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", q->newfd);
	snprintf(qpath, sizeof(qpath), "/proc/self/fd/%d", q->fd);
	snprintf(rpath, sizeof(rpath), "/proc/self/fd/%d", q->retryfd);
	/*
	 * new/ for arrivals; retry/ for delayed sends and retries, whose
	 * due time the next claim learns (no event marks it passing); the
	 * queue directory for the release of a held queue (the flag file
	 * goes) and a replaced queue.conf.
	 */
	if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1 ||
	    inotify_add_watch(w->fd, path, IN_MOVED_TO | IN_CREATE |
	    IN_MOVE_SELF | IN_ONLYDIR) == -1 ||
	    (w->rwd = inotify_add_watch(w->fd, rpath, IN_MOVED_TO |
	    IN_CREATE | IN_ONLYDIR)) == -1 ||
	    inotify_add_watch(w->fd, qpath, IN_DELETE | IN_MOVED_FROM |
	    IN_ONLYDIR) == -1) {
		if (w->fd != -1)
			close(w->fd);
		w->fd = -1;
		w->poll = 1;
	}
	return w;
}

int
sq_watch_wait(struct sq_watch *w, int64_t until_ms)
{
	struct pollfd pfd;
	int64_t now = sq_now_ms(), wait_ms;
	int n;

	/* A due time seen in retry/ has come: look, once. */
	if (w->due_ms <= now) {
		sq_watch_due_clear(w);
		return 1;
	}
	if (w->due_ms < until_ms)
		until_ms = w->due_ms;
	wait_ms = until_ms == INT64_MAX ? -1 : until_ms - now;
	if (until_ms != INT64_MAX && wait_ms <= 0)
		return 0;
	if (w->poll && (wait_ms < 0 || wait_ms > w->conf->poll_interval_ms))
		wait_ms = w->conf->poll_interval_ms;
	if (wait_ms > INT32_MAX)
		wait_ms = INT32_MAX;
	pfd.fd = w->fd;
	pfd.events = POLLIN;
	n = poll(&pfd, w->fd == -1 ? 0 : 1, (int)wait_ms);
	if (n == 0 && w->due_ms <= sq_now_ms()) {
		sq_watch_due_clear(w);
		return 1;
	}
	if (n <= 0)
		return n == 0 && w->poll ? 1 : n;
	/* Drain: one wake-up is enough for any number of arrivals. */
	sq_watch_drain(w);
	return 1;
}

int
sq_watch_fd(struct sq_watch *w)
{
	return w->fd;
}

int
sq_watch_poll_ms(struct sq_watch *w)
{
	if (!w->poll)
		return -1;
	return w->conf->poll_interval_ms > INT32_MAX ? INT32_MAX :
	    (int)w->conf->poll_interval_ms;
}

/*
 * An arrival in retry/ names its due time (t=): remember the earliest, so
 * that the waiter looks then, whether or not its sender has yet told the
 * claim index (it does so after its rename).
 */
static void
note_due(struct sq_watch *w, const struct inotify_event *ev)
{
	struct sq_name n;

	if (ev->wd != w->rwd || ev->len == 0 || ev->name[0] == '.' ||
	    sq_name_parse(&n, ev->name) == -1 || n.due < 0)
		return;
	if (n.due * 1000 < w->due_ms)
		w->due_ms = n.due * 1000;
}

int64_t
sq_watch_due_ms(const struct sq_watch *w)
{
	return w->due_ms;
}

void
sq_watch_due_clear(struct sq_watch *w)
{
	w->due_ms = INT64_MAX;
}

void
sq_watch_drain(struct sq_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n, off;

	if (w->fd == -1)
		return;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		for (off = 0; off + (ssize_t)sizeof(*ev) <= n;
		    off += (ssize_t)(sizeof(*ev) + ev->len)) {
			ev = (const struct inotify_event *)(buf + off);
			note_due(w, ev);
			/*
			 * new/ moved away or removed, or its file system
			 * unmounted: its events are gone for good, so look
			 * every poll_interval from now on.
			 */
			if (ev->mask & (IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT))
				w->poll = 1;
		}
}

void
sq_watch_close(struct sq_watch *w)
{
	if (w == NULL)
		return;
	if (w->fd != -1)
		close(w->fd);
	free(w);
}
