/* Content digests "sha256:<64 lowercase hex>": parsing and streaming SHA-256. */
#ifndef SHOAL_RUNTIME_DIGEST_H
#define SHOAL_RUNTIME_DIGEST_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define DIGEST_PREFIX	  "sha256:"
#define DIGEST_PREFIX_LEN 7
#define DIGEST_HEX_LEN	  64
#define DIGEST_LEN	  (DIGEST_PREFIX_LEN + DIGEST_HEX_LEN) /* without the NUL */

/* A valid digest, always in canonical form. Plain value, nothing to free. */
struct digest {
	char str[DIGEST_LEN + 1];
};

/* A SHA-256 computation in progress. Plain value, nothing to free. */
struct digest_ctx {
	crypto_hash_sha256_state st;
	uint64_t len; /* bytes hashed so far */
};

/* True if @s is exactly "sha256:" followed by 64 lowercase hex digits. Other
 * algorithms, upper case, whitespace and anything trailing are refused: a
 * digest names content, so there is one spelling only. */
bool digest_is_valid(const char *s);

/* Parse @s into *@out. Returns 0, or SHOAL_EINVAL saying what is wrong. */
int digest_parse(const char *s, struct digest *out, struct shoal_err *err);

/* Parse a bare 64-digit hex string (a file name in blobs/sha256/). Returns 0
 * or SHOAL_EINVAL. */
int digest_from_hex(const char *hex, struct digest *out, struct shoal_err *err);

/* The 64 hex digits of @d (inside @d, NUL-terminated). */
const char *digest_hex(const struct digest *d);

bool digest_equal(const struct digest *a, const struct digest *b);

void digest_init(struct digest_ctx *c);
void digest_update(struct digest_ctx *c, const void *data, size_t len);
/* Finish @c into *@out; @c must be initialised again before re-use. */
void digest_final(struct digest_ctx *c, struct digest *out);

/* The digest of @len bytes at @data. */
void digest_buf(const void *data, size_t len, struct digest *out);

/* The digest of everything @fd reads from its current offset to the end, and
 * (if @size is not NULL) how many bytes that was. Returns 0 or SHOAL_EIO. */
int digest_fd(int fd, struct digest *out, uint64_t *size, struct shoal_err *err);

/* The same for the file at @path. Returns 0, SHOAL_ENOTFOUND or SHOAL_EIO. */
int digest_file(const char *path, struct digest *out, uint64_t *size, struct shoal_err *err);

#endif
