/* Aligned text columns: Go's text/tabwriter, as Docker's CLI configures it. */
#ifndef SHOAL_CLI_TABLE_H
#define SHOAL_CLI_TABLE_H

#include <stddef.h>

#include "lib/buf.h"

/* Docker's listings: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0). */
#define TABLE_LIST_MINWIDTH 10
#define TABLE_LIST_PADDING  3
/* "docker version": tabwriter.NewWriter(out, 20, 1, 1, ' ', 0). */
#define TABLE_VERSION_MINWIDTH 20
#define TABLE_VERSION_PADDING  1

/* Text is written as cells: '\t' ends a cell, '\n' ends a line. The text after
 * a line's last tab is not part of any column and is never padded. A column
 * block is a run of consecutive lines that all have a tab-terminated cell in
 * that column; every cell of a block is padded with spaces to the block's
 * width: the widest cell plus @padding, and at least @minwidth. Widths are
 * display columns, as Docker's fork of tabwriter counts them with
 * go-runewidth: East Asian wide characters take two, combining marks none. */
struct table {
	size_t minwidth;
	size_t padding;
	struct buf text; /* written and not yet flushed */
};

void table_init(struct table *t, size_t minwidth, size_t padding);
/* Free the text not flushed yet. Accepts a table never written to. */
void table_free(struct table *t);

/* Append raw text (tabs and newlines are cell and line ends). Returns 0 or SHOAL_ENOMEM. */
int table_write(struct table *t, const char *text, size_t len);

/* Append one line of @n cells. Tabs and newlines inside a cell become spaces,
 * so data from the daemon cannot break the layout. Returns 0 or SHOAL_ENOMEM. */
int table_row(struct table *t, const char *const *cells, size_t n);

/* Lay out everything written so far, append it to @out and empty @t.
 * Returns 0 or SHOAL_ENOMEM. */
int table_flush(struct table *t, struct buf *out);

/* The display width of @len bytes of UTF-8 at @s, in terminal columns; an
 * invalid byte counts as U+FFFD, one column. */
size_t table_text_width(const char *s, size_t len);

#endif
