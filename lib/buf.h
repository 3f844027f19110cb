/* A growable byte buffer. */
#ifndef SHOAL_LIB_BUF_H
#define SHOAL_LIB_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
/* Free the memory; @b may be re-used after buf_init(). Accepts a zeroed buf. */
void buf_free(struct buf *b);
/* Append @len bytes. Returns 0 or SHOAL_ENOMEM. The data stays NUL-terminated. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first @n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hand the heap memory to the caller (NULL if empty); @b is left empty. */
char *buf_steal(struct buf *b, size_t *len);

#endif
