/* libFuzzer target: what the container API and the log reader take from outside:
 * container-create bodies (ctr_spec_parse) and json-file log lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "runtime/ctr_spec.h"
#include "runtime/logfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What parses encodes, and the encoding parses to the same JSON. */
static void fuzz_spec(const char *text, size_t len)
{
	struct ctr_spec spec, again, copy;
	json_t *body, *enc, *enc2;

	body = json_loadb(text, len, 0, NULL);
	if (body == NULL)
		return;
	if (ctr_spec_parse(body, &spec, NULL) != 0) {
		json_decref(body);
		return;
	}
	json_decref(body);
	enc = ctr_spec_to_json(&spec);
	if (enc == NULL)
		abort();
	if (ctr_spec_parse(enc, &again, NULL) != 0)
		abort();
	enc2 = ctr_spec_to_json(&again);
	if (enc2 == NULL || !json_equal(enc, enc2))
		abort();
	if (ctr_spec_copy(&spec, &copy, NULL) != 0)
		abort();
	ctr_spec_free(&copy);
	json_decref(enc);
	json_decref(enc2);
	ctr_spec_free(&again);
	ctr_spec_free(&spec);
}

static void fuzz_log_line(const char *text, size_t len)
{
	struct logfile_entry e;
	struct buf scratch, frame;

	buf_init(&scratch);
	buf_init(&frame);
	if (logfile_parse_line(text, len, &scratch, &e, NULL) == 0) {
		if (e.stream != LOGFILE_STDOUT && e.stream != LOGFILE_STDERR)
			abort();
		if (logfile_frame(&frame, &e, true, NULL) != 0 || frame.len < 8 + e.len)
			abort();
	}
	buf_free(&scratch);
	buf_free(&frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_log_line((const char *)data + 1, size - 1);
	else
		fuzz_spec((const char *)data + 1, size - 1);
	return 0;
}
