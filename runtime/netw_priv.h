/* Internals shared by netw.c, netw_routes.c and container.c: not part of runtime's API. */
#ifndef SHOAL_RUNTIME_NETW_PRIV_H
#define SHOAL_RUNTIME_NETW_PRIV_H

#include <stdint.h>

#include "runtime/netw.h"

/* Run @argv (argv[0] an absolute path) with @input on stdin; in the network
 * namespace @nsfd unless it is -1; with @pass_fd (unless -1) as its fd 3.
 * Its stdout and stderr go to *@output (heap, NUL-terminated, at most 1 MiB
 * kept, caller frees) when @output is not NULL. Returns 0 if it exits with
 * 0, else SHOAL_EIO with "@what: <its output>" in @err. */
int netw_run(const char *const argv[], const char *input, int nsfd, int pass_fd, char **output,
	     const char *what, struct shoal_err *err);

/* Find the executable @name in $PATH or the sbin directories a non-root PATH
 * lacks, into @out. SHOAL_ENOTFOUND naming package @pkg to install. */
int netw_find_bin(const char *name, const char *pkg, char *out, size_t len, struct shoal_err *err);

/* Parse a bip "GATEWAY/PREFIX" (prefix 8..30, the gateway a host address of
 * the subnet) into host-order @gw and @prefix. SHOAL_EINVAL with the reason. */
int netw_parse_bip(const char *bip, uint32_t *gw, uint8_t *prefix, struct shoal_err *err);

#endif
