/* qadmin_msgs.c - placeholder until written. */
#include <err.h>
#include <sysexits.h>

#include "qadmin.h"

int
cmd_purge(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_redrive(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_move(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_retry_now(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_hold(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_release(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}

int
cmd_delete(struct admin *a, int argc, char **argv)
{
	(void)a;
	(void)argc;
	errx(EX_SOFTWARE, "%s: not built yet", argv[0]);
}
