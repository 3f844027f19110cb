/* Ed25519 identity keys on disk, key fingerprints and join tokens. */
#include "net/identity.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"
#include "lib/id.h"

/* On disk: a header line, then the 64-byte secret key in base64. */
#define KEY_HEADER  "shoal-ed25519-v1\n"
#define KEY_B64_LEN sodium_base64_ENCODED_LEN(IDENTITY_SK_LEN, sodium_base64_VARIANT_ORIGINAL)

void identity_generate(struct identity *id)
{
	crypto_sign_keypair(id->pk, id->sk);
}

int identity_save(const struct identity *id, const char *path, struct shoal_err *err)
{
	char text[sizeof(KEY_HEADER) + KEY_B64_LEN + 1];
	size_t n = strlen(KEY_HEADER);
	int rv;

	memcpy(text, KEY_HEADER, n);
	sodium_bin2base64(text + n, KEY_B64_LEN, id->sk, IDENTITY_SK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	n += strlen(text + n);
	text[n++] = '\n';
	rv = fs_write_atomic(path, text, n, 0600, err);
	sodium_memzero(text, sizeof(text));
	return rv;
}

int identity_load(struct identity *id, const char *path, struct shoal_err *err)
{
	char *text = NULL;
	size_t len = 0, hdr = strlen(KEY_HEADER), sk_len = 0;
	const char *end = NULL;
	unsigned char seed[crypto_sign_SEEDBYTES];
	unsigned char pk[IDENTITY_PK_LEN], sk[IDENTITY_SK_LEN];
	int rv;

	rv = fs_read_all(path, 4096, &text, &len, err);
	if (rv != 0)
		return rv;
	rv = shoal_errf(err, SHOAL_EPROTO, "%s is not a shoal identity key", path);
	if (len < hdr || memcmp(text, KEY_HEADER, hdr) != 0)
		goto out;
	if (sodium_base642bin(id->sk, IDENTITY_SK_LEN, text + hdr, len - hdr, "\n", &sk_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    sk_len != IDENTITY_SK_LEN)
		goto out;
	/* The secret key is seed + public key: derive the pair from the seed
	 * again and check that the stored public half matches it. */
	if (crypto_sign_ed25519_sk_to_seed(seed, id->sk) != 0 ||
	    crypto_sign_seed_keypair(pk, sk, seed) != 0 ||
	    sodium_memcmp(sk, id->sk, IDENTITY_SK_LEN) != 0)
		goto out;
	memcpy(id->pk, pk, IDENTITY_PK_LEN);
	rv = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(text, len);
	free(text);
	return rv;
}

int identity_load_or_create(struct identity *id, const char *path, struct shoal_err *err)
{
	int rv = identity_load(id, path, err);

	if (rv != SHOAL_ENOTFOUND)
		return rv;
	identity_generate(id);
	return identity_save(id, path, err);
}

void identity_fingerprint(const unsigned char pk[IDENTITY_PK_LEN], char out[FINGERPRINT_LEN + 1])
{
	unsigned char digest[32];

	crypto_generichash(digest, sizeof(digest), pk, IDENTITY_PK_LEN, NULL, 0);
	base32_encode(digest, sizeof(digest), out, FINGERPRINT_LEN + 1);
}

void join_token_new(const char *fingerprint, char out[TOKEN_LEN + 1])
{
	unsigned char secret[16];
	char s[TOKEN_SECRET_LEN + 1];

	randombytes_buf(secret, sizeof(secret));
	base32_encode(secret, sizeof(secret), s, sizeof(s));
	snprintf(out, TOKEN_LEN + 1, "SHOAL-1-%s-%s", fingerprint, s);
	sodium_memzero(secret, sizeof(secret));
}

static bool all_base32(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')))
			return false;
	}
	return true;
}

int join_token_parse(const char *token, char fingerprint[FINGERPRINT_LEN + 1],
		     char secret[TOKEN_SECRET_LEN + 1], struct shoal_err *err)
{
	const char *fp = token + 8;
	const char *sec = fp + FINGERPRINT_LEN + 1;

	if (strlen(token) != TOKEN_LEN || strncmp(token, "SHOAL-1-", 8) != 0 ||
	    fp[FINGERPRINT_LEN] != '-' || !all_base32(fp, FINGERPRINT_LEN) ||
	    !all_base32(sec, TOKEN_SECRET_LEN))
		return shoal_errf(err, SHOAL_EINVAL, "invalid join token");
	memcpy(fingerprint, fp, FINGERPRINT_LEN);
	fingerprint[FINGERPRINT_LEN] = '\0';
	memcpy(secret, sec, TOKEN_SECRET_LEN);
	secret[TOKEN_SECRET_LEN] = '\0';
	return 0;
}

bool join_token_secret_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (n != strlen(b))
		return false;
	return sodium_memcmp(a, b, n) == 0;
}
