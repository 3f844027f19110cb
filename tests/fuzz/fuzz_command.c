/* libFuzzer target: decode a Raft command from untrusted bytes, apply it, snapshot and restore. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "node/command.h"
#include "node/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *snapshot(struct store *s, size_t *len)
{
	struct consensus_fsm fsm;
	void *buf = NULL;

	store_fsm(s, &fsm);
	if (fsm.snapshot(fsm.arg, &buf, len) != 0)
		abort();
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *a = NULL, *b = NULL;
	struct consensus_fsm fsm;
	struct command cmd;
	void *result = NULL, *enc, *snap_a, *snap_b;
	size_t enc_len, len_a, len_b;
	int code;

	if (command_decode(data, size, &cmd, NULL) != 0)
		return 0;
	/* What decodes keeps the rules, so it encodes again. */
	if (command_encode(&cmd, &enc, &enc_len, NULL) != 0)
		abort();
	command_free(&cmd);

	if (store_new(&a, NULL) != 0 || store_new(&b, NULL) != 0)
		abort();
	store_fsm(a, &fsm);
	/* Twice: first against an empty store, then against what the first wrote. */
	if (fsm.apply(fsm.arg, 1, data, size, &result) != 0)
		abort();
	code = store_result_code(result);
	if (code != 0 && code != SHOAL_ECONFLICT && code != SHOAL_ENOTFOUND)
		abort();
	if (fsm.apply(fsm.arg, 2, enc, enc_len, &result) != 0)
		abort();
	code = store_result_code(result);
	if (code != 0 && code != SHOAL_ECONFLICT && code != SHOAL_ENOTFOUND)
		abort();

	/* The state survives a snapshot and restore byte for byte. */
	snap_a = snapshot(a, &len_a);
	store_fsm(b, &fsm);
	if (fsm.restore(fsm.arg, snap_a, len_a) != 0)
		abort();
	snap_b = snapshot(b, &len_b);
	if (len_a != len_b || memcmp(snap_a, snap_b, len_a) != 0)
		abort();

	free(snap_a);
	free(snap_b);
	free(enc);
	store_free(a);
	store_free(b);
	return 0;
}
