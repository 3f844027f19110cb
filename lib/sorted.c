/* Binary search over arrays kept sorted by a string key. */
#include "lib/sorted.h"

#include <string.h>

size_t sorted_find(const void *items, size_t n, sorted_key_fn key_at, const char *key, bool *found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key_at(items, mid), key);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}
