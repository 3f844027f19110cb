/* The cluster's RPC bodies: see cluster_msg.h. */
#include "node/cluster_msg.h"

#include <arpa/inet.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/wire.h"

#define JOIN_FIELDS  10
#define GRANT_FIELDS 6

static int buf_write(void *arg, const char *p, size_t n)
{
	return buf_append(arg, p, n);
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	return msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0 ? -1 : 0;
}

static int pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	return msgpack_pack_bin(pk, n) != 0 || msgpack_pack_bin_body(pk, p, n) != 0 ? -1 : 0;
}

static int oom(struct shoal_err *err)
{
	return shoal_errf(err, SHOAL_ENOMEM, "out of memory encoding a cluster message");
}

/* Read a str of at most @cap - 1 bytes of printable ASCII into @out. */
static bool rd_text(struct wire_reader *r, char *out, size_t cap)
{
	const unsigned char *p;
	size_t n;

	if (!wire_rd_str(r, cap - 1, &p, &n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

static int malformed(struct shoal_err *err, const char *what)
{
	return shoal_errf(err, SHOAL_EPROTO, "malformed %s message", what);
}

bool cluster_addr_valid(const char *addr)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr a;
	const char *colon = strrchr(addr, ':');
	char *end;
	unsigned long port;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(ip) || colon == addr)
		return false;
	memcpy(ip, addr, (size_t)(colon - addr));
	ip[colon - addr] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1 || colon[1] < '0' || colon[1] > '9')
		return false;
	port = strtoul(colon + 1, &end, 10);
	return *end == '\0' && port >= 1 && port <= 65535 && strlen(colon + 1) <= 5;
}

/* --- join ------------------------------------------------------------------ */

int join_request_encode(const struct join_request *r, struct buf *out, struct shoal_err *err)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, buf_write);
	if (msgpack_pack_array(&pk, JOIN_FIELDS) != 0 || pack_str(&pk, r->secret) != 0 ||
	    pack_str(&pk, r->hostname) != 0 || pack_str(&pk, r->cluster_addr) != 0 ||
	    pack_bin(&pk, r->node_pk, IDENTITY_PK_LEN) != 0 ||
	    msgpack_pack_uint8(&pk, (uint8_t)r->availability) != 0 ||
	    pack_str(&pk, r->architecture) != 0 || pack_str(&pk, r->os) != 0 ||
	    pack_str(&pk, r->engine_version) != 0 || msgpack_pack_int64(&pk, r->nano_cpus) != 0 ||
	    msgpack_pack_int64(&pk, r->memory_bytes) != 0)
		return oom(err);
	return 0;
}

int join_request_decode(const void *data, size_t len, struct join_request *out,
			struct shoal_err *err)
{
	struct wire_reader r;
	const unsigned char *pk;
	uint64_t n, avail;
	size_t pk_len;

	memset(out, 0, sizeof *out);
	wire_rd_init(&r, data, len);
	if (!wire_rd_array(&r, &n) || n != JOIN_FIELDS ||
	    !rd_text(&r, out->secret, sizeof out->secret) ||
	    !rd_text(&r, out->hostname, sizeof out->hostname) ||
	    !rd_text(&r, out->cluster_addr, sizeof out->cluster_addr) ||
	    !wire_rd_bin(&r, IDENTITY_PK_LEN, &pk, &pk_len) || pk_len != IDENTITY_PK_LEN ||
	    !wire_rd_uint(&r, &avail) || avail > 2 ||
	    !rd_text(&r, out->architecture, sizeof out->architecture) ||
	    !rd_text(&r, out->os, sizeof out->os) ||
	    !rd_text(&r, out->engine_version, sizeof out->engine_version) ||
	    !wire_rd_int(&r, &out->nano_cpus) || out->nano_cpus < 0 ||
	    !wire_rd_int(&r, &out->memory_bytes) || out->memory_bytes < 0 || !wire_rd_done(&r))
		return malformed(err, "join");
	if (!cluster_addr_valid(out->cluster_addr))
		return shoal_errf(err, SHOAL_EINVAL, "invalid cluster address '%s'",
				  out->cluster_addr);
	memcpy(out->node_pk, pk, IDENTITY_PK_LEN);
	out->availability = (int)avail;
	return 0;
}

/* --- grant ----------------------------------------------------------------- */

int grant_encode(const struct grant *g, struct buf *out, struct shoal_err *err)
{
	msgpack_packer pk;
	struct buf cert;
	int rv = 0;

	buf_init(&cert);
	if (g->has_cert && cert_encode(&g->cert, &cert) != 0) {
		buf_free(&cert);
		return oom(err);
	}
	msgpack_packer_init(&pk, out, buf_write);
	if (msgpack_pack_array(&pk, GRANT_FIELDS) != 0 || pack_str(&pk, g->node_id) != 0 ||
	    msgpack_pack_uint8(&pk, (uint8_t)g->role) != 0 ||
	    msgpack_pack_uint64(&pk, g->raft_id) != 0 ||
	    (g->has_cert ? pack_bin(&pk, cert.data, cert.len) : msgpack_pack_nil(&pk)) != 0 ||
	    pack_bin(&pk, g->keys, g->keys_len) != 0 || msgpack_pack_array(&pk, g->n_managers) != 0)
		rv = oom(err);
	for (size_t i = 0; rv == 0 && i < g->n_managers; i++)
		if (pack_str(&pk, g->managers[i]) != 0)
			rv = oom(err);
	buf_free(&cert);
	return rv;
}

int grant_decode(const void *data, size_t len, struct grant *out, struct shoal_err *err)
{
	struct wire_reader r;
	const unsigned char *p;
	uint64_t n, role, managers;
	size_t plen;
	int rv;

	memset(out, 0, sizeof *out);
	wire_rd_init(&r, data, len);
	if (!wire_rd_array(&r, &n) || n != GRANT_FIELDS ||
	    !rd_text(&r, out->node_id, sizeof out->node_id) || strlen(out->node_id) != ID_LEN ||
	    !id_is_valid_prefix(out->node_id) || !wire_rd_uint(&r, &role) ||
	    (role != CERT_ROLE_WORKER && role != CERT_ROLE_MANAGER) ||
	    !wire_rd_uint(&r, &out->raft_id) || out->raft_id > INT64_MAX)
		return malformed(err, "grant");
	out->role = (enum cert_role)role;
	if (wire_rd_bin(&r, CERT_MAX_ENCODED, &p, &plen)) {
		rv = cert_decode(p, plen, &out->cert, err);
		if (rv != 0)
			return rv;
		out->has_cert = true;
	} else if (!wire_rd_nil(&r)) {
		return malformed(err, "grant");
	}
	if (!wire_rd_bin(&r, sizeof out->keys, &p, &plen) ||
	    (plen != CLUSTER_KEY_LEN && plen != 2 * CLUSTER_KEY_LEN) ||
	    !wire_rd_array(&r, &managers) || managers > CLUSTER_MAX_MANAGERS)
		return malformed(err, "grant");
	memcpy(out->keys, p, plen);
	out->keys_len = plen;
	for (uint64_t i = 0; i < managers; i++) {
		if (!rd_text(&r, out->managers[i], CLUSTER_ADDR_LEN) ||
		    !cluster_addr_valid(out->managers[i]))
			return malformed(err, "grant");
	}
	out->n_managers = (size_t)managers;
	if (!wire_rd_done(&r))
		return malformed(err, "grant");
	return 0;
}

/* --- propose and empty ----------------------------------------------------- */

int propose_request_encode(const void *cmd, size_t len, struct buf *out, struct shoal_err *err)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, buf_write);
	if (msgpack_pack_array(&pk, 1) != 0 || pack_bin(&pk, cmd, len) != 0)
		return oom(err);
	return 0;
}

int propose_request_decode(const void *data, size_t len, const void **cmd, size_t *cmd_len,
			   struct shoal_err *err)
{
	struct wire_reader r;
	const unsigned char *p;
	uint64_t n;

	wire_rd_init(&r, data, len);
	if (!wire_rd_array(&r, &n) || n != 1 || !wire_rd_bin(&r, len, &p, cmd_len) ||
	    !wire_rd_done(&r))
		return malformed(err, "propose");
	*cmd = p;
	return 0;
}

int index_encode(uint64_t index, struct buf *out, struct shoal_err *err)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, buf_write);
	if (msgpack_pack_array(&pk, 1) != 0 || msgpack_pack_uint64(&pk, index) != 0)
		return oom(err);
	return 0;
}

int index_decode(const void *data, size_t len, uint64_t *index, struct shoal_err *err)
{
	struct wire_reader r;
	uint64_t n;

	wire_rd_init(&r, data, len);
	if (!wire_rd_array(&r, &n) || n != 1 || !wire_rd_uint(&r, index) || !wire_rd_done(&r))
		return malformed(err, "read_index");
	return 0;
}

int empty_encode(struct buf *out, struct shoal_err *err)
{
	static const unsigned char empty = 0x90; /* fixarray of 0 */

	return buf_append(out, &empty, 1) != 0 ? oom(err) : 0;
}

int empty_decode(const void *data, size_t len, struct shoal_err *err)
{
	struct wire_reader r;
	uint64_t n;

	wire_rd_init(&r, data, len);
	if (!wire_rd_array(&r, &n) || n != 0 || !wire_rd_done(&r))
		return malformed(err, "empty");
	return 0;
}
