/* Random object ids and a small base32 encoder. */
#include "lib/id.h"

#include <sodium.h>
#include <string.h>

void id_new(char out[ID_LEN + 1])
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

	/* 25 base-36 digits carry ~129 bits; draw each digit without bias. */
	for (size_t i = 0; i < ID_LEN; i++)
		out[i] = digits[randombytes_uniform(36)];
	out[ID_LEN] = '\0';
}

bool id_is_valid_prefix(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')))
			return false;
	}
	return true;
}

int base32_encode(const unsigned char *in, size_t len, char *out, size_t out_len)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	size_t need = (len * 8 + 4) / 5 + 1;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	if (out_len < need)
		return -1;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = alphabet[(acc >> (bits - 5)) & 31u];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = alphabet[(acc << (5 - bits)) & 31u];
	out[o] = '\0';
	return 0;
}
