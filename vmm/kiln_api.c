/* The REST API's side of the VMM thread: opening the socket, waiting for InstanceStart,
 * and running the API thread's calls (pause/resume, Ctrl+Alt+Del, metrics, a drive's new
 * backing file) on this thread, which owns the VM. */
#include "vmm/kiln.h"
#include "vmm/images.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* PATCH /vm: the vCPUs park at a safe point, then the device loop stops being served (no
 * queue is touched, console input waits) until resumed. */
static int pause_vm(struct kiln *k, bool pause, char *err, size_t errlen)
{
	uint64_t t0 = monotonic_ns();
	if (pause && !k->paused) {
		int rc = vcpu_pause_all(&k->vm);
		if (rc) {
			vcpu_resume_all(&k->vm);
			snprintf(err, errlen, "%s",
				 rc == -ETIMEDOUT ? "the vCPUs did not stop"
						  : "the VM is stopping");
			return rc;
		}
		log_info("VM paused");
		metrics_latency(&k->metrics, LAT_PAUSE_VM, t0);
	} else if (!pause && k->paused) {
		vcpu_resume_all(&k->vm);
		log_info("VM resumed");
		metrics_latency(&k->metrics, LAT_RESUME_VM, t0);
	}
	k->paused = pause;
	return 0;
}

/* PUT /snapshot/create: of the paused VM only; its latency goes to the metrics. */
static int create_snapshot(struct kiln *k, const struct snapshot_create_params *p, char *err,
			   size_t errlen)
{
	uint64_t t0 = monotonic_ns();
	if (!k->paused) {
		snprintf(err, errlen, "Create snapshot: the microVM must be paused first.");
		return -EINVAL;
	}
	int rc = kiln_snapshot_create(k, p, err, errlen);
	if (!rc) {
		log_info("snapshot %s: %s, memory %s", p->diff ? "Diff" : "Full", p->snapshot_path,
			 p->mem_file_path);
		metrics_latency(&k->metrics,
				p->diff ? LAT_DIFF_CREATE_SNAPSHOT : LAT_FULL_CREATE_SNAPSHOT, t0);
	}
	return rc;
}

/* Also main's --config-file path (load_images), so both boot from the same checks. */
int kiln_load_images(struct kiln *k, char *err, size_t errlen)
{
	if (k->images_loaded)
		return 0;
	int rc = guest_mem_init(&k->vm.mem, k->cfg.machine.mem_size_mib << 20);
	if (rc) {
		snprintf(err, errlen, "machine-config.mem_size_mib: %llu: cannot map that much: %s",
			 (unsigned long long)k->cfg.machine.mem_size_mib, strerror(-rc));
		return rc;
	}
	rc = images_load(&k->cfg.boot, &k->vm.mem, &k->kernel, &k->boot, err, errlen);
	if (rc) {
		guest_mem_free(&k->vm.mem);
		return rc < 0 ? rc : -EINVAL;
	}
	k->images_loaded = true;
	return 0;
}

/* A call from the API thread (api_call.h), run on this thread, which owns the VM. */
static void on_api_call(void *ctx, uint32_t events)
{
	struct kiln *k = ctx;
	char err[256] = "";
	int rc = 0;
	(void)events;
	enum api_call_op op = api_call_take(&k->call);
	switch (op) {
	case API_CALL_NONE:
		return;
	case API_CALL_START:
		rc = kiln_load_images(k, err, sizeof(err));
		if (rc)
			break; /* 400: still Not started */
		k->start_requested = true; /* answered once the vCPUs run (run_vm) */
		return;
	case API_CALL_PAUSE:
	case API_CALL_RESUME:
		rc = pause_vm(k, op == API_CALL_PAUSE, err, sizeof(err));
		break;
	case API_CALL_CTRL_ALT_DEL:
		rc = i8042_send_ctrl_alt_del(&k->i8042);
		if (rc)
			snprintf(err, sizeof(err), "the keyboard buffer is full");
		break;
	case API_CALL_PATCH_DRIVE:
		rc = virtio_set_blk_swap(&k->virtio, k->call.drive_id, k->call.fd, k->call.bytes);
		if (rc)
			snprintf(err, sizeof(err), "drives: no block device %s", k->call.drive_id);
		break;
	case API_CALL_PATCH_LIMITER:
		rc = virtio_set_update_limiter(&k->virtio, k->call.drive_id, k->call.is_net,
					       k->call.limiter);
		if (rc)
			snprintf(err, sizeof(err), "%s: %s %s: %s",
				 k->call.is_net ? "network-interfaces" : "drives",
				 k->call.is_net ? "interface" : "drive", k->call.drive_id,
				 rc == -ENOENT ? "no such device" : strerror(-rc));
		break;
	case API_CALL_SNAPSHOT_CREATE:
		rc = create_snapshot(k, k->call.snapshot, err, sizeof(err));
		break;
	case API_CALL_SNAPSHOT_LOAD:
		rc = k->vm_created || k->start_requested
			 ? -EINVAL
			 : kiln_snapshot_prepare(k, k->call.snapshot, err, sizeof(err));
		if (rc == -EINVAL && (k->vm_created || k->start_requested))
			snprintf(err, sizeof(err), "the microVM is already started");
		if (rc)
			break; /* 400: still Not started */
		k->start_requested = true; /* answered once the vCPUs run or parked (run_vm) */
		return;
	case API_CALL_FLUSH_METRICS:
		rc = k->metrics_fd < 0 ? -EINVAL : metrics_flush(&k->metrics, NULL);
		if (rc)
			snprintf(err, sizeof(err), "metrics: %s",
				 k->metrics_fd < 0 ? "not configured" : strerror(-rc));
		break;
	}
	api_call_reply(&k->call, rc, err);
}

/* The API socket (an existing file is refused before anything starts) and its calls. */
void kiln_api_open(struct kiln *k)
{
	char err[512];
	k->call.efd = -1;
	if (k->args.no_api)
		return;
	k->api =
	    (struct api){.cfg = &k->cfg, .id = k->args.id, .ops = &api_call_ops, .ctx = &k->call};
	atomic_store(&k->api.state, k->args.config_path || k->args.restore_from ? API_RUNNING
									     : API_NOT_STARTED);
	int rc = api_call_init(&k->call);
	k->call_src = (struct ev_source){.handle = on_api_call, .ctx = k, .fd = k->call.efd};
	if (rc || (rc = evloop_add(&k->ctrl, &k->call_src, EPOLLIN)))
		die(KILN_EXIT_ERROR, "API: %s", strerror(-rc));
	if (api_server_open(&k->srv, k->args.api_sock, k->args.max_payload, &k->api, err,
			    sizeof(err)) < 0)
		die(KILN_EXIT_BADCFG, "%s", err);
}

/* Without a config file: serves the API until InstanceStart (true) or a signal (false). */
bool kiln_api_wait_for_start(struct kiln *k)
{
	if (k->args.config_path || k->args.restore_from)
		return true;
	int err = api_server_start(&k->srv, !k->args.no_seccomp);
	if (err)
		die(KILN_EXIT_ERROR, "API thread: %s", strerror(-err));
	log_info("API: waiting for InstanceStart on %s", k->args.api_sock);
	while (!k->start_requested && !k->stop_before_boot) {
		err = evloop_run_once(&k->ctrl, -1);
		if (err < 0)
			die(KILN_EXIT_ERROR, "event loop: %s", strerror(-err));
	}
	return k->start_requested;
}

/* The API after the vCPUs started: a config-file VM starts its API thread now (before this
 * thread's filter, which it must not inherit); an InstanceStart gets its answer. */
void kiln_api_vm_started(struct kiln *k, int err)
{
	if (k->args.no_api)
		return;
	if (k->start_requested) {
		api_call_reply(&k->call, err, err ? "cannot start the vCPUs" : NULL);
		return;
	}
	int rc = api_server_start(&k->srv, k->vm.seccomp);
	if (rc) {
		log_err("API thread: %s", strerror(-rc));
		vm_request_exit(&k->vm.exit, VM_EXIT_ERROR);
	}
}

/* The API first: its thread may be waiting for this one, and reads the config. */
void kiln_api_close(struct kiln *k)
{
	if (k->args.no_api)
		return;
	api_call_close(&k->call);
	api_server_close(&k->srv);
	api_call_destroy(&k->call);
}
