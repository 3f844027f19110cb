/* Binary search over arrays kept sorted by a string key (strcmp order). */
#ifndef SHOAL_LIB_SORTED_H
#define SHOAL_LIB_SORTED_H

#include <stdbool.h>
#include <stddef.h>

/* Returns item @i's key. */
typedef const char *(*sorted_key_fn)(const void *items, size_t i);

/* Search @n @items for @key: returns its index, or the index where it would
 * be inserted to keep the order; *@found tells which. */
size_t sorted_find(const void *items, size_t n, sorted_key_fn key_at, const char *key, bool *found);

#endif
