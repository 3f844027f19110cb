/* The command-line client: parses arguments and talks to the daemon's API. */
#ifndef SHOAL_CLI_CLI_H
#define SHOAL_CLI_CLI_H

/* Run the CLI with the process's arguments. Returns the process exit code. */
int cli_main(int argc, char **argv);

#endif
