/* GET /containers/{id}/logs of the Docker Engine API: the json-file log as
 * Docker's multiplexed stream, followed while the container runs. */
#ifndef SHOAL_NODE_API_CTR_LOGS_H
#define SHOAL_NODE_API_CTR_LOGS_H

#include <stdbool.h>

#include "lib/err.h"
#include "node/http.h"
#include "runtime/container.h"
#include "runtime/logfile.h"

/* The logs endpoints' query (containers, services, tasks): stdout, stderr,
 * tail (N or "all"), since and until (Unix seconds with an optional
 * fraction, "1700000000.5" as the docker CLI sends them, or RFC 3339),
 * timestamps, follow. SHOAL_EINVAL with Docker's message for a bad value or
 * when neither stream is asked for; SHOAL_ENOMEM. */
int api_logs_query(struct http_request *req, struct logfile_query *q, bool *timestamps,
		   bool *follow, struct shoal_err *err);

/* GET /containers/@ref/logs?stdout=&stderr=&tail=N|all&timestamps=&since=&until=&follow=
 * -> 200 application/vnd.docker.raw-stream of Docker's frames (stream byte,
 * big-endian length, payload). since and until are Unix seconds with an
 * optional nanosecond fraction ("1700000000.5", as the docker CLI sends
 * them) or RFC 3339. 400 when neither stream is asked for or a parameter is
 * malformed; 404 for an unknown container.
 *
 * With follow on a running container the stream stays open: each time the
 * runtime reports new entries (ctr_log_watch) they are read from where the
 * last read ended (logfile_read_from, which starts over after a rotation).
 * It ends once the container is not running (after reading what is left),
 * when the container is removed, when @until has passed, or at the first
 * new entries after the client went away. Finishes @res exactly once, now
 * or later. */
void api_containers_logs(struct containers *cs, const char *ref, struct http_request *req,
			 struct http_response *res);

#endif
