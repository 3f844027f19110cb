/* Unit tests of runtime/registry: references and WWW-Authenticate challenges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fsutil.h"
#include "runtime/image_store.h"
#include "runtime/registry.h"

struct ref_case {
	const char *in;
	const char *domain, *host, *repo, *tag, *name, *family;
	const char *digest; /* NULL: none */
};

static void refs_parse(void **state)
{
	static const char dg[] =
	    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	const struct ref_case cases[] = {
	    {"busybox", "docker.io", "registry-1.docker.io", "library/busybox", "latest",
	     "busybox:latest", "busybox", NULL},
	    {"busybox:1.36", "docker.io", "registry-1.docker.io", "library/busybox", "1.36",
	     "busybox:1.36", "busybox", NULL},
	    {"docker.io/library/busybox", "docker.io", "registry-1.docker.io", "library/busybox",
	     "latest", "busybox:latest", "busybox", NULL},
	    {"user/app:v1", "docker.io", "registry-1.docker.io", "user/app", "v1", "user/app:v1",
	     "user/app", NULL},
	    {"127.0.0.1:5000/test/bb:v1", "127.0.0.1:5000", "127.0.0.1:5000", "test/bb", "v1",
	     "127.0.0.1:5000/test/bb:v1", "127.0.0.1:5000/test/bb", NULL},
	    {"localhost/app", "localhost", "localhost", "app", "latest", "localhost/app:latest",
	     "localhost/app", NULL},
	    {"ghcr.io/a/b/c:x", "ghcr.io", "ghcr.io", "a/b/c", "x", "ghcr.io/a/b/c:x",
	     "ghcr.io/a/b/c", NULL},
	    {"busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	     "docker.io", "registry-1.docker.io", "library/busybox", "", "", "busybox", dg},
	    {"r.io:443/x:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	     "r.io:443", "r.io:443", "x", "t", "r.io:443/x:t", "r.io:443/x", dg},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ref_case *c = &cases[i];
		struct registry_ref r;
		struct shoal_err err;
		int rv = registry_ref_parse(c->in, &r, &err);
		if (rv != 0)
			fail_msg("%s: %s", c->in, err.msg);
		assert_string_equal(r.domain, c->domain);
		assert_string_equal(r.host, c->host);
		assert_string_equal(r.repo, c->repo);
		assert_string_equal(r.tag, c->tag);
		assert_string_equal(r.name, c->name);
		assert_string_equal(r.family, c->family);
		assert_int_equal(r.has_digest, c->digest != NULL);
		if (c->digest != NULL)
			assert_string_equal(r.digest.str, c->digest);
	}
}

static void refs_refused(void **state)
{
	const char *bad[] = {
	    "",
	    "Busybox",
	    "busybox:",
	    "busybox@",
	    "busybox@sha256:abc",
	    "busybox@sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    "busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	    "a//b",
	    "/abs",
	    "busybox:t@g",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct registry_ref r;
		struct shoal_err err;
		int rv = registry_ref_parse(bad[i], &r, &err);
		if (rv != SHOAL_EINVAL)
			fail_msg("'%s' was accepted (rv %d)", bad[i], rv);
		assert_non_null(strstr(err.msg, "reference") != NULL ? err.msg
								     : strstr(err.msg, "name"));
	}
}

static int parse(const char *s, struct registry_challenge *ch, struct shoal_err *err)
{
	return registry_challenge_parse(s, strlen(s), ch, err);
}

static void challenges_parse(void **state)
{
	struct registry_challenge ch;
	struct shoal_err err;

	(void)state;
	assert_int_equal(parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry."
			       "docker.io\",scope=\"repository:library/busybox:pull\"",
			       &ch, &err),
			 0);
	assert_string_equal(ch.realm, "https://auth.docker.io/token");
	assert_string_equal(ch.service, "registry.docker.io");
	assert_string_equal(ch.scope, "repository:library/busybox:pull");
	/* Case, spaces, unknown parameters, tokens, escapes, a trailing comma. */
	assert_int_equal(
	    parse("  bEARER  Realm = \"http://127.0.0.1:1/t?a=1\" , error=\"insufficient_"
		  "scope\",service=reg, scope=\"a\\\"b\",",
		  &ch, &err),
	    0);
	assert_string_equal(ch.realm, "http://127.0.0.1:1/t?a=1");
	assert_string_equal(ch.service, "reg");
	assert_string_equal(ch.scope, "a\"b");
	/* Only the realm is required. */
	assert_int_equal(parse("Bearer realm=\"https://x/t\"", &ch, &err), 0);
	assert_string_equal(ch.service, "");
	assert_string_equal(ch.scope, "");
	/* No NUL needed: the length bounds the parse. */
	assert_int_equal(
	    registry_challenge_parse("Bearer realm=\"https://x/t\"garbage", 26, &ch, &err), 0);
	assert_string_equal(ch.realm, "https://x/t");
}

static void challenges_refused(void **state)
{
	static const struct {
		const char *in;
		int rv;
		const char *msg;
	} bad[] = {
	    {"Basic realm=\"x\"", SHOAL_EPROTO, "Basic"},
	    {"Bearer", SHOAL_EPROTO, "without parameters"},
	    {"Bearer ", SHOAL_EPROTO, "no realm"},
	    {"Bearer service=\"a\"", SHOAL_EPROTO, "no realm"},
	    {"Bearer realm=\"https://x", SHOAL_EPROTO, "unterminated"},
	    {"Bearer realm=\"https://x\\", SHOAL_EPROTO, "unterminated"},
	    {"Bearer realm=\"https://x\" scope=\"a\"", SHOAL_EPROTO, "expected ','"},
	    {"Bearer realm=\"https://x\",realm=\"https://y\"", SHOAL_EPROTO, "twice"},
	    {"Bearer realm=", SHOAL_EPROTO, "empty"},
	    {"Bearer =x", SHOAL_EPROTO, "malformed"},
	    {"Bearer realm=\"ftp://x\"", SHOAL_EPROTO, "http(s)"},
	    {"Bearer realm=\"file:///etc/passwd\"", SHOAL_EPROTO, "http(s)"},
	    {"Bearer realm=\"https://x\r\n\"", SHOAL_EPROTO, "control"},
	    {"Bearer abc==", SHOAL_EPROTO, "no realm"}, /* token68, not parameters */
	};
	struct registry_challenge ch;
	struct shoal_err err;
	char big[2048];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rv = parse(bad[i].in, &ch, &err);
		if (rv != bad[i].rv || strstr(err.msg, bad[i].msg) == NULL)
			fail_msg("'%s': rv %d, '%s'", bad[i].in, rv, rv != 0 ? err.msg : "");
	}
	/* A realm one byte longer than its field. */
	snprintf(big, sizeof(big), "Bearer realm=\"https://");
	memset(big + strlen(big), 'a', REGISTRY_REALM_MAX - 8);
	big[14 + REGISTRY_REALM_MAX] = '\0';
	strcat(big, "\"");
	assert_int_equal(parse(big, &ch, &err), SHOAL_ETOOBIG);
	/* One that just fits. */
	snprintf(big, sizeof(big), "Bearer realm=\"https://");
	memset(big + strlen(big), 'a', REGISTRY_REALM_MAX - 9);
	big[14 + REGISTRY_REALM_MAX - 1] = '\0';
	strcat(big, "\"");
	assert_int_equal(parse(big, &ch, &err), 0);
	assert_int_equal(strlen(ch.realm), REGISTRY_REALM_MAX - 1);
}

/* A pinned store: gc keeps tmp/ and unreferenced blobs (a pull's thread may
 * be writing them) and close waits for the last unpin. */
static void store_pins(void **state)
{
	char dir[] = "/tmp/shoal-test-registry-XXXXXX", root[64];
	struct image_store *s;
	struct image_blob_writer w;
	struct image_gc_stats st;
	struct digest d, got;
	struct shoal_err err;
	char path[PATH_MAX];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(root, sizeof(root), "%s/images", dir);
	assert_int_equal(image_store_open(root, &s, &err), 0);
	assert_int_equal(image_store_blob_put(s, "loose", 5, &d, &err), 0);
	image_store_pin(s);
	assert_int_equal(image_store_blob_begin(s, &w, &err), 0);
	assert_int_equal(image_store_blob_write(&w, "abc", 3, &err), 0);
	assert_int_equal(image_store_gc(s, &st, &err), 0);
	assert_int_equal(st.tmp_removed, 0);
	assert_int_equal(st.blobs_removed, 0);
	assert_int_equal(access(w.path, F_OK), 0);
	assert_int_equal(image_store_blob_commit(s, &w, NULL, &got, NULL, &err), 0);
	image_store_unpin(s);
	assert_false(image_store_closing(s));
	assert_int_equal(image_store_gc(s, &st, &err), 0);
	assert_int_equal(st.blobs_removed, 2);
	image_store_blob_path(s, &got, path);
	assert_int_not_equal(access(path, F_OK), 0);
	/* Closed while pinned: still usable by the pull until it unpins. */
	image_store_pin(s);
	image_store_close(s);
	assert_true(image_store_closing(s));
	assert_int_equal(image_store_blob_put(s, "late", 4, &d, &err), 0);
	image_store_unpin(s); /* frees it: ASan reports a leak or a use after free */
	assert_int_equal(fs_rm_rf(dir, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(refs_parse),	cmocka_unit_test(refs_refused),
	    cmocka_unit_test(challenges_parse), cmocka_unit_test(challenges_refused),
	    cmocka_unit_test(store_pins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
