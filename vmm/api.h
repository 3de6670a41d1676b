/* Firecracker's REST API, the router: one parsed HTTP request (method, path, body) in, a
 * status and a JSON body out. Pre-boot requests edit the kiln_config through the config
 * file's own parsers (config_put); actions and post-boot changes go to the VMM through an
 * ops table, so the router has no VM of its own and unit tests drive it with fakes. The
 * HTTP side is api_http.h. */
#ifndef KILN_API_H
#define KILN_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "vmm/config.h"
#include "vmm/snapshot_params.h"

enum api_method { API_GET, API_PUT, API_PATCH, API_OTHER };

enum api_state { API_NOT_STARTED, API_RUNNING, API_PAUSED };

/* What the router asks of the VMM. Each returns 0, or -errno with one line in err (answered
 * as 400 with that fault_message). Called on the API thread; they may block until the VMM
 * thread has done the work. */
struct api_vmm_ops {
	/* InstanceStart: build and boot the VM from the router's config (already checked). */
	int (*start)(void *ctx, char *err, size_t errlen);
	/* PATCH /vm: stop the vCPUs at a safe point and the devices' queue work, or resume. */
	int (*pause)(void *ctx, bool pause, char *err, size_t errlen);
	int (*ctrl_alt_del)(void *ctx, char *err, size_t errlen);
	int (*flush_metrics)(void *ctx, char *err, size_t errlen);
	/* PATCH /drives/{id}: put the drive's new path_on_host (checked) behind its device. */
	int (*patch_drive)(void *ctx, const struct drive_cfg *d, char *err, size_t errlen);
	/* PATCH /drives/{id} or /network-interfaces/{id} with rate limiters: replace the
	 * device's buckets that `what` names (drive or interface `id`). */
	int (*patch_limiter)(void *ctx, const char *id, bool is_net, const struct config_patch *what,
			     char *err, size_t errlen);
	/* PUT /snapshot/create of the paused VM. */
	int (*snapshot_create)(void *ctx, const struct snapshot_create_params *p, char *err,
			       size_t errlen);
	/* PUT /snapshot/load into this process, nothing but the logger and metrics configured:
	 * the VM is restored (running if p->resume_vm, else paused) and the configuration is
	 * the snapshot's. p is moved (zeroed) on success. */
	int (*snapshot_load)(void *ctx, struct snapshot_load_params *p, char *err, size_t errlen);
};

struct api {
	struct kiln_config *cfg; /* pre-boot: edited here; post-boot: read-only */
	const char *id;		 /* --id, "anonymous-instance" by default */
	atomic_int state;	 /* enum api_state; written by the API thread only */
	bool configured;	 /* a PUT other than /logger and /metrics succeeded (no load then) */
	const struct api_vmm_ops *ops;
	void *ctx;
};

#define API_RESPONSE_MAX (256 * 1024) /* the largest body kiln answers with */

struct api_response {
	int status;
	char *body; /* API_RESPONSE_MAX bytes owned by the caller */
	size_t len; /* 0: no body (204) */
};

/* Routes one request and fills r (status, JSON body). Never fails: errors are answered
 * with a status and {"fault_message": "..."}. path is the request target without its query;
 * body may be NULL with len 0. GET requests only read atomics and the API thread's own
 * config, never a lock a vCPU holds. */
void api_handle(struct api *a, enum api_method method, const char *path, const char *body,
		size_t len, struct api_response *r);

/* "Not started", "Running" or "Paused". */
const char *api_state_name(int state);

#endif
