/* "shoal image load", "shoal image pull", "shoal image ls" and "shoal image rm". */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/humanize.h"
#include "cli/table.h"
#include "lib/clock.h"

#define LS_FORMAT_USAGE                                                                    \
	"Format output using a custom template:\n"                                         \
	"'table':            Print output in table format with column headers (default)\n" \
	"'json':             Print in JSON format"

/* ---- load ---- */

/* Print the "stream" text of each line of Docker's JSON message stream; an
 * "error" line fails with the daemon's message. */
static int print_load_stream(struct cli_ctx *ctx, const char *body, size_t len,
			     struct shoal_err *err)
{
	const char *p = body, *end = body + len;
	int rv = 0;

	while (p < end && rv == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *msg, *e;
		const char *s;

		if (n > 0) {
			msg = json_loadb(p, n, 0, NULL);
			if (!json_is_object(msg)) {
				json_decref(msg);
				return shoal_errf(err, SHOAL_EPROTO,
						  "the daemon's answer to POST /images/load is "
						  "not a JSON message stream");
			}
			e = json_object_get(msg, "error");
			s = json_string_value(json_object_get(msg, "stream"));
			if (json_is_string(e))
				rv = shoal_errf(err, SHOAL_EIO, "%s", json_string_value(e));
			else if (s != NULL)
				rv = cli_write(ctx, s, strlen(s), err);
			json_decref(msg);
		}
		p += n + (nl != NULL ? 1 : 0);
	}
	return rv;
}

static int run_load(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *input = NULL;
	bool quiet = false;
	const struct flag_spec specs[] = {
	    {"input", 'i', FLAG_STRING, "string", "Read from tar archive file, instead of STDIN",
	     NULL, &input},
	    {"quiet", 'q', FLAG_BOOL, NULL, "Suppress the load output", NULL, &quiet},
	};
	struct client_resp resp = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	FILE *in = stdin;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_NONE, 0, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	flags_result_free(&res);
	if (input != NULL && input[0] != '\0') {
		in = fopen(input, "rb");
		if (in == NULL) {
			/* Go's wording: "open FILE: no such file or directory". */
			const char *why = strerror(errno);
			shoal_errf(&err, SHOAL_EIO, "open %s: %c%s", input,
				   (char)tolower((unsigned char)why[0]), why + 1);
			return cli_fail(ctx, &err);
		}
	} else if (isatty(STDIN_FILENO)) {
		/* Docker refuses to wait for an archive typed at a terminal. */
		shoal_errf(&err, SHOAL_EINVAL, "requested load from stdin, but stdin is empty");
		return cli_fail(ctx, &err);
	}
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request_file(client, "POST",
					 quiet ? "/images/load?quiet=1" : "/images/load?quiet=0",
					 in, "application/x-tar", &resp, &err);
	if (rv == 0)
		rv = print_load_stream(ctx, resp.body, resp.len, &err);
	client_resp_free(&resp);
	if (in != stdin)
		fclose(in);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
}

/* ---- pull ---- */

/* One message of the pull stream, printed as Docker's non-terminal output
 * does ("ID: STATUS" or "STATUS"; progress bars left out) as it arrives; an
 * "error" message fails with it. The name of the "Status: ... for NAME" line
 * goes to @name. */
struct pull_out {
	struct cli_ctx *ctx;
	bool quiet;
	char name[600];
};

static int pull_line(void *arg, const char *line, size_t len, struct shoal_err *err)
{
	struct pull_out *po = arg;
	json_t *msg;
	const char *e, *status, *id;
	int rv = 0;

	if (len == 0)
		return 0;
	msg = json_loadb(line, len, 0, NULL);
	if (!json_is_object(msg)) {
		json_decref(msg);
		return shoal_errf(
		    err, SHOAL_EPROTO,
		    "the daemon's answer to POST /images/create is not a JSON message "
		    "stream");
	}
	e = json_string_value(json_object_get(msg, "error"));
	status = json_string_value(json_object_get(msg, "status"));
	id = json_string_value(json_object_get(msg, "id"));
	if (e != NULL) {
		rv = shoal_errf(err, SHOAL_EIO, "Error response from daemon: %s", e);
	} else if (status != NULL) {
		const char *for_ = strstr(status, " for ");

		if (strncmp(status, "Status: ", 8) == 0 && for_ != NULL)
			snprintf(po->name, sizeof(po->name), "%s", for_ + 5);
		if (!po->quiet && json_object_get(msg, "progressDetail") == NULL) {
			if (id != NULL)
				fprintf(po->ctx->out, "%s: %s\n", id, status);
			else
				fprintf(po->ctx->out, "%s\n", status);
			fflush(po->ctx->out);
		}
	}
	json_decref(msg);
	return rv;
}

/* Docker's full form of a familiar name: "busybox:1" -> "docker.io/library/busybox:1". */
static void full_name(const char *name, char *out, size_t len)
{
	const char *slash = strchr(name, '/');
	bool domain = false;

	if (slash != NULL) {
		for (const char *c = name; c < slash; c++)
			if (*c == '.' || *c == ':')
				domain = true;
		if ((size_t)(slash - name) == 9 && strncmp(name, "localhost", 9) == 0)
			domain = true;
	}
	if (domain)
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "docker.io/%s%s", slash == NULL ? "library/" : "", name);
}

static int run_pull(struct cli_ctx *ctx, int argc, char **argv)
{
	bool quiet = false, all = false;
	const char *platform = NULL;
	const struct flag_spec specs[] = {
	    {"all-tags", 'a', FLAG_BOOL, NULL, "Download all tagged images in the repository", NULL,
	     &all},
	    {"platform", 0, FLAG_STRING, "string",
	     "Set platform if server is multi-platform capable", NULL, &platform},
	    {"quiet", 'q', FLAG_BOOL, NULL, "Suppress verbose output", NULL, &quiet},
	};
	struct pull_out po = {.ctx = ctx};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	struct buf path;
	char full[620];
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_EXACT, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	buf_init(&path);
	if (all) {
		rv = shoal_errf(&err, SHOAL_EINVAL, "--all-tags is not supported by shoal");
		goto out;
	}
	if (platform != NULL && platform[0] != '\0' && strcmp(platform, "linux/amd64") != 0) {
		rv = shoal_errf(&err, SHOAL_EINVAL,
				"shoal pulls linux/amd64 images only, not \"%s\"", platform);
		goto out;
	}
	rv = buf_appendf(&path, "/images/create?fromImage=");
	if (rv == 0)
		rv = client_escape(&path, res.args[0], true);
	if (rv != 0) {
		rv = shoal_errf(&err, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	po.quiet = quiet;
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request_lines(client, "POST", path.data, NULL, pull_line, &po, &err);
	if (rv == 0 && po.name[0] == '\0')
		rv = shoal_errf(&err, SHOAL_EPROTO,
				"the daemon's pull stream ended without a Status message");
	if (rv == 0) {
		full_name(po.name, full, sizeof(full));
		fprintf(ctx->out, "%s\n", strstr(po.name, "@") != NULL ? po.name : full);
	}
out:
	buf_free(&path);
	flags_result_free(&res);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
}

/* ---- ls ---- */

/* units.HumanSizeWithPrecision: decimal units, @precision significant digits
 * ("1.2MB", "4.26MB", "980B"). */
static void human_size(double size, int precision, char *out, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
	size_t i = 0;

	while (size >= 1000.0 && i + 1 < ARRAY_SIZE(units)) {
		size /= 1000.0;
		i++;
	}
	snprintf(out, len, "%.*g%s", precision, size, units[i]);
}

/* Split "repo:tag" at the last ':' after the last '/' (a registry port is
 * not a tag); "<none>:<none>" gives "<none>" twice. */
static void split_tag(const char *ref, char *repo, size_t rlen, char *tag, size_t tlen)
{
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(slash != NULL ? slash : ref, ':');

	if (colon == NULL) {
		snprintf(repo, rlen, "%s", ref);
		snprintf(tag, tlen, "<none>");
		return;
	}
	snprintf(repo, rlen, "%.*s", (int)(colon - ref), ref);
	snprintf(tag, tlen, "%s", colon + 1);
}

/* One row of the listing: an image under one of its names. */
struct image_row {
	char repo[512];
	char tag[256];
	char id[80];
	char since[96];
	char size[32];
	char vsize[32];
	char created_at[64];
};

static int fill_row(json_t *img, const char *ref, bool no_trunc, int64_t now_ns,
		    struct image_row *r)
{
	const char *id = json_string_value(json_object_get(img, "Id"));
	json_int_t created = json_integer_value(json_object_get(img, "Created"));
	struct human_time t;
	struct tm tm;
	time_t secs = (time_t)created;
	struct buf b;
	int rv;

	if (id == NULL)
		id = "";
	split_tag(ref, r->repo, sizeof(r->repo), r->tag, sizeof(r->tag));
	if (no_trunc)
		snprintf(r->id, sizeof(r->id), "%s", id);
	else
		snprintf(r->id, sizeof(r->id), "%.12s",
			 strncmp(id, "sha256:", 7) == 0 ? id + 7 : id);
	clock_human_duration(now_ns - (int64_t)created * 1000000000, r->since,
			     sizeof(r->since) - 4);
	strcat(r->since, " ago");
	human_size((double)json_integer_value(json_object_get(img, "Size")), 3, r->size,
		   sizeof(r->size));
	human_size((double)json_integer_value(json_object_get(img, "VirtualSize")), 4, r->vsize,
		   sizeof(r->vsize));
	/* Go's Time.String() of the creation time, in UTC. */
	memset(&t, 0, sizeof t);
	if (gmtime_r(&secs, &tm) == NULL)
		memset(&tm, 0, sizeof tm);
	t.year = tm.tm_year + 1900;
	t.month = tm.tm_mon + 1;
	t.day = tm.tm_mday;
	t.hour = tm.tm_hour;
	t.min = tm.tm_min;
	t.sec = tm.tm_sec;
	t.utc = true;
	buf_init(&b);
	rv = human_time_go_string(&b, &t);
	if (rv == 0)
		snprintf(r->created_at, sizeof(r->created_at), "%s", b.data);
	buf_free(&b);
	return rv;
}

/* Go's json.Marshal escapes <, > and & inside strings; JSON syntax outside
 * strings never uses them, so replacing every one is exact. */
static int append_go_json(struct buf *out, const char *s)
{
	int rv = 0;

	for (; *s != '\0' && rv == 0; s++) {
		if (*s == '<')
			rv = buf_appendf(out, "\\u003c");
		else if (*s == '>')
			rv = buf_appendf(out, "\\u003e");
		else if (*s == '&')
			rv = buf_appendf(out, "\\u0026");
		else
			rv = buf_append(out, s, 1);
	}
	return rv;
}

static int json_row(const struct image_row *r, struct buf *out)
{
	json_t *j =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Containers",
		      "N/A", "CreatedAt", r->created_at, "CreatedSince", r->since, "Digest",
		      "<none>", "ID", r->id, "Repository", r->repo, "SharedSize", "N/A", "Size",
		      r->size, "Tag", r->tag, "UniqueSize", "N/A", "VirtualSize", r->vsize);
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rv = s != NULL ? append_go_json(out, s) : SHOAL_ENOMEM;

	if (rv == 0)
		rv = buf_append(out, "\n", 1);
	free(s);
	json_decref(j);
	return rv;
}

enum image_list_format { IMAGE_LIST_TABLE, IMAGE_LIST_QUIET, IMAGE_LIST_JSON };

static int format_images(json_t *images, enum image_list_format fmt, bool no_trunc, struct buf *out)
{
	struct table tab;
	int64_t now = clock_now_ns();
	size_t i, k;
	int rv = 0;

	table_init(&tab, TABLE_LIST_MINWIDTH, TABLE_LIST_PADDING);
	if (fmt == IMAGE_LIST_TABLE)
		rv = table_write(&tab, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n",
				 strlen("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n"));
	for (i = 0; i < json_array_size(images) && rv == 0; i++) {
		json_t *img = json_array_get(images, i);
		json_t *tags = json_object_get(img, "RepoTags");
		size_t ntags = json_array_size(tags);

		for (k = 0; k < (ntags > 0 ? ntags : 1) && rv == 0; k++) {
			const char *ref = json_string_value(json_array_get(tags, k));
			struct image_row r;

			rv = fill_row(img, ref != NULL ? ref : "<none>:<none>", no_trunc, now, &r);
			if (rv != 0)
				break;
			if (fmt == IMAGE_LIST_QUIET) {
				rv = buf_appendf(out, "%s\n", r.id);
			} else if (fmt == IMAGE_LIST_JSON) {
				rv = json_row(&r, out);
			} else {
				const char *cells[] = {r.repo, r.tag, r.id, r.since, r.size};
				rv = table_row(&tab, cells, ARRAY_SIZE(cells));
			}
		}
	}
	if (rv == 0 && fmt == IMAGE_LIST_TABLE)
		rv = table_flush(&tab, out);
	table_free(&tab);
	return rv;
}

static int run_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *format = NULL;
	bool quiet = false, all = false, no_trunc = false;
	const struct flag_spec specs[] = {
	    {"all", 'a', FLAG_BOOL, NULL,
	     "Show all images (default hides intermediate images; shoal has none)", NULL, &all},
	    {"format", 0, FLAG_STRING, "string", LS_FORMAT_USAGE, NULL, &format},
	    {"no-trunc", 0, FLAG_BOOL, NULL, "Don't truncate output", NULL, &no_trunc},
	    {"quiet", 'q', FLAG_BOOL, NULL, "Only show image IDs", NULL, &quiet},
	};
	enum image_list_format fmt = IMAGE_LIST_TABLE;
	struct client_resp images = {0};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	struct buf out;
	int rv;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_NONE, 0, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	flags_result_free(&res);
	if (format != NULL && strcmp(format, "json") == 0)
		fmt = IMAGE_LIST_JSON;
	else if (format != NULL && format[0] != '\0' && strcmp(format, "table") != 0)
		return cli_flag_error(ctx,
				      "invalid argument \"%s\" for \"--format\" flag: shoal "
				      "supports only the \"table\" and \"json\" formats",
				      format);
	else if (quiet)
		fmt = IMAGE_LIST_QUIET;

	buf_init(&out);
	rv = cli_client(ctx, &client, &err);
	if (rv == 0)
		rv = client_request(client, "GET", "/images/json", NULL, &images, &err);
	if (rv == 0 && !json_is_array(images.json))
		rv = shoal_errf(&err, SHOAL_EPROTO,
				"the daemon's answer to GET /images/json is not a list");
	if (rv == 0) {
		rv = format_images(images.json, fmt, no_trunc, &out);
		if (rv != 0)
			rv = shoal_errf(&err, rv, "out of memory");
	}
	if (rv == 0)
		rv = cli_write(ctx, out.data != NULL ? out.data : "", out.len, &err);
	client_resp_free(&images);
	buf_free(&out);
	return rv != 0 ? cli_fail(ctx, &err) : CLI_EXIT_OK;
}

/* ---- rm ---- */

static int remove_one(struct cli_ctx *ctx, struct client *client, const char *ref, bool force,
		      bool no_prune, struct shoal_err *err)
{
	struct client_resp resp = {0};
	struct buf path;
	int rv;

	buf_init(&path);
	rv = buf_appendf(&path, "/images/");
	if (rv == 0)
		rv = client_escape(&path, ref, false);
	if (rv == 0)
		rv = buf_appendf(&path, "?force=%d&noprune=%d", force ? 1 : 0, no_prune ? 1 : 0);
	if (rv != 0)
		rv = shoal_errf(err, SHOAL_ENOMEM, "out of memory");
	else
		rv = client_request(client, "DELETE", path.data, NULL, &resp, err);
	for (size_t i = 0; rv == 0 && i < json_array_size(resp.json); i++) {
		json_t *item = json_array_get(resp.json, i);
		const char *u = json_string_value(json_object_get(item, "Untagged"));
		const char *d = json_string_value(json_object_get(item, "Deleted"));

		if (u != NULL)
			fprintf(ctx->out, "Untagged: %s\n", u);
		if (d != NULL)
			fprintf(ctx->out, "Deleted: %s\n", d);
	}
	client_resp_free(&resp);
	buf_free(&path);
	return rv;
}

static int run_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	bool force = false, no_prune = false;
	const struct flag_spec specs[] = {
	    {"force", 'f', FLAG_BOOL, NULL, "Force removal of the image", NULL, &force},
	    {"no-prune", 0, FLAG_BOOL, NULL, "Do not delete untagged parents", NULL, &no_prune},
	};
	struct flags_result res;
	struct client *client;
	struct shoal_err err;
	struct buf errors;
	int rv, failed = 0;

	rv = cli_parse(ctx, specs, ARRAY_SIZE(specs), CLI_ARGS_MIN, 1, argc, argv, &res);
	if (rv != CLI_CONTINUE)
		return rv;
	rv = cli_client(ctx, &client, &err);
	if (rv != 0) {
		flags_result_free(&res);
		return cli_fail(ctx, &err);
	}
	/* Like docker: every image is tried, the errors come last. */
	buf_init(&errors);
	for (size_t i = 0; i < res.nargs; i++) {
		if (remove_one(ctx, client, res.args[i], force, no_prune, &err) != 0) {
			failed = 1;
			if (buf_appendf(&errors, "%s%s", errors.len > 0 ? "\n" : "", err.msg) != 0)
				break;
		}
	}
	if (failed) {
		fflush(ctx->out);
		fprintf(ctx->err, "%s\n", errors.data != NULL ? errors.data : "out of memory");
	}
	buf_free(&errors);
	flags_result_free(&res);
	return failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static const struct cli_cmd cmd_load = {
    .name = "load",
    .use = "[OPTIONS]",
    .short_help = "Load an image from a tar archive or STDIN",
    .run = run_load,
};

static const struct cli_cmd cmd_pull = {
    .name = "pull",
    .use = "[OPTIONS] NAME[:TAG|@DIGEST]",
    .short_help = "Download an image from a registry",
    .run = run_pull,
};

static const struct cli_cmd cmd_ls = {
    .name = "ls",
    .alias = "list",
    .use = "[OPTIONS]",
    .short_help = "List images",
    .run = run_ls,
};

static const struct cli_cmd cmd_rm = {
    .name = "rm",
    .alias = "remove",
    .use = "[OPTIONS] IMAGE [IMAGE...]",
    .short_help = "Remove one or more images",
    .run = run_rm,
};

static const struct cli_cmd *const image_cmds[] = {&cmd_load, &cmd_ls, &cmd_pull, &cmd_rm};

const struct cli_cmd cli_cmd_image = {
    .name = "image",
    .short_help = "Manage images",
    .group = CLI_GROUP_COMMON,
    .subs = image_cmds,
    .nsubs = ARRAY_SIZE(image_cmds),
};
