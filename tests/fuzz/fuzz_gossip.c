/* libFuzzer target: bytes from the network into a gossip core that knows a few
 * members. The first byte picks the mode:
 *   0: the rest is a datagram as received (it must get past the AEAD);
 *   1: the rest is a plaintext body, sealed here with the cluster key, so the
 *      msgpack decoder and the protocol behind it are reached;
 *   2: the rest is pushed-pulled state for gossip_core_merge().
 * Then time runs on for a while, so timers act on whatever was accepted. */
#include <msgpack.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "net/gossip.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 1000

static struct gossip_keyring keys;
static struct buf known; /* state of a small cluster, merged before each input */

struct sink {
	uint64_t rng;
	size_t sent;
};

static void sink_send(void *arg, const char *addr, const void *data, size_t len)
{
	struct sink *s = arg;

	if (addr == NULL || data == NULL || len == 0 || len > GOSSIP_MAX_PACKET)
		abort(); /* the core must never send that */
	s->sent++;
}

static uint32_t sink_random(void *arg, uint32_t n)
{
	struct sink *s = arg;

	s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)((s->rng >> 33) % n);
}

static void user_message(void *arg, const char *key, uint64_t version, const void *data, size_t len)
{
	(void)arg;
	(void)version;
	if (key == NULL || strlen(key) > GOSSIP_MAX_KEY || len > GOSSIP_MAX_USER ||
	    (len > 0 && data == NULL))
		abort();
}

static void member_changed(void *arg, const struct gossip_member *m)
{
	(void)arg;
	if (strlen(m->id) > ID_LEN || strlen(m->addr) >= GOSSIP_ADDR_LEN ||
	    m->meta_len > GOSSIP_MAX_META)
		abort();
}

static struct gossip_core *core_new(struct sink *s, const char *id)
{
	struct gossip_core_io io = {.arg = s, .send = sink_send, .random = sink_random};
	struct gossip_config cfg = {
	    .node_id = id,
	    .advertise = "10.0.0.1:7946",
	    .member_changed = member_changed,
	    .user_message = user_message,
	};
	struct gossip_core *g;

	if (gossip_core_new(&g, &cfg, &keys, &io, T0, NULL) != 0)
		abort();
	return g;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const ids[] = {"m1", "m2", "m3", "m4"};
	static const char *const addrs[] = {"10.0.0.2:7946", "10.0.0.3:7946", "10.0.0.4:7946", ""};
	struct sink s = {.rng = 1};
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct gossip_core *g;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	memset(keys.primary, 0x11, sizeof(keys.primary));
	memset(keys.previous, 0x22, sizeof(keys.previous));
	keys.has_previous = true;

	/* A cluster where m1 is alive, m2 suspect, m3 dead and m4 left, with
	 * one application message: exported once, merged into every core. */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, ARRAY_SIZE(ids));
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		msgpack_pack_array(&pk, 6);
		msgpack_pack_uint8(&pk, 11); /* STATE */
		pack_str(&pk, ids[i]);
		msgpack_pack_uint64(&pk, i);
		msgpack_pack_uint8(&pk, (uint8_t)i); /* alive, suspect, dead, left */
		pack_str(&pk, addrs[i]);
		msgpack_pack_bin(&pk, 0);
	}
	g = core_new(&s, "n0");
	if (gossip_core_merge(g, sb.data, sb.size, T0, NULL) != 0 ||
	    gossip_core_broadcast(g, "assign/m1", 3, "v3", 2, NULL) != 0)
		abort();
	msgpack_sbuffer_destroy(&sb);
	buf_init(&known);
	if (gossip_core_export(g, &known) != 0)
		abort();
	gossip_core_free(g);
	return 0;
}

/* Seal @body as a packet of the cluster. */
static size_t seal(const uint8_t *body, size_t len, unsigned char *out)
{
	unsigned long long clen = 0;

	out[0] = GOSSIP_WIRE_VERSION;
	randombytes_buf(out + 1, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 25, &clen, body, len, out, 1, NULL,
						   out + 1, keys.primary);
	return 25 + (size_t)clen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char pkt[GOSSIP_MAX_PACKET];
	struct sink s = {.rng = 7};
	struct gossip_stats st;
	struct gossip_core *g;
	const struct gossip_member *m;
	size_t n;

	if (size < 1)
		return 0;
	g = core_new(&s, "n1");
	if (gossip_core_merge(g, known.data, known.len, T0, NULL) != 0)
		abort();
	switch (data[0] % 3) {
	case 0:
		gossip_core_receive(g, "10.0.0.2:7946", data + 1, size - 1, T0);
		break;
	case 1:
		if (size - 1 > GOSSIP_MAX_PACKET - 41)
			break;
		n = seal(data + 1, size - 1, pkt);
		gossip_core_receive(g, "10.0.0.2:7946", pkt, n, T0);
		gossip_core_stats(g, &st);
		if (st.rejected_seal != 0)
			abort(); /* sealed right: it must open */
		break;
	default:
		gossip_core_merge(g, data + 1, size - 1, T0, NULL);
		break;
	}
	/* Let the timers act on what was accepted. */
	for (uint64_t t = T0, next; t < T0 + 20000; t = next)
		next = gossip_core_tick(g, t);
	n = gossip_core_members(g, &m);
	for (size_t i = 1; i < n; i++)
		if (strcmp(m[i - 1].id, m[i].id) >= 0)
			abort(); /* members stay sorted and unique */
	gossip_core_free(g);
	return 0;
}
