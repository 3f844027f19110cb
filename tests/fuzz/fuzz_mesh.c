/* libFuzzer target: untrusted bytes into the routing mesh table decoder
 * (node/mesh_table.h), as a worker gets it from a manager or reads it back
 * from disk. Whatever it accepts must pack and unpack again to an equal
 * table; everything it allocates is freed, accepted or not. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <msgpack.h>

#include "lib/err.h"
#include "node/mesh_table.h"
#include "node/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Pack @t, unpack the bytes into @out. */
static int again(const struct mesh_table *t, struct mesh_table *out, struct shoal_err *err)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	int rv;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rv = mesh_table_pack(t, &pk);
	msgpack_unpacked_init(&u);
	if (rv == 0)
		rv = schema_msgpack_parse(sb.data, sb.size, &u, err);
	if (rv == 0)
		rv = mesh_table_unpack(&u.data, out, err);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mesh_table t, back, copy;
	struct shoal_err err;
	msgpack_unpacked u;

	msgpack_unpacked_init(&u);
	if (schema_msgpack_parse(data, size, &u, &err) != 0 ||
	    mesh_table_unpack(&u.data, &t, &err) != 0) {
		msgpack_unpacked_destroy(&u);
		return 0;
	}
	msgpack_unpacked_destroy(&u); /* the table holds no pointer into the input */
	if (again(&t, &back, &err) != 0 || !mesh_table_equal(&t, &back))
		abort();
	if (mesh_table_copy(&copy, &t, &err) != 0 || !mesh_table_equal(&copy, &back))
		abort();
	mesh_table_free(&copy);
	mesh_table_free(&back);
	mesh_table_free(&t);
	return 0;
}
