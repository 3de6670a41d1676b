/* The bodies of PUT /snapshot/create and PUT /snapshot/load (Firecracker's swagger:
 * SnapshotCreateParams, SnapshotLoadParams), parsed with the config file's JSON layer so
 * errors read the same ("mem_backend.backend_type: Foo not supported by kiln"). */
#ifndef KILN_SNAPSHOT_PARAMS_H
#define KILN_SNAPSHOT_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/config.h"

struct snapshot_create_params {
	char *snapshot_path;
	char *mem_file_path;
	bool diff; /* snapshot_type "Diff" ("Full" by default) */
};

struct snapshot_net_override {
	char iface_id[CONFIG_ID_MAX + 1];
	char host_dev_name[CONFIG_IFNAME_MAX + 1];
};

struct snapshot_load_params {
	char *snapshot_path;
	char *mem_path;	     /* mem_backend.backend_path, or the deprecated mem_file_path */
	bool uffd;	     /* backend_type "Uffd": mem_path is the page-fault handler's socket */
	bool track_dirty_pages; /* or the deprecated enable_diff_snapshots */
	bool resume_vm;
	struct snapshot_net_override net[CONFIG_MAX_NETS];
	unsigned nr_net;
	char *vsock_uds_path; /* vsock_override.uds_path, NULL if none */
};

/* Parse a body. 0, or -EINVAL with one line in err naming the key; p is then freed. */
int snapshot_create_parse(const char *body, size_t len, struct snapshot_create_params *p,
			  char *err, size_t errlen);
int snapshot_load_parse(const char *body, size_t len, struct snapshot_load_params *p, char *err,
			size_t errlen);

void snapshot_create_free(struct snapshot_create_params *p);
void snapshot_load_free(struct snapshot_load_params *p);

/* Puts the overrides of p into cfg (a snapshot's configuration): every network_overrides
 * iface_id must name an interface of cfg ("network_overrides[0].iface_id: eth9: no such
 * interface in the snapshot"), vsock_override needs a vsock in cfg. 0 or -EINVAL with err. */
int snapshot_apply_overrides(const struct snapshot_load_params *p, struct kiln_config *cfg,
			     char *err, size_t errlen);

#endif
