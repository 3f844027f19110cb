/* Aligned text columns, laid out with the algorithm of Go's text/tabwriter. */
#include "cli/table.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

struct cell {
	size_t off;   /* into the text */
	size_t len;   /* bytes */
	size_t width; /* code points */
};

struct line {
	size_t first; /* index of its first cell */
	size_t ncells;
	bool newline; /* false only for a last line the text did not end */
};

/* The text cut into lines and cells, and the column widths being laid out. */
struct layout {
	const char *text;
	struct cell *cells;
	struct line *lines;
	size_t nlines;
	size_t *widths; /* one per column of the current block nest */
	size_t nwidths;
	size_t minwidth;
	size_t padding;
	struct buf *out;
	int rv;
};

void table_init(struct table *t, size_t minwidth, size_t padding)
{
	t->minwidth = minwidth;
	t->padding = padding;
	buf_init(&t->text);
}

void table_free(struct table *t)
{
	buf_free(&t->text);
}

int table_write(struct table *t, const char *text, size_t len)
{
	return buf_append(&t->text, text, len);
}

int table_row(struct table *t, const char *const *cells, size_t n)
{
	size_t i, j, start;
	int rv;

	for (i = 0; i < n; i++) {
		const char *c = cells[i] != NULL ? cells[i] : "";

		start = t->text.len;
		rv = buf_append(&t->text, c, strlen(c));
		if (rv != 0)
			return rv;
		for (j = start; j < t->text.len; j++) {
			if (t->text.data[j] == '\t' || t->text.data[j] == '\n' ||
			    t->text.data[j] == '\r')
				t->text.data[j] = ' ';
		}
		rv = buf_append(&t->text, i + 1 < n ? "\t" : "\n", 1);
		if (rv != 0)
			return rv;
	}
	if (n == 0)
		return buf_append(&t->text, "\n", 1);
	return 0;
}

/* Decode the UTF-8 sequence at @s (@len > 0 bytes): its code point in *@cp
 * and its length, or 1 with U+FFFD for an invalid byte, as Go does. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t n, i;

	*cp = 0xFFFD;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4;
	else
		return 1;
	/* Exclude overlong forms, surrogates and code points above U+10FFFF. */
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (len < n || s[1] < lo || s[1] > hi)
		return 1;
	for (i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 1;
	}
	*cp = c & (0xFF >> (n + 1));
	for (i = 1; i < n; i++)
		*cp = (*cp << 6) | (s[i] & 0x3F);
	return n;
}

struct range {
	uint32_t first, last;
};

/* Marks that combine with the previous character: no width. */
static const struct range zero_width[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489},	  {0x0591, 0x05BD}, {0x05BF, 0x05BF}, {0x05C1, 0x05C2},
    {0x05C4, 0x05C5}, {0x05C7, 0x05C7},	  {0x0610, 0x061A}, {0x064B, 0x065F}, {0x0670, 0x0670},
    {0x06D6, 0x06DC}, {0x06DF, 0x06E4},	  {0x06E7, 0x06E8}, {0x06EA, 0x06ED}, {0x0E31, 0x0E31},
    {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E},	  {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F},
    {0x2028, 0x202E}, {0x2060, 0x2064},	  {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
    {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF},
};

/* East Asian Wide and Fullwidth characters and emoji: two columns. */
static const struct range double_width[] = {
    {0x1100, 0x115F},	{0x231A, 0x231B},   {0x2329, 0x232A},	{0x23E9, 0x23EC},
    {0x23F0, 0x23F0},	{0x23F3, 0x23F3},   {0x25FD, 0x25FE},	{0x2614, 0x2615},
    {0x2648, 0x2653},	{0x267F, 0x267F},   {0x2693, 0x2693},	{0x26A1, 0x26A1},
    {0x26AA, 0x26AB},	{0x26BD, 0x26BE},   {0x26C4, 0x26C5},	{0x26CE, 0x26CE},
    {0x26D4, 0x26D4},	{0x26EA, 0x26EA},   {0x26F2, 0x26F3},	{0x26F5, 0x26F5},
    {0x26FA, 0x26FA},	{0x26FD, 0x26FD},   {0x2705, 0x2705},	{0x270A, 0x270B},
    {0x2728, 0x2728},	{0x274C, 0x274C},   {0x274E, 0x274E},	{0x2753, 0x2755},
    {0x2757, 0x2757},	{0x2795, 0x2797},   {0x27B0, 0x27B0},	{0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},	{0x2B50, 0x2B50},   {0x2B55, 0x2B55},	{0x2E80, 0x303E},
    {0x3041, 0x33FF},	{0x3400, 0x4DBF},   {0x4E00, 0x9FFF},	{0xA000, 0xA4CF},
    {0xA960, 0xA97F},	{0xAC00, 0xD7A3},   {0xF900, 0xFAFF},	{0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},	{0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},	{0x16FE0, 0x16FE4},
    {0x17000, 0x18AFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
    {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F202}, {0x1F210, 0x1F23B},
    {0x1F240, 0x1F248}, {0x1F250, 0x1F251}, {0x1F260, 0x1F265}, {0x1F300, 0x1F64F},
    {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

static bool in_ranges(uint32_t cp, const struct range *r, size_t n)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cp < r[mid].first)
			hi = mid;
		else if (cp > r[mid].last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* go-runewidth's RuneWidth() with East Asian ambiguous characters narrow. */
static size_t rune_width(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xAD)
		return 0;
	if (cp < 0x300)
		return 1;
	if (in_ranges(cp, zero_width, ARRAY_SIZE(zero_width)))
		return 0;
	if (in_ranges(cp, double_width, ARRAY_SIZE(double_width)))
		return 2;
	return 1;
}

size_t table_text_width(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, w = 0;
	uint32_t cp;

	while (i < len) {
		i += utf8_decode(p + i, len - i, &cp);
		w += rune_width(cp);
	}
	return w;
}

static void put(struct layout *l, const char *s, size_t len)
{
	if (l->rv == 0)
		l->rv = buf_append(l->out, s, len);
}

static void pad(struct layout *l, size_t n)
{
	static const char spaces[] = "                                ";

	while (n > 0) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		put(l, spaces, k);
		n -= k;
	}
}

/* Print lines [line0, line1) with the widths known so far. */
static void write_lines(struct layout *l, size_t line0, size_t line1)
{
	size_t i, j;

	for (i = line0; i < line1; i++) {
		const struct line *ln = &l->lines[i];

		for (j = 0; j < ln->ncells; j++) {
			const struct cell *c = &l->cells[ln->first + j];

			put(l, l->text + c->off, c->len);
			if (j < l->nwidths && l->widths[j] > c->width)
				pad(l, l->widths[j] - c->width);
		}
		if (ln->newline)
			put(l, "\n", 1);
	}
}

/* Go's tabwriter.format(): find the blocks of the next column among lines
 * [line0, line1), size each, then lay out the columns to its right. */
static void format(struct layout *l, size_t line0, size_t line1)
{
	size_t column = l->nwidths;
	size_t this;

	for (this = line0; this < line1; this ++) {
		size_t width = l->minwidth;

		if (column + 1 >= l->lines[this].ncells)
			continue;
		/* A cell exists in this column: a block begins here. */
		write_lines(l, line0, this);
		line0 = this;
		for (; this < line1; this ++) {
			const struct line *ln = &l->lines[this];
			size_t w;

			if (column + 1 >= ln->ncells)
				break;
			w = l->cells[ln->first + column].width + l->padding;
			if (w > width)
				width = w;
		}
		l->widths[l->nwidths++] = width;
		format(l, line0, this);
		l->nwidths--;
		line0 = this;
		/* Like Go, the loop's this++ skips the line that ended the
		 * block: it has no cell in this column. */
	}
	write_lines(l, line0, line1);
}

int table_flush(struct table *t, struct buf *out)
{
	struct layout l;
	size_t ncells = 0, nlines = 0, maxcells = 0, i, start, cur;
	const char *text = t->text.data;
	size_t len = t->text.len;
	int rv = SHOAL_ENOMEM;

	if (len == 0)
		return 0;
	/* Count cells and lines to size the arrays once. */
	for (i = 0; i < len; i++) {
		if (text[i] == '\t' || text[i] == '\n')
			ncells++;
		if (text[i] == '\n')
			nlines++;
	}
	if (text[len - 1] != '\n') {
		ncells++;
		nlines++;
	}
	memset(&l, 0, sizeof(l));
	l.text = text;
	l.minwidth = t->minwidth;
	l.padding = t->padding;
	l.out = out;
	l.cells = calloc(ncells, sizeof(*l.cells));
	l.lines = calloc(nlines, sizeof(*l.lines));
	if (l.cells == NULL || l.lines == NULL)
		goto out;

	ncells = 0;
	start = 0;
	cur = 0;
	l.lines[0].first = 0;
	for (i = 0; i <= len; i++) {
		bool end = i == len;

		if (!end && text[i] != '\t' && text[i] != '\n')
			continue;
		if (end && start == len && (len == 0 || text[len - 1] == '\n'))
			break; /* nothing after the last newline */
		l.cells[ncells].off = start;
		l.cells[ncells].len = i - start;
		l.cells[ncells].width = table_text_width(text + start, i - start);
		ncells++;
		l.lines[cur].ncells++;
		start = i + 1;
		if (end || text[i] == '\n') {
			l.lines[cur].newline = !end;
			if (l.lines[cur].ncells > maxcells)
				maxcells = l.lines[cur].ncells;
			cur++;
			if (cur < nlines)
				l.lines[cur].first = ncells;
		}
	}
	l.nlines = cur;
	l.widths = calloc(maxcells + 1, sizeof(*l.widths));
	if (l.widths == NULL)
		goto out;

	format(&l, 0, l.nlines);
	rv = l.rv;
	if (rv == 0)
		t->text.len = 0;
out:
	free(l.widths);
	free(l.cells);
	free(l.lines);
	return rv;
}
