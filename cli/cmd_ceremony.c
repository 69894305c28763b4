#include "cli.h"
int kr_cmd_ceremony(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 70;
}
