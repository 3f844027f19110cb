/* Services and tasks as "shoal service ls/ps/inspect --pretty" and "node ps"
 * show them, from the daemon's Service and Task objects, in Docker's
 * layouts. The JSON given is only read. */
#ifndef SHOAL_CLI_SERVICE_FORMAT_H
#define SHOAL_CLI_SERVICE_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"

enum svc_list_format {
	SVC_LIST_TABLE, /* the aligned table with headers */
	SVC_LIST_QUIET, /* IDs only */
	SVC_LIST_JSON,	/* one JSON object of the table's fields per line */
};

/* The image without its digest, as Docker's listings show it, into @out. */
void service_image_short(const char *image, char *out, size_t len);

/* "running/desired" from ServiceStatus, with " (max N per node)" when
 * Placement.MaxReplicas is set, into @out. */
void service_replicas(json_t *service, char *out, size_t len);

/* Append "*:8080->80/tcp, ..." for the service's ingress-published ports. */
int service_ports(json_t *service, struct buf *out);

/* Append the listing of @services (GET /services?status=true) sorted by name
 * in natural order, columns ID NAME MODE REPLICAS IMAGE PORTS. Returns 0 or
 * SHOAL_ENOMEM. */
int service_format_list(json_t *services, enum svc_list_format fmt, struct buf *out);

struct task_list_opts {
	enum svc_list_format fmt;
	bool no_trunc; /* full ids, images with digests, whole errors */
	int64_t now_ns;
};

/* Append Docker's task listing of @tasks (ID NAME IMAGE NODE DESIRED STATE
 * CURRENT STATE ERROR PORTS; COLOR after NAME, and "Color" in JSON, when
 * a task has a blue/green Color): names "web.1" (global: "web.<node id>"), the
 * older tasks of a slot after the newest as " \_ web.1", services and nodes
 * named from @services and @nodes (arrays; either may be NULL). Returns 0 or
 * SHOAL_ENOMEM. */
int task_format_list(json_t *tasks, json_t *services, json_t *nodes,
		     const struct task_list_opts *opts, struct buf *out);

struct client;
struct shoal_err;

/* GET /tasks?filters=@filters (a Docker filters object: key -> {value: true};
 * may be NULL), then the services and nodes that name them, and append the
 * listing as task_format_list() does. Returns 0 or the client's error. */
int task_fetch_and_format(struct client *client, json_t *filters, const struct task_list_opts *opts,
			  struct buf *out, struct shoal_err *err);

/* Append Docker's human-friendly view of one service ("--pretty"). */
int service_format_pretty(json_t *service, struct buf *out);

#endif
