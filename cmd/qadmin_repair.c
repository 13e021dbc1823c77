/* qadmin_repair.c - placeholder until written. */
#include <err.h>
#include <sysexits.h>

#include "qadmin.h"

int
cmd_recover(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_gc(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_check(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}
