/* Completing --listen-addr values like Docker's opts.ParseTCPAddr(). */
#include "cli/addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TCP_PREFIX "tcp://"

static int bad_format(const char *in, struct shoal_err *err)
{
	return shoal_errf(err, SHOAL_EINVAL, "invalid bind address format: %s", in);
}

int addr_parse_listen(const char *in, char *out, size_t len, struct shoal_err *err)
{
	const char *addr = in, *colon, *port = "";
	char host[ADDR_MAX];
	size_t hlen;
	char *end;
	long p;
	int n;

	if (strncmp(addr, TCP_PREFIX, strlen(TCP_PREFIX)) == 0)
		addr += strlen(TCP_PREFIX);
	if (in[0] == '\0' || (addr != in && addr[0] == '\0')) {
		snprintf(out, len, "%s", ADDR_DEFAULT_LISTEN);
		return 0;
	}
	if (strstr(addr, "://") != NULL)
		return shoal_errf(err, SHOAL_EINVAL, "invalid proto, expected tcp: %s", in);
	if (addr[0] == '[') {
		/* "[v6]" or "[v6]:port" */
		const char *close = strchr(addr, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return bad_format(in, err);
		hlen = (size_t)(close - addr - 1);
		if (hlen >= sizeof(host))
			return bad_format(in, err);
		memcpy(host, addr + 1, hlen);
		if (close[1] == ':')
			port = close + 2;
	} else {
		colon = strchr(addr, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL; /* a bare IPv6 address: all host */
		hlen = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
		if (hlen >= sizeof(host))
			return bad_format(in, err);
		memcpy(host, addr, hlen);
		if (colon != NULL)
			port = colon + 1;
	}
	host[hlen] = '\0';
	if (host[0] == '\0')
		snprintf(host, sizeof(host), "0.0.0.0");
	if (port[0] == '\0')
		port = ADDR_DEFAULT_PORT;
	p = strtol(port, &end, 10);
	if (port[0] < '0' || port[0] > '9' || *end != '\0' || p < 1 || p > 65535)
		return bad_format(in, err);
	if (strchr(host, ':') != NULL)
		n = snprintf(out, len, "[%s]:%ld", host, p);
	else
		n = snprintf(out, len, "%s:%ld", host, p);
	if (n < 0 || (size_t)n >= len)
		return bad_format(in, err);
	return 0;
}
