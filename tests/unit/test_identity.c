/* Unit tests of net/identity: key files, fingerprints and join tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fsutil.h"
#include "net/identity.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/shoal-test-id.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	return fs_rm_rf(tmpdir, NULL);
}

static void key_saves_and_loads_with_mode_0600(void **state)
{
	struct identity a, b;
	struct shoal_err err;
	struct stat st;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/node.key", tmpdir);
	identity_generate(&a);
	assert_int_equal(identity_save(&a, path, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(identity_load(&b, path, &err), 0);
	assert_memory_equal(a.pk, b.pk, IDENTITY_PK_LEN);
	assert_memory_equal(a.sk, b.sk, IDENTITY_SK_LEN);

	/* The loaded key signs what the saved one verifies. */
	unsigned char sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const unsigned char *)"m", 1, b.sk);
	assert_int_equal(crypto_sign_verify_detached(sig, (const unsigned char *)"m", 1, a.pk), 0);
}

static void load_or_create_is_stable(void **state)
{
	struct identity a, b;
	struct shoal_err err;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/auto.key", tmpdir);
	assert_int_equal(identity_load_or_create(&a, path, &err), 0);
	assert_int_equal(identity_load_or_create(&b, path, &err), 0);
	assert_memory_equal(a.pk, b.pk, IDENTITY_PK_LEN);
}

static void damaged_key_files_are_rejected(void **state)
{
	struct identity a, b;
	struct shoal_err err;
	char path[128], *text = NULL;
	size_t len = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/bad.key", tmpdir);
	assert_int_equal(identity_load(&b, path, &err), SHOAL_ENOTFOUND);

	assert_int_equal(fs_write_atomic(path, "garbage\n", 8, 0600, &err), 0);
	assert_int_equal(identity_load(&b, path, &err), SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "is not a shoal identity key"));

	/* A valid file with every single character changed in turn. */
	identity_generate(&a);
	assert_int_equal(identity_save(&a, path, &err), 0);
	assert_int_equal(fs_read_all(path, 4096, &text, &len, &err), 0);
	for (size_t i = 0; i < len; i++) {
		char saved = text[i];
		text[i] = saved == 'A' ? 'B' : 'A';
		assert_int_equal(fs_write_atomic(path, text, len, 0600, &err), 0);
		int rv = identity_load(&b, path, &err);
		/* Either rejected, or (a base64 padding bit) the same key. */
		if (rv == 0)
			assert_memory_equal(a.sk, b.sk, IDENTITY_SK_LEN);
		else
			assert_int_equal(rv, SHOAL_EPROTO);
		text[i] = saved;
	}
	/* Truncated at every length. */
	for (size_t n = 0; n < len - 1; n++) {
		assert_int_equal(fs_write_atomic(path, text, n, 0600, &err), 0);
		assert_int_equal(identity_load(&b, path, &err), SHOAL_EPROTO);
	}
	free(text);
}

static void fingerprint_is_stable_base32(void **state)
{
	struct identity a;
	char f1[FINGERPRINT_LEN + 1], f2[FINGERPRINT_LEN + 1];

	(void)state;
	identity_generate(&a);
	identity_fingerprint(a.pk, f1);
	identity_fingerprint(a.pk, f2);
	assert_int_equal(strlen(f1), FINGERPRINT_LEN);
	assert_string_equal(f1, f2);
	assert_int_equal(strspn(f1, "abcdefghijklmnopqrstuvwxyz234567"), FINGERPRINT_LEN);
}

static void tokens_parse_and_reject(void **state)
{
	struct identity root;
	char fp[FINGERPRINT_LEN + 1], t1[TOKEN_LEN + 1], t2[TOKEN_LEN + 1];
	char pfp[FINGERPRINT_LEN + 1], sec[TOKEN_SECRET_LEN + 1];
	struct shoal_err err;

	(void)state;
	identity_generate(&root);
	identity_fingerprint(root.pk, fp);
	join_token_new(fp, t1);
	join_token_new(fp, t2);
	assert_int_equal(strlen(t1), TOKEN_LEN);
	assert_memory_equal(t1, "SHOAL-1-", 8);
	assert_string_not_equal(t1, t2);
	assert_int_equal(join_token_parse(t1, pfp, sec, &err), 0);
	assert_string_equal(pfp, fp);
	assert_true(join_token_secret_equal(sec, t1 + TOKEN_LEN - TOKEN_SECRET_LEN));
	assert_false(join_token_secret_equal(sec, t2 + TOKEN_LEN - TOKEN_SECRET_LEN));

	char bad[TOKEN_LEN + 2];
	memcpy(bad, t1, sizeof(t1));
	bad[3] = 'x'; /* prefix */
	assert_int_equal(join_token_parse(bad, pfp, sec, &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "invalid join token");
	memcpy(bad, t1, sizeof(t1));
	bad[20] = 'A'; /* not base32 */
	assert_int_equal(join_token_parse(bad, pfp, sec, &err), SHOAL_EINVAL);
	memcpy(bad, t1, sizeof(t1));
	bad[8 + FINGERPRINT_LEN] = '_';
	assert_int_equal(join_token_parse(bad, pfp, sec, &err), SHOAL_EINVAL);
	memcpy(bad, t1, sizeof(t1));
	bad[TOKEN_LEN - 1] = '\0'; /* short */
	assert_int_equal(join_token_parse(bad, pfp, sec, &err), SHOAL_EINVAL);
	memcpy(bad, t1, sizeof(t1));
	bad[TOKEN_LEN] = 'a';
	bad[TOKEN_LEN + 1] = '\0'; /* long */
	assert_int_equal(join_token_parse(bad, pfp, sec, &err), SHOAL_EINVAL);
	assert_int_equal(join_token_parse("", pfp, sec, &err), SHOAL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(key_saves_and_loads_with_mode_0600),
	    cmocka_unit_test(load_or_create_is_stable),
	    cmocka_unit_test(damaged_key_files_are_rejected),
	    cmocka_unit_test(fingerprint_is_stable_base32),
	    cmocka_unit_test(tokens_parse_and_reject),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
