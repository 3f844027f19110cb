/* The msgpack wire codec's bounded reader (the contract is in net/wire.h). */
#include "net/wire.h"

#include <string.h>

#include "lib/err.h"

/* Each reader works on a copy of the cursor and stores it back only on
 * success, which is how a failed read consumes nothing. */

/* Take @n bytes: *@out points at them. */
static bool take(struct wire_reader *r, size_t n, const unsigned char **out)
{
	PRE(r->pos <= r->len);
	if (n > r->len - r->pos)
		return false;
	*out = r->p + r->pos;
	r->pos += n;
	return true;
}

/* A str's or bin's length: @first is the tag of its 8-bit length form, the
 * 16- and 32-bit forms follow it. */
static bool sized(struct wire_reader *r, unsigned char b, unsigned char first, size_t max,
		  const unsigned char **out, size_t *n)
{
	uint64_t len;

	if (!wire_rd_be(r, (size_t)1 << (b - first), &len) || len > max ||
	    !take(r, (size_t)len, out))
		return false;
	*n = (size_t)len;
	return true;
}

void wire_rd_init(struct wire_reader *r, const void *data, size_t len)
{
	PRE(data != NULL || len == 0);
	r->p = data;
	r->len = len;
	r->pos = 0;
}

bool wire_rd_byte(struct wire_reader *r, unsigned char *b)
{
	const unsigned char *p;

	if (!take(r, 1, &p))
		return false;
	*b = *p;
	return true;
}

bool wire_rd_be(struct wire_reader *r, size_t n, uint64_t *v)
{
	const unsigned char *b;

	PRE(n >= 1 && n <= 8);
	if (!take(r, n, &b))
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = (*v << 8) | b[i];
	return true;
}

bool wire_rd_array(struct wire_reader *r, uint64_t *n)
{
	struct wire_reader c = *r;
	unsigned char b;

	if (!wire_rd_byte(&c, &b))
		return false;
	if (b >= 0x90 && b <= 0x9f)
		*n = b & 0x0f;
	else if (b != 0xdc && b != 0xdd)
		return false;
	else if (!wire_rd_be(&c, b == 0xdc ? 2 : 4, n))
		return false;
	*r = c;
	return true;
}

bool wire_rd_uint(struct wire_reader *r, uint64_t *v)
{
	struct wire_reader c = *r;
	unsigned char b;

	if (!wire_rd_byte(&c, &b))
		return false;
	if (b <= 0x7f)
		*v = b;
	else if (b < 0xcc || b > 0xcf)
		return false;
	else if (!wire_rd_be(&c, (size_t)1 << (b - 0xcc), v))
		return false;
	*r = c;
	return true;
}

bool wire_rd_int(struct wire_reader *r, int64_t *v)
{
	struct wire_reader c = *r;
	unsigned char b;
	uint64_t u;
	size_t n;

	if (!wire_rd_byte(&c, &b))
		return false;
	if (b <= 0x7f) {
		*v = b;
	} else if (b >= 0xe0) {
		*v = (int64_t)b - 256;
	} else if (b >= 0xcc && b <= 0xcf) {
		if (!wire_rd_be(&c, (size_t)1 << (b - 0xcc), &u) || u > INT64_MAX)
			return false;
		*v = (int64_t)u;
	} else if (b >= 0xd0 && b <= 0xd3) {
		n = (size_t)1 << (b - 0xd0);
		if (!wire_rd_be(&c, n, &u))
			return false;
		/* Sign-extend the n-byte two's complement value. */
		if (n < 8 && (u >> (8 * n - 1)) != 0)
			u |= ~(uint64_t)0 << (8 * n);
		memcpy(v, &u, sizeof(*v));
	} else {
		return false;
	}
	*r = c;
	return true;
}

bool wire_rd_str(struct wire_reader *r, size_t max, const unsigned char **out, size_t *n)
{
	struct wire_reader c = *r;
	unsigned char b;

	if (!wire_rd_byte(&c, &b))
		return false;
	if (b >= 0xa0 && b <= 0xbf) {
		*n = b & 0x1f;
		if (*n > max || !take(&c, *n, out))
			return false;
	} else if (b < 0xd9 || b > 0xdb || !sized(&c, b, 0xd9, max, out, n)) {
		return false;
	}
	*r = c;
	return true;
}

bool wire_rd_bin(struct wire_reader *r, size_t max, const unsigned char **out, size_t *n)
{
	struct wire_reader c = *r;
	unsigned char b;

	if (!wire_rd_byte(&c, &b) || b < 0xc4 || b > 0xc6 || !sized(&c, b, 0xc4, max, out, n))
		return false;
	*r = c;
	return true;
}

bool wire_rd_nil(struct wire_reader *r)
{
	struct wire_reader c = *r;
	unsigned char b;

	if (!wire_rd_byte(&c, &b) || b != 0xc0)
		return false;
	*r = c;
	return true;
}

bool wire_rd_done(const struct wire_reader *r)
{
	return r->pos == r->len;
}
