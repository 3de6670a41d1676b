/* Snapshot request bodies (snapshot_params.h). */
#include "vmm/snapshot_params.h"
#include "vmm/config_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"Full", "Diff"};
static const char *const create_keys[] = {"snapshot_path", "mem_file_path", "snapshot_type",
					  "version"};

int snapshot_create_parse(const char *body, size_t len, struct snapshot_create_params *p,
			  char *err, size_t errlen)
{
	struct json j;
	int v[4], type = 0;
	memset(p, 0, sizeof(*p));
	int rc = json_open(&j, body, len, err, errlen);
	if (rc == 0)
		rc = json_members(&j, 0, create_keys, 4, v);
	if (rc == 0)
		rc = json_str(&j, v[0], "snapshot_path", JSON_REQUIRED | JSON_NONEMPTY,
			      &p->snapshot_path);
	if (rc == 0)
		rc = json_str(&j, v[1], "mem_file_path", JSON_REQUIRED | JSON_NONEMPTY,
			      &p->mem_file_path);
	if (rc == 0)
		rc = json_enum(&j, v[2], "snapshot_type", 0, type_names, 2, false, &type);
	/* "version" (removed in Firecracker 1.6) is accepted and ignored, as older SDKs send it */
	json_close(&j);
	p->diff = type == 1;
	if (rc)
		snapshot_create_free(p);
	return rc;
}

static const char *const backend_keys[] = {"backend_path", "backend_type"};
static const char *const backend_types[] = {"File", "Uffd"};

static int parse_backend(struct json *j, int obj, struct snapshot_load_params *p)
{
	int v[2], type = 0;
	size_t saved = json_push_key(j, "mem_backend");
	int rc = json_members(j, obj, backend_keys, 2, v);
	if (rc == 0)
		rc = json_str(j, v[0], "backend_path", JSON_REQUIRED | JSON_NONEMPTY, &p->mem_path);
	if (rc == 0)
		rc = json_enum(j, v[1], "backend_type", JSON_REQUIRED, backend_types, 2, false,
			       &type);
	p->uffd = type == 1;
	json_pop(j, saved);
	return rc;
}

static const char *const override_keys[] = {"iface_id", "host_dev_name"};

static int parse_net_overrides(struct json *j, int arr, struct snapshot_load_params *p)
{
	int elems[CONFIG_MAX_NETS], v[2];
	size_t saved = json_push_key(j, "network_overrides");
	int rc = json_array(j, arr, elems, CONFIG_MAX_NETS, &p->nr_net);
	for (unsigned i = 0; rc == 0 && i < p->nr_net; i++) {
		size_t at = json_push_index(j, i);
		struct snapshot_net_override *o = &p->net[i];
		rc = json_members(j, elems[i], override_keys, 2, v);
		if (rc == 0)
			rc = json_strbuf(j, v[0], "iface_id", JSON_REQUIRED | JSON_NONEMPTY,
					 o->iface_id, sizeof(o->iface_id));
		if (rc == 0)
			rc = json_strbuf(j, v[1], "host_dev_name", JSON_REQUIRED | JSON_NONEMPTY,
					 o->host_dev_name, sizeof(o->host_dev_name));
		json_pop(j, at);
	}
	json_pop(j, saved);
	return rc;
}

static const char *const vsock_keys[] = {"uds_path"};

static int parse_vsock_override(struct json *j, int obj, struct snapshot_load_params *p)
{
	int v[1];
	if (obj < 0)
		return 0;
	size_t saved = json_push_key(j, "vsock_override");
	int rc = json_members(j, obj, vsock_keys, 1, v);
	if (rc == 0)
		rc = json_str(j, v[0], "uds_path", JSON_REQUIRED | JSON_NONEMPTY, &p->vsock_uds_path);
	json_pop(j, saved);
	return rc;
}

enum { L_PATH, L_MEMFILE, L_BACKEND, L_DIFF, L_TRACK, L_RESUME, L_NET, L_VSOCK, L_NKEYS };
static const char *const load_keys[L_NKEYS] = {
    "snapshot_path",	 "mem_file_path", "mem_backend",	"enable_diff_snapshots",
    "track_dirty_pages", "resume_vm",	  "network_overrides", "vsock_override"};

/* Exactly one of mem_backend and the deprecated mem_file_path, as Firecracker wants. */
static int parse_memory(struct json *j, const int *v, struct snapshot_load_params *p)
{
	if ((v[L_BACKEND] >= 0) == (v[L_MEMFILE] >= 0))
		return json_member_error(j, "mem_backend",
					 "exactly one of mem_backend and mem_file_path is required");
	if (v[L_BACKEND] >= 0)
		return parse_backend(j, v[L_BACKEND], p);
	return json_str(j, v[L_MEMFILE], "mem_file_path", JSON_NONEMPTY, &p->mem_path);
}

int snapshot_load_parse(const char *body, size_t len, struct snapshot_load_params *p, char *err,
			size_t errlen)
{
	struct json j;
	int v[L_NKEYS];
	bool diff = false;
	memset(p, 0, sizeof(*p));
	int rc = json_open(&j, body, len, err, errlen);
	if (rc == 0)
		rc = json_members(&j, 0, load_keys, L_NKEYS, v);
	if (rc == 0)
		rc = json_str(&j, v[L_PATH], "snapshot_path", JSON_REQUIRED | JSON_NONEMPTY,
			      &p->snapshot_path);
	if (rc == 0)
		rc = parse_memory(&j, v, p);
	if (rc == 0)
		rc = json_bool(&j, v[L_DIFF], "enable_diff_snapshots", 0, &diff);
	if (rc == 0)
		rc = json_bool(&j, v[L_TRACK], "track_dirty_pages", 0, &p->track_dirty_pages);
	if (rc == 0)
		rc = json_bool(&j, v[L_RESUME], "resume_vm", 0, &p->resume_vm);
	if (rc == 0)
		rc = parse_net_overrides(&j, v[L_NET], p);
	if (rc == 0)
		rc = parse_vsock_override(&j, v[L_VSOCK], p);
	json_close(&j);
	p->track_dirty_pages |= diff;
	if (rc)
		snapshot_load_free(p);
	return rc;
}

void snapshot_create_free(struct snapshot_create_params *p)
{
	free(p->snapshot_path);
	free(p->mem_file_path);
	memset(p, 0, sizeof(*p));
}

void snapshot_load_free(struct snapshot_load_params *p)
{
	free(p->snapshot_path);
	free(p->mem_path);
	free(p->vsock_uds_path);
	memset(p, 0, sizeof(*p));
}

int snapshot_apply_overrides(const struct snapshot_load_params *p, struct kiln_config *cfg,
			     char *err, size_t errlen)
{
	for (unsigned i = 0; i < p->nr_net; i++) {
		unsigned n = 0;
		while (n < cfg->nr_nets && strcmp(cfg->nets[n].id, p->net[i].iface_id))
			n++;
		if (n == cfg->nr_nets) {
			snprintf(err, errlen,
				 "network_overrides[%u].iface_id: %s: no such interface in the "
				 "snapshot",
				 i, p->net[i].iface_id);
			return -EINVAL;
		}
		memcpy(cfg->nets[n].host_dev_name, p->net[i].host_dev_name,
		       sizeof(cfg->nets[n].host_dev_name));
	}
	if (p->vsock_uds_path && !cfg->vsock.present) {
		snprintf(err, errlen, "vsock_override: the snapshot has no vsock device");
		return -EINVAL;
	}
	if (p->vsock_uds_path) {
		char *path = strdup(p->vsock_uds_path);
		if (!path) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		free(cfg->vsock.uds_path);
		cfg->vsock.uds_path = path;
	}
	cfg->machine.track_dirty_pages = p->track_dirty_pages;
	return 0;
}
