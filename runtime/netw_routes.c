/* Routes to the other nodes' container subnets, tagged with shoal's routing protocol, via iproute2.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"
#include "runtime/netw.h"
#include "runtime/netw_priv.h"

#define STR_(x)	   #x
#define STR(x)	   STR_(x)
#define PROTO	   STR(NETW_ROUTE_PROTO)
#define BATCH_LINE 96 /* bytes of one batch line: "route replace A/L via G proto N\n" */

/* A subnet, host order. */
struct subnet {
	uint32_t net;
	uint8_t len;
};

static uint32_t mask_of(uint8_t len)
{
	return len == 0 ? 0 : ~0U << (32 - len);
}

/* Parse "a.b.c.d/len" (len 1..32, no leading zero, host bits clear). Returns
 * false when @s is not of that form. */
static bool parse_subnet(const char *s, struct subnet *out)
{
	const char *slash = strchr(s, '/');
	char host[INET_ADDRSTRLEN];
	struct in_addr ia;
	size_t plen;
	unsigned len = 0;
	uint32_t a;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(host))
		return false;
	memcpy(host, s, (size_t)(slash - s));
	host[slash - s] = '\0';
	if (inet_pton(AF_INET, host, &ia) != 1)
		return false;
	plen = strlen(slash + 1);
	if (plen == 0 || plen > 2 || strspn(slash + 1, "0123456789") != plen || slash[1] == '0')
		return false;
	for (const char *c = slash + 1; *c != '\0'; c++)
		len = len * 10 + (unsigned)(*c - '0');
	if (len < 1 || len > 32)
		return false;
	a = ntohl(ia.s_addr);
	if ((a & ~mask_of((uint8_t)len)) != 0)
		return false;
	out->net = a;
	out->len = (uint8_t)len;
	return true;
}

/* A unicast address another node can have: not 0/8, 127/8, multicast or class E. */
static bool parse_via(const char *s, uint32_t *out)
{
	struct in_addr ia;
	uint32_t a;

	if (inet_pton(AF_INET, s, &ia) != 1)
		return false;
	a = ntohl(ia.s_addr);
	if ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 14)
		return false;
	*out = a;
	return true;
}

static void fmt_subnet(const struct subnet *s, char out[INET_ADDRSTRLEN + 4])
{
	struct in_addr ia = {.s_addr = htonl(s->net)};
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ia, a, sizeof(a));
	snprintf(out, INET_ADDRSTRLEN + 4, "%s/%u", a, s->len);
}

/* Check every route of @routes into @want (n entries). Nothing is changed. */
static int validate(const struct netw_route *routes, size_t n, struct subnet *want, uint32_t *via,
		    struct shoal_err *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct netw_route *r = &routes[i];

		if (memchr(r->subnet, '\0', sizeof(r->subnet)) == NULL ||
		    !parse_subnet(r->subnet, &want[i]))
			return shoal_errf(
			    err, SHOAL_EINVAL,
			    "route %zu: subnet '%.*s' is not of the form a.b.c.d/len "
			    "with len 1..32 and the host bits clear (e.g. 10.89.2.0/24)",
			    i, (int)sizeof(r->subnet), r->subnet);
		if (memchr(r->via, '\0', sizeof(r->via)) == NULL || !parse_via(r->via, &via[i]))
			return shoal_errf(err, SHOAL_EINVAL,
					  "route to %s: gateway '%.*s' is not a unicast IPv4 "
					  "address (e.g. 10.77.0.2)",
					  r->subnet, (int)sizeof(r->via), r->via);
		for (size_t j = 0; j < i; j++)
			if (want[j].net == want[i].net && want[j].len == want[i].len)
				return shoal_errf(err, SHOAL_EINVAL,
						  "subnet %s is listed twice (routes %zu and %zu)",
						  r->subnet, j, i);
	}
	return 0;
}

/* Turn a "dst" of `ip -j route` ("10.89.2.0/24", "10.89.4.5" for a /32,
 * "default") into @out (the text to give `route del`) and @s. Returns false
 * for anything else, which is then left alone. */
static bool parse_dst(const char *dst, char out[INET_ADDRSTRLEN + 4], struct subnet *s)
{
	if (strcmp(dst, "default") == 0) {
		snprintf(out, INET_ADDRSTRLEN + 4, "0.0.0.0/0");
		s->net = 0;
		s->len = 0;
		return true;
	}
	if (strlen(dst) >= INET_ADDRSTRLEN + 4)
		return false;
	if (strchr(dst, '/') == NULL) {
		if (strlen(dst) >= INET_ADDRSTRLEN)
			return false;
		snprintf(out, INET_ADDRSTRLEN + 4, "%s/32", dst);
	} else {
		snprintf(out, INET_ADDRSTRLEN + 4, "%s", dst);
	}
	return parse_subnet(out, s);
}

/* Append to the batch @b (sized for every line). */
__attribute__((format(printf, 3, 4))) static void addline(char *b, size_t *off, const char *fmt,
							  ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(b + *off, BATCH_LINE, fmt, ap);
	va_end(ap);
	PRE(k > 0 && k < BATCH_LINE);
	*off += k > 0 && k < BATCH_LINE ? (size_t)k : 0;
}

int netw_routes_set(const struct netw_route *routes, size_t n, struct shoal_err *err)
{
	const char *show[] = {NULL, "-4", "-j", "route", "show", "proto", PROTO, NULL};
	const char *batch_argv[] = {NULL, "-force", "-batch", "-", NULL};
	_cleanup_free_ struct subnet *want = NULL;
	_cleanup_free_ uint32_t *via = NULL;
	_cleanup_free_ char *out = NULL;
	_cleanup_free_ char *batch = NULL;
	char ip_bin[PATH_MAX];
	json_t *root = NULL, *r;
	size_t off = 0, i;
	int rv;

	want = calloc(n > 0 ? n : 1, sizeof(*want));
	via = calloc(n > 0 ? n : 1, sizeof(*via));
	if (want == NULL || via == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err;
	}
	rv = validate(routes, n, want, via, err);
	if (rv != 0)
		goto err;
	rv = netw_find_bin("ip", "iproute2", ip_bin, sizeof(ip_bin), err);
	if (rv != 0)
		goto err;
	show[0] = ip_bin;
	batch_argv[0] = ip_bin;
	rv = netw_run(show, NULL, -1, -1, &out, "list the routes", err);
	if (rv != 0)
		goto err;
	root = json_loads(out, 0, NULL);
	if (!json_is_array(root)) {
		rv = shoal_errf(err, SHOAL_EIO, "list the routes: unreadable ip output");
		goto err;
	}
	batch = malloc((n + json_array_size(root)) * BATCH_LINE + 1);
	if (batch == NULL) {
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
		goto err;
	}
	batch[0] = '\0';
	/* Replacing first: a wanted route is swapped in place, never missing. */
	for (i = 0; i < n; i++) {
		char s[INET_ADDRSTRLEN + 4], g[INET_ADDRSTRLEN];
		struct in_addr ia = {.s_addr = htonl(via[i])};

		fmt_subnet(&want[i], s);
		inet_ntop(AF_INET, &ia, g, sizeof(g));
		addline(batch, &off, "route replace %s via %s proto " PROTO "\n", s, g);
	}
	json_array_foreach(root, i, r)
	{
		const char *dst = json_string_value(json_object_get(r, "dst"));
		char text[INET_ADDRSTRLEN + 4];
		struct subnet s;
		bool wanted = false;

		if (dst == NULL || !parse_dst(dst, text, &s))
			continue;
		for (size_t j = 0; j < n && !wanted; j++)
			wanted = want[j].net == s.net && want[j].len == s.len;
		if (!wanted)
			addline(batch, &off, "route del %s proto " PROTO "\n", text);
	}
	if (off > 0) {
		/* -force: one unreachable node does not keep the others' routes out. */
		rv = netw_run(batch_argv, batch, -1, -1, NULL, "set the routes", err);
		if (rv != 0)
			goto err;
	}
	json_decref(root);
	return 0;
err:
	json_decref(root);
	shoal_err_wrap(err, "routes to the other nodes' container subnets");
	return rv;
}
