/* Nodes as "shoal node ls" and "shoal node inspect --pretty" show them, from
 * the daemon's Node objects, in Docker's layouts. The JSON given is only read
 * (jansson's iterators just lack const). */
#ifndef SHOAL_CLI_NODE_FORMAT_H
#define SHOAL_CLI_NODE_FORMAT_H

#include <jansson.h>

#include "lib/buf.h"

enum node_list_format {
	NODE_LIST_TABLE, /* the aligned table with headers */
	NODE_LIST_QUIET, /* IDs only */
	NODE_LIST_JSON,	 /* one JSON object of the table's fields per line */
};

/* One node's listing fields (Docker's nodeContext): a new object with
 * Availability, EngineVersion, Hostname, ID, ManagerStatus, Self, Status and
 * TLSStatus, or NULL when out of memory. @info (GET /info) tells which node
 * is this one and the cluster's TLS root; it may be NULL. */
json_t *node_list_fields(json_t *node, json_t *info);

/* Append the listing of @nodes (a JSON array of Node objects), ordered like
 * Docker's: by hostname in natural order ("node-2" before "node-10"), then by
 * ID. Returns 0 or SHOAL_ENOMEM. */
int node_format_list(json_t *nodes, json_t *info, enum node_list_format fmt, struct buf *out);

/* Append Docker's human-friendly view of one node ("--pretty"). Returns 0 or
 * SHOAL_ENOMEM. */
int node_format_pretty(json_t *node, struct buf *out);

#endif
