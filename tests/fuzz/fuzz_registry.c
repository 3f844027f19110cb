/* libFuzzer target: image references and WWW-Authenticate challenges from registries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/err.h"
#include "runtime/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first byte picks the parser; the rest is its input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry_challenge ch;
	struct registry_ref ref;
	struct shoal_err err;
	char *s;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		/* Exactly size - 1 bytes, no NUL: overreads show up under ASan. */
		s = malloc(size - 1 > 0 ? size - 1 : 1);
		if (s == NULL)
			return 0;
		memcpy(s, data + 1, size - 1);
		if (registry_challenge_parse(s, size - 1, &ch, &err) == 0) {
			if (strnlen(ch.realm, sizeof(ch.realm)) >= sizeof(ch.realm) ||
			    strnlen(ch.service, sizeof(ch.service)) >= sizeof(ch.service) ||
			    strnlen(ch.scope, sizeof(ch.scope)) >= sizeof(ch.scope) ||
			    (strncasecmp(ch.realm, "http://", 7) != 0 &&
			     strncasecmp(ch.realm, "https://", 8) != 0))
				abort();
		}
		free(s);
		return 0;
	}
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (registry_ref_parse(s, &ref, &err) == 0) {
		if (ref.repo[0] == '\0' || ref.host[0] == '\0' ||
		    (ref.tag[0] == '\0' && !ref.has_digest))
			abort();
	}
	free(s);
	return 0;
}
