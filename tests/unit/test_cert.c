/* Unit tests of net/cert: issuing, verifying, the canonical encoding and its
 * decoder, which must reject every truncation and every corrupted byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "net/cert.h"

#define SEC  1000000000LL
#define HOUR (3600 * SEC)
/* 2024-06-01T00:00:00Z */
#define T0 (1717200000LL * SEC)

static struct identity root, other_root, node;

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	identity_generate(&root);
	identity_generate(&other_root);
	identity_generate(&node);
	return 0;
}

static void issue(struct cert *c)
{
	struct shoal_err err;

	assert_int_equal(cert_issue(c, "n0de1d", CERT_ROLE_MANAGER, node.pk, T0, HOUR, &root, &err),
			 0);
}

static void encode(const struct cert *c, struct buf *b)
{
	buf_init(b);
	assert_int_equal(cert_encode(c, b), 0);
	assert_true(b->len > 0 && b->len <= CERT_MAX_ENCODED);
}

static void issued_certificate_round_trips(void **state)
{
	struct cert c, d;
	struct buf a, b;
	struct shoal_err err;

	(void)state;
	issue(&c);
	assert_string_equal(c.node_id, "n0de1d");
	assert_int_equal(c.role, CERT_ROLE_MANAGER);
	assert_memory_equal(c.node_pk, node.pk, IDENTITY_PK_LEN);
	assert_memory_equal(c.root_pk, root.pk, IDENTITY_PK_LEN);
	assert_true(c.not_before == T0 && c.not_after == T0 + HOUR);
	assert_int_equal(cert_verify(&c, root.pk, T0 + SEC, &err), 0);

	encode(&c, &a);
	assert_int_equal(cert_decode(a.data, a.len, &d, &err), 0);
	assert_string_equal(d.node_id, c.node_id);
	assert_int_equal(d.role, c.role);
	assert_memory_equal(d.node_pk, c.node_pk, IDENTITY_PK_LEN);
	assert_memory_equal(d.root_pk, c.root_pk, IDENTITY_PK_LEN);
	assert_true(d.not_before == c.not_before && d.not_after == c.not_after);
	assert_memory_equal(d.sig, c.sig, CERT_SIG_LEN);
	assert_int_equal(cert_verify(&d, root.pk, T0 + SEC, &err), 0);

	/* The encoding is deterministic. */
	encode(&d, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);

	/* cert_encode appends. */
	assert_int_equal(cert_encode(&c, &b), 0);
	assert_int_equal(b.len, 2 * a.len);
	buf_free(&a);
	buf_free(&b);
}

static void longest_node_id_and_worker_role(void **state)
{
	char id[ID_LEN + 1];
	struct cert c, d;
	struct buf b;

	(void)state;
	memset(id, 'z', ID_LEN);
	id[ID_LEN] = '\0';
	assert_int_equal(cert_issue(&c, id, CERT_ROLE_WORKER, node.pk, -5 * SEC, 1, &root, NULL),
			 0);
	encode(&c, &b);
	assert_int_equal(cert_decode(b.data, b.len, &d, NULL), 0);
	assert_string_equal(d.node_id, id);
	assert_int_equal(d.role, CERT_ROLE_WORKER);
	assert_true(d.not_before == -5 * SEC && d.not_after == -5 * SEC + 1);
	assert_int_equal(cert_verify(&d, root.pk, -5 * SEC, NULL), 0);
	buf_free(&b);
	assert_string_equal(cert_role_name(CERT_ROLE_WORKER), "worker");
	assert_string_equal(cert_role_name(CERT_ROLE_MANAGER), "manager");
}

static void issue_rejects_bad_input(void **state)
{
	char longid[ID_LEN + 2];
	struct shoal_err err;
	struct cert c;

	(void)state;
	memset(longid, 'a', ID_LEN + 1);
	longid[ID_LEN + 1] = '\0';
	assert_int_equal(cert_issue(&c, "", CERT_ROLE_WORKER, node.pk, T0, HOUR, &root, &err),
			 SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "invalid node id"));
	assert_int_equal(cert_issue(&c, "Upper", CERT_ROLE_WORKER, node.pk, T0, HOUR, &root, &err),
			 SHOAL_EINVAL);
	assert_int_equal(cert_issue(&c, longid, CERT_ROLE_WORKER, node.pk, T0, HOUR, &root, &err),
			 SHOAL_EINVAL);
	assert_int_equal(cert_issue(&c, "abc", (enum cert_role)0, node.pk, T0, HOUR, &root, &err),
			 SHOAL_EINVAL);
	assert_string_equal(err.msg, "invalid node role 0");
	assert_int_equal(cert_issue(&c, "abc", (enum cert_role)3, node.pk, T0, HOUR, &root, &err),
			 SHOAL_EINVAL);
	assert_int_equal(cert_issue(&c, "abc", CERT_ROLE_WORKER, node.pk, T0, 0, &root, &err),
			 SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "lifetime"));
	assert_int_equal(cert_issue(&c, "abc", CERT_ROLE_WORKER, node.pk, T0, -1, &root, &err),
			 SHOAL_EINVAL);
	assert_int_equal(
	    cert_issue(&c, "abc", CERT_ROLE_WORKER, node.pk, INT64_MAX - 10, 11, &root, &err),
	    SHOAL_EINVAL);
}

static void validity_period_is_enforced(void **state)
{
	struct shoal_err err;
	struct cert c;

	(void)state;
	issue(&c);
	assert_int_equal(cert_verify(&c, root.pk, T0, &err), 0);
	assert_int_equal(cert_verify(&c, root.pk, T0 + HOUR - 1, &err), 0);

	assert_int_equal(cert_verify(&c, root.pk, T0 - 1, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg,
			    "certificate of node n0de1d is not valid before "
			    "2024-06-01T00:00:00.000000000Z: check the clocks of both nodes");

	assert_int_equal(cert_verify(&c, root.pk, T0 + HOUR, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "certificate of node n0de1d expired at "
				     "2024-06-01T01:00:00.000000000Z: the node must renew it");
	assert_int_equal(cert_verify(&c, root.pk, INT64_MAX, &err), SHOAL_EPROTO);
}

static void other_roots_and_altered_fields_fail_verification(void **state)
{
	struct shoal_err err;
	struct cert c, forged;

	(void)state;
	issue(&c);
	assert_int_equal(cert_verify(&c, other_root.pk, T0, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg,
			    "certificate of node n0de1d is not signed by this cluster's root key");

	/* Signed by another root, claiming to be ours. */
	assert_int_equal(
	    cert_issue(&forged, "n0de1d", CERT_ROLE_MANAGER, node.pk, T0, HOUR, &other_root, &err),
	    0);
	memcpy(forged.root_pk, root.pk, IDENTITY_PK_LEN);
	assert_int_equal(cert_verify(&forged, root.pk, T0, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg,
			    "certificate of node n0de1d is not signed by this cluster's root key");

	/* Each field is covered by the signature. */
	forged = c;
	forged.role = CERT_ROLE_WORKER;
	assert_int_equal(cert_verify(&forged, root.pk, T0, NULL), SHOAL_EPROTO);
	forged = c;
	forged.node_pk[7] ^= 1;
	assert_int_equal(cert_verify(&forged, root.pk, T0, NULL), SHOAL_EPROTO);
	forged = c;
	forged.node_id[0] = 'm';
	assert_int_equal(cert_verify(&forged, root.pk, T0, NULL), SHOAL_EPROTO);
	forged = c;
	forged.not_after += HOUR;
	assert_int_equal(cert_verify(&forged, root.pk, T0, NULL), SHOAL_EPROTO);
	forged = c;
	forged.not_before -= 1;
	assert_int_equal(cert_verify(&forged, root.pk, T0, NULL), SHOAL_EPROTO);
	forged = c;
	forged.sig[63] ^= 0x80;
	assert_int_equal(cert_verify(&forged, root.pk, T0, NULL), SHOAL_EPROTO);
}

static void every_truncation_is_rejected(void **state)
{
	struct shoal_err err;
	struct cert c, d;
	struct buf b;

	(void)state;
	issue(&c);
	encode(&c, &b);
	for (size_t n = 0; n < b.len; n++) {
		err.msg[0] = '\0';
		assert_int_equal(cert_decode(b.data, n, &d, &err), SHOAL_EPROTO);
		assert_true(strlen(err.msg) > 0);
	}
	/* And one byte too many. */
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_int_equal(cert_decode(b.data, b.len, &d, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed certificate: 1 trailing bytes");
	buf_free(&b);
}

static void every_corrupted_byte_is_rejected(void **state)
{
	unsigned decode_refused = 0, verify_refused = 0;
	struct cert c, d;
	struct buf b;

	(void)state;
	issue(&c);
	encode(&c, &b);
	/* Every other value of every byte. */
	for (size_t i = 0; i < b.len; i++) {
		for (unsigned mask = 1; mask < 256; mask++) {
			b.data[i] = (char)((unsigned char)b.data[i] ^ mask);
			if (cert_decode(b.data, b.len, &d, NULL) != 0)
				decode_refused++;
			else if (cert_verify(&d, root.pk, T0 + SEC, NULL) != 0)
				verify_refused++;
			else
				fail_msg("byte %zu ^ 0x%02x was accepted", i, mask);
			b.data[i] = (char)((unsigned char)b.data[i] ^ mask);
		}
	}
	/* Both layers did work: structure errors and signature errors. */
	assert_true(decode_refused > 0);
	assert_true(verify_refused > 0);
	buf_free(&b);
}

/* Build an encoding by hand: the same fields, chosen msgpack forms. */
static void hand_encode(struct buf *b, const struct cert *c, int format, bool long_role)
{
	char hdr[2];

	buf_init(b);
	hdr[0] = (char)0x98;
	hdr[1] = (char)format;
	assert_int_equal(buf_append(b, hdr, 2), 0);
	hdr[0] = (char)(0xa0 | strlen(c->node_id));
	assert_int_equal(buf_append(b, hdr, 1), 0);
	assert_int_equal(buf_append(b, c->node_id, strlen(c->node_id)), 0);
	if (long_role)
		assert_int_equal(buf_append(b, "\xcc", 1), 0);
	hdr[0] = (char)c->role;
	assert_int_equal(buf_append(b, hdr, 1), 0);
	assert_int_equal(buf_append(b, "\xc4\x20", 2), 0);
	assert_int_equal(buf_append(b, c->node_pk, IDENTITY_PK_LEN), 0);
	assert_int_equal(buf_append(b, "\xc4\x20", 2), 0);
	assert_int_equal(buf_append(b, c->root_pk, IDENTITY_PK_LEN), 0);
	for (int i = 0; i < 2; i++) {
		uint64_t v = (uint64_t)(i == 0 ? c->not_before : c->not_after);
		char n[9] = {(char)0xcf};

		for (int k = 0; k < 8; k++)
			n[1 + k] = (char)(v >> (56 - 8 * k));
		assert_int_equal(buf_append(b, n, sizeof(n)), 0);
	}
	assert_int_equal(buf_append(b, "\xc4\x40", 2), 0);
	assert_int_equal(buf_append(b, c->sig, CERT_SIG_LEN), 0);
}

static void only_the_canonical_encoding_is_accepted(void **state)
{
	static const char zeros[CERT_MAX_ENCODED];
	struct shoal_err err;
	struct cert c, d;
	struct buf enc, hand;

	(void)state;
	issue(&c);
	encode(&c, &enc);
	/* The hand encoding with msgpack's shortest forms is byte for byte ours. */
	hand_encode(&hand, &c, 1, false);
	assert_int_equal(hand.len, enc.len);
	assert_memory_equal(hand.data, enc.data, enc.len);
	buf_free(&hand);

	/* The same values in a longer form are refused. */
	hand_encode(&hand, &c, 1, true);
	assert_int_equal(cert_decode(hand.data, hand.len, &d, &err), SHOAL_EPROTO);
	assert_string_equal(err.msg, "malformed certificate: not in canonical msgpack form");
	buf_free(&hand);

	/* A future format is named. */
	hand_encode(&hand, &c, 2, false);
	assert_int_equal(cert_decode(hand.data, hand.len, &d, &err), SHOAL_EPROTO);
	assert_string_equal(
	    err.msg, "certificate format 2 is not supported (this node reads 1): upgrade shoal");
	buf_free(&hand);

	/* Oversized input is refused before it is read. */
	assert_int_equal(buf_append(&enc, zeros, sizeof(zeros)), 0);
	assert_int_equal(cert_decode(enc.data, CERT_MAX_ENCODED + 1, &d, &err), SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "exceeds the limit"));
	buf_free(&enc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(issued_certificate_round_trips),
	    cmocka_unit_test(longest_node_id_and_worker_role),
	    cmocka_unit_test(issue_rejects_bad_input),
	    cmocka_unit_test(validity_period_is_enforced),
	    cmocka_unit_test(other_roots_and_altered_fields_fail_verification),
	    cmocka_unit_test(every_truncation_is_rejected),
	    cmocka_unit_test(every_corrupted_byte_is_rejected),
	    cmocka_unit_test(only_the_canonical_encoding_is_accepted),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
