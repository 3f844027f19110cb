/* Registry HTTP API v2 client: image references, bearer-token challenges, manifests and blobs. */
#ifndef SHOAL_RUNTIME_REGISTRY_H
#define SHOAL_RUNTIME_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "runtime/digest.h"
#include "runtime/image_store.h"

#define REGISTRY_HOST_MAX  256u	 /* bytes of "host[:port]" with its NUL */
#define REGISTRY_REPO_MAX  256u	 /* bytes of a repository path with its NUL */
#define REGISTRY_TAG_MAX   129u	 /* a tag of up to 128 characters and its NUL */
#define REGISTRY_REALM_MAX 1024u /* bytes of a challenge's realm URL with its NUL */
#define REGISTRY_PARAM_MAX 512u	 /* bytes of a challenge's service or scope with its NUL */

/* A reference to pull, as Docker reads it: [DOMAIN/]PATH[:TAG][@DIGEST]. The
 * first path component is a domain when it holds '.' or ':' or is
 * "localhost"; else the domain is docker.io. */
struct registry_ref {
	char domain[REGISTRY_HOST_MAX]; /* "docker.io", "127.0.0.1:5000": for
					 * --insecure-registry and certs.d */
	char host[REGISTRY_HOST_MAX];	/* where to connect: docker.io ->
					 * "registry-1.docker.io" */
	char repo[REGISTRY_REPO_MAX];	/* "library/busybox", "test/bb" */
	char tag[REGISTRY_TAG_MAX];	/* "latest" by default; "" with a digest only */
	bool has_digest;
	struct digest digest;	    /* when has_digest */
	char name[IMAGE_REF_MAX];   /* familiar "repo:tag" to register ("busybox:latest",
				     * "127.0.0.1:5000/test/bb:v1"); "" for a digest pull */
	char family[IMAGE_REF_MAX]; /* familiar repository: "busybox", "127.0.0.1:5000/test/bb" */
};

/* Parse @s into *@out. Refuses (SHOAL_EINVAL, with Docker's "invalid reference
 * format" wording) anything the distribution grammar does not allow, and
 * digests other than sha256. */
int registry_ref_parse(const char *s, struct registry_ref *out, struct shoal_err *err);

/* A WWW-Authenticate challenge of the Bearer scheme. Missing parameters are "". */
struct registry_challenge {
	char realm[REGISTRY_REALM_MAX];
	char service[REGISTRY_PARAM_MAX];
	char scope[REGISTRY_PARAM_MAX];
};

/* Parse the @len bytes at @hdr (no NUL needed; untrusted) as
 * `Bearer k="v",k2=token,...` (RFC 7235 auth-params: tokens or quoted strings
 * with backslash escapes; the scheme is case-insensitive, unknown parameters
 * are skipped). The realm must be present and an http(s) URL. Returns 0,
 * SHOAL_EPROTO (malformed, another scheme, a duplicate parameter) or
 * SHOAL_ETOOBIG (a value longer than its field). */
int registry_challenge_parse(const char *hdr, size_t len, struct registry_challenge *out,
			     struct shoal_err *err);

/* How to reach registries. Strings must outlive the client. */
struct registry_opts {
	const char *const *insecure; /* "host:port" (or "host") served over plain HTTP */
	size_t n_insecure;
	const char *certs_dir;	   /* NULL, or a directory of <host[:port]>/ca.crt (Docker's
				    * certs.d): an extra CA for that registry */
	const atomic_bool *cancel; /* may be NULL: when it turns true, transfers stop
				    * with SHOAL_ESHUTDOWN */
};

struct registry_client;

/* A client for the registry of @ref: HTTPS with the system's CAs (plus
 * certs.d's), plain HTTP when ref->domain is in opts->insecure. Anonymous
 * bearer tokens are fetched when the registry asks for one, and reused.
 * Connect timeout 15 s; a transfer slower than 1 KB/s for 30 s fails.
 * Returns 0 with *@out to free with registry_client_free(), or SHOAL_ENOMEM. */
int registry_client_new(const struct registry_ref *ref, const struct registry_opts *opts,
			struct registry_client **out, struct shoal_err *err);
void registry_client_free(struct registry_client *c);

/* GET /v2/<repo>/manifests/@reference (a tag or a digest) accepting the OCI
 * index and manifest and Docker's list and v2 manifest. At most
 * OCI_MAX_MANIFEST bytes. On success *@body (heap, NUL-terminated; the caller
 * frees it) holds the document, *@type its media type (from Content-Type, else
 * its mediaType field: never OCI_MT_UNKNOWN), *@digest the digest of its bytes,
 * checked against @reference when that is a digest and against the registry's
 * Docker-Content-Digest header. Errors: SHOAL_ENOTFOUND ("manifest unknown"),
 * SHOAL_EPROTO (a digest mismatch, an unsupported media type), SHOAL_EIO
 * (network, TLS, HTTP), SHOAL_ESHUTDOWN (cancelled). */
int registry_get_manifest(struct registry_client *c, const char *reference, char **body,
			  size_t *len, enum oci_media_type *type, struct digest *digest,
			  struct shoal_err *err);

/* Progress of a blob: bytes written so far and the expected total. Return
 * nothing; called from the thread running registry_get_blob(). */
typedef void (*registry_progress_fn)(void *arg, uint64_t current, uint64_t total);

/* GET /v2/<repo>/blobs/<@d> (following redirects, http(s) only) streamed into
 * @s through image_store_blob_begin/write/commit: @size bytes, no more, with
 * the digest @d. Only creates files in the store (see image_store_pin()).
 * @progress may be NULL. Errors: SHOAL_EPROTO (digest or size mismatch),
 * SHOAL_ENOTFOUND, SHOAL_EIO, SHOAL_ESHUTDOWN. */
int registry_get_blob(struct registry_client *c, struct image_store *s, const struct digest *d,
		      uint64_t size, registry_progress_fn progress, void *arg,
		      struct shoal_err *err);

#endif
