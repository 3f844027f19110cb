/* The daemon: wires the loop, the API socket, the swarm state and Raft. */
#ifndef SHOAL_NODE_DAEMON_H
#define SHOAL_NODE_DAEMON_H

/* "shoal daemon [flags]": run a node in the foreground. Returns the exit code. */
int daemon_main(int argc, char **argv);

#endif
