/*
 * qbridge - carry a queue into a broker (out, an outbox) or a broker's
 * queue or stream into a queue (in, an inbox): Redis Streams, NATS
 * JetStream, RabbitMQ.
 *
 * The core, this file, owns the local side and the loop; the brokers
 * (qbridge_*.c, struct br_ops) own the connection.  Commit points:
 *   out: a message is acked locally only after the broker confirmed it
 *	(XADD reply, PubAck, publisher confirm); until then it stays
 *	claimed by this worker, and a crash gives it back (worker lock),
 *	so the broker may see it twice but never lose it;
 *   in: a batch is acked to the broker only after every message of it
 *	is published locally with the broker's message ID as its dedup ID,
 *	so a crash between the two makes a re-delivery that the queue's
 *	deduplication drops.
 * A batch that could not be published is kept claimed and published
 * again, in order, once the broker is back (bounded exponential
 * back-off with jitter, one log line per wait).  A fetched batch the
 * queue does not take (full, the disk full, tmp/ not writable) is held
 * unacknowledged and sent again after the same waits (in_commit), and
 * given back to the broker when the bridge stops.
 *
 * Like qworker it holds a worker lock with a heartbeat in run/ for its
 * whole life, stops on SIGTERM/SIGINT (the batch in flight is finished
 * or its claims released), reloads queue.conf and the credentials on
 * SIGHUP, and ends with --drain once nothing is left.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "qbridge.h"
#include "tool.h"

#define BATCH_DEFAULT	100
#define TIMEOUT_DEFAULT	10000		/* ms: connect and reply */
#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	30000
#define DRAIN_TRIES	4		/* --drain gives up after these */
#define SLICE_MS	500		/* longest wait before looking at signals */
#define HEARTBEAT_MAX_MS 10000

static volatile sig_atomic_t got_stop, got_hup;

/*
 * The beater (call_begin): when the broker call under way began
 * (sq_now_ms; 0: none), and the heartbeat interval and bound it beats
 * by.
 */
static _Atomic int64_t call_at, call_beat_ms, call_bound_ms;

struct pend {
	struct sq_claim	 c;
	struct br_out	 o;
};

struct qb {
	struct bridge	 b;
	struct sq_queue	 q;
	const char	*qarg;
	const char	*credfile;
	struct sq_watch	*watch;
	char		 token[SQ_TOKEN_MAX];
	int		 lockfd;
	int		 connected;
	int		 served;	/* a batch went through once */
	int		 drain, quiet, verbose;
	int64_t		 beat_ms, beat_at;
	int		 holding;	/* in: a fetch held, not acked */
	int64_t		 hold_at;	/* when to keep it next (keep) */
	struct sq_backoff backoff;
	int		 exit_code;
};

/* The synopsis of both modes (-h), and of each (its usage errors). */
#define SYN_OUT	"qbridge out [-qv] [-d root] [--batch count] [--cacert file]" \
    "\n               [--credentials file] [--drain] [--timeout duration]" \
    " queue url\n"
#define SYN_IN	"qbridge in [-qv] [-d root] [--batch count] [--cacert file]" \
    "\n               [--credentials file] [--drain] [--timeout duration]" \
    " url queue\n"
static const char synopsis[] = "usage: " SYN_OUT "       " SYN_IN;
static const char synopsis_out[] = "usage: " SYN_OUT;
static const char synopsis_in[] = "usage: " SYN_IN;

static const char options[] =
    "  --batch count     messages per batch, and the prefetch of in "
    "(default 100)\n"
    "  --cacert file     trust the CA certificates of file (PEM) for TLS,\n"
    "                    not the system's\n"
    "  --credentials file\n"
    "                    user and password (mode 600; else "
    "QBRIDGE_USER, QBRIDGE_PASSWORD)\n"
    "  -d root           the spool root (default $SPOOLQ_DIR; "
    "spoolq(7))\n"
    "  --drain           exit once nothing is left to carry\n"
    "  -h, --help        this help\n"
    "  -q                quiet: log only errors\n"
    "  --timeout duration\n"
    "                    wait this long for the broker (default 10s)\n"
    "  -v                verbose\n"
    "  --version         print the version\n"
    "URLs: redis://HOST[:PORT]/STREAM[?group=G&consumer=C]\n"
    "      nats://HOST[:PORT]/STREAM[?subject=S&durable=D]\n"
    "      amqp://HOST[:PORT]/[VHOST][?exchange=X&key=K&queue=Q]\n"
    "TLS:  tls:// (NATS), amqps:// (AMQP); the server's certificate is "
    "verified\n";

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

/* ------------------------------------------------------------- url */

static const struct br_ops *const brokers[] = {
	&br_redis,
	&br_nats,
	&br_amqp,
	NULL
};

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s (n bytes) into buf.  Returns 0, or -1 when too long. */
static int
pct_decode(const char *s, size_t n, char *buf, size_t size)
{
	size_t i, k = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (k + 1 >= size)
			return -1;
		if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			buf[k++] = (char)(hi * 16 + lo);
			i += 2;
		} else
			buf[k++] = s[i];
	}
	buf[k] = '\0';
	return 0;
}

int
br_query(const struct br_url *u, const char *name, char *buf, size_t size)
{
	const char *p = u->query, *amp, *eq;
	size_t nlen = strlen(name);

	while (*p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq != NULL && (size_t)(eq - p) == nlen &&
		    strncmp(p, name, nlen) == 0)
			return pct_decode(eq + 1, (size_t)(amp - eq - 1), buf,
			    size) == -1 ? -1 : 1;
		p = *amp == '&' ? amp + 1 : amp;
	}
	return 0;
}

int
br_query_check(const struct br_url *u, const char *const *names, char *err,
    size_t errsize)
{
	const char *p = u->query, *amp, *eq;
	size_t i, len;

	while (*p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		eq = memchr(p, '=', (size_t)(amp - p));
		len = (size_t)((eq != NULL ? eq : amp) - p);
		for (i = 0; names[i] != NULL; i++)
			if (strlen(names[i]) == len &&
			    strncmp(p, names[i], len) == 0)
				break;
		if (names[i] == NULL || eq == NULL) {
			snprintf(err, errsize, "%.*s: %s", (int)len, p,
			    eq == NULL ? "no value" : "unknown URL parameter");
			return -1;
		}
		p = *amp == '&' ? amp + 1 : amp;
	}
	return 0;
}

/*
 * Split url into b->url and choose the broker.  Credentials in the URL
 * are refused: the command line shows in ps(1).  Returns 0 or -1 with a
 * message in err.
 */
static int
url_parse(struct bridge *b, const char *url, char *err, size_t errsize)
{
	struct br_url *u = &b->url;
	const char *p, *hostend, *slash, *q, *colon;
	size_t i;
	char port[16];
	const char *errstr;

	memset(u, 0, sizeof(*u));
	if ((p = strstr(url, "://")) == NULL || p == url ||
	    (size_t)(p - url) >= sizeof(u->scheme)) {
		snprintf(err, errsize, "%s: not a URL (SCHEME://HOST/...)",
		    url);
		return -1;
	}
	memcpy(u->scheme, url, (size_t)(p - url));
	for (i = 0; brokers[i] != NULL; i++) {
		if (strcmp(u->scheme, brokers[i]->scheme) == 0)
			break;
		if (brokers[i]->tls_scheme != NULL &&
		    strcmp(u->scheme, brokers[i]->tls_scheme) == 0) {
			b->tls = 1;
			break;
		}
	}
	if (brokers[i] == NULL) {
		snprintf(err, errsize, "%s: unknown scheme %s://", url,
		    u->scheme);
		return -1;
	}
	b->ops = brokers[i];
	p += 3;
	q = strchr(p, '?');
	slash = strchr(p, '/');
	if (slash != NULL && q != NULL && q < slash)
		slash = NULL;
	hostend = slash != NULL ? slash : q != NULL ? q : p + strlen(p);
	if (memchr(p, '@', (size_t)(hostend - p)) != NULL) {
		snprintf(err, errsize, "%s://...@: credentials in the URL "
		    "show in ps(1); use --credentials FILE or QBRIDGE_USER and "
		    "QBRIDGE_PASSWORD", u->scheme);
		return -1;
	}
	colon = memchr(p, ':', (size_t)(hostend - p));
	if ((size_t)((colon != NULL ? colon : hostend) - p) >= sizeof(u->host)
	    || (colon != NULL ? colon : hostend) == p) {
		snprintf(err, errsize, "%s: no host", url);
		return -1;
	}
	memcpy(u->host, p, (size_t)((colon != NULL ? colon : hostend) - p));
	u->port = b->tls ? b->ops->tls_port : b->ops->default_port;
	if (colon != NULL) {
		if ((size_t)(hostend - colon - 1) >= sizeof(port)) {
			snprintf(err, errsize, "%s: bad port", url);
			return -1;
		}
		memcpy(port, colon + 1, (size_t)(hostend - colon - 1));
		port[hostend - colon - 1] = '\0';
		u->port = (int)strtonum(port, 1, 65535, &errstr);
		if (errstr != NULL) {
			snprintf(err, errsize, "%s: port %s: %s", url, port,
			    errstr);
			return -1;
		}
	}
	if (slash != NULL) {
		const char *end = q != NULL ? q : slash + strlen(slash);

		if (pct_decode(slash + 1, (size_t)(end - slash - 1), u->path,
		    sizeof(u->path)) == -1) {
			snprintf(err, errsize, "%s: path too long", url);
			return -1;
		}
	}
	if (q != NULL && strlcpy(u->query, q + 1, sizeof(u->query)) >=
	    sizeof(u->query)) {
		snprintf(err, errsize, "%s: query too long", url);
		return -1;
	}
	strlcpy(u->shown, url, sizeof(u->shown));
	return 0;
}

/*
 * --cacert: only with a URL that may go TLS (the TLS schemes; nats://,
 * which nats.c turns to TLS when the server requires it), and a file
 * that can be read (the client libraries would say so only at the first
 * connection).  Returns 0, or an exit code with a message in err.
 */
static int
cacert_check(const struct bridge *b, char *err, size_t errsize)
{
	struct stat st;
	int fd;

	if (!b->tls && b->ops != &br_nats) {
		snprintf(err, errsize, "--cacert: %s:// is not TLS "
		    "(tls://, amqps://, nats://)", b->url.scheme);
		return EX_USAGE;
	}
	if ((fd = sq_open_regular(AT_FDCWD, b->cacert, O_RDONLY, 0, &st)) ==
	    -1) {
		snprintf(err, errsize, "%s: %s", b->cacert, strerror(errno));
		return errno == EACCES ? EX_NOPERM : EX_CONFIG;
	}
	close(fd);
	return 0;
}

int
br_tls_refused(const struct bridge *b, int host, char *err, size_t errsize)
{
	size_t len = strlen(err);

	if (host)
		snprintf(err + len, errsize - len, " (the certificate does "
		    "not name %s)", b->url.host);
	else if (b->cacert != NULL)
		snprintf(err + len, errsize - len, " (not signed by a CA of "
		    "%s)", b->cacert);
	else
		snprintf(err + len, errsize - len, " (not signed by a CA the "
		    "system trusts; --cacert FILE names others)");
	return BR_CONFIG;
}

/* ------------------------------------------------------------- credentials */

static int
cred_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct br_cred *c = arg;

	if (*section != '\0' && strcmp(section, "credentials") != 0)
		return 0;
	if (strcmp(name, "user") == 0)
		return strlcpy(c->user, value, sizeof(c->user)) <
		    sizeof(c->user);
	if (strcmp(name, "password") == 0)
		return strlcpy(c->password, value, sizeof(c->password)) <
		    sizeof(c->password);
	return 0;
}

/*
 * The credentials: from file (INI, user = and password =, optionally
 * under [credentials]) when given, which no one but its owner may read
 * (ssh's rule for private keys), else from QBRIDGE_USER and
 * QBRIDGE_PASSWORD.  Returns 0, or an exit code with a message in err.
 */
static int
cred_load(struct br_cred *c, const char *file, char *err, size_t errsize)
{
	struct stat st;
	const char *v;
	FILE *f;
	int fd, line;

	memset(c, 0, sizeof(*c));
	if (file == NULL) {
		if ((v = getenv("QBRIDGE_USER")) != NULL)
			strlcpy(c->user, v, sizeof(c->user));
		if ((v = getenv("QBRIDGE_PASSWORD")) != NULL)
			strlcpy(c->password, v, sizeof(c->password));
		return 0;
	}
	if ((fd = sq_open_regular(AT_FDCWD, file, O_RDONLY, 0, &st)) == -1) {
		snprintf(err, errsize, "%s: %s", file, strerror(errno));
		return errno == EACCES ? EX_NOPERM : EX_CONFIG;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		snprintf(err, errsize, "%s: readable by others (mode %03o); "
		    "chmod 600 it", file, (unsigned)(st.st_mode & 0777));
		return EX_NOPERM;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		snprintf(err, errsize, "%s: %s", file, strerror(errno));
		return EX_OSERR;
	}
	line = ini_parse_file(f, cred_handler, c);
	fclose(f);
	if (line != 0) {
		snprintf(err, errsize, "%s:%d: not user = or password =", file,
		    line);
		return EX_CONFIG;
	}
	return 0;
}

/* ------------------------------------------------------------- helpers */

char *
br_attrs_format(const struct sq_attr *a, size_t n, size_t *len)
{
	char *s, *p;
	size_t i, total = 1;

	for (i = 0; i < n; i++)
		total += strlen(a[i].name) + strlen(a[i].value) + 2;
	if ((s = p = malloc(total)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s=%s\n", a[i].name, a[i].value);
	*p = '\0';
	*len = (size_t)(p - s);
	return s;
}

int
br_in_attr(struct br_in *in, const char *name, const char *value)
{
	if (in->nattrs >= SQ_ATTRS_MAX || !sq_attr_name_valid(name) ||
	    strlen(value) > SQ_ATTR_VALUE_MAX || strchr(value, '\n') != NULL)
		return 0;
	in->attrs[in->nattrs].name = name;
	in->attrs[in->nattrs].value = value;
	in->nattrs++;
	return 1;
}

void
br_in_group(struct br_in *in, const char *value)
{
	if (*value == '\0' || strchr(value, '\n') != NULL ||
	    strlen(value) > SQ_KEY_MAX || sq_group_key(value, in->group) == -1)
		in->group[0] = '\0';
}

void
br_attrs_parse(struct br_in *in, char *s)
{
	char *line, *eq;

	while ((line = strsep(&s, "\n")) != NULL) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		br_in_attr(in, line, eq + 1);
	}
}

/*
 * A line to print, made visible as a whole by tool_vis (one line): what
 * the brokers say (AMQP reply texts, NATS and Redis errors, the client
 * libraries' and TLS error strings) is not ours and may hold control
 * bytes or escape sequences, and so may the URL, file names and
 * queue.conf's text it names.  What we write ourselves is printable
 * ASCII and shows as it is.  Into shown (SHOWN_MAX bytes), cut to fit;
 * on the stack, since the ack threads say things too.
 */
#define LINE_IN_MAX	(BR_ERR_MAX + PATH_MAX + 2048)
#define SHOWN_MAX	(4 * LINE_IN_MAX + 1)

static const char *
line_vis(char *shown, const char *fmt, va_list ap)
{
	char line[LINE_IN_MAX];
	int n;

	if ((n = vsnprintf(line, sizeof(line), fmt, ap)) < 0)
		n = 0;
	tool_vis(shown, line, (size_t)n < sizeof(line) ? (size_t)n :
	    sizeof(line) - 1, TOOL_VIS_LINE);
	return shown;
}

/* warnx(3), the line made visible (line_vis). */
static void
say(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	char shown[SHOWN_MAX];
	va_list ap;

	va_start(ap, fmt);
	warnx("%s", line_vis(shown, fmt, ap));
	va_end(ap);
}

/* errx(3), the line made visible (line_vis). */
static void
die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void
die(int code, const char *fmt, ...)
{
	char shown[SHOWN_MAX];
	va_list ap;

	va_start(ap, fmt);
	errx(code, "%s", line_vis(shown, fmt, ap));
}

static void
logline(struct qb *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
logline(struct qb *s, const char *fmt, ...)
{
	char shown[SHOWN_MAX];
	va_list ap;

	if (s->quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "qbridge: %s\n", line_vis(shown, fmt, ap));
	va_end(ap);
}

/*
 * A broker call waits up to --timeout (connect, a reply, a PubAck), and
 * a server that is stopped, or cut off, makes it wait that long: longer
 * than a short lease, without the heartbeat a wait between calls has
 * (nap).  The beater, a thread of its own, beats for the main one while
 * a call is under way (call_begin to call_end), but no longer than a
 * few timeouts: a call that has not come back by then is hung, and the
 * bridge's claims may be recovered (SPEC 2, "Leases and worker
 * locking").  It beats through a dup of the lock file's descriptor,
 * which stays valid whatever the main thread closes.
 */
static void *
beater(void *arg)
{
	int fd = (int)(intptr_t)arg;
	int64_t at, ms;

	for (;;) {
		ms = atomic_load(&call_beat_ms);
		poll(NULL, 0, (int)(ms < SLICE_MS ? ms : SLICE_MS));
		at = atomic_load(&call_at);
		if (at != 0 && sq_now_ms() - at <= atomic_load(&call_bound_ms))
			(void)sq_worker_heartbeat(fd);
	}
	return NULL;
}

/* Start the beater (signals blocked in it); without it, no beats. */
static void
beater_start(struct qb *s)
{
	pthread_t th;
	sigset_t all, old;
	int fd;

	atomic_store(&call_beat_ms, s->beat_ms > 0 ? s->beat_ms : SLICE_MS);
	atomic_store(&call_bound_ms, 3 * s->b.timeout_ms + s->beat_ms);
	if ((fd = fcntl(s->lockfd, F_DUPFD_CLOEXEC, 0)) == -1) {
		warn("%s: heartbeat", s->qarg);
		return;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&th, NULL, beater, (void *)(intptr_t)fd) == 0)
		pthread_detach(th);
	else {
		warnx("%s: heartbeat: no thread", s->qarg);
		close(fd);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* A broker call begins: the beater beats until call_end. */
static void
call_begin(void)
{
	atomic_store(&call_at, sq_now_ms());
}

static void
call_end(void)
{
	atomic_store(&call_at, 0);
}

static void
heartbeat(struct qb *s)
{
	int64_t now = sq_now_ms();

	if (now < s->beat_at)
		return;
	if (sq_worker_heartbeat(s->lockfd) == -1)
		warn("%s: heartbeat", s->qarg);
	s->beat_at = now + s->beat_ms;
}

/*
 * While an inbox holds a fetched batch the queue does not take: keep it
 * from the broker's redelivery every hold_ms (the broker's hold).  A
 * failure is the next try's to find, when the batch is acked.
 */
static void
keep(struct qb *s)
{
	char why[BR_ERR_MAX];
	int64_t now;
	int rc;

	if (!s->holding || !s->connected || (now = sq_now_ms()) < s->hold_at)
		return;
	call_begin();
	rc = s->b.ops->hold(&s->b, why, sizeof(why));
	call_end();
	if (rc != BR_OK && s->verbose)
		logline(s, "%s: %s", s->b.url.shown, why);
	s->hold_at = now + s->b.hold_ms;
}

/*
 * How long the next slice of a wait that ends at until may be: up to
 * SLICE_MS (signals), the next heartbeat, or the next keep of a held
 * batch, whichever is first; 0 when the wait is over.
 */
static int64_t
slice_left(const struct qb *s, int64_t until)
{
	int64_t now = sq_now_ms(), t;

	if (until <= now)
		return 0;
	t = until - now < SLICE_MS ? until - now : SLICE_MS;
	if (s->beat_at > now && s->beat_at - now < t)
		t = s->beat_at - now;
	if (s->holding && s->hold_at > now && s->hold_at - now < t)
		t = s->hold_at - now;
	return t;
}

/*
 * Sleep up to ms, in slices, until a signal asks to stop or reload,
 * beating at the heartbeat interval meanwhile: a wait (of up to
 * BACKOFF_MAX_MS, longer than a short lease) must not make the bridge
 * look hung, or its claims would be recovered and sent twice (SPEC 2,
 * "Leases and worker locking").  A batch an inbox holds is kept from
 * redelivery the same way (keep).
 */
static void
nap(struct qb *s, int64_t ms)
{
	int64_t until = sq_now_ms() + ms, t;

	while (!got_stop && !got_hup) {
		heartbeat(s);
		keep(s);
		if ((t = slice_left(s, until)) <= 0)
			break;
		poll(NULL, 0, (int)t);
	}
}

static int64_t
beat_interval(const struct sq_conf *c)
{
	return c->lease_ms / 3 < HEARTBEAT_MAX_MS ? c->lease_ms / 3 :
	    HEARTBEAT_MAX_MS;
}

/* SIGHUP: queue.conf and the credentials again, then a new connection. */
static void
reload(struct qb *s)
{
	struct sq_conf conf;
	struct br_cred cred;
	char path[PATH_MAX + 16], msg[PATH_MAX + 256];

	got_hup = 0;
	snprintf(path, sizeof(path), "%s/%s", s->q.path, SQ_CONF_FILE);
	sq_conf_defaults(&conf);
	if (sq_conf_load(&conf, s->q.fd, path, msg, sizeof(msg)) == -1)
		say("%s (keeping the old settings)", msg);
	else {
		s->q.conf = conf;
		s->beat_ms = beat_interval(&conf);
		atomic_store(&call_beat_ms, s->beat_ms > 0 ? s->beat_ms :
		    SLICE_MS);
		atomic_store(&call_bound_ms, 3 * s->b.timeout_ms + s->beat_ms);
		if (sq_worker_record(s->lockfd, s->beat_ms, conf.lease_ms) ==
		    -1)
			warn("%s: worker lock", s->qarg);
		s->beat_at = sq_now_ms() + s->beat_ms;
	}
	if (cred_load(&cred, s->credfile, msg, sizeof(msg)) != 0)
		say("%s (keeping the old credentials)", msg);
	else
		s->b.cred = cred;
	/* What the broker's refusals taught: it may have been changed. */
	s->b.body_max = s->b.body_ok = 0;
	if (s->connected) {
		s->b.ops->close(&s->b);
		s->connected = 0;
	}
	logline(s, "%s: reloaded", s->b.url.shown);
}

static int
fatal_code(int rc)
{
	return rc == BR_AUTH ? EX_NOPERM : rc == BR_CONFIG ? EX_CONFIG :
	    EX_UNAVAILABLE;
}

/*
 * The broker failed (rc, why): drop the connection; a broker that is
 * down or gone is waited for, with one log line per wait.  A refusal
 * (credentials, configuration) ends the bridge while no batch has gone
 * through since it started: the URL or the credentials are wrong (an
 * AMQP exchange is only looked up by the first publish), and trying
 * again would not help.  Once one has, a refusal is waited for like an
 * outage:
 * a broker that restarts refuses for a while (RabbitMQ's "home node of
 * durable queue is down" while it recovers a queue; a login before its
 * users are loaded), and an operator's edit of users or queues is put
 * right without a restart of every bridge.
 * Returns 0 to go on, -1 to stop (s->exit_code set).
 */
static int
broker_failed(struct qb *s, int rc, const char *why)
{
	int64_t d;

	if (s->connected) {
		s->b.ops->close(&s->b);
		s->connected = 0;
	}
	if ((rc == BR_AUTH || rc == BR_CONFIG) && !s->served) {
		say("%s: %s", s->b.url.shown, why);
		s->exit_code = fatal_code(rc);
		return -1;
	}
	if (s->drain && s->backoff.tries >= DRAIN_TRIES) {
		say("%s: %s; giving up", s->b.url.shown, why);
		s->exit_code = fatal_code(rc);
		return -1;
	}
	d = sq_backoff_next(&s->backoff);
	say("%s: %s; retrying in %lld.%03llds", s->b.url.shown, why,
	    (long long)(d / 1000), (long long)(d % 1000));
	nap(s, d);
	return 0;
}

/*
 * After a batch: success resets the back-off, a failure is
 * broker_failed's.  Returns 0 to go on, -1 to stop.
 */
static int
batch_end(struct qb *s, int rc, const char *why)
{
	if (rc == BR_OK) {
		sq_backoff_reset(&s->backoff);
		s->served = 1;
		return 0;
	}
	return broker_failed(s, rc, why);
}

/* Connect when not connected.  Returns 0 when connected, -1 if not. */
static int
ensure_connected(struct qb *s, int *stop)
{
	char why[BR_ERR_MAX];
	int rc;

	*stop = 0;
	if (s->connected)
		return 0;
	call_begin();
	rc = s->b.ops->connect(&s->b, why, sizeof(why));
	call_end();
	if (rc == BR_OK) {
		s->connected = 1;
		if (s->verbose)
			logline(s, "%s: connected", s->b.url.shown);
		return 0;
	}
	if (broker_failed(s, rc, why) == -1)
		*stop = 1;
	return -1;
}

/* ------------------------------------------------------------- out */

static int
attr_copy(const char *name, const char *value, void *arg)
{
	struct br_out *o = arg;
	char *n, *v;
	void *p;

	if (name == NULL) {
		if ((n = strdup(value)) == NULL)
			return -1;
		free((void *)(uintptr_t)o->key);
		o->key = n;
		return 0;
	}
	if ((p = reallocarray(o->attrs, o->nattrs + 1, sizeof(*o->attrs))) ==
	    NULL)
		return -1;
	o->attrs = p;
	if ((n = strdup(name)) == NULL)
		return -1;
	if ((v = strdup(value)) == NULL) {
		free(n);
		return -1;
	}
	o->attrs[o->nattrs].name = n;
	o->attrs[o->nattrs++].value = v;
	return 0;
}

static void
out_free(struct br_out *o)
{
	size_t i;

	for (i = 0; i < o->nattrs; i++) {
		free((void *)(uintptr_t)o->attrs[i].name);
		free((void *)(uintptr_t)o->attrs[i].value);
	}
	free(o->attrs);
	free((void *)(uintptr_t)o->key);
	free(o->body);
	memset(o, 0, sizeof(*o));
}

/* Read the claimed message's body and sidecar into p->o. */
static int
out_load(struct qb *s, struct pend *p)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, rc;

	memset(&p->o, 0, sizeof(p->o));
	p->o.id = p->c.n.id;
	p->o.status = BR_PENDING;
	p->o.expires_ms = p->c.n.expires > 0 ? p->c.n.expires * 1000 : 0;
	p->o.group = p->c.n.group[0] != '\0' ? p->c.n.group : NULL;
	/*
	 * Opened by the claim, else here (the claim could not); read here,
	 * never handed on: O_NONBLOCK may stay.
	 */
	if ((fd = p->c.fd) != -1) {
		p->c.fd = -1;
		st.st_size = p->c.size;
	} else if ((fd = sq_open_regular(s->q.curfd, p->c.name, O_RDONLY |
	    O_NONBLOCK, 0, &st)) == -1)
		return -1;
	if ((p->o.body = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, p->o.body + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	p->o.len = got;
	if (p->c.n.has_attr && (rc = sq_attr_each(&s->q, p->c.n.id, attr_copy,
	    &p->o)) != 0 && !(rc == -1 && errno == ENOENT)) {
		out_free(&p->o);
		return -1;
	}
	return 0;
}

/* Claim and load up to max messages.  Returns how many, -1. */
static ssize_t
out_claim(struct qb *s, struct pend *pend, size_t max, int64_t *next_ms)
{
	struct sq_claim c[64];
	char newname[SQ_NAME_MAX + 1];
	size_t got, i, n = 0, want;

	while (n < max) {
		want = max - n < 64 ? max - n : 64;
		if (sq_claim_open(&s->q, 0, s->token, c, want, &got,
		    next_ms) == -1)
			return n > 0 ? (ssize_t)n : -1;
		tool_dead_letter_warn(&s->q);
		for (i = 0; i < got; i++) {
			pend[n].c = c[i];
			if (out_load(s, &pend[n]) == 0) {
				n++;
				continue;
			}
			warn("%s: %s", s->qarg, c[i].n.id);
			if (errno != ENOENT && sq_reject(&s->q, c[i].name,
			    SQ_REASON_UNREADABLE, newname) == -1)
				warn("%s: %s: dead-letter", s->qarg,
				    c[i].n.id);
		}
		if (got < want)
			break;
	}
	return (ssize_t)n;
}

/* ------------------------------------------------------------- acks */

/*
 * The local acks of confirmed messages, done by ACKERS threads, each with
 * its own handle on the queue, while the main thread claims and
 * publishes: an ack is an unlink, and on a disk that frees blocks at
 * once (discard) it waits for the device far longer than the broker
 * takes to confirm a message.  A confirmed message waits in the ring
 * (at most ACK_RING batches, then the main thread waits) still claimed
 * by this bridge: a crash before its ack gives it back, and it is
 * published again (at least once; the broker's or the inbox's
 * deduplication drops the copy).
 */
#define ACKERS		4
#define ACK_RING	4		/* batches of names waiting */
#define ACK_TAKE	64		/* names an acker takes at a time */

struct ackq {
	pthread_mutex_t	 mu;
	pthread_cond_t	 more, less;
	char		(*names)[SQ_NAME_MAX + 1];
	size_t		 cap, head, count, busy;
	int		 stop;
	int		 pushed;	/* an ack queued since the last flush */
	struct sq_conf	 conf;		/* the main thread's, after reload */
	unsigned	 gen;		/* bumped at each reload */
	pthread_t	 th[ACKERS];
	size_t		 nth;
	struct qb	*s;
};

static void *
acker(void *arg)
{
	struct ackq *a = arg;
	struct sq_queue q;
	struct stat st1, st2;
	char names[ACK_TAKE][SQ_NAME_MAX + 1], msg[PATH_MAX + 256];
	size_t i, k;
	unsigned gen;
	int ok, errs[ACK_TAKE];

	if (sq_queue_open(&q, a->s->q.path, msg, sizeof(msg)) == -1) {
		say("%s", msg);
		ok = 0;
	} else if (fstat(q.fd, &st1) == -1 || fstat(a->s->q.fd, &st2) == -1 ||
	    st1.st_dev != st2.st_dev || st1.st_ino != st2.st_ino) {
		say("%s: not the queue any more", a->s->qarg);
		sq_queue_close(&q);
		ok = 0;
	} else
		ok = 1;
	pthread_mutex_lock(&a->mu);
	gen = a->gen - 1;
	for (;;) {
		while (a->count == 0 && !a->stop)
			pthread_cond_wait(&a->more, &a->mu);
		if (a->count == 0)
			break;
		/*
		 * A share of what waits, so that a batch wakes each acker
		 * once and not once per message.
		 */
		k = (a->count + a->nth - 1) / a->nth;
		if (k > ACK_TAKE)
			k = ACK_TAKE;
		for (i = 0; i < k; i++) {
			strlcpy(names[i], a->names[a->head], sizeof(names[i]));
			a->head = (a->head + 1) % a->cap;
		}
		a->count -= k;
		a->busy += k;
		if (ok && gen != a->gen) {
			q.conf = a->conf;
			gen = a->gen;
		}
		pthread_cond_broadcast(&a->less);
		pthread_mutex_unlock(&a->mu);
		if (sq_ack_many(ok ? &q : &a->s->q, names, k, errs) > 0)
			for (i = 0; i < k; i++)
				if (errs[i] != 0)
					warnc(errs[i], "%s: %s: ack",
					    a->s->qarg, names[i]);
		pthread_mutex_lock(&a->mu);
		a->busy -= k;
		pthread_cond_broadcast(&a->less);
	}
	pthread_mutex_unlock(&a->mu);
	if (ok)
		sq_queue_close(&q);
	return NULL;
}

/* Start the ackers; with none (they cannot start), acks are inline. */
static void
ackq_start(struct ackq *a, struct qb *s)
{
	sigset_t all, old;

	memset(a, 0, sizeof(*a));
	a->s = s;
	a->cap = s->b.batch * ACK_RING;
	if ((a->names = calloc(a->cap, sizeof(*a->names))) == NULL)
		err(EX_OSERR, NULL);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->more, NULL);
	pthread_cond_init(&a->less, NULL);
	a->conf = s->q.conf;
	/* Signals are the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (a->nth = 0; a->nth < ACKERS; a->nth++)
		if (pthread_create(&a->th[a->nth], NULL, acker, a) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * Queue the ack of cur/name: waits while the ring is full.  The ackers
 * are woken by ackq_kick, once for all that was queued.
 */
static void
ackq_push(struct ackq *a, const char *name)
{
	if (a->nth == 0) {
		if (sq_ack(&a->s->q, name) == -1)
			warn("%s: %s: ack", a->s->qarg, name);
		return;
	}
	pthread_mutex_lock(&a->mu);
	while (a->count == a->cap) {
		pthread_cond_broadcast(&a->more);
		pthread_cond_wait(&a->less, &a->mu);
	}
	strlcpy(a->names[(a->head + a->count) % a->cap], name,
	    sizeof(a->names[0]));
	a->count++;
	a->pushed = 1;
	pthread_mutex_unlock(&a->mu);
}

/* Wake the ackers for what ackq_push queued. */
static void
ackq_kick(struct ackq *a)
{
	if (a->nth == 0)
		return;
	pthread_mutex_lock(&a->mu);
	if (a->count > 0)
		pthread_cond_broadcast(&a->more);
	pthread_mutex_unlock(&a->mu);
}

/* The settings of a reload, for the ackers' next acks. */
static void
ackq_conf(struct ackq *a, const struct sq_conf *conf)
{
	pthread_mutex_lock(&a->mu);
	a->conf = *conf;
	a->gen++;
	pthread_mutex_unlock(&a->mu);
}

/*
 * Wait until every queued ack is done.  Returns 1 when an ack was queued
 * since the last flush (done now, it may have moved the next message of
 * a group into new/ after a claim found nothing), else 0: then every ack
 * was done before the last claim.  Inline acks (no ackers) are done
 * before the next claim and count as none.
 */
static int
ackq_flush(struct ackq *a)
{
	int some;

	pthread_mutex_lock(&a->mu);
	if (a->count > 0)
		pthread_cond_broadcast(&a->more);
	while (a->count + a->busy > 0)
		pthread_cond_wait(&a->less, &a->mu);
	some = a->pushed;
	a->pushed = 0;
	pthread_mutex_unlock(&a->mu);
	return some;
}

/* Finish every queued ack and stop the ackers. */
static void
ackq_stop(struct ackq *a)
{
	size_t i;

	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_broadcast(&a->more);
	pthread_mutex_unlock(&a->mu);
	for (i = 0; i < a->nth; i++)
		pthread_join(a->th[i], NULL);
	pthread_cond_destroy(&a->more);
	pthread_cond_destroy(&a->less);
	pthread_mutex_destroy(&a->mu);
	free(a->names);
}

/* ------------------------------------------------------------- out */

/* A pend copied to another place: its br_out points into its claim. */
static void
pend_moved(struct pend *p)
{
	p->o.id = p->c.n.id;
	p->o.group = p->c.n.group[0] != '\0' ? p->c.n.group : NULL;
}

/*
 * Settle the n messages the broker answered for: the confirmed ones go
 * to the ackers, the refused ones to dead/; those not confirmed are kept
 * first in pend, in order.  Returns how many are kept.
 */
static size_t
out_settle(struct qb *s, struct ackq *aq, struct pend *pend, size_t n,
    size_t *sent, size_t *refused)
{
	char newname[SQ_NAME_MAX + 1];
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		struct pend *p = &pend[i];

		if (p->o.status == BR_PENDING) {
			if (k != i) {
				pend[k] = *p;
				pend_moved(&pend[k]);
			}
			k++;
			continue;
		}
		if (p->o.status == BR_SENT) {
			ackq_push(aq, p->c.name);
			(*sent)++;
		} else {
			if (sq_reject(&s->q, p->c.name, p->o.reason,
			    newname) == -1)
				warn("%s: %s: dead-letter", s->qarg,
				    p->c.n.id);
			else
				logline(s, "%s %s dead:%s", p->c.n.id, s->qarg,
				    p->o.reason);
			(*refused)++;
		}
		out_free(&p->o);
	}
	ackq_kick(aq);
	return k;
}

/*
 * The first n messages of pend that go to the broker, copied into o in
 * order; returns how many.  A body larger than the broker takes
 * (b->body_max, 0: not known) gets BR_REFUSED with r=refused, for
 * out_settle to dead-letter: sent, it would be refused, or fail more
 * than itself (Redis closes the connection, AMQP the channel).
 */
static size_t
out_admit(struct qb *s, struct pend *pend, size_t n, struct br_out *o)
{
	size_t i, m = 0;

	for (i = 0; i < n; i++) {
		if (s->b.body_max > 0 && pend[i].o.len > s->b.body_max) {
			pend[i].o.status = BR_REFUSED;
			strlcpy(pend[i].o.reason, "refused",
			    sizeof(pend[i].o.reason));
		} else
			o[m++] = pend[i].o;
	}
	return m;
}

static void
out_release(struct qb *s, struct pend *pend, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (sq_release(&s->q, pend[i].c.name) == -1)
			warn("%s: %s: release", s->qarg, pend[i].c.n.id);
		out_free(&pend[i].o);
	}
	if (n > 0 && (s->exit_code == 0 || s->verbose))
		logline(s, "%s: %zu released", s->qarg, n);
}

static void
out_wait(struct qb *s, int64_t next_ms)
{
	int64_t until = sq_now_ms() + SLICE_MS;

	if (next_ms < until)
		until = next_ms;
	if (s->beat_at < until)
		until = s->beat_at;
	if (sq_watch_wait(s->watch, until) == -1 && errno != EINTR)
		nap(s, SLICE_MS);
}

/*
 * Claim until there is something to publish.  Returns 1 when pend holds
 * messages (*n of them), 0 to look again, -1 to end (--drain, all done).
 */
static int
out_fill(struct qb *s, struct pend *pend, size_t *n, int *refreshed)
{
	ssize_t got;
	int64_t next_ms;

	if ((got = out_claim(s, pend, s->b.batch, &next_ms)) == -1) {
		warn("%s: claim", s->qarg);
		nap(s, sq_backoff_next(&s->backoff));
		return 0;
	}
	if ((*n = (size_t)got) > 0)
		return 1;
	if (s->drain && !*refreshed) {
		/* Claims given back by a dead bridge: look again. */
		*refreshed = 1;
		if (sq_queue_refresh(&s->q) == 0)
			return 0;
	}
	if (s->drain)
		return -1;
	out_wait(s, next_ms);
	return 0;
}

/*
 * The outbox, a pipeline of one batch in flight: pend[0..nf) are
 * published and await their confirmations (their br_out copied into o,
 * but for those too large for the broker: out_admit), pend[nf..n) are
 * claimed and wait their turn.  While the broker confirms, the next
 * batch is claimed and read, and the ackers unlink what was confirmed
 * before; once the confirmations are in, the next batch goes out.  Order
 * holds: a batch goes out only after the one before was confirmed whole,
 * and what was not confirmed goes out again first.
 */
static void
out_run(struct qb *s)
{
	struct ackq aq;
	struct br_out *o;
	struct pend *pend;
	char why[BR_ERR_MAX], why2[BR_ERR_MAX];
	size_t n = 0, nf, m, i, k, sent, refused, want;
	ssize_t got;
	int64_t next_ms, t0;
	int rc, rc2, stop, refreshed = 0;

	if ((pend = calloc(2 * s->b.batch, sizeof(*pend))) == NULL ||
	    (o = calloc(s->b.batch, sizeof(*o))) == NULL)
		err(EX_OSERR, NULL);
	ackq_start(&aq, s);
	while (!got_stop) {
		if (got_hup) {
			reload(s);
			ackq_conf(&aq, &s->q.conf);
		}
		heartbeat(s);
		if (n == 0) {
			if ((rc = out_fill(s, pend, &n, &refreshed)) == -1) {
				/*
				 * --drain ends when a claim made after every
				 * ack was done found nothing: an ack of a
				 * group's head moves its next into new/.
				 */
				if (!ackq_flush(&aq))
					break;
				refreshed = 0;
				continue;
			}
			if (rc == 0)
				continue;
		}
		if (ensure_connected(s, &stop) == -1) {
			if (stop)
				break;
			continue;
		}
		nf = n < s->b.batch ? n : s->b.batch;
		m = out_admit(s, pend, nf, o);
		t0 = sq_now_ms();
		call_begin();
		rc = m > 0 ? s->b.ops->send(&s->b, o, m, why, sizeof(why)) :
		    BR_OK;
		/* While the broker works: the next batch, from the queue. */
		want = nf + s->b.batch - n;
		if (rc == BR_OK && want > 0 && !got_stop && (got = out_claim(s,
		    pend + n, want, &next_ms)) > 0)
			n += (size_t)got;
		rc2 = m > 0 ? s->b.ops->confirm(&s->b, o, m, why2,
		    sizeof(why2)) : BR_OK;
		call_end();
		if (rc == BR_OK && rc2 != BR_OK) {
			rc = rc2;
			strlcpy(why, why2, sizeof(why));
		}
		for (i = k = 0; i < nf; i++)
			if (pend[i].o.status != BR_REFUSED)
				pend[i].o = o[k++];
		sent = refused = 0;
		i = out_settle(s, &aq, pend, nf, &sent, &refused);
		if (i < nf && nf < n) {
			memmove(pend + i, pend + nf, (n - nf) * sizeof(*pend));
			for (k = i; k < i + n - nf; k++)
				pend_moved(&pend[k]);
		}
		n -= nf - i;
		if (sent + refused > 0) {
			t0 = sq_now_ms() - t0;
			logline(s, "%s -> %s: %zu sent, %zu refused, %zu "
			    "pending %lld.%03llds", s->qarg, s->b.url.shown,
			    sent, refused, i, (long long)(t0 / 1000),
			    (long long)(t0 % 1000));
		}
		if (batch_end(s, rc, why) == -1)
			break;
	}
	out_release(s, pend, n);
	ackq_stop(&aq);
	free(pend);
	free(o);
}

/* ------------------------------------------------------------- in */

/* The message being sent by in_send, for in_aside. */
struct in_cur {
	struct qb	*s;
	struct sq_batch	*b;
	struct br_in	*in;
};

/* The reasons of struct br_in's dead, and their r=. */
#define IN_DEAD_BADMARKER	1
#define IN_DEAD_TOOLARGE	2
static const char *const in_dead_reason[] = {
	NULL, SQ_REASON_BADMARKER, SQ_REASON_TOOLARGE
};

/*
 * The message in_send is adding (arg: struct in_cur) went to dead/:
 * with r=toolarge, its body alone is larger than the queue's max_bytes
 * and would never fit, and would hold up everything behind it; with
 * r=badmarker, the name of its dedup marker is taken by something that
 * is not a regular file (a person has to move the entry away, or every
 * message of that ID goes the same way).  One line, even with -q.  The
 * message is marked, so that a try again of its batch (the queue full
 * behind it) does not set it aside twice.
 */
static void
in_aside(const char *id, void *arg)
{
	struct in_cur *c = arg;
	char rel[sizeof(SQ_DIR_DEDUP) + SQ_DEDUP_MAX + 1];
	struct stat st;

	if (c->b->aside_reason != NULL &&
	    strcmp(c->b->aside_reason, SQ_REASON_TOOLARGE) == 0) {
		c->in->dead = IN_DEAD_TOOLARGE;
		say("%s: %s: %zu bytes, larger than the queue's max_bytes "
		    "(%llu); dead-lettered (r=%s)", c->s->qarg, id,
		    c->in->len, (unsigned long long)c->s->q.conf.max_bytes,
		    SQ_REASON_TOOLARGE);
		return;
	}
	c->in->dead = IN_DEAD_BADMARKER;
	snprintf(rel, sizeof(rel), "%s/%s", SQ_DIR_DEDUP, c->in->dedup);
	say("%s/%s: not a regular file (%s); %s dead-lettered (r=%s), "
	    "qadmin check --repair moves the entry to quarantine/",
	    c->s->qarg, rel, fstatat(c->s->q.fd, rel, &st,
	    AT_SYMLINK_NOFOLLOW) == 0 ? sq_mode_name(st.st_mode) : "gone",
	    id, SQ_REASON_BADMARKER);
}

/*
 * Send the fetched messages into the queue, each with its dedup ID, as
 * one batch: bodies and markers are flushed together, and a message is
 * acked to the broker only after the whole batch was committed.  One
 * whose marker name is taken by a non-file, or whose body alone is
 * larger than the queue's max_bytes, goes to dead/ on its own
 * (sq_batch_set_aside, in_aside): it would fail the batch each time the
 * broker gives it again.  Under overflow = block the batch waits up to
 * wait_ms for room, never forever: the waits are the caller's to slice.
 * *sent gets how many went in, even on failure (what fit under the
 * queue's bound went).  Returns 0, or -1 with errno (nothing is acked
 * then: the batch is sent again, and what went in is dropped as a
 * duplicate).
 */
static int
in_send(struct qb *s, struct br_in *in, size_t n, int64_t wait_ms,
    size_t *dups, size_t *aside, size_t *sent)
{
	struct sq_batch b;
	struct sq_msgopts o;
	struct in_cur cur;
	size_t i;
	int saved;

	sq_batch_begin(&b, &s->q, NULL, NULL);
	b.wait_ms = wait_ms;
	/* Each message's options are read by its add: o may change. */
	sq_batch_defer_dedup(&b);
	cur.s = s;
	cur.b = &b;
	sq_batch_set_aside(&b, in_aside, &cur);
	for (i = 0; i < n; i++) {
		if (in[i].dead)
			continue;
		cur.in = &in[i];
		memset(&o, 0, sizeof(o));
		o.key = in[i].key[0] != '\0' ? in[i].key : NULL;
		o.attrs = in[i].attrs;
		o.nattrs = in[i].nattrs;
		o.dedup_id = in[i].dedup[0] != '\0' ? in[i].dedup : NULL;
		o.expires_ms = in[i].expires_ms;
		o.group = in[i].group[0] != '\0' ? in[i].group : NULL;
		if (sq_batch_options(&b, &o) == -1) {
			/* A key or attribute we cannot keep: the body goes. */
			o.key = NULL;
			o.nattrs = 0;
			if (sq_batch_options(&b, &o) == -1)
				goto fail;
		}
		if (sq_batch_add(&b, in[i].body, in[i].len) == -1)
			goto fail;
	}
	saved = sq_batch_end(&b);
	*sent = b.committed;
	*dups = b.dropped;
	*aside = b.set_aside;
	tool_dead_letter_warn(b.q);
	return saved;
fail:
	saved = errno;
	sq_batch_abort(&b);
	(void)sq_batch_end(&b);
	*sent = b.committed;
	errno = saved;
	return -1;
}

/* What failed a local send (errno e), in words for the log. */
static const char *
in_why(const struct qb *s, int e)
{
	if (e == EAGAIN && s->q.conf.overflow == SQ_OVERFLOW_BLOCK)
		return "queue full (max_messages or max_bytes in queue.conf, "
		    "overflow = block)";
	if (e == EAGAIN)
		return "queue full (max_messages or max_bytes in queue.conf)";
	if (e == EFBIG)
		return "message larger than the queue's max_bytes";
	return strerror(e);
}

/*
 * Send the fetched batch into the queue until it goes.  A local failure
 * (the queue full, the disk full, tmp/ not writable) leaves the batch
 * unacknowledged and held: it is sent again after a wait of the same
 * back-off as an outage of the broker, one line per wait, never at once
 * (SPEC 2, "Hostile and broken surroundings").  Nothing after it is
 * fetched meanwhile, and it is not fetched anew: a batch given back
 * would come again behind what the broker already holds to deliver
 * again (a JetStream consumer redelivers in the order messages were
 * given back, not the stream's), and each delivery counts against the
 * broker's limits (a consumer's MaxDeliver, a quorum queue's
 * delivery-limit), which would drop the message in the end.  What went
 * in before a failure is a duplicate at the next try; a try that got
 * some in was progress and starts the back-off over.  --drain gives up
 * after DRAIN_TRIES waits in a row, as for an outage.  Under overflow =
 * block a wait is spent trying again in slices (slice_left), the batch
 * waiting for room in the library, so that it goes in as soon as there
 * is some.  *dups leaves out what earlier tries got in.
 * Returns 0 when sent, 1 when SIGHUP came (the caller gives the batch
 * back and reloads: a bound raised in queue.conf counts at once), -1 to
 * stop: a signal, or --drain gave up (s->exit_code set).
 */
static int
in_retry(struct qb *s, struct br_in *in, size_t n, size_t *dups,
    size_t *aside)
{
	size_t sent, before = 0;
	int64_t d, until, wait;
	int e, block;

	/* The first try may wait a slice for room, unannounced. */
	until = sq_now_ms() + SLICE_MS;
	for (;;) {
		block = s->q.conf.overflow == SQ_OVERFLOW_BLOCK;
		wait = slice_left(s, until);
		if (in_send(s, in, n, block ? wait : 0, dups, aside,
		    &sent) == 0) {
			*dups -= before < *dups ? before : *dups;
			return 0;
		}
		e = errno;
		before += sent;
		if (sent > 0)
			sq_backoff_reset(&s->backoff);
		heartbeat(s);
		keep(s);
		if (got_stop)
			return -1;
		if (got_hup)
			return 1;
		/* Within a wait for room: the next slice of it. */
		if (block && e == EAGAIN && sq_now_ms() < until)
			continue;
		if (s->drain && s->backoff.tries >= DRAIN_TRIES) {
			say("%s: send: %s; giving up", s->qarg, in_why(s, e));
			s->exit_code = tool_exit_code(e);
			return -1;
		}
		d = sq_backoff_next(&s->backoff);
		if (block && e == EAGAIN) {
			/*
			 * overflow = block: the wait is spent waiting for
			 * room, in slices, so that the batch goes in as soon
			 * as there is some, and signals, the heartbeat and
			 * the broker's hold are seen between them.
			 */
			say("%s: send: %s; waiting up to %lld.%03llds for room",
			    s->qarg, in_why(s, e), (long long)(d / 1000),
			    (long long)(d % 1000));
			until = sq_now_ms() + d;
			continue;
		}
		say("%s: send: %s; retrying in %lld.%03llds", s->qarg,
		    in_why(s, e), (long long)(d / 1000), (long long)(d % 1000));
		nap(s, d);
		if (got_stop)
			return -1;
		if (got_hup)
			return 1;
		until = sq_now_ms();
	}
}

/*
 * in_retry, with the batch kept from the broker's redelivery while it
 * is held (keep): a JetStream consumer would give it to another client
 * once its ack wait ran out, a duplicate of what this one sends once the
 * queue has room, and out of order.
 */
static int
in_commit(struct qb *s, struct br_in *in, size_t n, size_t *dups,
    size_t *aside)
{
	int rc;

	s->holding = s->b.ops->hold != NULL && s->b.hold_ms > 0;
	s->hold_at = sq_now_ms() + s->b.hold_ms;
	rc = in_retry(s, in, n, dups, aside);
	s->holding = 0;
	return rc;
}

/*
 * The messages of a batch set aside, by reason, for its log line into
 * buf (", 1 dead (r=toolarge)"; "" when none).
 */
static void
in_dead_counts(const struct br_in *in, size_t n, char *buf, size_t size)
{
	size_t i, k, len = 0, cnt;

	buf[0] = '\0';
	for (k = 1; k < sizeof(in_dead_reason) / sizeof(*in_dead_reason);
	    k++) {
		for (cnt = i = 0; i < n; i++)
			cnt += in[i].dead == (int)k;
		if (cnt > 0 && len < size)
			len += (size_t)snprintf(buf + len, size - len,
			    ", %zu dead (r=%s)", cnt, in_dead_reason[k]);
	}
}

static void
in_run(struct qb *s)
{
	struct br_in *in;
	char why[BR_ERR_MAX], asidebuf[96];
	size_t got, dups, aside;
	int64_t t0;
	int rc, stop;

	if ((in = calloc(s->b.batch, sizeof(*in))) == NULL)
		err(EX_OSERR, NULL);
	for (;;) {
		if (got_stop) {
			/*
			 * What the broker delivered ahead is taken in first:
			 * a stop would leave it delivered and not acked.
			 */
			if (!s->connected || s->b.ops->fetched == NULL ||
			    !s->b.ops->fetched(&s->b))
				break;
			s->b.stopping = 1;
		}
		if (got_hup)
			reload(s);
		heartbeat(s);
		if (ensure_connected(s, &stop) == -1) {
			if (stop)
				break;
			continue;
		}
		got = 0;
		call_begin();
		rc = s->b.ops->fetch(&s->b, in, s->b.batch, s->drain ? 0 :
		    SLICE_MS, &got, why, sizeof(why));
		call_end();
		if (rc != BR_OK) {
			s->b.ops->done(&s->b, in, got);
			if (broker_failed(s, rc, why) == -1)
				break;
			continue;
		}
		if (got == 0) {
			if (s->drain)
				break;
			continue;
		}
		t0 = sq_now_ms();
		if ((rc = in_commit(s, in, got, &dups, &aside)) != 0) {
			/*
			 * Not acked: done gives the batch back (NATS: a Nak,
			 * with the batch fetched ahead), the close does for
			 * Redis (pending, read first) and AMQP (requeued).
			 */
			s->b.ops->done(&s->b, in, got);
			s->b.ops->close(&s->b);
			s->connected = 0;
			if (rc == -1)
				break;
			continue;
		}
		call_begin();
		rc = s->b.ops->ack(&s->b, why, sizeof(why));
		s->b.ops->done(&s->b, in, got);
		call_end();
		t0 = sq_now_ms() - t0;
		in_dead_counts(in, got, asidebuf, sizeof(asidebuf));
		logline(s, "%s -> %s: %zu received, %zu duplicates%s%s "
		    "%lld.%03llds", s->b.url.shown, s->qarg, got, dups,
		    asidebuf, rc == BR_OK ? "" : ", not acked",
		    (long long)(t0 / 1000), (long long)(t0 % 1000));
		if (batch_end(s, rc, why) == -1)
			break;
	}
	free(in);
}

/* ------------------------------------------------------------- main */

static void
setup(struct qb *s, const char *root)
{
	struct sigaction sa;

	tool_open(&s->q, root, s->qarg, 0);
	if (!s->b.in && (s->watch = sq_watch_open(&s->q)) == NULL)
		err(EX_OSERR, "%s: watch", s->qarg);
	if (sq_worker_token(s->token, sizeof(s->token)) == -1)
		err(EX_SOFTWARE, "token");
	s->beat_ms = beat_interval(&s->q.conf);
	s->beat_at = sq_now_ms() + s->beat_ms;
	if ((s->lockfd = sq_worker_register(&s->q, s->token, s->beat_ms,
	    s->q.conf.lease_ms)) == -1)
		tool_queue_err(tool_exit_code(errno), &s->q, s->qarg,
		    "worker lock");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	beater_start(s);
}

int
main(int argc, char *argv[])
{
	enum { OPT_BATCH = 256, OPT_CACERT, OPT_CRED, OPT_DRAIN, OPT_TIMEOUT,
	    OPT_VERSION };
	static const struct option longopts[] = {
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "cacert", required_argument, NULL, OPT_CACERT },
		{ "credentials", required_argument, NULL, OPT_CRED },
		{ "drain", no_argument, NULL, OPT_DRAIN },
		{ "help", no_argument, NULL, 'h' },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct qb s;
	const char *root = NULL, *url;
	const char *synopsis_mode = synopsis;
	char why[BR_ERR_MAX];
	int ch, rc;

	tool_init();
	tool_args(argv, getprogname());
	tool_synopsis(synopsis, NULL);
	memset(&s, 0, sizeof(s));
	s.lockfd = -1;
	s.b.batch = BATCH_DEFAULT;
	s.b.timeout_ms = TIMEOUT_DEFAULT;
	sq_backoff_init(&s.backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	if (argc > 1 && argv[1][0] != '-') {
		if (strcmp(argv[1], "in") == 0)
			s.b.in = 1;
		else if (strcmp(argv[1], "out") != 0)
			tool_usage(synopsis, "%s: not in or out",
			    tool_echo(argv[1]));
		argv++;
		argc--;
		/* getopt reports a bad option as "argv[0]: why". */
		tool_args(argv, getprogname());
		synopsis_mode = s.b.in ? synopsis_in : synopsis_out;
		tool_synopsis(synopsis_mode, NULL);
	} else if (argc > 1 && strcmp(argv[1], "--version") == 0)
		tool_version();
	else if (argc > 1 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0))
		tool_help(synopsis, options, "qbridge(1)");
	else if (argc > 1)
		tool_usage(synopsis, "%s: options come after in or out",
		    tool_echo(argv[1]));
	else
		tool_usage(synopsis, "missing in or out");
	while ((ch = getopt_long(argc, argv, "d:hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			root = optarg;
			break;
		case 'h':
			tool_help(synopsis, options, "qbridge(1)");
		case 'q':
			s.quiet = 1;
			break;
		case 'v':
			s.verbose = 1;
			break;
		case OPT_BATCH:
			s.b.batch = (size_t)tool_number("--batch", optarg, 1,
			    BR_BATCH_MAX);
			break;
		case OPT_CACERT:
			s.b.cacert = optarg;
			break;
		case OPT_CRED:
			s.credfile = optarg;
			break;
		case OPT_DRAIN:
			s.drain = 1;
			break;
		case OPT_TIMEOUT:
			s.b.timeout_ms = tool_duration("--timeout", optarg);
			if (s.b.timeout_ms < 1)
				tool_bad("--timeout: too short");
			break;
		case OPT_VERSION:
			tool_version();
			break;
		default:
			tool_usage(synopsis_mode, NULL);
		}
	}
	if (argc - optind != 2)
		tool_usage(synopsis_mode, "%s", argc - optind < 2 ?
		    (s.b.in ? "missing url or queue" : "missing queue or url") :
		    "too many arguments");
	s.qarg = argv[optind + (s.b.in ? 1 : 0)];
	url = argv[optind + (s.b.in ? 0 : 1)];
	if (url_parse(&s.b, url, why, sizeof(why)) == -1 ||
	    s.b.ops->check(&s.b, why, sizeof(why)) != BR_OK)
		die(EX_CONFIG, "%s", why);
	if (s.b.cacert != NULL && (rc = cacert_check(&s.b, why,
	    sizeof(why))) != 0)
		die(rc, "%s", why);
	if ((rc = cred_load(&s.b.cred, s.credfile, why, sizeof(why))) != 0)
		die(rc, "%s", why);
	setup(&s, root);
	if (!s.b.in && s.verbose && sq_queue_held(&s.q))
		warnx("%s: the queue is held: nothing is claimed until "
		    "qadmin release", s.qarg);
	if (s.b.in)
		in_run(&s);
	else
		out_run(&s);
	if (s.connected)
		s.b.ops->close(&s.b);
	sq_worker_unregister(&s.q, s.token, s.lockfd);
	sq_watch_close(s.watch);
	sq_queue_close(&s.q);
	explicit_bzero(&s.b.cred, sizeof(s.b.cred));
	return s.exit_code;
}
