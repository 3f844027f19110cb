/* Node certificates: a node's id, role and identity key, valid for a period,
 * signed by the cluster root key (Ed25519).
 *
 * Encoding: one msgpack array [format 1, node id, role, node key, root key,
 * not before, not after, signature] in msgpack's shortest forms. The
 * signature covers "shoal node certificate v1" followed by every byte of the
 * encoding before the signature field. */
#ifndef SHOAL_NET_CERT_H
#define SHOAL_NET_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/id.h"
#include "net/identity.h"

#define CERT_SIG_LEN 64
/* The largest encoded certificate cert_decode() accepts. */
#define CERT_MAX_ENCODED 512

enum cert_role { CERT_ROLE_WORKER = 1, CERT_ROLE_MANAGER = 2 };

struct cert {
	char node_id[ID_LEN + 1];
	enum cert_role role;
	unsigned char node_pk[IDENTITY_PK_LEN]; /* the node's identity key */
	unsigned char root_pk[IDENTITY_PK_LEN]; /* the issuing cluster root key */
	int64_t not_before;			/* ns since the epoch */
	int64_t not_after;			/* ns since the epoch */
	unsigned char sig[CERT_SIG_LEN];	/* root's signature over the fields above */
};

/* Issue a certificate for @node_id / @role / @node_pk valid from @now for
 * @ttl_ns, signed with @root. Verifiers compare against their own clock, so
 * an issuer that wants to absorb clock differences passes @now a little in
 * the past. Returns 0 or SHOAL_EINVAL (bad id or role, @ttl_ns not positive,
 * or an end past the int64 range). */
int cert_issue(struct cert *out, const char *node_id, enum cert_role role,
	       const unsigned char node_pk[IDENTITY_PK_LEN], int64_t now, int64_t ttl_ns,
	       const struct identity *root, struct shoal_err *err);

/* Check @c's signature against the root key @root_pk and its validity at @now.
 * Returns 0, or SHOAL_EPROTO ("certificate of node X is not signed by this
 * cluster's root key" / "... expired at T" / "... not valid before T"). */
int cert_verify(const struct cert *c, const unsigned char root_pk[IDENTITY_PK_LEN], int64_t now,
		struct shoal_err *err);

/* Append the encoding of @c (at most CERT_MAX_ENCODED bytes) to @out.
 * Returns 0 or SHOAL_ENOMEM. */
int cert_encode(const struct cert *c, struct buf *out);

/* Decode untrusted bytes (at most CERT_MAX_ENCODED). Types, lengths, the
 * node id, role and validity order are checked, trailing bytes refused, and
 * only the canonical encoding (what cert_encode() writes) is accepted, so a
 * certificate has exactly one encoding. Returns 0 or SHOAL_EPROTO with the
 * reason; *@out is unspecified then. Does not verify the signature: call
 * cert_verify(). */
int cert_decode(const void *data, size_t len, struct cert *out, struct shoal_err *err);

/* "worker" or "manager" ("unknown" for anything else). */
const char *cert_role_name(enum cert_role role);

#endif
