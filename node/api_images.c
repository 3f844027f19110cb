/* The image endpoints of the Docker Engine API: load, pull, list and remove
 * over the daemon's image store.
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "node/api.h"
#include "runtime/image_load.h"
#include "runtime/image_pull.h"

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
		api_reply_error(req, res, rv, err.msg);
		goto out;
	}
	log_info("api", "loaded %zu image(s) from a %zu-byte archive", lr.n_ids, req->body_len);
	/* Docker streams its progress; the load is done by now, so the
	 * stream carries only the result lines. */
	if (load_report(s, &lr, &out) != 0) {
		api_reply_error(req, res, SHOAL_ENOMEM, "out of memory");
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
	tags = oci_strlist_to_json(&img->names);
	if (img->names.n == 0 && tags != NULL &&
	    json_array_append_new(tags, json_string("<none>:<none>")) != 0) {
		json_decref(tags);
		tags = NULL;
	}
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
		api_reply_error(req, res, SHOAL_EINVAL,
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
	api_reply_json(req, res, 200, list);
	return;
oom:
	for (size_t i = 0; items != NULL && i < n; i++)
		json_decref(items[i]);
	free(items);
	json_decref(list);
	api_reply_error(req, res, SHOAL_ENOMEM, "out of memory");
}

/* --- remove ----------------------------------------------------------------- */

/* A container of this node using @img, or NULL. */
static const struct container *image_user(const struct containers *cs, const struct image *img)
{
	for (size_t i = 0; cs != NULL && i < ctr_count(cs); i++)
		if (digest_equal(&ctr_at(cs, i)->image_id, &img->id))
			return ctr_at(cs, i);
	return NULL;
}

/* Docker refuses to take an image from under a container; so do we, and
 * unlike Docker also with force when the image itself would go (its layers
 * are the container's root filesystem). Untagging one of several names is
 * allowed with force. */
static int image_in_use(struct image_store *s, const struct containers *cs, const char *name,
			bool force, struct shoal_err *err)
{
	const struct image *img;
	const struct container *user;
	bool by_name;

	if (image_store_lookup(s, name, &img, NULL) != 0)
		return 0; /* image_store_remove() answers "No such image" */
	user = image_user(cs, img);
	if (user == NULL)
		return 0;
	by_name =
	    strncmp(name, "sha256:", 7) != 0 && strncmp(img->id.str + 7, name, strlen(name)) != 0;
	if (by_name && !force)
		return shoal_errf(err, SHOAL_ECONFLICT,
				  "conflict: unable to remove repository reference \"%s\" (must "
				  "force) - container %.12s is using its referenced image %.12s",
				  name, user->id, img->id.str + 7);
	if (by_name && img->names.n > 1)
		return 0;
	return shoal_errf(
	    err, SHOAL_ECONFLICT,
	    "conflict: unable to delete %.12s (cannot be forced) - image is being used "
	    "by container %.12s",
	    img->id.str + 7, user->id);
}

void api_images_delete(struct image_store *s, const struct containers *cs, const char *name,
		       struct http_request *req, struct http_response *res)
{
	struct image_remove_report rep;
	struct shoal_err err;
	json_t *list;
	int rv;

	rv = image_in_use(s, cs, name, api_query_bool(req, "force"), &err);
	if (rv != 0) {
		api_reply_error(req, res, rv, err.msg);
		return;
	}
	memset(&rep, 0, sizeof rep);
	/* noprune only matters for parent images, which loaded images do not have. */
	rv = image_store_remove(s, name, api_query_bool(req, "force"), &rep, &err);
	if (rv != 0) {
		api_reply_error(req, res, rv, err.msg);
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
	api_reply_json(req, res, 200, list);
}

/* --- pull ------------------------------------------------------------------- */

static struct {
	uv_loop_t *loop;
	char certs_dir[PATH_MAX];
	const char *const *insecure;
	size_t n_insecure;
} pull_cfg;

#define PULL_WATCH_MS	   250 /* how often a pull checks that its client is still there */
#define PULL_MAX_FROMIMAGE 1024

/* One pull in flight. The loop thread: parse the query, image_pull_new()
 * (a bad reference -> 400), queue the work. The pool thread: image_pull_fetch(),
 * its progress appended as JSON lines to @queued under @lock, then a
 * uv_async_send(). The loop thread again: @async streams what is queued (the
 * 200 starts with the first line); @watch cancels the pull once the client
 * is gone; after_work registers the image (image_pull_finish()) and ends the
 * response with the result or the error; the two handles close and the last
 * close frees the request. */
struct pull_req {
	uv_work_t work;
	uv_async_t async;
	uv_timer_t watch;
	uv_mutex_t lock;
	struct buf queued; /* under lock */
	struct image_pull *pull;
	struct http_request *req;
	struct http_response *res;
	bool started; /* the chunked 200 is out */
	int rv;
	struct shoal_err err;
	unsigned handles; /* open handles; the last close frees */
};

/* Docker's JSONMessage for @p. Called on both threads. */
static void pull_progress(void *arg, const struct image_pull_progress *p)
{
	struct pull_req *r = arg;
	json_t *j = json_pack("{s:s}", "status", p->status);
	char *text;

	if (j != NULL && p->id != NULL)
		json_object_set_new(j, "id", json_string(p->id));
	if (j != NULL && p->has_detail)
		json_object_set_new(j, "progressDetail",
				    json_pack("{s:I, s:I}", "current", (json_int_t)p->current,
					      "total", (json_int_t)p->total));
	text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (text == NULL)
		return; /* out of memory: a progress line is dropped, not the pull */
	uv_mutex_lock(&r->lock);
	if (buf_appendf(&r->queued, "%s\n", text) != 0)
		log_warn("api", "pull: a progress message dropped: out of memory");
	uv_mutex_unlock(&r->lock);
	free(text);
	uv_async_send(&r->async);
}

static void pull_flush(struct pull_req *r)
{
	struct buf out;

	uv_mutex_lock(&r->lock);
	out = r->queued;
	buf_init(&r->queued);
	uv_mutex_unlock(&r->lock);
	if (out.len > 0) {
		if (!r->started) {
			r->started = true;
			http_stream_start(r->res, 200, "application/json");
		}
		http_stream_write(r->res, out.data, out.len);
	}
	buf_free(&out);
}

static void pull_on_async(uv_async_t *h)
{
	struct pull_req *r = h->data;

	if (r->res == NULL)
		return; /* finished: the handle is closing */
	pull_flush(r);
}

static void pull_on_watch(uv_timer_t *h)
{
	struct pull_req *r = h->data;

	if (r->res != NULL && r->pull != NULL && http_response_gone(r->res))
		image_pull_cancel(r->pull);
}

static void pull_closed(uv_handle_t *h)
{
	struct pull_req *r = h->data;

	if (--r->handles > 0)
		return;
	uv_mutex_destroy(&r->lock);
	buf_free(&r->queued);
	free(r);
}

static void pull_work(uv_work_t *w)
{
	struct pull_req *r = w->data;

	r->rv = image_pull_fetch(r->pull, &r->err);
}

static void pull_after_work(uv_work_t *w, int status)
{
	struct pull_req *r = w->data;
	int rv = r->rv;

	if (status == UV_ECANCELED && rv == 0)
		rv = shoal_errf(&r->err, SHOAL_ESHUTDOWN, "the pull was cancelled");
	rv = image_pull_finish(r->pull, rv, &r->err);
	pull_flush(r);
	if (rv != 0) {
		log_info("api", "pull failed: %s", r->err.msg);
		if (!r->started) {
			api_reply_error(r->req, r->res, rv, r->err.msg);
		} else {
			json_t *j = json_pack("{s:{s:s}, s:s}", "errorDetail", "message",
					      r->err.msg, "error", r->err.msg);
			char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
			struct buf line;
			buf_init(&line);
			if (text != NULL && buf_appendf(&line, "%s\n", text) == 0)
				http_stream_write(r->res, line.data, line.len);
			buf_free(&line);
			free(text);
			json_decref(j);
			http_stream_end(r->res);
		}
	} else {
		log_info("api", "pulled %s", image_pull_name(r->pull));
		if (!r->started)
			http_stream_start(r->res, 200, "application/json");
		http_stream_end(r->res);
	}
	r->res = NULL;
	r->req = NULL;
	image_pull_free(r->pull);
	r->pull = NULL;
	uv_close((uv_handle_t *)&r->async, pull_closed);
	uv_close((uv_handle_t *)&r->watch, pull_closed);
}

void api_images_pull_setup(uv_loop_t *loop, const char *state_dir, const char *const *insecure,
			   size_t n_insecure)
{
	pull_cfg.loop = loop;
	snprintf(pull_cfg.certs_dir, sizeof(pull_cfg.certs_dir), "%s/certs.d", state_dir);
	pull_cfg.insecure = insecure;
	pull_cfg.n_insecure = n_insecure;
}

void api_images_pull(struct image_store *s, struct http_request *req, struct http_response *res)
{
	char from[PULL_MAX_FROMIMAGE], tag[256], ref[PULL_MAX_FROMIMAGE + 260];
	struct image_pull_opts opts;
	struct pull_req *r;
	struct shoal_err err;
	int rv;

	if (pull_cfg.loop == NULL) {
		api_reply_error(req, res, SHOAL_ESTATE,
				"pulling images is not set up in this daemon");
		return;
	}
	if (http_query_get(req, "fromSrc", from, sizeof(from)) && from[0] != '\0') {
		api_reply_error(req, res, SHOAL_EINVAL,
				"importing images (fromSrc) is not supported by shoal: use docker "
				"load or pull from a registry");
		return;
	}
	if (!http_query_get(req, "fromImage", from, sizeof(from)) || from[0] == '\0') {
		api_reply_error(req, res, SHOAL_EINVAL,
				"the fromImage parameter is missing or longer than 1023 bytes");
		return;
	}
	if (!http_query_get(req, "tag", tag, sizeof(tag)))
		tag[0] = '\0';
	if (tag[0] == '\0')
		snprintf(ref, sizeof(ref), "%s", from);
	else
		snprintf(ref, sizeof(ref), "%s%s%s", from,
			 strncmp(tag, "sha256:", 7) == 0 ? "@" : ":", tag);
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		api_reply_error(req, res, SHOAL_ENOMEM, "out of memory");
		return;
	}
	memset(&opts, 0, sizeof(opts));
	opts.insecure = pull_cfg.insecure;
	opts.n_insecure = pull_cfg.n_insecure;
	opts.certs_dir = pull_cfg.certs_dir;
	rv = image_pull_new(s, ref, &opts, pull_progress, r, &r->pull, &err);
	if (rv != 0) {
		free(r);
		api_reply_error(req, res, rv, err.msg);
		return;
	}
	r->req = req;
	r->res = res;
	buf_init(&r->queued);
	if (uv_mutex_init(&r->lock) != 0) {
		image_pull_free(r->pull);
		free(r);
		api_reply_error(req, res, SHOAL_ENOMEM, "cannot create a mutex");
		return;
	}
	/* Neither init fails on a valid loop. */
	uv_async_init(pull_cfg.loop, &r->async, pull_on_async);
	uv_timer_init(pull_cfg.loop, &r->watch);
	r->async.data = r;
	r->watch.data = r;
	r->work.data = r;
	r->handles = 2;
	uv_timer_start(&r->watch, pull_on_watch, PULL_WATCH_MS, PULL_WATCH_MS);
	log_info("api", "pulling %s", ref);
	rv = uv_queue_work(pull_cfg.loop, &r->work, pull_work, pull_after_work);
	if (rv != 0) {
		r->rv =
		    shoal_errf(&r->err, SHOAL_EIO, "cannot queue the pull: %s", uv_strerror(rv));
		pull_after_work(&r->work, 0);
	}
}
