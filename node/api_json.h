/* Docker Engine API JSON documents built from the daemon's state: /version,
 * /info, /swarm, nodes with their live fields, and node list filters. */
#ifndef SHOAL_NODE_API_JSON_H
#define SHOAL_NODE_API_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/err.h"
#include "node/api.h"
#include "node/records.h"

/* Each returns a new reference, or NULL when out of memory. */
json_t *api_json_version(const struct api_context *ctx);
json_t *api_json_info(const struct api_context *ctx);
/* The Swarm object; JoinTokens only if @with_tokens (GET /swarm has them, /info not). */
json_t *api_json_swarm(const struct cluster_rec *c, bool with_tokens);
/* A Node with its live fields: Status.State and ManagerStatus.Leader/Reachability. */
json_t *api_json_node(const struct api_context *ctx, const struct node_rec *n);

/* GET /nodes?filters=...: Docker's filter JSON, {"role":{"manager":true}} or
 * the older {"role":["manager"]}. Keys: id, name, role, membership, node.label. */
struct api_node_filter {
	json_t *terms; /* key -> array of values; NULL matches everything */
};

/* Parse @text ("" for none). SHOAL_EINVAL with Docker's message on bad input. */
int api_node_filter_parse(struct api_node_filter *f, const char *text, struct shoal_err *err);
bool api_node_filter_match(const struct api_node_filter *f, const struct api_context *ctx,
			   const struct node_rec *n);
void api_node_filter_free(struct api_node_filter *f);

#endif
