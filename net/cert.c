/* Node certificates: canonical msgpack encoding, root signatures, validity. */
#include "net/cert.h"

#include <msgpack.h>
#include <sodium.h>
#include <string.h>

#include "lib/clock.h"
#include "net/wire.h"

/* The encoding is one msgpack array, fields in this order:
 *   [format, node id, role, node key, root key, not before, not after, signature]
 * in msgpack's shortest form (what msgpack-c's packer writes). The signature
 * covers SIGN_CONTEXT followed by every byte of the encoding before the
 * signature field, so nothing the root key signs for another purpose can pass
 * for a certificate. */
#define CERT_FORMAT  1
#define CERT_FIELDS  8
#define SIGN_CONTEXT "shoal node certificate v1"
#define CONTEXT_LEN  (sizeof(SIGN_CONTEXT) - 1)

/* A fixed buffer for msgpack's packer: certificates are small. */
struct fixed {
	unsigned char data[CONTEXT_LEN + CERT_MAX_ENCODED];
	size_t len;
};

static int fixed_write(void *arg, const char *p, size_t n)
{
	struct fixed *f = arg;

	if (n > sizeof(f->data) - f->len)
		return -1;
	memcpy(f->data + f->len, p, n);
	f->len += n;
	return 0;
}

static bool role_valid(int64_t role)
{
	return role == CERT_ROLE_WORKER || role == CERT_ROLE_MANAGER;
}

/* Pack every field but the signature. */
static int pack_body(const struct cert *c, msgpack_packer *pk)
{
	size_t id_len = strlen(c->node_id);

	if (msgpack_pack_array(pk, CERT_FIELDS) != 0 || msgpack_pack_uint8(pk, CERT_FORMAT) != 0 ||
	    msgpack_pack_str(pk, id_len) != 0 ||
	    msgpack_pack_str_body(pk, c->node_id, id_len) != 0 ||
	    msgpack_pack_uint8(pk, (uint8_t)c->role) != 0 ||
	    msgpack_pack_bin(pk, IDENTITY_PK_LEN) != 0 ||
	    msgpack_pack_bin_body(pk, c->node_pk, IDENTITY_PK_LEN) != 0 ||
	    msgpack_pack_bin(pk, IDENTITY_PK_LEN) != 0 ||
	    msgpack_pack_bin_body(pk, c->root_pk, IDENTITY_PK_LEN) != 0 ||
	    msgpack_pack_int64(pk, c->not_before) != 0 || msgpack_pack_int64(pk, c->not_after) != 0)
		return -1;
	return 0;
}

static int pack_sig(const struct cert *c, msgpack_packer *pk)
{
	if (msgpack_pack_bin(pk, CERT_SIG_LEN) != 0 ||
	    msgpack_pack_bin_body(pk, c->sig, CERT_SIG_LEN) != 0)
		return -1;
	return 0;
}

/* SIGN_CONTEXT + the encoded fields: what the root key signs. */
static void signed_bytes(const struct cert *c, struct fixed *out)
{
	msgpack_packer pk;
	int rv;

	out->len = 0;
	fixed_write(out, SIGN_CONTEXT, CONTEXT_LEN);
	msgpack_packer_init(&pk, out, fixed_write);
	rv = pack_body(c, &pk);
	/* A valid node id keeps the body far below CERT_MAX_ENCODED. */
	POST(rv == 0);
	(void)rv;
}

/* The whole encoding, signature included. */
static void encode(const struct cert *c, struct fixed *out)
{
	msgpack_packer pk;
	int rv;

	out->len = 0;
	msgpack_packer_init(&pk, out, fixed_write);
	rv = pack_body(c, &pk);
	if (rv == 0)
		rv = pack_sig(c, &pk);
	POST(rv == 0);
	(void)rv;
}

const char *cert_role_name(enum cert_role role)
{
	switch (role) {
	case CERT_ROLE_WORKER:
		return "worker";
	case CERT_ROLE_MANAGER:
		return "manager";
	}
	return "unknown";
}

int cert_issue(struct cert *out, const char *node_id, enum cert_role role,
	       const unsigned char node_pk[IDENTITY_PK_LEN], int64_t now, int64_t ttl_ns,
	       const struct identity *root, struct shoal_err *err)
{
	struct fixed msg;

	if (!id_is_valid_prefix(node_id))
		return shoal_errf(
		    err, SHOAL_EINVAL,
		    "invalid node id \"%.64s\": expected 1 to %d characters of [0-9a-z]", node_id,
		    ID_LEN);
	if (!role_valid(role))
		return shoal_errf(err, SHOAL_EINVAL, "invalid node role %d", (int)role);
	if (ttl_ns <= 0 || now > INT64_MAX - ttl_ns)
		return shoal_errf(err, SHOAL_EINVAL,
				  "invalid certificate lifetime of %lld ns: it must be positive "
				  "and end before the year 2262",
				  (long long)ttl_ns);
	memset(out, 0, sizeof(*out));
	memcpy(out->node_id, node_id, strlen(node_id) + 1);
	out->role = role;
	memcpy(out->node_pk, node_pk, IDENTITY_PK_LEN);
	memcpy(out->root_pk, root->pk, IDENTITY_PK_LEN);
	out->not_before = now;
	out->not_after = now + ttl_ns;
	signed_bytes(out, &msg);
	crypto_sign_detached(out->sig, NULL, msg.data, msg.len, root->sk);
	return 0;
}

int cert_verify(const struct cert *c, const unsigned char root_pk[IDENTITY_PK_LEN], int64_t now,
		struct shoal_err *err)
{
	char when[64];
	struct fixed msg;

	PRE(memchr(c->node_id, '\0', sizeof(c->node_id)) != NULL);
	if (memcmp(c->root_pk, root_pk, IDENTITY_PK_LEN) != 0)
		return shoal_errf(err, SHOAL_EPROTO,
				  "certificate of node %s is not signed by this cluster's root key",
				  c->node_id);
	signed_bytes(c, &msg);
	if (crypto_sign_verify_detached(c->sig, msg.data, msg.len, root_pk) != 0)
		return shoal_errf(err, SHOAL_EPROTO,
				  "certificate of node %s is not signed by this cluster's root key",
				  c->node_id);
	if (now < c->not_before) {
		clock_format_rfc3339(c->not_before, when, sizeof(when));
		return shoal_errf(err, SHOAL_EPROTO,
				  "certificate of node %s is not valid before %s: check the clocks "
				  "of both nodes",
				  c->node_id, when);
	}
	if (now >= c->not_after) {
		clock_format_rfc3339(c->not_after, when, sizeof(when));
		return shoal_errf(err, SHOAL_EPROTO,
				  "certificate of node %s expired at %s: the node must renew it",
				  c->node_id, when);
	}
	return 0;
}

int cert_encode(const struct cert *c, struct buf *out)
{
	struct fixed enc;

	encode(c, &enc);
	return buf_append(out, enc.data, enc.len);
}

/* --- decoding ------------------------------------------------------------ */

static bool rd_key(struct wire_reader *r, unsigned char out[IDENTITY_PK_LEN])
{
	const unsigned char *b;
	size_t n;

	if (!wire_rd_bin(r, IDENTITY_PK_LEN, &b, &n) || n != IDENTITY_PK_LEN)
		return false;
	memcpy(out, b, n);
	return true;
}

int cert_decode(const void *data, size_t len, struct cert *out, struct shoal_err *err)
{
	struct wire_reader r;
	struct fixed again;
	const unsigned char *b;
	int64_t format, role;
	uint64_t fields;
	size_t n;

	if (len > CERT_MAX_ENCODED)
		return shoal_errf(err, SHOAL_EPROTO,
				  "certificate of %zu bytes exceeds the limit of %d", len,
				  CERT_MAX_ENCODED);
	memset(out, 0, sizeof(*out));
	wire_rd_init(&r, data, len);
	if (!wire_rd_array(&r, &fields) || !wire_rd_int(&r, &format))
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: not a msgpack array");
	if (format != CERT_FORMAT)
		return shoal_errf(err, SHOAL_EPROTO,
				  "certificate format %lld is not supported (this node reads %d): "
				  "upgrade shoal",
				  (long long)format, CERT_FORMAT);
	if (fields != CERT_FIELDS)
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: %llu fields, not %d",
				  (unsigned long long)fields, CERT_FIELDS);
	if (!wire_rd_str(&r, ID_LEN, &b, &n))
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: bad node id");
	memcpy(out->node_id, b, n);
	out->node_id[n] = '\0';
	if (strlen(out->node_id) != n || !id_is_valid_prefix(out->node_id))
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: bad node id");
	if (!wire_rd_int(&r, &role) || !role_valid(role))
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: bad role");
	out->role = (enum cert_role)role;
	if (!rd_key(&r, out->node_pk) || !rd_key(&r, out->root_pk))
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: bad public key");
	if (!wire_rd_int(&r, &out->not_before) || !wire_rd_int(&r, &out->not_after) ||
	    out->not_after <= out->not_before)
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: bad validity period");
	if (!wire_rd_bin(&r, CERT_SIG_LEN, &b, &n) || n != CERT_SIG_LEN)
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: bad signature field");
	memcpy(out->sig, b, n);
	if (!wire_rd_done(&r))
		return shoal_errf(err, SHOAL_EPROTO, "malformed certificate: %zu trailing bytes",
				  len - r.pos);

	/* One encoding per certificate: what was read must be what we write. */
	encode(out, &again);
	if (again.len != len || memcmp(again.data, data, len) != 0)
		return shoal_errf(err, SHOAL_EPROTO,
				  "malformed certificate: not in canonical msgpack form");
	return 0;
}
