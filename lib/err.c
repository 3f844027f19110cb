/* Error holder helpers. */
#include "lib/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int shoal_errf(struct shoal_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void shoal_err_wrap(struct shoal_err *err, const char *fmt, ...)
{
	char ctx[SHOAL_ERR_LEN];
	size_t c, o;
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	/* Result: "<ctx>: <old>", cut to fit. */
	c = strlen(ctx);
	if (c > SHOAL_ERR_LEN - 3)
		c = SHOAL_ERR_LEN - 3;
	o = strnlen(err->msg, SHOAL_ERR_LEN - 1);
	if (o > SHOAL_ERR_LEN - 3 - c)
		o = SHOAL_ERR_LEN - 3 - c;
	memmove(err->msg + c + 2, err->msg, o);
	memcpy(err->msg, ctx, c);
	err->msg[c] = ':';
	err->msg[c + 1] = ' ';
	err->msg[c + 2 + o] = '\0';
}

const char *shoal_strerror(int code)
{
	switch (code) {
	case SHOAL_OK:
		return "success";
	case SHOAL_ENOMEM:
		return "out of memory";
	case SHOAL_EINVAL:
		return "invalid argument";
	case SHOAL_EPROTO:
		return "malformed data";
	case SHOAL_EIO:
		return "I/O error";
	case SHOAL_ENOTFOUND:
		return "not found";
	case SHOAL_ECONFLICT:
		return "conflict";
	case SHOAL_ESTATE:
		return "not allowed in this state";
	case SHOAL_ENOTLEADER:
		return "not the leader";
	case SHOAL_EUNAVAIL:
		return "unavailable";
	case SHOAL_ETOOBIG:
		return "too big";
	case SHOAL_EBUSY:
		return "busy";
	case SHOAL_ESHUTDOWN:
		return "shutting down";
	case SHOAL_ETIMEDOUT:
		return "timed out";
	default:
		return "unknown error";
	}
}
