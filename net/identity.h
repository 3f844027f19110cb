/* Ed25519 identity keys on disk, key fingerprints and join tokens. */
#ifndef SHOAL_NET_IDENTITY_H
#define SHOAL_NET_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

#define IDENTITY_PK_LEN 32
#define IDENTITY_SK_LEN 64
/* base32 of a 32-byte BLAKE2b digest: 52 characters. */
#define FINGERPRINT_LEN 52
/* base32 of 16 random bytes: 26 characters. */
#define TOKEN_SECRET_LEN 26
/* "SHOAL-1-" + fingerprint + "-" + secret. */
#define TOKEN_LEN (8 + FINGERPRINT_LEN + 1 + TOKEN_SECRET_LEN)

struct identity {
	unsigned char pk[IDENTITY_PK_LEN];
	unsigned char sk[IDENTITY_SK_LEN];
};

/* Generate a fresh key pair. */
void identity_generate(struct identity *id);

/* Write @id to @path atomically with mode 0600. */
int identity_save(const struct identity *id, const char *path, struct shoal_err *err);

/* Read a key written by identity_save(). SHOAL_ENOTFOUND if the file is missing;
 * SHOAL_EPROTO if it is not a valid key (the public half must match the secret). */
int identity_load(struct identity *id, const char *path, struct shoal_err *err);

/* Load the key at @path, or create and save one if there is none. */
int identity_load_or_create(struct identity *id, const char *path, struct shoal_err *err);

/* The fingerprint of a public key: base32(BLAKE2b-256(pk)), NUL-terminated. */
void identity_fingerprint(const unsigned char pk[IDENTITY_PK_LEN], char out[FINGERPRINT_LEN + 1]);

/* A fresh join token for the cluster whose root key has @fingerprint. */
void join_token_new(const char *fingerprint, char out[TOKEN_LEN + 1]);

/* Split a join token into its fingerprint and secret, checking its shape.
 * SHOAL_EINVAL with Docker's wording ("invalid join token") on any deviation. */
int join_token_parse(const char *token, char fingerprint[FINGERPRINT_LEN + 1],
		     char secret[TOKEN_SECRET_LEN + 1], struct shoal_err *err);

/* Constant-time comparison of two tokens' secrets. */
bool join_token_secret_equal(const char *a, const char *b);

#endif
