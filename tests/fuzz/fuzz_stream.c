/* libFuzzer target: untrusted bytes as the peer of a secure stream session
 * (net/stream.h), fed in pieces. The first byte picks the mode:
 *   0  raw bytes into a listener session;
 *   1  raw bytes into a dialer session, after its HELLO;
 *   2  this harness dials a listener session honestly (HELLO, key exchange,
 *      header), then each [u16 length][plaintext] of the input is sent as an
 *      encrypted frame, so the fuzzer reaches the CERT and VERIFY decoders
 *      and open sessions (the top bit of the length makes it a final frame);
 *   3  the same, this harness answering a dialer session as its listener.
 * Bit 2 of the first byte makes the dialer of modes 1 and 3 a joiner. Keys
 * and certificates are fixed (seeded) so corpus entries can hold valid
 * certificates; ephemeral keys are random, so no input can forge a VERIFY. */
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "net/cert.h"
#include "net/stream.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEC  1000000000LL
#define T0   (1717200000LL * SEC)
#define HDR  crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define ABYT crypto_secretstream_xchacha20poly1305_ABYTES

static struct identity root, manager_key, worker_key;
static struct cert manager_cert, worker_cert;
static struct stream_identity manager, worker, joiner;
static char root_fp[FINGERPRINT_LEN + 1];

static void seeded(struct identity *id, unsigned char n)
{
	unsigned char seed[crypto_sign_SEEDBYTES];

	memset(seed, n, sizeof(seed));
	crypto_sign_seed_keypair(id->pk, id->sk, seed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	seeded(&root, 1);
	seeded(&manager_key, 2);
	seeded(&worker_key, 3);
	if (cert_issue(&manager_cert, "fuzzmanager", CERT_ROLE_MANAGER, manager_key.pk, T0,
		       3600 * SEC, &root, NULL) != 0 ||
	    cert_issue(&worker_cert, "fuzzworker", CERT_ROLE_WORKER, worker_key.pk, T0, 3600 * SEC,
		       &root, NULL) != 0)
		abort();
	identity_fingerprint(root.pk, root_fp);
	manager = (struct stream_identity){.key = &manager_key, .cert = &manager_cert};
	memcpy(manager.root_pk, root.pk, IDENTITY_PK_LEN);
	worker = (struct stream_identity){.key = &worker_key, .cert = &worker_cert};
	memcpy(worker.root_pk, root.pk, IDENTITY_PK_LEN);
	joiner = (struct stream_identity){.key = &worker_key, .pinned_root_fingerprint = root_fp};
	return 0;
}

struct side {
	struct stream_session *s;
	struct buf out;
	bool established;
	bool failed;
};

static int side_write(void *arg, const void *data, size_t len)
{
	struct side *e = arg;

	if (e->failed)
		abort(); /* nothing is written after the failed callback */
	return buf_append(&e->out, data, len);
}

static void side_established(void *arg)
{
	struct side *e = arg;

	if (e->failed || e->established || stream_session_peer(e->s) == NULL)
		abort();
	e->established = true;
}

static void side_message(void *arg, const void *data, size_t len)
{
	struct side *e = arg;

	(void)data;
	if (e->failed || !e->established || len > STREAM_MAX_MESSAGE)
		abort();
}

static void side_failed(void *arg, int code, const struct shoal_err *err)
{
	struct side *e = arg;

	if (e->failed || code == 0 || err == NULL || err->msg[0] == '\0')
		abort();
	e->failed = true;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Feed @data in three pieces cut where its first and last bytes say. */
static void feed_pieces(struct side *e, const uint8_t *data, size_t size)
{
	size_t a = 0, b = 0;

	if (size > 0) {
		a = (size_t)data[0] * size / 256;
		b = a + (size_t)data[size - 1] * (size - a) / 256;
	}
	stream_session_feed(e->s, data, a);
	stream_session_feed(e->s, data + a, b - a);
	stream_session_feed(e->s, data + b, size - b);
}

/* The ephemeral key in the HELLO at the start of @out, or NULL. */
static const unsigned char *hello_key(const struct buf *out)
{
	static const unsigned char shape[] = {0x93, 0x00, 0x01, 0xc4, 0x20};
	const unsigned char *p = (const unsigned char *)out->data;

	if (out->len < 41 || p[3] != 37 || p[4] != shape[0] || p[6] != shape[2] ||
	    p[7] != shape[3] || p[8] != shape[4])
		abort(); /* a session's HELLO always has this shape */
	return p + 9;
}

/* Act as an honest peer up to the keys, then send the input's messages. */
static void encrypted_peer(struct side *e, bool dialer, const uint8_t *data, size_t size)
{
	crypto_secretstream_xchacha20poly1305_state st;
	unsigned char pk[32], sk[32], rx[32], tx[32];
	unsigned char hello[4 + 37], hdr[4 + HDR];
	unsigned char *frame;
	size_t pos = 0;

	crypto_kx_keypair(pk, sk);
	put_be32(hello, 37);
	memcpy(hello + 4, dialer ? "\x93\x01\x01\xc4\x20" : "\x93\x02\x01\xc4\x20", 5);
	memcpy(hello + 9, pk, 32);
	if (dialer) {
		stream_session_feed(e->s, hello, sizeof(hello));
		if (e->failed ||
		    crypto_kx_client_session_keys(rx, tx, pk, sk, hello_key(&e->out)) != 0)
			abort(); /* an honest HELLO is answered */
	} else {
		if (crypto_kx_server_session_keys(rx, tx, pk, sk, hello_key(&e->out)) != 0)
			abort();
		stream_session_feed(e->s, hello, sizeof(hello));
	}
	put_be32(hdr, HDR);
	crypto_secretstream_xchacha20poly1305_init_push(&st, hdr + 4, tx);
	stream_session_feed(e->s, hdr, sizeof(hdr));
	if (e->failed)
		abort();
	frame = malloc(4 + 0x7fff + ABYT);
	if (frame == NULL)
		abort();
	while (pos + 2 <= size) {
		size_t len = ((size_t)data[pos] << 8 | data[pos + 1]) & 0x7fff;
		bool final = (data[pos] & 0x80) != 0;

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		put_be32(frame, (uint32_t)(len + ABYT));
		crypto_secretstream_xchacha20poly1305_push(
		    &st, frame + 4, NULL, data + pos, len, NULL, 0,
		    final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
			  : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
		feed_pieces(e, frame, 4 + len + ABYT);
		pos += len;
	}
	free(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream_session_ops ops = {.write = side_write,
					 .established = side_established,
					 .message = side_message,
					 .failed = side_failed};
	struct side e = {.s = NULL};
	const struct stream_identity *dialer_id;
	unsigned mode;
	bool dialer;

	if (size < 1)
		return 0;
	mode = data[0] & 3;
	dialer = mode == 1 || mode == 3;
	dialer_id = (data[0] & 4) != 0 ? &joiner : &worker;
	buf_init(&e.out);
	ops.arg = &e;
	if (stream_session_new(&e.s, dialer, dialer_id == &joiner ? STREAM_JOIN : STREAM_RPC,
			       dialer ? dialer_id : &manager, T0 + SEC, &ops, NULL) != 0)
		abort();
	if (dialer && e.out.len == 0)
		abort(); /* the dialer's HELLO is written at once */
	if (mode < 2)
		feed_pieces(&e, data + 1, size - 1);
	else
		encrypted_peer(&e, !dialer, data + 1, size - 1);

	/* No input forges a signature over a transcript with fresh keys: a
	 * listener lets in only a joiner, a dialer nobody. */
	if (e.established) {
		const struct stream_peer *peer = stream_session_peer(e.s);

		if (dialer || peer->authenticated || peer->purpose != STREAM_JOIN)
			abort();
	}
	stream_session_free(e.s);
	buf_free(&e.out);
	return 0;
}
