/* Content digests "sha256:<64 lowercase hex>": parsing and streaming SHA-256. */
#include "runtime/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

bool digest_is_valid(const char *s)
{
	return s != NULL && strncmp(s, DIGEST_PREFIX, DIGEST_PREFIX_LEN) == 0 &&
	       strlen(s) == DIGEST_LEN && is_lower_hex(s + DIGEST_PREFIX_LEN, DIGEST_HEX_LEN);
}

int digest_parse(const char *s, struct digest *out, struct shoal_err *err)
{
	const char *colon;

	if (s == NULL)
		return shoal_errf(err, SHOAL_EINVAL, "missing digest");
	colon = strchr(s, ':');
	if (colon == NULL)
		return shoal_errf(
		    err, SHOAL_EINVAL,
		    "digest '%.80s' has no algorithm: expected sha256:<64 hex digits>", s);
	if ((size_t)(colon - s) != DIGEST_PREFIX_LEN - 1 ||
	    strncmp(s, DIGEST_PREFIX, DIGEST_PREFIX_LEN) != 0)
		return shoal_errf(err, SHOAL_EINVAL,
				  "digest '%.80s' uses an unsupported algorithm: only sha256 is "
				  "supported",
				  s);
	if (!digest_is_valid(s))
		return shoal_errf(
		    err, SHOAL_EINVAL,
		    "digest '%.80s' is malformed: expected sha256: and 64 lowercase hex "
		    "digits",
		    s);
	memcpy(out->str, s, DIGEST_LEN + 1);
	return 0;
}

int digest_from_hex(const char *hex, struct digest *out, struct shoal_err *err)
{
	if (hex == NULL || strlen(hex) != DIGEST_HEX_LEN || !is_lower_hex(hex, DIGEST_HEX_LEN))
		return shoal_errf(
		    err, SHOAL_EINVAL,
		    "'%.80s' is not a sha256 digest: expected 64 lowercase hex digits",
		    hex == NULL ? "" : hex);
	memcpy(out->str, DIGEST_PREFIX, DIGEST_PREFIX_LEN);
	memcpy(out->str + DIGEST_PREFIX_LEN, hex, DIGEST_HEX_LEN + 1);
	return 0;
}

const char *digest_hex(const struct digest *d)
{
	return d->str + DIGEST_PREFIX_LEN;
}

bool digest_equal(const struct digest *a, const struct digest *b)
{
	return memcmp(a->str, b->str, DIGEST_LEN) == 0;
}

void digest_init(struct digest_ctx *c)
{
	crypto_hash_sha256_init(&c->st);
	c->len = 0;
}

void digest_update(struct digest_ctx *c, const void *data, size_t len)
{
	if (len == 0)
		return;
	crypto_hash_sha256_update(&c->st, data, len);
	c->len += len;
}

void digest_final(struct digest_ctx *c, struct digest *out)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_final(&c->st, h);
	memcpy(out->str, DIGEST_PREFIX, DIGEST_PREFIX_LEN);
	sodium_bin2hex(out->str + DIGEST_PREFIX_LEN, DIGEST_HEX_LEN + 1, h, sizeof(h));
	POST(digest_is_valid(out->str));
}

void digest_buf(const void *data, size_t len, struct digest *out)
{
	struct digest_ctx c;

	digest_init(&c);
	digest_update(&c, data, len);
	digest_final(&c, out);
}

int digest_fd(int fd, struct digest *out, uint64_t *size, struct shoal_err *err)
{
	unsigned char buf[64 * 1024];
	struct digest_ctx c;

	digest_init(&c);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return shoal_errf(err, SHOAL_EIO, "read: %s", strerror(errno));
		if (n == 0)
			break;
		digest_update(&c, buf, (size_t)n);
	}
	if (size != NULL)
		*size = c.len;
	digest_final(&c, out);
	return 0;
}

int digest_file(const char *path, struct digest *out, uint64_t *size, struct shoal_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rv;

	if (fd < 0) {
		if (errno == ENOENT)
			return shoal_errf(err, SHOAL_ENOTFOUND, "%s does not exist", path);
		return shoal_errf(err, SHOAL_EIO, "open %s: %s", path, strerror(errno));
	}
	rv = digest_fd(fd, out, size, err);
	if (rv != 0)
		shoal_err_wrap(err, "%s", path);
	return rv;
}
