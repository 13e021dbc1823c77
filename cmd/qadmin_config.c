/* qadmin_config.c - placeholder until written. */
#include <err.h>
#include <sysexits.h>

#include "qadmin.h"

int
cmd_config(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}
