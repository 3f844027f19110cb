/* The msgpack wire codec's reader: a bounded cursor over untrusted bytes.
 *
 * msgpack-c's unpacker allocates up front for the counts a message declares,
 * so a few hostile bytes can ask for gigabytes. This reader allocates
 * nothing: it reads one value at a time, in the types the caller expects,
 * and hands out pointers into the buffer it was given.
 *
 * Every wire_rd_*() follows the same rules:
 *   - it never reads past the end of the buffer;
 *   - a length read from the input is checked against the bytes remaining
 *     before any pointer into the buffer is returned;
 *   - on success it consumes exactly the value read and fills its outputs;
 *   - on failure (truncated input, another type, out of range) it returns
 *     false, consumes nothing and leaves its outputs unspecified, so a caller
 *     may try another type at the same position. */
#ifndef SHOAL_NET_WIRE_H
#define SHOAL_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A cursor over @len bytes at @p; @pos counts the bytes consumed. Invariant:
 * @pos <= @len. The reader does not own @p, which must outlive the pointers
 * handed out by wire_rd_str() and wire_rd_bin(). */
struct wire_reader {
	const unsigned char *p;
	size_t len;
	size_t pos;
};

/* Point @r at the @len bytes at @data, from the start. */
void wire_rd_init(struct wire_reader *r, const void *data, size_t len);

/* One raw byte. */
bool wire_rd_byte(struct wire_reader *r, unsigned char *b);

/* A big-endian unsigned integer of @n raw bytes (1 to 8) into *@v. */
bool wire_rd_be(struct wire_reader *r, size_t n, uint64_t *v);

/* An array header (fixarray, array 16 or array 32); *@n gets the declared
 * element count, which the caller must bound: no element has been read. */
bool wire_rd_array(struct wire_reader *r, uint64_t *n);

/* A non-negative integer (positive fixint, uint 8/16/32/64). Signed formats
 * are refused, even for non-negative values. */
bool wire_rd_uint(struct wire_reader *r, uint64_t *v);

/* Any integer that fits in an int64_t: positive or negative fixint,
 * int 8/16/32/64, or uint 8/16/32/64 up to INT64_MAX. */
bool wire_rd_int(struct wire_reader *r, int64_t *v);

/* A str (fixstr, str 8/16/32) of at most @max bytes: *@out points at its
 * *@n bytes inside the buffer, not NUL-terminated and not checked as UTF-8. */
bool wire_rd_str(struct wire_reader *r, size_t max, const unsigned char **out, size_t *n);

/* A bin (bin 8/16/32) of at most @max bytes: *@out points at its *@n bytes
 * inside the buffer. */
bool wire_rd_bin(struct wire_reader *r, size_t max, const unsigned char **out, size_t *n);

/* A nil. */
bool wire_rd_nil(struct wire_reader *r);

/* Whether every byte has been consumed. */
bool wire_rd_done(const struct wire_reader *r);

#endif
