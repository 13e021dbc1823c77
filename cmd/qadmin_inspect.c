/* qadmin_inspect.c - placeholder until written. */
#include <err.h>
#include <sysexits.h>

#include "qadmin.h"

int
cmd_stats(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_ls(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_cat(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}
