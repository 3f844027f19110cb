/* "shoal version" and "shoal info" as text or JSON, laid out like Docker's.
 * The JSON given is only read (jansson's iterators just lack const). */
#ifndef SHOAL_CLI_SYSTEM_FORMAT_H
#define SHOAL_CLI_SYSTEM_FORMAT_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/buf.h"

/* Go-style names of the platform the CLI was built for ("linux", "amd64"). */
const char *system_client_os(void);
const char *system_client_arch(void);

/* The "Client:" section of "shoal version", and when @server (GET /version)
 * is not NULL, its "Server:" section. Returns 0 or SHOAL_ENOMEM. */
int system_format_version(json_t *server, struct buf *out);

/* {"Client": {...}, "Server": @server or null}: a new reference, or NULL when
 * out of memory. */
json_t *system_version_json(json_t *server);

/* The "Client:" section of "shoal info" (@debug: the client logs at debug level). */
int system_format_info_client(bool debug, struct buf *out);

/* The "Server:" section of "shoal info" from @info (GET /info), without its
 * header line. Lines whose fields the daemon does not send are left out.
 * Returns 0 or SHOAL_ENOMEM. */
int system_format_info_server(json_t *info, bool debug, struct buf *out);

#endif
