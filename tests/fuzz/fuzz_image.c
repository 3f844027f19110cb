/* libFuzzer target: the OCI/Docker JSON parsers, image names, and layer unpacking of a tar. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fsutil.h"
#include "runtime/image_store.h"
#include "runtime/layer.h"
#include "runtime/oci.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first input byte picks what the rest goes to. */
enum mode { M_MANIFEST, M_INDEX, M_CONFIG, M_DOCKER_SAVE, M_NAME, M_LAYER, M_COUNT };

static char base[64];	 /* a private directory for the whole run */
static char run[96];	 /* each layer is unpacked here, then removed */
static char outside[96]; /* stays empty unless something escapes */

static void cleanup(void)
{
	fs_rm_rf(base, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(base, sizeof(base), "/tmp/shoal-fuzz-image-XXXXXX");
	if (mkdtemp(base) == NULL)
		abort();
	snprintf(run, sizeof(run), "%s/run", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	if (mkdir(outside, 0755) != 0)
		abort();
	atexit(cleanup);
	return 0;
}

static size_t entries(const char *dir)
{
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		abort();
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void fuzz_manifest(const char *json, size_t len)
{
	struct oci_manifest m, again;
	char *enc;
	size_t enc_len;

	if (oci_manifest_parse(json, len, &m, NULL) != 0)
		return;
	if (m.n_layers > OCI_MAX_LAYERS || !oci_media_type_is_config(m.config.media_type))
		abort();
	/* What parses encodes, and the encoding parses to the same manifest. */
	if (oci_manifest_encode(&m, &enc, &enc_len, NULL) != 0)
		abort();
	if (oci_manifest_parse(enc, enc_len, &again, NULL) != 0 || again.n_layers != m.n_layers ||
	    !digest_equal(&again.config.digest, &m.config.digest))
		abort();
	for (size_t i = 0; i < m.n_layers; i++)
		if (!digest_equal(&again.layers[i].digest, &m.layers[i].digest) ||
		    again.layers[i].size != m.layers[i].size ||
		    again.layers[i].media_type != m.layers[i].media_type)
			abort();
	free(enc);
	oci_manifest_free(&again);
	oci_manifest_free(&m);
}

static void fuzz_index(const char *json, size_t len)
{
	const struct oci_descriptor *d;
	struct oci_index idx;

	if (oci_index_parse(json, len, &idx, NULL) != 0)
		return;
	if (oci_index_select(&idx, "linux", "amd64", &d, NULL) == 0 &&
	    (!oci_media_type_is_manifest(d->media_type) || strcmp(d->platform.os, "linux") != 0))
		abort();
	oci_index_free(&idx);
}

static void fuzz_config(const char *json, size_t len)
{
	struct oci_config c;

	if (oci_config_parse(json, len, &c, NULL) != 0)
		return;
	if (c.architecture == NULL || c.os == NULL || c.n_diff_ids > OCI_MAX_LAYERS)
		abort();
	for (size_t i = 1; i < c.n_labels; i++)
		if (strcmp(c.labels[i - 1].key, c.labels[i].key) > 0)
			abort();
	oci_config_free(&c);
	oci_layout_check(json, len, NULL);
}

static void fuzz_docker_save(const char *json, size_t len)
{
	struct oci_docker_save s;

	if (oci_docker_save_parse(json, len, &s, NULL) != 0)
		return;
	for (size_t i = 0; i < s.n_images; i++)
		if (s.images[i].config[0] == '/' ||
		    strstr(s.images[i].config, "..") == s.images[i].config)
			abort();
	oci_docker_save_free(&s);
}

static void fuzz_name(const char *data, size_t len)
{
	char in[IMAGE_REF_MAX + 8], out[IMAGE_REF_MAX], again[IMAGE_REF_MAX];

	if (len >= sizeof(in))
		len = sizeof(in) - 1;
	memcpy(in, data, len);
	in[len] = '\0';
	if (image_name_normalize(in, out, sizeof(out), NULL) != 0)
		return;
	/* Normal forms are fixed points. */
	if (image_name_normalize(out, again, sizeof(again), NULL) != 0 || strcmp(out, again) != 0)
		abort();
}

static void fuzz_layer(const uint8_t *data, size_t len)
{
	struct layer_stats st;
	struct digest d;

	if (mkdir(run, 0755) != 0)
		abort();
	layer_extract_mem(data, len, run, &d, &st, NULL);
	/* Nothing may land outside the destination. */
	if (entries(base) != 2 || entries(outside) != 0)
		abort();
	if (fs_rm_rf(run, NULL) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data + 1;

	if (size < 1)
		return 0;
	switch (data[0] % M_COUNT) {
	case M_MANIFEST:
		fuzz_manifest(json, size - 1);
		break;
	case M_INDEX:
		fuzz_index(json, size - 1);
		break;
	case M_CONFIG:
		fuzz_config(json, size - 1);
		break;
	case M_DOCKER_SAVE:
		fuzz_docker_save(json, size - 1);
		break;
	case M_NAME:
		fuzz_name(json, size - 1);
		break;
	default:
		fuzz_layer(data + 1, size - 1);
		break;
	}
	return 0;
}
