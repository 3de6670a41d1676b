/* The VM: KVM handles, guest RAM, the I/O buses, the vCPUs and how the VM is asked to end. */
#ifndef KILN_VM_H
#define KILN_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

/* KVM_MEM_MAX_NR_PAGES ((1 << 31) - 1 pages of 4 KiB) on x86: one memslot's limit. */
#define VM_SLOT_MAX_BYTES ((((1ULL << 31) - 1)) << 12)

enum vm_exit_reason {
	VM_RUNNING = 0,
	VM_EXIT_REBOOT,	      /* guest reset (i8042, ACPI reset register) */
	VM_EXIT_POWEROFF,     /* guest entered ACPI S5 */
	VM_EXIT_SIGNAL,	      /* SIGTERM/SIGINT/SIGHUP on the host */
	VM_EXIT_ERROR,	      /* KVM error or an exit the guest did not ask for */
	VM_EXIT_TRIPLE_FAULT, /* the guest crashed: a vCPU triple-faulted (KVM_EXIT_SHUTDOWN) */
};

/* The reason's name in kiln's last stderr line and in metrics' exit_reason: "reboot",
 * "poweroff", "signal", "error", "triple-fault" ("running" for VM_RUNNING, "unknown" for
 * anything else). */
const char *vm_exit_reason_name(int reason);

/* kiln's exit code for a VM that ended for `reason`: KILN_EXIT_ERROR (1) for "error" and
 * "triple-fault", KILN_EXIT_OK (0) for the endings the guest or the host asked for. */
int vm_exit_code(int reason);

/* How any thread asks the VM to end: the first reason recorded wins, and the event loop
 * is woken through the eventfd. Safe to call from vCPU threads and device handlers. */
struct vm_exit_ctl {
	_Atomic int reason;
	int efd;
};

void vm_request_exit(struct vm_exit_ctl *ctl, enum vm_exit_reason reason);

struct vm;

/* Firecracker's `vcpu` metrics, counted per vCPU by its own thread with relaxed atomics (the
 * metrics flush sums them on the VMM thread): port and MMIO exits by direction, and exits
 * that end the vCPU in error (a KVM_RUN error, KVM internal/entry failure, an unknown exit). */
enum {
	VCPU_EXIT_IO_IN,
	VCPU_EXIT_IO_OUT,
	VCPU_EXIT_MMIO_READ,
	VCPU_EXIT_MMIO_WRITE,
	VCPU_FAILURES,
	VCPU_NR_COUNTS
};

struct vcpu {
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
	atomic_bool dump_requested; /* the vCPU logs its registers when next out of KVM_RUN */
	struct vm *vm;
	/* The vCPU thread's own record of its exits, for its state lines: how many, and the
	 * last I/O one (a port or MMIO address; what the guest last did before a crash). */
	uint64_t nr_exits;
	uint32_t last_io_exit; /* KVM_EXIT_IO or KVM_EXIT_MMIO, 0 before the first */
	bool last_io_write;
	uint64_t last_io_addr;
	_Atomic uint64_t counts[VCPU_NR_COUNTS]; /* VCPU_EXIT_IO_IN... */
};

struct vm {
	int kvm_fd;
	int vm_fd;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct vm_exit_ctl exit;
	atomic_bool stopping; /* set once; vCPU threads leave KVM_RUN and return */
	/* PATCH /vm Paused: vCPUs park out of KVM_RUN until resumed (vcpu_pause_all). */
	atomic_bool pause_requested;
	pthread_mutex_t pause_mu;
	pthread_cond_t pause_cv;
	unsigned nr_parked;
	/* vCPU 0's thread starts pinned to the CPU that created it and restores this mask (the
	 * process's) first thing, when start_cpus_set (vcpu_start_all). */
	cpu_set_t start_cpus;
	bool start_cpus_set;
	unsigned nr_vcpus;
	bool smt;
	bool seccomp;	      /* each vCPU thread loads the vcpu filter before its first KVM_RUN */
	uint64_t ram_limit;   /* bytes of RAM this host's KVM can map, from vm_create() */
	unsigned nr_memslots; /* KVM's memory slots, from vm_create() */
	unsigned nr_ro_slots; /* read-only slots added by vm_map_readonly(), after the RAM's */
	/* KVM_GET_SUPPORTED_CPUID, read once by vm_create(); each vCPU's CPUID starts from it. */
	struct kvm_cpuid2 *supported_cpuid;
	/* Set before vm_create(): every memslot logs dirty pages (KVM_MEM_LOG_DIRTY_PAGES) and
	 * the devices' writes are recorded (gm_track_dirty), for diff snapshots. */
	bool track_dirty_pages;
	struct vcpu vcpu[LAYOUT_MAX_VCPUS];
};

/* Opens /dev/kvm, checks the capabilities kiln needs and that KVM can map vm->mem (set up
 * by the caller with guest_mem_init(), which vm_destroy() frees), reads KVM's supported
 * CPUID into vm->supported_cpuid, creates the VM, registers the guest RAM, region i as
 * memslot i (logging dirty pages when vm->track_dirty_pages), and adds an in-kernel
 * irqchip and PIT. 0 or -errno; *what names the step that failed.
 * -EFBIG: more RAM than this host's KVM can map; vm->ram_limit holds the most it can, and
 * *what is "machine-config.mem_size_mib". */
int vm_create(struct vm *vm, const char **what);

/* The most guest RAM (bytes) kiln's layout can give a guest on a KVM with phys_bits of
 * guest-physical address and nr_memslots memory slots: the RAM above 4 GiB must end below
 * 2^phys_bits, a second slot is needed for any RAM above the MMIO gap, and one slot holds
 * at most VM_SLOT_MAX_BYTES; never more than guest_mem_init() maps. */
uint64_t vm_ram_limit(unsigned phys_bits, int nr_memslots);

/* Maps `size` bytes at `host` (page-aligned) read-only at guest-physical `gpa`, in the
 * next memory slot after the RAM's: the guest's reads there do not exit, its writes exit as
 * MMIO (or signal an ioeventfd). 0; -ENOTSUP when this KVM has no read-only slots or none
 * left; -errno from KVM. */
int vm_map_readonly(struct vm *vm, uint64_t gpa, void *host, uint64_t size);

/* Drives an interrupt line of the in-kernel irqchip (level 1 or 0). */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);

/* Closes every fd and unmaps guest RAM. vCPU threads must have been joined. */
void vm_destroy(struct vm *vm);

#endif
