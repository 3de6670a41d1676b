/* The state of one kiln process (struct kiln), shared by main.c, which builds and runs the
 * VM top-down, kiln_args.c, which parses the command line, and kiln_api.c, which connects the
 * REST API to it. Private to those. */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stdbool.h>
#include <stddef.h>

#include "boot/boot.h"
#include "virtio/devices.h"
#include "vmm/api.h"
#include "vmm/api_call.h"
#include "vmm/api_http.h"
#include "vmm/boot_timer.h"
#include "vmm/config.h"
#include "vmm/console.h"
#include "vmm/evloop.h"
#include "vmm/kiln_snapshot.h"
#include "vmm/metrics.h"
#include "vmm/power.h"
#include "vmm/serial.h"
#include "vmm/vm.h"

struct kiln_args {
	const char *config_path;
	const char *id;
	const char *api_sock;
	bool no_api;
	size_t max_payload;
	const char *restore_from; /* --restore-from: a state file to restore, not a boot */
	const char *mem_file;	  /* --mem-file: its memory file */
	bool no_seccomp;	  /* debugging only */
	bool virtio_mmio_cmdline; /* describe devices on the cmdline too (kernels without ACPI) */
	bool boot_timer;	  /* --boot-timer: Firecracker's boot timer device */
};

/* Everything one kiln process runs, in one struct passed explicitly. */
struct kiln {
	struct kiln_args args;
	struct kiln_config cfg;
	struct vm vm;
	struct kernel_image kernel;
	struct evloop loop;
	struct serial serial;
	struct console console;
	struct i8042 i8042;
	struct acpi_pm pm;
	struct virtio_set virtio;
	bool devices_added; /* from here on, a failed setup must undo them (vsock socket) */
	struct boot_layout boot;
	struct ev_source exit_src;
	struct ev_source signal_src;
	int metrics_fd;
	struct metrics metrics;
	struct boot_timer boot_timer; /* on the MMIO bus only with --boot-timer */
	/* Control sources (signals, VM exit, API calls) live in their own loop, nested in the
	 * device loop: a paused VM (or one not built yet) serves only this one. */
	struct evloop ctrl;
	struct ev_source ctrl_src;
	struct ev_source call_src;
	struct api api;
	struct api_server srv;
	struct api_call call;
	bool vm_created;
	bool start_requested;  /* InstanceStart arrived: boot, then answer it */
	bool images_loaded;    /* guest memory mapped, kernel and initrd in it */
	bool stop_before_boot; /* a signal before InstanceStart */
	bool paused;
	struct kiln_restore *restore; /* a snapshot to restore instead of booting, or NULL */
};

/* Parses kiln's command line into a (defaults for what is not given). --help, --version and
 * --describe-snapshot print and exit 0 (2 for a bad state file); a bad flag or combination
 * exits 2 with one line naming it. */
void kiln_parse_args(int argc, char **argv, struct kiln_args *a);

/* Maps guest memory and reads the kernel (and initrd) into it, checked against their own
 * headers, before /dev/kvm is opened; once. 0, or -errno with one line in err naming the
 * config key and file (nothing left mapped). InstanceStart calls it first, so a
 * bad image is a 400 and the VM can still be configured and started. */
int kiln_load_images(struct kiln *k, char *err, size_t errlen);

/* Opens the API socket (unless --no-api; an existing file there dies with exit 2, one line)
 * and watches API calls on the control loop. Setup only. */
void kiln_api_open(struct kiln *k);

/* Without a config file: starts the API thread and serves the control loop until
 * InstanceStart (true: build the VM, then answer it with kiln_api_vm_started()) or a signal
 * (false). With one: true at once. */
bool kiln_api_wait_for_start(struct kiln *k);

/* Once the vCPUs started (err: 0 or why not): answers InstanceStart, or starts the API
 * thread of a --config-file VM. Call before this thread loads its seccomp filter. */
void kiln_api_vm_started(struct kiln *k, int err);

/* Fails any call the API thread waits for, stops the thread and removes the socket. Safe
 * with --no-api. */
void kiln_api_close(struct kiln *k);

#endif
