/* The Docker Engine API's container endpoints (v1.41) over the node's
 * containers: create, start, stop, kill, restart, wait, remove, list and
 * inspect. Local to the node: nothing goes through the swarm, as in Docker. */
#ifndef SHOAL_NODE_API_CONTAINERS_H
#define SHOAL_NODE_API_CONTAINERS_H

#include <stdint.h>

#include <jansson.h>

#include "node/http.h"
#include "runtime/container.h"

/* Each handler finishes @res exactly once: at once, or later from the
 * runtime's callback (start, stop, restart, wait, remove). @req and @res
 * stay valid until then (the HTTP core keeps them even when the client has
 * gone); nothing else of the caller's is kept. @ref is a container's id,
 * unique id prefix or name. @cs may be NULL (no container runtime on this
 * daemon): every handler then answers 503. */

/* POST /containers/create?name=N with Docker's create @body: 201
 * {"Id","Warnings":[]}; 400 for a bad body or name, 404 "No such image: X"
 * (the docker CLI pulls then), 409 for a name in use. */
void api_containers_create(struct containers *cs, const json_t *body, struct http_request *req,
			   struct http_response *res);

/* POST /containers/{ref}/start: 204 once running, 304 if it was. */
void api_containers_start(struct containers *cs, const char *ref, struct http_request *req,
			  struct http_response *res);

/* POST /containers/{ref}/stop?t=N: 204 once exited, 304 if not running. */
void api_containers_stop(struct containers *cs, const char *ref, struct http_request *req,
			 struct http_response *res);

/* POST /containers/{ref}/restart?t=N: stop (if running), then start; 204. */
void api_containers_restart(struct containers *cs, const char *ref, struct http_request *req,
			    struct http_response *res);

/* POST /containers/{ref}/kill?signal=S (default SIGKILL): 204; 409 if not
 * running; 400 for an unknown signal. */
void api_containers_kill(struct containers *cs, const char *ref, struct http_request *req,
			 struct http_response *res);

/* POST /containers/{ref}/wait?condition=not-running|next-exit: a 200 whose
 * headers go out at once (as Docker's do) and whose body
 * {"Error":null,"StatusCode":N} follows when the container is not running
 * (not-running), or when the current run ends, or the next one if none is
 * in progress (next-exit: the one the API starts next). A wait that cannot
 * end so has StatusCode -1 and {"Error":{"Message":...}}: the container was
 * removed, or the daemon is shutting down. */
void api_containers_wait(struct containers *cs, const char *ref, struct http_request *req,
			 struct http_response *res);

/* Answer every wait still pending on @cs (next-exit of a container not
 * started yet) as the daemon shuts down. Call before the api is freed. */
void api_containers_close(struct containers *cs);

/* DELETE /containers/{ref}?force=1: 204 once gone; 409 with Docker's message
 * for a running container without force. */
void api_containers_remove(struct containers *cs, const char *ref, struct http_request *req,
			   struct http_response *res);

/* GET /containers/json?all=&limit=&filters=: Docker's ContainerSummary list,
 * newest first; only running ones unless all or a status filter. Filters:
 * id (prefix), name (substring of the name), status, label (key or
 * key=value); anything else is refused (400). */
void api_containers_list(struct containers *cs, struct http_request *req,
			 struct http_response *res);

/* GET /containers/{ref}/json: Docker's ContainerInspect. */
void api_containers_inspect(struct containers *cs, const char *ref, struct http_request *req,
			    struct http_response *res);

/* Docker's ContainerSummary and ContainerInspect of @c at @now_ns. Return a
 * new reference, or NULL when out of memory. */
json_t *api_container_summary(const struct container *c, int64_t now_ns);
json_t *api_container_inspect(const struct container *c);

/* Docker's humanised Status of a summary at @now_ns: "Up 3 seconds
 * (healthy)", "Exited (0) 2 seconds ago", "Created", ... into @out. */
void api_container_status_text(const struct container *c, int64_t now_ns, char *out, size_t len);

/* Look @ref up; on failure answer 404 (or 409 for an ambiguous prefix) and
 * return NULL. */
const struct container *api_ctr_find(struct containers *cs, const char *ref,
				     struct http_request *req, struct http_response *res);

#endif
