/* shoal: one binary. "shoal daemon ..." runs a node; everything else is the CLI. */
#include <string.h>

#include "cli/cli.h"
#include "node/daemon.h"

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "daemon") == 0)
		return daemon_main(argc - 1, argv + 1);
	return cli_main(argc, argv);
}
