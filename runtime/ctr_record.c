/* A container's record on disk (container.json): what survives a daemon restart. */
#include "runtime/ctr_record.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "lib/fsutil.h"

#define RECORD_MAX (4u << 20)

static const char *const state_names[] = {
    [CTR_CREATED] = "created",	 [CTR_RUNNING] = "running", [CTR_EXITED] = "exited",
    [CTR_REMOVING] = "removing", [CTR_DEAD] = "dead",
};

const char *ctr_state_name(enum ctr_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

static int state_parse(const char *s, enum ctr_state *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(state_names); i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum ctr_state)i;
			return 0;
		}
	}
	return -1;
}

int ctr_record_save(const struct container *c, const char *path, uint64_t pid_start,
		    struct shoal_err *err)
{
	json_t *spec = ctr_spec_to_json(&c->spec);
	json_t *root;
	char *text;
	int rv;

	if (spec == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	root = json_pack(
	    "{s:s, s:s, s:I, s:s, s:s, s:o, s:s, s:o, s:{s:s, s:i, s:I, s:i, s:b, "
	    "s:s, s:I, s:I}, s:i}",
	    "Id", c->id, "Name", c->name, "Created", (json_int_t)c->created_ns, "Image",
	    c->image_id.str, "ImageName", c->image_name, "Args", oci_strlist_to_json(&c->args),
	    "Driver", c->driver == CTR_DRIVER_RUNC ? "runc" : "process", "Spec", spec, "State",
	    "Status", ctr_state_name(c->state), "Pid", c->pid, "PidStart", (json_int_t)pid_start,
	    "ExitCode", c->exit_code, "OOMKilled", c->oom_killed, "Error", c->error, "StartedAt",
	    (json_int_t)c->started_ns, "FinishedAt", (json_int_t)c->finished_ns, "RestartCount",
	    c->restart_count);
	if (root == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		return shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	rv = fs_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	return rv;
}

int ctr_record_load(const char *path, struct container *c, uint64_t *pid_start,
		    struct shoal_err *err)
{
	json_t *root, *spec = NULL, *args = NULL;
	const char *id, *name, *image, *image_name, *driver, *status, *error;
	json_int_t created, pstart, started, finished;
	int pid, exit_code, oom, restarts, rv;
	json_error_t je;
	char *text;
	size_t len;

	rv = fs_read_all(path, RECORD_MAX, &text, &len, err);
	if (rv != 0)
		return rv;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (root == NULL)
		return shoal_errf(err, SHOAL_EPROTO, "%s: %s", path, je.text);
	rv = json_unpack_ex(root, &je, 0,
			    "{s:s, s:s, s:I, s:s, s:s, s:o, s:s, s:o, s:{s:s, s:i, s:I, s:i, s:b, "
			    "s:s, s:I, s:I}, s:i}",
			    "Id", &id, "Name", &name, "Created", &created, "Image", &image,
			    "ImageName", &image_name, "Args", &args, "Driver", &driver, "Spec",
			    &spec, "State", "Status", &status, "Pid", &pid, "PidStart", &pstart,
			    "ExitCode", &exit_code, "OOMKilled", &oom, "Error", &error, "StartedAt",
			    &started, "FinishedAt", &finished, "RestartCount", &restarts);
	if (rv != 0) {
		rv = shoal_errf(err, SHOAL_EPROTO, "%s: %s", path, je.text);
		goto out;
	}
	if (strlen(id) != 64 || strlen(name) > CTR_NAME_MAX ||
	    strlen(image_name) >= sizeof(c->image_name) ||
	    digest_parse(image, &c->image_id, NULL) != 0 || state_parse(status, &c->state) != 0) {
		rv = shoal_errf(err, SHOAL_EPROTO, "%s: a field is out of range", path);
		goto out;
	}
	memcpy(c->id, id, 65);
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->image_name, sizeof(c->image_name), "%s", image_name);
	snprintf(c->error, sizeof(c->error), "%s", error);
	c->driver = strcmp(driver, "runc") == 0 ? CTR_DRIVER_RUNC : CTR_DRIVER_PROCESS;
	c->created_ns = (uint64_t)created;
	c->started_ns = (uint64_t)started;
	c->finished_ns = (uint64_t)finished;
	c->pid = pid;
	c->exit_code = exit_code;
	c->oom_killed = oom != 0;
	c->restart_count = restarts;
	*pid_start = (uint64_t)pstart;
	if (!json_is_array(args) ||
	    oci_strlist_from_json(args, SIZE_MAX, "Args", &c->args, NULL) != 0) {
		rv = shoal_errf(err, SHOAL_EPROTO, "%s: Args is not a list of strings", path);
		goto out;
	}
	rv = ctr_spec_parse(spec, &c->spec, err);
	if (rv != 0)
		shoal_err_wrap(err, "%s", path);
out:
	json_decref(root);
	return rv;
}
