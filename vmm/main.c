/* kiln: boots a Linux kernel in a KVM microVM configured like Firecracker: by a config file,
 * through the REST API on a Unix socket, or both. main() reads top-down: configuration (the
 * file, or API requests until InstanceStart), VM, guest image, devices, vCPUs, event loop. */
#include "boot/boot.h"
#include "seccomp/seccomp.h"
#include "virtio/devices.h"
#include "vmm/acpi.h"
#include "vmm/kiln.h"
#include "vmm/api.h"
#include "vmm/api_call.h"
#include "vmm/api_http.h"
#include "vmm/boot_timer.h"
#include "vmm/config.h"
#include "vmm/console.h"
#include "vmm/evloop.h"
#include "vmm/images.h"
#include "vmm/log.h"
#include "vmm/metrics.h"
#include "vmm/power.h"
#include "vmm/serial.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BOOT_ARGS "console=ttyS0 reboot=k panic=1"

/* Setup failed after devices were added: undo what outlives the process (the vsock socket
 * file), then report like die(). */
static _Noreturn void setup_fail(struct kiln *k, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void setup_fail(struct kiln *k, int code, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (k->devices_added)
		virtio_set_destroy(&k->virtio);
	die(code, "%s", buf);
}

static int open_output(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
}

/* The config file, or --restore-from's snapshot, if any; without either the API fills
 * the configuration. */
static void load_config(struct kiln *k)
{
	char err[512];
	if (!k->args.config_path)
		config_init(&k->cfg);
	else if (config_load(k->args.config_path, &k->cfg, err, sizeof(err)) < 0)
		die(KILN_EXIT_BADCFG, "%s: %s", k->args.config_path, err);
	if (!k->args.restore_from)
		return;
	struct snapshot_load_params p = {.resume_vm = true};
	if (!(p.snapshot_path = strdup(k->args.restore_from)) ||
	    !(p.mem_path = strdup(k->args.mem_file)))
		die(KILN_EXIT_ERROR, "out of memory");
	if (kiln_snapshot_prepare(k, &p, err, sizeof(err)))
		die(KILN_EXIT_BADCFG, "--restore-from: %s", err);
}

/* The logger and metrics outputs of the configuration, whichever way it came. */
static void open_outputs(struct kiln *k)
{
	const struct logger_cfg *lg = &k->cfg.logger;
	int log_fd = 2;
	if (lg->present && lg->log_path && (log_fd = open_output(lg->log_path)) < 0)
		die(KILN_EXIT_BADCFG, "logger.log_path: %s: %s", lg->log_path, strerror(errno));
	if (lg->present)
		log_setup(log_fd, lg->level, lg->show_level, lg->show_log_origin);
	k->metrics_fd = -1;
	const char *mp = k->cfg.metrics.metrics_path;
	if (k->cfg.metrics.present && (k->metrics_fd = open_output(mp)) < 0)
		die(KILN_EXIT_BADCFG, "metrics.metrics_path: %s: %s", mp, strerror(errno));
}

static void create_vm(struct kiln *k)
{
	const char *what = "";
	k->vm.track_dirty_pages = k->cfg.machine.track_dirty_pages;
	int err = vm_create(&k->vm, &what);
	if (err == -EFBIG)
		die(KILN_EXIT_BADCFG,
		    "%s: %llu is more than this host's KVM can map (at most %llu)", what,
		    (unsigned long long)k->cfg.machine.mem_size_mib,
		    (unsigned long long)(k->vm.ram_limit >> 20));
	if (err)
		die(KILN_EXIT_ERROR, "cannot create the VM: %s: %s", what, strerror(-err));
}

/* The guest's command line: boot_args, then what kiln adds for its devices (root=...). */
static void write_cmdline(struct kiln *k)
{
	const char *args = k->cfg.boot.boot_args ? k->cfg.boot.boot_args : DEFAULT_BOOT_ARGS;
	char *buf = gm_ptr(&k->vm.mem, LAYOUT_CMDLINE_ADDR, LAYOUT_CMDLINE_MAX);
	size_t max = k->kernel.cmdline_max;
	if (max > LAYOUT_CMDLINE_MAX - 1)
		max = LAYOUT_CMDLINE_MAX - 1;
	if (!buf)
		setup_fail(k, KILN_EXIT_ERROR, "cannot write the kernel command line");
	size_t len = strlen(args);
	if (len <= max) {
		memcpy(buf, args, len + 1);
		if (virtio_set_cmdline(&k->virtio, k->args.virtio_mmio_cmdline, buf, max + 1))
			len = max + 1;
		else
			len = strlen(buf);
	}
	if (len > max)
		setup_fail(
		    k, KILN_EXIT_BADCFG,
		    "boot-source.boot_args: with kiln's device arguments the command line is "
		    "longer than the %zu bytes the kernel accepts",
		    max);
	k->boot.cmdline_gpa = LAYOUT_CMDLINE_ADDR;
	k->boot.cmdline_len = len;
}

/* Guest RAM, kernel and initrd before /dev/kvm: a bad image is exit 2 on any host. */
static void load_images(struct kiln *k)
{
	char err[512];
	if (kiln_load_images(k, err, sizeof(err)))
		die(KILN_EXIT_BADCFG, "%s", err);
}

/* What the kernel reads at entry, now that the devices are known. */
static void write_boot_params(struct kiln *k)
{
	write_cmdline(k);
	struct acpi_config acfg = {.nr_vcpus = k->cfg.machine.vcpu_count,
				   .mmio_devs = k->virtio.acpi,
				   .nr_mmio_devs = k->virtio.nr};
	int err = acpi_build(&k->vm.mem, &acfg, &k->boot.rsdp_gpa);
	if (err)
		setup_fail(k, KILN_EXIT_ERROR, "cannot build the ACPI tables: %s", strerror(-err));
	err = bootparams_write(&k->vm.mem, &k->kernel, &k->boot);
	if (err)
		setup_fail(k, KILN_EXIT_ERROR, "cannot write the boot parameters: %s",
			   strerror(-err));
}

static int serial_irq_set(void *ctx, int level)
{
	return vm_irq_line(ctx, LAYOUT_COM1_IRQ, level);
}

static int kbd_irq_set(void *ctx, int level)
{
	return vm_irq_line(ctx, LAYOUT_I8042_KBD_IRQ, level);
}

static void add_legacy_devices(struct kiln *k)
{
	struct vm *vm = &k->vm;
	int space_efd, err;
	if ((err = console_prepare(&k->console, &space_efd)))
		die(KILN_EXIT_ERROR, "console: %s", strerror(-err));
	struct serial_irq irq = {.set_level = serial_irq_set, .ctx = vm};
	if ((err = serial_init(&k->serial, STDOUT_FILENO, space_efd, &irq)) ||
	    (err = i8042_init(&k->i8042, &vm->exit)))
		die(KILN_EXIT_ERROR, "devices: %s", strerror(-err));
	i8042_set_irq(&k->i8042, kbd_irq_set, vm);
	acpi_pm_init(&k->pm, &vm->exit);
	if ((err = bus_add(&vm->pio, LAYOUT_COM1_PORT, 8, &serial_bus_ops, &k->serial)) ||
	    (err = bus_add(&vm->pio, LAYOUT_I8042_DATA_PORT, 5, &i8042_bus_ops, &k->i8042)) ||
	    (err = bus_add(&vm->pio, LAYOUT_ACPI_SLEEP_CTL_PORT, 3, &acpi_pm_bus_ops, &k->pm)))
		die(KILN_EXIT_ERROR, "I/O bus: %s", strerror(-err));
	/* Firecracker's boot timer only times boots, and is on the bus only when asked for. */
	if (k->args.boot_timer && !k->restore &&
	    (err = boot_timer_add(&k->boot_timer, &vm->mmio, &vm->mem)))
		die(KILN_EXIT_ERROR, "boot timer: %s", strerror(-err));
}

/* Block, network and vsock devices: each on its own virtio-mmio window, IRQ and ACPI entry.
 * vsock last, since it binds a socket file that a failed setup must remove. */
static void add_virtio_devices(struct kiln *k)
{
	char err[512];
	virtio_set_init(&k->virtio, NULL);
	k->devices_added = true;
	if (virtio_blk_add_all(&k->virtio, &k->vm, &k->loop, k->cfg.drives, k->cfg.nr_drives, err,
			       sizeof(err)) < 0 ||
	    virtio_net_add_all(&k->virtio, &k->vm, &k->loop, k->cfg.nets, k->cfg.nr_nets, err,
			       sizeof(err)) < 0 ||
	    (k->cfg.vsock.present &&
	     virtio_vsock_add(&k->virtio, &k->vm, &k->loop, &k->cfg.vsock, err, sizeof(err)) < 0))
		setup_fail(k, KILN_EXIT_BADCFG, "%s", err);
}

static void create_vcpus(struct kiln *k)
{
	const char *what = "";
	int err = vcpu_create_all(&k->vm, k->cfg.machine.vcpu_count, k->cfg.machine.smt, &what);
	if (!err && !k->restore)
		err = vcpu_setup_boot(&k->vm, &k->kernel, &what);
	if (err)
		setup_fail(k, KILN_EXIT_ERROR, "cannot set up the vCPUs: %s: %s", what,
			   strerror(-err));
}

static void on_exit_request(void *ctx, uint32_t events)
{
	struct kiln *k = ctx;
	uint64_t cnt;
	(void)events;
	ssize_t rc = read(k->exit_src.fd, &cnt, sizeof(cnt));
	(void)rc;
}

/* The hang dump: every vCPU logs its registers from its own thread, this thread the
 * virtio transports and queues. */
static void dump_vm_state(struct kiln *k)
{
	if (!k->vm_created)
		return;
	vcpu_request_state_dump(&k->vm);
	virtio_set_log_state(&k->virtio);
}

static void stop_vm(struct kiln *k, enum vm_exit_reason reason)
{
	if (k->vm_created)
		vm_request_exit(&k->vm.exit, reason);
	else
		k->stop_before_boot = true;
}

/* SIGUSR2 dumps the VM state and keeps it running; SIGTERM dumps it, then stops the VM;
 * SIGINT and SIGHUP stop it. */
static void on_signal(void *ctx, uint32_t events)
{
	struct kiln *k = ctx;
	struct signalfd_siginfo si;
	(void)events;
	if (read(k->signal_src.fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGUSR2) {
		log_warn("signal %u: dumping the VM state", si.ssi_signo);
		dump_vm_state(k);
		return;
	}
	if (si.ssi_signo == SIGTERM) {
		log_warn("signal %u: dumping the VM state, then stopping the VM", si.ssi_signo);
		dump_vm_state(k);
	} else {
		log_info("signal %u: stopping the VM", si.ssi_signo);
	}
	stop_vm(k, VM_EXIT_SIGNAL);
}

static void on_ctrl(void *ctx, uint32_t events)
{
	struct kiln *k = ctx;
	(void)events;
	evloop_run_once(&k->ctrl, 0);
}

/* Blocks the signals kiln handles in its event loop (and SIGUSR1, which vCPU threads
 * unblock for their kicks) so every thread created afterwards inherits the mask. */
static void block_signals(sigset_t *handled)
{
	sigemptyset(handled);
	sigaddset(handled, SIGTERM);
	sigaddset(handled, SIGINT);
	sigaddset(handled, SIGHUP);
	sigaddset(handled, SIGUSR2);
	sigset_t mask = *handled;
	sigaddset(&mask, SIGUSR1);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL))
		die(KILN_EXIT_ERROR, "cannot block signals");
	signal(SIGPIPE, SIG_IGN);
}

/* The SIGSYS reporter now; each thread loads its own filter when it starts serving. */
static void setup_seccomp(struct kiln *k)
{
	k->vm.seccomp = !k->args.no_seccomp;
	int err = k->vm.seccomp ? seccomp_setup_sigsys() : 0;
	if (err)
		setup_fail(k, KILN_EXIT_ERROR, "seccomp: %s", strerror(-err));
}

/* The control loop (signals, API calls) and the device loop, before anything else: a
 * signal during setup waits in the signalfd, and the API can take calls. */
static void init_event_loops(struct kiln *k, const sigset_t *handled)
{
	int err = evloop_init(&k->loop);
	if (!err)
		err = evloop_init(&k->ctrl);
	k->signal_src = (struct ev_source){
	    .handle = on_signal, .ctx = k, .fd = signalfd(-1, handled, SFD_CLOEXEC | SFD_NONBLOCK)};
	if (!err && k->signal_src.fd < 0)
		err = -errno;
	if (!err)
		err = evloop_add(&k->ctrl, &k->signal_src, EPOLLIN);
	k->ctrl_src = (struct ev_source){.handle = on_ctrl, .ctx = k, .fd = k->ctrl.epfd};
	if (!err)
		err = evloop_add(&k->loop, &k->ctrl_src, EPOLLIN);
	if (err)
		die(KILN_EXIT_ERROR, "event loop: %s", strerror(-err));
}

static void start_event_loop(struct kiln *k)
{
	int err = 0;
	k->exit_src = (struct ev_source){.handle = on_exit_request, .ctx = k, .fd = k->vm.exit.efd};
	if (!err)
		err = evloop_add(&k->ctrl, &k->exit_src, EPOLLIN);
	if (!err)
		err = console_start(&k->console, &k->serial, &k->loop, STDIN_FILENO);
	if (!err)
		err = metrics_start(&k->metrics, k->metrics_fd, &k->loop, &k->serial, &k->virtio,
				    &k->vm);
	if (err)
		setup_fail(k, KILN_EXIT_ERROR, "event loop: %s", strerror(-err));
}

/* Runs the devices until some thread asks the VM to end; returns the exit reason. */
static int run_vm(struct kiln *k)
{
	int err = vcpu_start_all(&k->vm);
	if (err) {
		log_err("cannot start the vCPUs: %s", strerror(-err));
		vm_request_exit(&k->vm.exit, VM_EXIT_ERROR);
	}
	if (!err && k->paused && (err = vcpu_pause_all(&k->vm))) { /* a restore, not resumed */
		log_err("cannot park the restored vCPUs: %s", strerror(-err));
		vm_request_exit(&k->vm.exit, VM_EXIT_ERROR);
	}
	if (!err && k->restore) {
		metrics_latency(&k->metrics, LAT_LOAD_SNAPSHOT, k->restore->start_ns);
		log_info(
		    "snapshot %s restored in %llu us", k->restore->params.snapshot_path,
		    (unsigned long long)atomic_load(&k->metrics.latency_us[LAT_LOAD_SNAPSHOT]));
	}
	kiln_api_vm_started(k, err);
	/* After the vCPU threads exist (they stay SCHED_OTHER) and before the filter, which
	 * does not let the policy change again. */
	int perr = err ? 0 : evloop_thread_batch();
	if (perr)
		log_warn("event loop: cannot run SCHED_BATCH: %s; left SCHED_OTHER",
			 strerror(-perr));
	/* After the vCPU and API threads exist, so they do not inherit this thread's filter. */
	if (k->vm.seccomp) {
		err = seccomp_install(SECCOMP_ROLE_VMM);
		if (err) {
			log_err("seccomp: %s", strerror(-err));
			vm_request_exit(&k->vm.exit, VM_EXIT_ERROR);
		}
		seccomp_test_hook(SECCOMP_ROLE_VMM);
	}
	while (atomic_load(&k->vm.exit.reason) == VM_RUNNING) {
		err = evloop_run_once(k->paused ? &k->ctrl : &k->loop, -1);
		if (err < 0) {
			log_err("event loop: %s", strerror(-err));
			vm_request_exit(&k->vm.exit, VM_EXIT_ERROR);
		}
	}
	if (k->paused)
		vcpu_resume_all(&k->vm);
	vcpu_stop_all(&k->vm);
	int reason = atomic_load(&k->vm.exit.reason);
	metrics_flush(&k->metrics, vm_exit_reason_name(reason));
	metrics_stop(&k->metrics);
	virtio_set_destroy(&k->virtio);
	return reason;
}

/* The documented last stderr line of every VM that ran, whatever the logger's level or
 * log_path: "kiln: exit reason=<name> code=<exit code>" (README, "Exit codes"). */
static void report_exit(int reason, int code)
{
	char line[80];
	int n = snprintf(line, sizeof(line), "kiln: exit reason=%s code=%d\n",
			 vm_exit_reason_name(reason), code);
	ssize_t rc = write(STDERR_FILENO, line, (size_t)n);
	(void)rc;
}

/* Undoes what would outlive the process: the API socket's file and the terminal's mode
 * (the devices were stopped and flushed, the metrics written, in run_vm()). The VM, guest
 * RAM, the fds and the heap are left to the kernel's exit, which unmaps guest RAM first and
 * then destroys the VM: releasing them one by one here made the tiny guest's exec -> exit
 * 1.16x the floor's instead of 0.95x in the test host (docs/benchmarks.md). */
static void teardown(struct kiln *k)
{
	kiln_api_close(k);
	console_stop(&k->console);
}

/* A restored VM: KVM's, the devices' and the vCPUs' state from the snapshot. */
static void restore_state(struct kiln *k)
{
	char err[512];
	if (kiln_snapshot_restore_state(k, err, sizeof(err)))
		setup_fail(k, KILN_EXIT_BADCFG, "%s", err);
}

/* Builds the VM from k->cfg, whichever way it was configured: a boot from the kernel, or a
 * restore, whose memory already holds everything the guest had. */
static void build_vm(struct kiln *k)
{
	boot_timer_start(&k->boot_timer); /* Firecracker's request_ts: the build begins */
	open_outputs(k);
	if (!k->restore)
		load_images(k); /* a bad image is exit 2 before /dev/kvm is opened */
	create_vm(k);
	k->vm_created = true;
	add_legacy_devices(k);
	add_virtio_devices(k);
	if (!k->restore)
		write_boot_params(k);
	create_vcpus(k);
	if (k->restore)
		restore_state(k);
	setup_seccomp(k);
	start_event_loop(k);
}

int main(int argc, char **argv)
{
	struct kiln *k = calloc(1, sizeof(*k));
	sigset_t handled;
	if (!k)
		die(KILN_EXIT_ERROR, "out of memory");
	kiln_parse_args(argc, argv, &k->args);
	/* First: a SIGTERM during setup (after the vsock socket is bound, say) then waits for the
	 * event loop and ends the VM cleanly, instead of killing kiln with its files left. */
	block_signals(&handled);
	load_config(k);
	init_event_loops(k, &handled);
	kiln_api_open(k);
	if (!kiln_api_wait_for_start(k)) {
		log_info("stopped before InstanceStart");
		kiln_api_close(k);
		evloop_destroy(&k->loop);
		evloop_destroy(&k->ctrl);
		config_free(&k->cfg);
		free(k);
		return KILN_EXIT_OK;
	}
	build_vm(k);
	int reason = run_vm(k);
	log_info("VM stopped: %s", vm_exit_reason_name(reason));
	teardown(k);
	int code = vm_exit_code(reason);
	report_exit(reason, code);
	return code;
}
