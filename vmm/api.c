/* The API router: Firecracker's paths, methods, status codes and pre/post-boot rules. */
#include "vmm/api.h"
#include "vmm/config_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERRLEN 512
#define MSG_AFTER_BOOT "The requested operation is not supported after starting the microVM."
#define MSG_BEFORE_BOOT "The requested operation is not supported before starting the microVM."

const char *api_state_name(int state)
{
	return state == API_RUNNING ? "Running" : state == API_PAUSED ? "Paused" : "Not started";
}

static void respond(struct api_response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void respond(struct api_response *r, int status, const char *fmt, ...)
{
	va_list ap;
	r->status = status;
	va_start(ap, fmt);
	int n = vsnprintf(r->body, API_RESPONSE_MAX, fmt, ap);
	va_end(ap);
	r->len = n < 0 ? 0 : (size_t)n < API_RESPONSE_MAX ? (size_t)n : API_RESPONSE_MAX - 1;
}

static void no_content(struct api_response *r)
{
	r->status = 204;
	r->len = 0;
}

/* Copies s into esc (size bytes) escaped for a JSON string, cut short if need be. */
static const char *json_escape(const char *s, char *esc, size_t size)
{
	size_t n = 0;
	for (const char *p = s; *p && n + 7 < size; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			n += (size_t)snprintf(esc + n, size - n, "\\%c", c);
		else if (c < 0x20)
			n += (size_t)snprintf(esc + n, size - n, "\\u%04x", c);
		else
			esc[n++] = (char)c;
	}
	esc[n] = '\0';
	return esc;
}

/* 400 (or `status`) with {"fault_message": msg}. */
static void fault(struct api_response *r, int status, const char *msg)
{
	char esc[2 * ERRLEN];
	respond(r, status, "{\"fault_message\":\"%s\"}", json_escape(msg, esc, sizeof(esc)));
}

static bool started(const struct api *a)
{
	return atomic_load(&a->state) != API_NOT_STARTED;
}

/* Parses a body {"<key>": "<one of values>"} with the config's JSON layer; -1 on error. */
static int parse_enum_body(const char *body, size_t len, const char *key, const char *const *values,
			   int nvalues, char *err)
{
	struct json j;
	int v[1], out = -1;
	const char *keys[1] = {key};
	int rc = json_open(&j, body, len, err, ERRLEN);
	if (rc == 0)
		rc = json_members(&j, 0, keys, 1, v);
	if (rc == 0)
		rc = json_enum(&j, v[0], key, JSON_REQUIRED, values, nvalues, false, &out);
	json_close(&j);
	return rc ? -1 : out;
}

static void instance_start(struct api *a, struct api_response *r)
{
	char err[ERRLEN];
	if (started(a))
		return fault(r, 400, MSG_AFTER_BOOT);
	if (!a->cfg->boot.kernel_image_path)
		return fault(r, 400, "boot-source: missing required key");
	if (config_check_files(a->cfg, err, sizeof(err)) || a->ops->start(a->ctx, err, sizeof(err)))
		return fault(r, 400, err);
	atomic_store(&a->state, API_RUNNING);
	no_content(r);
}

static void put_actions(struct api *a, const char *body, size_t len, struct api_response *r)
{
	static const char *const actions[] = {"InstanceStart", "SendCtrlAltDel", "FlushMetrics"};
	char err[ERRLEN];
	int act = parse_enum_body(body, len, "action_type", actions, 3, err);
	if (act < 0)
		return fault(r, 400, err);
	if (act == 0)
		return instance_start(a, r);
	if (!started(a))
		return fault(r, 400, MSG_BEFORE_BOOT);
	int rc = act == 1 ? a->ops->ctrl_alt_del(a->ctx, err, sizeof(err))
			  : a->ops->flush_metrics(a->ctx, err, sizeof(err));
	if (rc)
		return fault(r, 400, err);
	no_content(r);
}

static void patch_vm(struct api *a, const char *body, size_t len, struct api_response *r)
{
	static const char *const states[] = {"Paused", "Resumed"};
	char err[ERRLEN];
	int st = parse_enum_body(body, len, "state", states, 2, err);
	if (st < 0)
		return fault(r, 400, err);
	if (!started(a))
		return fault(r, 400, MSG_BEFORE_BOOT);
	if (a->ops->pause(a->ctx, st == 0, err, sizeof(err)))
		return fault(r, 400, err);
	atomic_store(&a->state, st == 0 ? API_PAUSED : API_RUNNING);
	no_content(r);
}

static void get_instance_info(struct api *a, struct api_response *r)
{
	char id[2 * ERRLEN];
	respond(r, 200,
		"{\"id\":\"%s\",\"state\":\"%s\",\"vmm_version\":\"%s\",\"app_name\":\"kiln\"}",
		json_escape(a->id, id, sizeof(id)), api_state_name(atomic_load(&a->state)),
		KILN_VERSION);
}

static void get_machine_config(struct api *a, struct api_response *r)
{
	const struct machine_cfg *m = &a->cfg->machine;
	respond(r, 200,
		"{\"vcpu_count\":%u,\"mem_size_mib\":%llu,\"smt\":%s,\"track_dirty_pages\":%s}",
		m->vcpu_count, (unsigned long long)m->mem_size_mib, m->smt ? "true" : "false",
		m->track_dirty_pages ? "true" : "false");
}

static void get_vm_config(struct api *a, struct api_response *r)
{
	int n = config_to_json(a->cfg, r->body, API_RESPONSE_MAX);
	if (n < 0)
		return fault(r, 500, "the configuration does not fit in a response");
	r->status = 200;
	r->len = (size_t)n;
}

/* PUT/PATCH of a configuration section: pre-boot only. */
static void put_section(struct api *a, enum config_section sec, const char *id, const char *body,
			size_t len, struct api_response *r)
{
	char err[ERRLEN];
	if (started(a))
		return fault(r, 400, MSG_AFTER_BOOT);
	if (config_put(a->cfg, sec, id ? id : "", body, len, err, sizeof(err)))
		return fault(r, 400, err);
	if (sec != CONFIG_SECTION_LOGGER && sec != CONFIG_SECTION_METRICS)
		a->configured = true;
	no_content(r);
}

/* PATCH /drives/{id} after the start: the device takes the new file and limiter, then the
 * config records them. */
static void patch_drive(struct api *a, const char *id, const char *body, size_t len,
			struct api_response *r)
{
	char err[ERRLEN];
	struct drive_cfg d;
	struct config_patch what;
	unsigned idx;
	if (config_patch_drive(a->cfg, id, body, len, &d, &idx, &what, err, sizeof(err)))
		return fault(r, 400, err);
	int rc = what.new_path ? a->ops->patch_drive(a->ctx, &d, err, sizeof(err)) : 0;
	if (rc == 0 && what.limiter[0].present)
		rc = a->ops->patch_limiter(a->ctx, id, false, &what, err, sizeof(err));
	if (rc) {
		config_free_drive(&d);
		return fault(r, 400, err);
	}
	config_replace_drive(a->cfg, idx, &d);
	no_content(r);
}

/* PATCH /network-interfaces/{id} after the start: new rx/tx rate limiters. */
static void patch_net(struct api *a, const char *id, const char *body, size_t len,
		      struct api_response *r)
{
	char err[ERRLEN];
	struct net_cfg n;
	struct config_patch what;
	unsigned idx;
	if (config_patch_net(a->cfg, id, body, len, &n, &idx, &what, err, sizeof(err)))
		return fault(r, 400, err);
	if ((what.limiter[0].present || what.limiter[1].present) &&
	    a->ops->patch_limiter(a->ctx, id, true, &what, err, sizeof(err)))
		return fault(r, 400, err);
	config_replace_net(a->cfg, idx, &n);
	no_content(r);
}

/* PUT /snapshot/create: of a paused VM, as in Firecracker. */
static void snapshot_create(struct api *a, const char *body, size_t len, struct api_response *r)
{
	char err[ERRLEN];
	struct snapshot_create_params p;
	if (snapshot_create_parse(body, len, &p, err, sizeof(err)))
		return fault(r, 400, err);
	int rc = atomic_load(&a->state) != API_PAUSED ? -EINVAL : 0;
	if (rc)
		snprintf(err, sizeof(err), "Create snapshot: the microVM must be paused first.");
	else
		rc = a->ops->snapshot_create(a->ctx, &p, err, sizeof(err));
	snapshot_create_free(&p);
	if (rc)
		return fault(r, 400, err);
	no_content(r);
}

/* PUT /snapshot/load: a fresh process only, as in Firecracker. */
static void snapshot_load(struct api *a, const char *body, size_t len, struct api_response *r)
{
	char err[ERRLEN];
	struct snapshot_load_params p;
	if (started(a) || a->configured)
		return fault(r, 400,
			     "Loading a microVM snapshot not allowed after configuring boot-specific "
			     "resources.");
	if (snapshot_load_parse(body, len, &p, err, sizeof(err)))
		return fault(r, 400, err);
	bool resume = p.resume_vm;
	int rc = a->ops->snapshot_load(a->ctx, &p, err, sizeof(err));
	snapshot_load_free(&p);
	if (rc)
		return fault(r, 400, err);
	atomic_store(&a->state, resume ? API_RUNNING : API_PAUSED);
	no_content(r);
}

struct route {
	const char *name; /* first path segment */
	int id;		  /* 0: no more segments, 1: one id segment, -1: any (no device) */
	const char *no_device;
};

static const struct route no_devices[] = {
    {"balloon", -1, "balloon"},
    {"entropy", -1, "entropy"},
    {"pmem", -1, "pmem"},
    {"mmds", -1, "MMDS"},
    {"hotplug", -1, "memory hotplug"},
    {"cpu-config", -1, "CPU template"},
    {"serial", -1, "serial configuration"},
};

static void invalid(struct api_response *r, enum api_method m, const char *path)
{
	static const char *const names[] = {"GET", "PUT", "PATCH", "?"};
	char msg[ERRLEN];
	snprintf(msg, sizeof(msg), "Invalid request method and/or path: %s %.200s.", names[m],
		 path);
	fault(r, m == API_OTHER ? 405 : 400, msg);
}

/* Splits "/seg[/id]" into seg and id (NULL if absent); false for deeper or empty ids. */
static bool split_path(const char *path, char *seg, size_t segmax, const char **id)
{
	const char *p = path[0] == '/' ? path + 1 : path;
	const char *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);
	if (n >= segmax)
		return false;
	memcpy(seg, p, n);
	seg[n] = '\0';
	*id = slash ? slash + 1 : NULL;
	return !*id || (**id && !strchr(*id, '/'));
}

static void route_config(struct api *a, enum api_method m, const char *seg, const char *id,
			 const char *body, size_t len, struct api_response *r, const char *path)
{
	if (!strcmp(seg, "machine-config") && !id && m == API_GET)
		return get_machine_config(a, r);
	if (!strcmp(seg, "machine-config") && !id && m != API_OTHER)
		return put_section(
		    a, m == API_PUT ? CONFIG_SECTION_MACHINE : CONFIG_SECTION_MACHINE_PATCH, NULL,
		    body, len, r);
	static const struct {
		const char *name;
		bool has_id;
		enum config_section sec;
	} puts[] = {
	    {"boot-source", false, CONFIG_SECTION_BOOT},
	    {"drives", true, CONFIG_SECTION_DRIVE},
	    {"network-interfaces", true, CONFIG_SECTION_NET},
	    {"vsock", false, CONFIG_SECTION_VSOCK},
	    {"logger", false, CONFIG_SECTION_LOGGER},
	    {"metrics", false, CONFIG_SECTION_METRICS},
	};
	for (size_t i = 0; i < sizeof(puts) / sizeof(puts[0]); i++) {
		if (strcmp(seg, puts[i].name) || puts[i].has_id != (id != NULL))
			continue;
		if (m == API_PUT)
			return put_section(a, puts[i].sec, id, body, len, r);
		if (m == API_PATCH && id && !started(a))
			return fault(r, 400, MSG_BEFORE_BOOT);
		if (m == API_PATCH && puts[i].sec == CONFIG_SECTION_DRIVE)
			return patch_drive(a, id, body, len, r);
		if (m == API_PATCH && puts[i].sec == CONFIG_SECTION_NET)
			return patch_net(a, id, body, len, r);
		break;
	}
	invalid(r, m, path);
}

void api_handle(struct api *a, enum api_method m, const char *path, const char *body, size_t len,
		struct api_response *r)
{
	char seg[32], msg[ERRLEN];
	const char *id;
	if (!split_path(path, seg, sizeof(seg), &id))
		return invalid(r, m, path);
	for (size_t i = 0; i < sizeof(no_devices) / sizeof(no_devices[0]); i++) {
		if (!strcmp(seg, no_devices[i].name)) {
			snprintf(msg, sizeof(msg), "kiln has no %s device",
				 no_devices[i].no_device);
			return fault(r, 400, msg);
		}
	}
	if ((m == API_PUT || m == API_PATCH) && len == 0)
		return fault(r, 400, "Empty request body.");
	if (!seg[0] && !id && m == API_GET)
		return get_instance_info(a, r);
	if (!strcmp(seg, "version") && !id && m == API_GET)
		return respond(r, 200, "{\"firecracker_version\":\"%s\"}", KILN_VERSION);
	if (!strcmp(seg, "actions") && !id && m == API_PUT)
		return put_actions(a, body, len, r);
	if (!strcmp(seg, "vm") && !id && m == API_PATCH)
		return patch_vm(a, body, len, r);
	if (!strcmp(seg, "vm") && id && !strcmp(id, "config") && m == API_GET)
		return get_vm_config(a, r);
	if (!strcmp(seg, "snapshot") && id && !strcmp(id, "create") && m == API_PUT)
		return snapshot_create(a, body, len, r);
	if (!strcmp(seg, "snapshot") && id && !strcmp(id, "load") && m == API_PUT)
		return snapshot_load(a, body, len, r);
	route_config(a, m, seg, id, body, len, r, path);
}
