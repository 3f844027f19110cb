/* Random object ids in Docker's style: 25 lowercase base-36 characters. */
#ifndef SHOAL_LIB_ID_H
#define SHOAL_LIB_ID_H

#include <stdbool.h>
#include <stddef.h>

#define ID_LEN 25

/* Fill @out (ID_LEN + 1 bytes) with a fresh random id. */
void id_new(char out[ID_LEN + 1]);

/* True if @s looks like an id: 1 to ID_LEN characters of [0-9a-z]. Prefixes count. */
bool id_is_valid_prefix(const char *s);

/* Encode @len bytes of @in as lowercase base32 (RFC 4648 alphabet, no padding)
 * into @out of @out_len bytes, NUL-terminated. Returns 0, or -1 if @out is too small. */
int base32_encode(const unsigned char *in, size_t len, char *out, size_t out_len);

#endif
