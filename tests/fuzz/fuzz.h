/*
 * fuzz.h - what the libFuzzer harnesses share: the entry point, a
 * NUL-terminated copy of the input, invariant checks that abort (so
 * libFuzzer keeps the input as a crash), and a scratch directory for the
 * parsers that only read files.
 *
 * Each harness is one tests/fuzz/NAME_fuzz.c defining
 * LLVMFuzzerTestOneInput; its seeds are tests/fuzz/corpus/NAME/.
 */
#ifndef SPOOLQ_FUZZ_H
#define SPOOLQ_FUZZ_H

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoolq.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* An invariant that must hold: on a violation, say which and abort. */
#define fuzz_check(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s: ",	\
		    __FILE__, __LINE__, #cond);				\
		fprintf(stderr, __VA_ARGS__);				\
		fprintf(stderr, "\n");					\
		abort();						\
	}								\
} while (0)

/*
 * fuzz_str - the input as a C string in a buffer of exactly size + 1
 * bytes (so AddressSanitizer sees any read past its end); an embedded
 * NUL ends the string early, as it would for a name or an argument.
 * Free it with free(3).
 */
static inline char *
fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * fuzz_dir - a private scratch directory made once per process under
 * $TMPDIR (tests/fuzz/run points it at a directory it removes), as a
 * path; the harnesses write the files the library reads into it.
 */
static inline const char *
fuzz_dir(void)
{
	static char dir[PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	if (dir[0] != '\0')
		return dir;
	snprintf(dir, sizeof(dir), "%s/spoolq-fuzz.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	return dir;
}

/*
 * fuzz_queue - create the queue "q" in the scratch directory with the
 * n settings keys[i] = values[i], and open it into *q; abort on failure.
 */
static inline void
fuzz_queue(struct sq_queue *q, const char *const *keys,
    const char *const *values, size_t n)
{
	char path[PATH_MAX], err[512];

	snprintf(path, sizeof(path), "%s/q", fuzz_dir());
	if (sq_queue_create(path, keys, values, n, err, sizeof(err)) == -1 ||
	    sq_queue_open(q, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", path, err);
		abort();
	}
}

/* fuzz_write - replace the file dirfd/name with data (size bytes). */
static inline void
fuzz_write(int dirfd, const char *name, const void *data, size_t size)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0644);

	if (fd == -1 || sq_write_all(fd, data, size) == -1 ||
	    close(fd) == -1) {
		perror(name);
		abort();
	}
}

#endif
