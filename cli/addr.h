/* Cluster addresses given on the command line, completed the way Docker does. */
#ifndef SHOAL_CLI_ADDR_H
#define SHOAL_CLI_ADDR_H

#include <stddef.h>

#include "lib/err.h"

/* shoal's cluster port, where Docker's is 2377. */
#define ADDR_DEFAULT_PORT   "4377"
#define ADDR_DEFAULT_LISTEN "0.0.0.0:" ADDR_DEFAULT_PORT
#define ADDR_MAX	    300

/* Complete a --listen-addr value as Docker's opts.ParseTCPAddr() does: an
 * optional "tcp://", "<ip|interface>[:port]", an empty host meaning 0.0.0.0
 * and a missing port ADDR_DEFAULT_PORT ("eth0" -> "eth0:4377", ":5000" ->
 * "0.0.0.0:5000", "::1" -> "[::1]:4377"). Writes "HOST:PORT" to @out.
 * Returns 0, or SHOAL_EINVAL with Docker's message in @err. */
int addr_parse_listen(const char *in, char *out, size_t len, struct shoal_err *err);

#endif
