/* `image pull`: resolve, fetch and verify off the owner's thread; register on it, all or nothing.
 */
#include "runtime/image_pull.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/registry.h"

#define SHORT_ID_LEN	   12
#define PROGRESS_STEPS	   50u		/* "Downloading" messages per layer, at most ... */
#define PROGRESS_MIN_BYTES (256u << 10) /* ... and at least this many bytes apart */

/* A pull: new (owner) -> fetch (worker) -> finish (owner) -> free. Fetch fails
 * on a network or HTTP error, an unknown tag, a digest or size mismatch, a
 * document that does not parse or an unknown media type, or cancellation;
 * finish fails when registration does (a layer that does not unpack or
 * match its diff_id). Any failure leaves nothing registered, and gc removes
 * the blobs the pull wrote once no other pull runs. */
struct image_pull {
	struct image_store *s;
	bool pinned;
	struct registry_ref ref;
	struct registry_client *client;
	atomic_bool cancel;
	image_pull_progress_fn progress;
	void *arg;
	/* filled by fetch */
	struct digest top;	/* what the tag resolved to (an index or a manifest) */
	struct digest manifest; /* the linux/amd64 manifest */
	struct oci_manifest m;
	bool *had_layer; /* per layer: its blob was in the store already */
	char display[IMAGE_REF_MAX + DIGEST_LEN + 2];
	/* during a blob download */
	char cur_id[SHORT_ID_LEN + 1];
	uint64_t last_reported;
};

static void report(struct image_pull *p, const char *status, const char *id)
{
	struct image_pull_progress e = {.status = status, .id = id};

	if (p->progress != NULL)
		p->progress(p->arg, &e);
}

static void short_id(const struct digest *d, char out[SHORT_ID_LEN + 1])
{
	memcpy(out, d->str + DIGEST_PREFIX_LEN, SHORT_ID_LEN);
	out[SHORT_ID_LEN] = '\0';
}

int image_pull_new(struct image_store *s, const char *ref, const struct image_pull_opts *opts,
		   image_pull_progress_fn progress, void *arg, struct image_pull **out,
		   struct shoal_err *err)
{
	struct registry_opts ro;
	struct image_pull *p = calloc(1, sizeof(*p));
	int rv;

	if (p == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	p->s = s;
	p->progress = progress;
	p->arg = arg;
	atomic_init(&p->cancel, false);
	rv = registry_ref_parse(ref, &p->ref, err);
	if (rv != 0)
		goto fail;
	memset(&ro, 0, sizeof(ro));
	ro.insecure = opts->insecure;
	ro.n_insecure = opts->n_insecure;
	ro.certs_dir = opts->certs_dir;
	ro.cancel = &p->cancel;
	rv = registry_client_new(&p->ref, &ro, &p->client, err);
	if (rv != 0)
		goto fail;
	if (p->ref.name[0] != '\0')
		snprintf(p->display, sizeof(p->display), "%s", p->ref.name);
	else
		snprintf(p->display, sizeof(p->display), "%s@%s", p->ref.family, p->ref.digest.str);
	image_store_pin(s);
	p->pinned = true;
	*out = p;
	return 0;
fail:
	image_pull_free(p);
	return rv;
}

const char *image_pull_name(const struct image_pull *p)
{
	return p->display;
}

void image_pull_cancel(struct image_pull *p)
{
	atomic_store(&p->cancel, true);
}

static void on_blob_progress(void *arg, uint64_t current, uint64_t total)
{
	struct image_pull *p = arg;
	uint64_t step = total / PROGRESS_STEPS;
	struct image_pull_progress e = {.status = "Downloading",
					.id = p->cur_id,
					.has_detail = true,
					.current = current,
					.total = total};

	if (step < PROGRESS_MIN_BYTES)
		step = PROGRESS_MIN_BYTES;
	if (current == 0 || current >= total || current - p->last_reported < step)
		return;
	p->last_reported = current;
	if (p->progress != NULL)
		p->progress(p->arg, &e);
}

/* Fetch blob @d of @size bytes unless the store has it. *@had says which. */
static int fetch_blob(struct image_pull *p, const struct digest *d, uint64_t size, bool layer,
		      bool *had, struct shoal_err *err)
{
	uint64_t have;
	int rv;

	*had = false;
	if (image_store_blob_stat(p->s, d, &have, NULL) == 0 && have == size) {
		*had = true;
		if (layer)
			report(p, "Already exists", p->cur_id);
		return 0;
	}
	p->last_reported = 0;
	rv = registry_get_blob(p->client, p->s, d, size, layer ? on_blob_progress : NULL, p, err);
	if (rv != 0)
		return rv;
	if (layer) {
		report(p, "Verifying Checksum", p->cur_id);
		report(p, "Download complete", p->cur_id);
	}
	return 0;
}

int image_pull_fetch(struct image_pull *p, struct shoal_err *err)
{
	char *body = NULL;
	size_t len;
	enum oci_media_type type;
	struct digest md;
	bool had;
	int rv;

	rv = registry_get_manifest(p->client, p->ref.has_digest ? p->ref.digest.str : p->ref.tag,
				   &body, &len, &type, &p->top, err);
	if (rv != 0)
		return rv;
	p->manifest = p->top;
	if (oci_media_type_is_index(type)) {
		struct oci_index idx;
		const struct oci_descriptor *sel;
		rv = oci_index_parse(body, len, &idx, err);
		if (rv == 0) {
			rv = oci_index_select(&idx, IMAGE_PLATFORM_OS, IMAGE_PLATFORM_ARCH, &sel,
					      err);
			if (rv == 0)
				p->manifest = sel->digest;
			oci_index_free(&idx);
		}
		free(body);
		body = NULL;
		if (rv != 0) {
			shoal_err_wrap(err, "the index of %s", p->display);
			return rv;
		}
		rv =
		    registry_get_manifest(p->client, p->manifest.str, &body, &len, &type, &md, err);
		if (rv != 0)
			return rv;
		if (!oci_media_type_is_manifest(type)) {
			free(body);
			return shoal_errf(err, SHOAL_EPROTO,
					  "the index of %s names %s for linux/amd64, which is not "
					  "an image manifest",
					  p->display, p->manifest.str);
		}
	}
	rv = oci_manifest_parse(body, len, &p->m, err);
	if (rv == 0 && p->m.media_type != type)
		rv = shoal_errf(err, SHOAL_EPROTO, "the registry sent it as %s but it says %s",
				oci_media_type_name(type), oci_media_type_name(p->m.media_type));
	if (rv == 0)
		rv = image_store_blob_put(p->s, body, len, &md, err);
	free(body);
	if (rv != 0) {
		shoal_err_wrap(err, "manifest %s of %s", p->manifest.str, p->display);
		return rv;
	}
	/* Docker's messages: after the manifest, "Pulling from REPO" with the tag. */
	{
		char msg[REGISTRY_REPO_MAX + 16];
		snprintf(msg, sizeof(msg), "Pulling from %s", p->ref.repo);
		report(p, msg,
		       p->ref.has_digest && p->ref.tag[0] == '\0' ? p->ref.digest.str : p->ref.tag);
	}
	if (p->m.config.size > OCI_MAX_CONFIG)
		return shoal_errf(err, SHOAL_ETOOBIG,
				  "the config of %s has %llu bytes, more than %u allowed",
				  p->display, (unsigned long long)p->m.config.size, OCI_MAX_CONFIG);
	p->had_layer = calloc(p->m.n_layers + 1, sizeof(*p->had_layer));
	if (p->had_layer == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < p->m.n_layers; i++) {
		short_id(&p->m.layers[i].digest, p->cur_id);
		report(p, "Pulling fs layer", p->cur_id);
	}
	rv = fetch_blob(p, &p->m.config.digest, p->m.config.size, false, &had, err);
	for (size_t i = 0; i < p->m.n_layers && rv == 0; i++) {
		short_id(&p->m.layers[i].digest, p->cur_id);
		rv = fetch_blob(p, &p->m.layers[i].digest, p->m.layers[i].size, true,
				&p->had_layer[i], err);
	}
	return rv;
}

int image_pull_finish(struct image_pull *p, int fetch_rv, struct shoal_err *err)
{
	const char *names[1] = {p->ref.name};
	struct image_add add = {
	    .manifest = p->manifest, .names = names, .n_names = p->ref.name[0] != '\0' ? 1 : 0};
	const struct image *old = NULL;
	bool up_to_date = false;
	char id[SHORT_ID_LEN + 1], msg[sizeof(p->display) + 64];
	int rv = fetch_rv;

	PRE(p->pinned);
	if (rv == 0 && image_store_closing(p->s))
		rv = shoal_errf(err, SHOAL_ESHUTDOWN, "the daemon is shutting down");
	if (rv == 0) {
		if (add.n_names == 1 && image_store_lookup(p->s, p->ref.name, &old, NULL) == 0 &&
		    digest_equal(&old->manifest_digest, &p->manifest))
			up_to_date = true;
		else if (add.n_names == 0)
			for (size_t i = 0; i < image_store_count(p->s); i++)
				if (digest_equal(&image_store_at(p->s, i)->manifest_digest,
						 &p->manifest))
					up_to_date = true;
		rv = image_store_add(p->s, &add, 1, NULL, err);
		if (rv != 0)
			shoal_err_wrap(err, "register %s", p->display);
	}
	if (rv == 0) {
		for (size_t i = 0; i < p->m.n_layers; i++) {
			if (p->had_layer[i])
				continue;
			short_id(&p->m.layers[i].digest, id);
			report(p, "Pull complete", id);
		}
		snprintf(msg, sizeof(msg), "Digest: %s", p->top.str);
		report(p, msg, NULL);
		snprintf(msg, sizeof(msg), "Status: %s for %s",
			 up_to_date ? "Image is up to date" : "Downloaded newer image", p->display);
		report(p, msg, NULL);
	}
	p->pinned = false;
	if (image_store_closing(p->s)) {
		image_store_unpin(p->s); /* frees the store */
		return rv;
	}
	image_store_unpin(p->s);
	/* What this pull wrote and no image references goes away (unless other
	 * pulls still run: then a later gc does it). */
	if (rv != 0)
		image_store_gc(p->s, NULL, NULL);
	return rv;
}

void image_pull_free(struct image_pull *p)
{
	if (p == NULL)
		return;
	if (p->pinned)
		image_store_unpin(p->s);
	registry_client_free(p->client);
	oci_manifest_free(&p->m);
	free(p->had_layer);
	free(p);
}
