/* The image endpoints of the Docker Engine API: load, list and remove over the
 * daemon's image store.
 *
 * A load: the body, complete (the daemon has the HTTP core stream it to a
 * temp file, http_request.body_fd; a body held in memory is copied to a
 * memfd) -> image_load_fd(), which verifies everything and registers all or
 * nothing -> a chunked 200 of {"stream": ...} lines. Any failure is answered
 * with Docker's error body and the loader's message before the stream
 * starts. The load runs on the loop's thread: the store is not thread-safe,
 * and requests are served one at a time per connection anyway. */
#include "node/api_images.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "node/api.h"
#include "runtime/image_load.h"

static void reply_error(struct http_request *req, struct http_response *res, int code,
			const char *message)
{
	int status = api_status_for(code);
	struct buf body;

	if (status >= 500)
		log_warn("api", "%s %s: %d %s", req->method, req->path, status, message);
	else
		log_debug("api", "%s %s: %d %s", req->method, req->path, status, message);
	buf_init(&body);
	if (http_error_body(&body, message) != 0 || buf_append(&body, "\n", 1) != 0) {
		static const char oom[] = "{\"message\":\"out of memory\"}\n";
		http_respond(res, 500, "application/json", oom, sizeof(oom) - 1);
	} else {
		http_respond(res, status, "application/json", body.data, body.len);
	}
	buf_free(&body);
}

/* Reply with @json (a reference is stolen; NULL means out of memory), ended
 * by a newline as Go's encoder does. */
static void reply_json(struct http_request *req, struct http_response *res, json_t *json)
{
	char *text = json != NULL ? json_dumps(json, JSON_COMPACT) : NULL;
	struct buf body;

	json_decref(json);
	buf_init(&body);
	if (text == NULL || buf_appendf(&body, "%s\n", text) != 0)
		reply_error(req, res, SHOAL_ENOMEM, "out of memory");
	else
		http_respond(res, 200, "application/json", body.data, body.len);
	free(text);
	buf_free(&body);
}

/* --- load ------------------------------------------------------------------- */

/* A memory file holding @len bytes of @data, positioned at its start. */
static int body_memfd(const char *data, size_t len, int *out, struct shoal_err *err)
{
	int fd = memfd_create("shoal-image-load", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return shoal_errf(err, SHOAL_EIO, "create a memory file for the archive: %s",
				  strerror(errno));
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return shoal_errf(err,
					  e == ENOMEM || e == ENOSPC ? SHOAL_ENOMEM : SHOAL_EIO,
					  "copy the archive to a memory file: %s", strerror(e));
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return shoal_errf(err, SHOAL_EIO, "rewind the archive's memory file: %s",
				  strerror(errno));
	}
	*out = fd;
	return 0;
}

/* Append one progress line {"stream": "@prefix@text\n"} to @out. */
static int stream_line(struct buf *out, const char *prefix, const char *text)
{
	struct buf msg;
	json_t *j;
	char *s = NULL;
	int rv;

	buf_init(&msg);
	rv = buf_appendf(&msg, "%s%s\n", prefix, text);
	j = rv == 0 ? json_pack("{s:s}", "stream", msg.data) : NULL;
	if (j != NULL)
		s = json_dumps(j, JSON_COMPACT);
	rv = s != NULL ? buf_appendf(out, "%s\n", s) : SHOAL_ENOMEM;
	free(s);
	json_decref(j);
	buf_free(&msg);
	return rv;
}

static bool image_named_in(const struct image *img, const struct oci_strlist *names)
{
	for (size_t i = 0; i < img->names.n; i++)
		for (size_t k = 0; k < names->n; k++)
			if (strcmp(img->names.items[i], names->items[k]) == 0)
				return true;
	return false;
}

/* Docker's lines: "Loaded image: NAME" per name, "Loaded image ID: ID" for
 * an image the archive gave no name. */
static int load_report(struct image_store *s, const struct image_load_result *lr, struct buf *out)
{
	int rv = 0;

	for (size_t i = 0; i < lr->names.n && rv == 0; i++)
		rv = stream_line(out, "Loaded image: ", lr->names.items[i]);
	for (size_t i = 0; i < lr->n_ids && rv == 0; i++) {
		const struct image *img;
		if (image_store_lookup(s, lr->ids[i].str, &img, NULL) == 0 &&
		    image_named_in(img, &lr->names))
			continue;
		rv = stream_line(out, "Loaded image ID: ", lr->ids[i].str);
	}
	return rv;
}

void api_images_load(struct image_store *s, struct http_request *req, struct http_response *res)
{
	struct image_load_result lr;
	struct shoal_err err;
	struct buf out;
	int fd = -1, rv;

	memset(&lr, 0, sizeof lr);
	buf_init(&out);
	if (req->body_fd >= 0) {
		rv = image_load_fd(s, req->body_fd, &lr, &err);
	} else {
		rv = body_memfd(req->body, req->body_len, &fd, &err);
		if (rv == 0) {
			rv = image_load_fd(s, fd, &lr, &err);
			close(fd);
		}
	}
	if (rv != 0) {
		reply_error(req, res, rv, err.msg);
		goto out;
	}
	log_info("api", "loaded %zu image(s) from a %zu-byte archive", lr.n_ids, req->body_len);
	/* Docker streams its progress; the load is done by now, so the
	 * stream carries only the result lines. */
	if (load_report(s, &lr, &out) != 0) {
		reply_error(req, res, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	/* The stream is started either way: it must be ended either way. */
	if (http_stream_start(res, 200, "application/json") == 0)
		http_stream_write(res, out.data, out.len);
	http_stream_end(res);
out:
	image_load_result_free(&lr);
	buf_free(&out);
}

/* --- list ------------------------------------------------------------------- */

static json_t *strlist_json(const struct oci_strlist *l, const char *none)
{
	json_t *a = json_array();

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		if (json_array_append_new(a, json_string(l->items[i])) != 0)
			goto oom;
	}
	if (l->n == 0 && none != NULL && json_array_append_new(a, json_string(none)) != 0)
		goto oom;
	return a;
oom:
	json_decref(a);
	return NULL;
}

json_t *api_image_summary(const struct image *img)
{
	const struct oci_config *cfg = &img->config;
	json_t *j, *labels = json_null(), *tags, *digests;
	int64_t created_ns = 0;

	if (cfg->created != NULL && clock_parse_rfc3339(cfg->created, &created_ns) != 0)
		created_ns = 0;
	if (cfg->n_labels > 0) {
		labels = json_object();
		for (size_t i = 0; labels != NULL && i < cfg->n_labels; i++) {
			if (json_object_set_new(labels, cfg->labels[i].key,
						json_string(cfg->labels[i].value)) != 0) {
				json_decref(labels);
				labels = NULL;
			}
		}
	}
	tags = strlist_json(&img->names, "<none>:<none>");
	/* No image came from a registry, so none has a repository digest. */
	digests = json_array();
	if (img->names.n == 0 && digests != NULL &&
	    json_array_append_new(digests, json_string("<none>@<none>")) != 0) {
		json_decref(digests);
		digests = NULL;
	}
	if (labels == NULL || tags == NULL || digests == NULL) {
		json_decref(labels);
		json_decref(tags);
		json_decref(digests);
		return NULL;
	}
	j = json_pack("{s:I, s:I, s:s, s:o, s:s, s:o, s:o, s:I, s:I, s:I}", "Containers",
		      (json_int_t)-1, "Created", (json_int_t)(created_ns / 1000000000), "Id",
		      img->id.str, "Labels", labels, "ParentId", "", "RepoDigests", digests,
		      "RepoTags", tags, "SharedSize", (json_int_t)-1, "Size", (json_int_t)img->size,
		      "VirtualSize", (json_int_t)img->size);
	return j;
}

/* Newest first, as Docker lists them; ties by id. */
static int by_created_desc(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t cx = json_integer_value(json_object_get(x, "Created"));
	json_int_t cy = json_integer_value(json_object_get(y, "Created"));

	if (cx != cy)
		return cx > cy ? -1 : 1;
	return strcmp(json_string_value(json_object_get(x, "Id")),
		      json_string_value(json_object_get(y, "Id")));
}

/* True if a filters parameter asks for anything. */
static bool filters_given(struct http_request *req)
{
	size_t cap = strlen(req->query) + 1;
	char *text = malloc(cap);
	json_t *f;
	bool given;

	if (text == NULL)
		return true;
	if (!http_query_get(req, "filters", text, cap) || text[0] == '\0') {
		free(text);
		return false;
	}
	f = json_loads(text, 0, NULL);
	given = !json_is_object(f) || json_object_size(f) > 0;
	json_decref(f);
	free(text);
	return given;
}

void api_images_list(struct image_store *s, struct http_request *req, struct http_response *res)
{
	size_t n = image_store_count(s);
	json_t **items, *list;

	if (filters_given(req)) {
		reply_error(req, res, SHOAL_EINVAL,
			    "image list filters are not supported by shoal: list all images "
			    "(no filters parameter)");
		return;
	}
	items = calloc(n > 0 ? n : 1, sizeof *items);
	list = json_array();
	if (items == NULL || list == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		items[i] = api_image_summary(image_store_at(s, i));
		if (items[i] == NULL)
			goto oom;
	}
	qsort(items, n, sizeof *items, by_created_desc);
	for (size_t i = 0; i < n; i++) {
		json_t *it = items[i];
		items[i] = NULL;
		if (json_array_append_new(list, it) != 0)
			goto oom;
	}
	free(items);
	reply_json(req, res, list);
	return;
oom:
	for (size_t i = 0; items != NULL && i < n; i++)
		json_decref(items[i]);
	free(items);
	json_decref(list);
	reply_error(req, res, SHOAL_ENOMEM, "out of memory");
}

/* --- remove ----------------------------------------------------------------- */

void api_images_delete(struct image_store *s, const char *name, struct http_request *req,
		       struct http_response *res)
{
	struct image_remove_report rep;
	struct shoal_err err;
	json_t *list;
	int rv;

	memset(&rep, 0, sizeof rep);
	/* noprune only matters for parent images, which loaded images do not have. */
	rv = image_store_remove(s, name, api_query_bool(req, "force"), &rep, &err);
	if (rv != 0) {
		reply_error(req, res, rv, err.msg);
		return;
	}
	log_info("api", "removed image %s (%zu name(s) untagged%s)", name, rep.untagged.n,
		 rep.deleted ? ", image deleted" : "");
	list = json_array();
	for (size_t i = 0; list != NULL && i < rep.untagged.n; i++) {
		if (json_array_append_new(
			list, json_pack("{s:s}", "Untagged", rep.untagged.items[i])) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	if (list != NULL && rep.deleted &&
	    json_array_append_new(list, json_pack("{s:s}", "Deleted", rep.id.str)) != 0) {
		json_decref(list);
		list = NULL;
	}
	image_remove_report_free(&rep);
	reply_json(req, res, list);
}
