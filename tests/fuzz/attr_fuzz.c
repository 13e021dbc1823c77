/*
 * attr_fuzz.c - attribute sidecars (attr/ID: "key ROUTING.KEY" and "attr
 * NAME VALUE" lines), as producers make them and as anyone who may
 * write attr/ leaves them: read by qworker (SPOOLQ_KEY, attributes in
 * the environment), qadmin cat --meta and archive replay.
 *
 * The input is used twice.  As a sidecar, read by sq_attr_each: every
 * record it yields has a valid attribute name (or is the key) and no
 * newline.  As a producer's options - a first line "kKEY" (optional)
 * and NAME=VALUE lines: when sq_attr_check accepts them, the sidecar
 * written for them (attr_write) reads back as exactly that key and
 * those attributes, in order.
 */
#include "fuzz.h"
#include "internal.h"

#define MAXREC	(SQ_ATTRS_MAX + 2)

static struct sq_queue q;

struct rec {
	size_t	 n;
	char	*name[MAXREC];		/* NULL for the key */
	char	*value[MAXREC];
};

static int
on_record(const char *name, const char *value, void *arg)
{
	struct rec *r = arg;

	fuzz_check(name == NULL || sq_attr_name_valid(name), "name \"%s\"",
	    name);
	fuzz_check(strchr(value, '\n') == NULL, "value \"%s\"", value);
	if (r->n == MAXREC)
		return 0;
	r->name[r->n] = name != NULL ? strdup(name) : NULL;
	r->value[r->n] = strdup(value);
	if (r->value[r->n] == NULL)
		abort();
	r->n++;
	return 0;
}

static void
rec_free(struct rec *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->name[i]);
		free(r->value[i]);
	}
	r->n = 0;
}

static void
setup(void)
{
	char path[PATH_MAX];

	if (q.path[0] != '\0')
		return;
	snprintf(path, sizeof(path), "%s/q", fuzz_dir());
	memset(&q, 0, sizeof(q));
	strlcpy(q.path, path, sizeof(q.path));
	sq_conf_defaults(&q.conf);
	q.conf.durability = SQ_DURABILITY_NONE;
	q.tmpfd = q.newfd = q.curfd = q.retryfd = q.deadfd = q.index_fd = -1;
	if (mkdir(path, 0755) == -1 || (q.fd = open(path, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC)) == -1 || mkdirat(q.fd, SQ_DIR_ATTR,
	    0755) == -1)
		abort();
}

/* Read data as a sidecar someone wrote by hand. */
static void
check_read(const uint8_t *data, size_t size)
{
	struct rec r;
	int afd;

	if ((afd = sq_state_attr(&q, 0)) == -1)
		abort();
	fuzz_write(afd, "HAND", data, size);
	close(afd);
	memset(&r, 0, sizeof(r));
	fuzz_check(sq_attr_each(&q, "HAND", on_record, &r) == 0, "%s",
	    strerror(errno));
	rec_free(&r);
}

/* Read data as a producer's options; write and read back their sidecar. */
static void
check_roundtrip(const uint8_t *data, size_t size)
{
	struct sq_attr attrs[MAXREC];
	struct sq_msgopts o;
	struct rec r;
	char *s = fuzz_str(data, size), *line, *next, *eq;
	size_t i, k;

	memset(&o, 0, sizeof(o));
	for (line = s; line != NULL && o.nattrs < MAXREC; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line == s && line[0] == 'k')
			o.key = line + 1;
		else if ((eq = strchr(line, '=')) != NULL) {
			*eq = '\0';
			attrs[o.nattrs].name = line;
			attrs[o.nattrs++].value = eq + 1;
		}
	}
	o.attrs = attrs;
	if (sq_attr_check(&o) == -1 || (o.key == NULL && o.nattrs == 0)) {
		free(s);
		return;
	}
	fuzz_check(attr_write(&q, "RT", &o) == 0, "%s", strerror(errno));
	memset(&r, 0, sizeof(r));
	fuzz_check(sq_attr_each(&q, "RT", on_record, &r) == 0, "%s",
	    strerror(errno));
	attr_remove(&q, "RT");
	k = o.key != NULL;
	fuzz_check(r.n == k + o.nattrs, "%zu records for %zu", r.n,
	    k + o.nattrs);
	if (o.key != NULL)
		fuzz_check(r.name[0] == NULL && strcmp(r.value[0], o.key) == 0,
		    "key \"%s\" read back as \"%s\"", o.key, r.value[0]);
	for (i = 0; i < o.nattrs; i++)
		fuzz_check(r.name[k + i] != NULL && strcmp(r.name[k + i],
		    attrs[i].name) == 0 && strcmp(r.value[k + i],
		    attrs[i].value) == 0, "%s=%s read back as %s=%s",
		    attrs[i].name, attrs[i].value, r.name[k + i],
		    r.value[k + i]);
	rec_free(&r);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	check_read(data, size);
	check_roundtrip(data, size);
	return 0;
}
