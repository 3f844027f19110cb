/* bench/api_latency: latency of one API request over a keep-alive unix socket.
 *
 * Usage: api_latency SOCKET PATH COUNT
 * Sends COUNT "GET PATH" requests one after the other on one connection and
 * prints "p50_us p99_us mean_us" of the round trips. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Read one response with a Content-Length body. Returns 0 or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *end = NULL;

	while (end == NULL) {
		ssize_t r = read(fd, buf + have, cap - have - 1);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL && have >= cap - 1)
			return -1;
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "api_latency: unexpected response: %.80s\n", buf);
		return -1;
	}
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl == NULL)
		return -1;
	size_t body = strtoul(cl + 17, NULL, 10);
	size_t total = (size_t)(end + 4 - buf) + body;
	if (total >= cap)
		return -1;
	while (have < total) {
		ssize_t r = read(fd, buf + have, cap - have - 1);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return have == total ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr;
	char req[1024];
	static char buf[1 << 20];
	double *lat, sum = 0;
	int fd, n;

	if (argc != 4 || (n = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: api_latency SOCKET PATH COUNT\n");
		return 2;
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		fprintf(stderr, "api_latency: connect %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", argv[2]);
	lat = calloc((size_t)n, sizeof *lat);
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) ||
		    read_response(fd, buf, sizeof(buf)) != 0) {
			fprintf(stderr, "api_latency: request %d failed\n", i);
			return 1;
		}
		lat[i] = now_us() - t0;
		sum += lat[i];
	}
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	printf("%.1f %.1f %.1f\n", lat[n / 2], lat[(size_t)((double)n * 0.99)], sum / n);
	free(lat);
	close(fd);
	return 0;
}
