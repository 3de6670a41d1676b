/* The virtio devices of a VM: each gets the next virtio-mmio window and GSI, is put on the
 * MMIO bus, gets one ioeventfd per queue (watched by the event loop) and one irqfd, and is
 * recorded for the ACPI tables and the kernel command line. */
#ifndef KILN_VIRTIO_DEVICES_H
#define KILN_VIRTIO_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/vsock.h"
#include "vmm/acpi.h"
#include "vmm/config.h"
#include "vmm/evloop.h"
#include "vmm/layout.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"

/* One GSI per device, from LAYOUT_VIRTIO_IRQ_BASE up to the last IOAPIC pin. */
#define VIRTIO_DEVICES_MAX (LAYOUT_IOAPIC_PINS - LAYOUT_VIRTIO_IRQ_BASE)
#define VIRTIO_PARTUUID_MAX 64

/* The KVM side of a device; tests substitute fakes so nothing needs /dev/kvm. */
struct virtio_kvm_ops {
	/* Signal efd when the guest writes the 4-byte value `datamatch` at `gpa`. */
	int (*ioeventfd)(void *ctx, int efd, uint64_t gpa, uint32_t datamatch);
	/* Inject `gsi` (edge) each time efd is written. */
	int (*irqfd)(void *ctx, int efd, uint32_t gsi);
	void *ctx;
	/* Map `size` bytes at `host` read-only at `gpa` (vm_map_readonly). NULL, or -ENOTSUP
	 * from it: the guest's register reads exit to the MMIO bus instead. */
	int (*map_readonly)(void *ctx, uint64_t gpa, void *host, uint64_t size);
};

struct virtio_slot;

/* The kinds of device a set holds; metrics group their counters by it. */
enum virtio_kind_type { VIRTIO_KIND_BLK, VIRTIO_KIND_NET, VIRTIO_KIND_VSOCK };

/* What a set does with the devices of one kind: one const table per kind, so a slot holds
 * its device behind one pointer and one table. counters, update_limiter and swap_backing
 * run with the transport's lock held, the others without it. */
struct virtio_kind {
	enum virtio_kind_type type;
	const struct virtio_dev_ops *dev_ops;
	/* Whether PATCH's `id` (drive_id, iface_id) names this device; NULL: no id. */
	bool (*has_id)(const void *dev, const char *id);
	/* Closes what the device holds open and frees it. */
	void (*destroy)(void *dev);
	/* The counters, indexed as metrics.h's BLK_*, NET_* or VSOCK_* for the type. */
	void (*counters)(const void *dev, uint64_t *c);
	/* PATCH of rate limiters: lim[0] (net: rx), lim[1] (net: tx). NULL: none. 0 or -errno. */
	int (*update_limiter)(void *dev, const struct rate_limiter_cfg lim[2]);
	/* PATCH /drives: puts fd of `bytes` behind the device, returns the old fd. NULL: none. */
	int (*swap_backing)(void *dev, int fd, uint64_t bytes);
	/* Snapshots (virtio/persist.c): the kind's state struct follows the transport's in
	 * its section. */
	size_t state_size;
	/* Brings the device to a state worth saving (finishes its requests) and writes its
	 * state. 0 or -errno. */
	int (*save)(struct virtio_slot *s, void *state);
	/* The saved state into the device, after the transport's restore (its queues are set
	 * up and it is activated if it was): checked like guest input. 0, or -errno with one
	 * line in err. */
	int (*restore)(struct virtio_slot *s, const void *state, char *err, size_t errlen);
	/* Once the VM is restored, before the vCPUs run; NULL: nothing to do. */
	void (*after_restore)(struct virtio_slot *s);
};

/* One table per kind (virtio/kinds.c). */
extern const struct virtio_kind virtio_kind_blk, virtio_kind_net, virtio_kind_vsock;

/* The event-loop source of one queue's ioeventfd. */
struct virtio_kick {
	struct ev_source src;
	struct virtio_mmio *transport;
	unsigned queue;
};

struct virtio_slot {
	struct virtio_mmio mmio;
	const struct virtio_kind *kind;
	void *dev; /* the struct virtio_blk, virtio_net or virtio_vsock */
	int irq_efd;
	int ack_efd;	/* KVM signals it on InterruptACK = VRING */
	uint32_t *regs; /* the window's registers as the guest reads them, or NULL */
	struct virtio_kick kick[VIRTIO_MMIO_MAX_QUEUES];
	unsigned nr_kicks;	      /* kick[0, nr_kicks) are watched by the loop */
	struct ev_source limiter_src; /* the block device's rate-limiter timer */
	bool limiter_watched;
	struct ev_source io_src; /* the block device's io_efd */
	bool io_watched;
};

/* The slot's device if it is of that kind, else NULL. */
static inline struct virtio_blk *virtio_slot_blk(const struct virtio_slot *s)
{
	return s->kind->type == VIRTIO_KIND_BLK ? s->dev : NULL;
}

static inline struct virtio_net *virtio_slot_net(const struct virtio_slot *s)
{
	return s->kind->type == VIRTIO_KIND_NET ? s->dev : NULL;
}

static inline struct virtio_vsock *virtio_slot_vsock(const struct virtio_slot *s)
{
	return s->kind->type == VIRTIO_KIND_VSOCK ? s->dev : NULL;
}

struct virtio_set {
	struct virtio_slot *slot[VIRTIO_DEVICES_MAX];
	/* Hand these to acpi_build(): .mmio_devs = set->acpi, .nr_mmio_devs = set->nr. */
	struct acpi_mmio_dev acpi[VIRTIO_DEVICES_MAX];
	unsigned nr;
	unsigned nr_blk;
	unsigned nr_net;
	struct virtio_vsock *vsock; /* the VM's vsock device (at most one), or NULL */
	int root_blk;		    /* index among the block devices of the root drive, or -1 */
	bool root_read_only;
	char root_partuuid[VIRTIO_PARTUUID_MAX + 1]; /* "" unless the root has a partuuid */
	struct virtio_kvm_ops kvm;
	bool real_kvm; /* kvm ops are the KVM ioctls on the VM passed to the add functions */
	struct evloop *loop;
};

/* Empties the set. `kvm` NULL: devices are wired to KVM with KVM_IOEVENTFD/KVM_IRQFD on the
 * VM they are added to; else through the given ops (tests). */
void virtio_set_init(struct virtio_set *set, const struct virtio_kvm_ops *kvm);

/* Opens drive `d` and adds it as a virtio-blk device in the next window (base
 * LAYOUT_VIRTIO_MMIO_BASE + i * LAYOUT_VIRTIO_MMIO_SIZE, GSI LAYOUT_VIRTIO_IRQ_BASE + i):
 * transport on vm->mmio, one ioeventfd per queue on `loop`, one irqfd. 0, or -errno with
 * one line in err naming the drive (the VM must then not be started). */
int virtio_blk_add(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		   const struct drive_cfg *d, char *err, size_t errlen);

/* Adds all drives, the root drive first (so it is /dev/vda whatever its place in the
 * config), then the others in config order. 0 or the first error, as virtio_blk_add(). */
int virtio_blk_add_all(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		       const struct drive_cfg *drives, unsigned nr, char *err, size_t errlen);

/* Attaches network interface `index` (nc) to its TAP and adds it as a virtio-net device
 * in the next window, like virtio_blk_add(); its TAP and rate-limiter timers are watched
 * on `loop`. Interfaces appear to the guest in the order they are added (eth0 first). 0,
 * or -errno with one line in err naming network-interfaces[index] (the VM must then not be
 * started). */
int virtio_net_add(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		   const struct net_cfg *nc, unsigned index, char *err, size_t errlen);

/* virtio_net_add() on fd, already open (a TAP with IFF_VNET_HDR, or a datagram socket
 * carrying header + frame per datagram, for tests: see virtio_net_init_fd()), which it
 * owns from now on, even on failure; nc gives id, MAC and limiters. Errors name
 * network-interfaces[<nets added so far>]. */
int virtio_net_add_fd(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		      const struct net_cfg *nc, int fd, char *err, size_t errlen);

/* Adds nets[0, nr) in config order. 0 or the first error, as virtio_net_add(). */
int virtio_net_add_all(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		       const struct net_cfg *nets, unsigned nr, char *err, size_t errlen);

/* Binds vc->uds_path (an existing path is an error, as in Firecracker) and adds the
 * virtio-vsock device for guest CID vc->guest_cid in the next window, like
 * virtio_blk_add(); its host sockets are watched by `loop`. The socket file is removed by
 * virtio_set_destroy(). 0, or -errno with one line in err naming vsock.uds_path (the VM
 * must then not be started). */
int virtio_vsock_add(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		     const struct vsock_cfg *vc, char *err, size_t errlen);

/* Appends the kernel command line fragments to the NUL-terminated string in buf (cap
 * bytes): with `mmio_devices`, " virtio_mmio.device=4K@0x<base>:<gsi>" per device (only
 * for kernels that do not read the ACPI DSDT: never both), then for a root drive
 * " root=/dev/vdX" or " root=PARTUUID=<uuid>", and " ro" or " rw". 0, or -ENOSPC (buf
 * unchanged) when it does not fit. */
int virtio_set_cmdline(const struct virtio_set *set, bool mmio_devices, char *buf, size_t cap);

/* PATCH /drives: puts fd (virtio_blk_open_backing) of `bytes` behind the block device of
 * drive_id, closes the old file and raises a configuration-change interrupt so the guest
 * rereads the capacity. On the event-loop thread (it runs the queues). 0, or -ENOENT (fd
 * then left to the caller) when no block device has that id. */
int virtio_set_blk_swap(struct virtio_set *set, const char *drive_id, int fd, uint64_t bytes);

/* PATCH of a running device's rate limiters (ratelimit_update): a block device's (drive_id,
 * lim[0]) or a net device's (iface_id, lim[0] rx, lim[1] tx). On the event-loop thread.
 * 0, -ENOENT when no such device, or -errno. */
int virtio_set_update_limiter(struct virtio_set *set, const char *id, bool is_net,
			      const struct rate_limiter_cfg lim[2]);

/* Snapshots (virtio/persist.c), on the thread that runs the event loop while the vCPUs
 * are parked and the device loop is not served (a paused VM). Adds one SNAP_SEC_VIRTIO
 * section per device, index = its slot: the transport's state, then its kind's (struct
 * virtio_*_state in virtio/persist.h). Block devices first finish every request they
 * popped (the Sync engine too: the paused loop leaves popped requests queued; Async waits
 * for io_uring), writing guest memory and possibly interrupting the guest: guest memory
 * must be saved after this call; an interrupt the saved interrupt controllers missed is
 * raised again by virtio_set_after_restore(). 0, or -errno (the writer's, or -ETIMEDOUT
 * when a disk does not finish within 10 s, logged). */
int virtio_set_save(struct virtio_set *set, struct snap_writer *w);

/* Restores every device of a set that the new process added from the same config (the
 * drives, interfaces and vsock in the same order; TAP names and uds_path may differ), with
 * guest memory already holding the snapshot's RAM, before any vCPU or the event loop runs.
 * Each section must be the device in its slot (name, device id, queue count, drive size,
 * MAC, guest CID) and is checked as guest input (virtio_mmio_restore() and the kind's
 * checks); activated devices are live again as after DRIVER_OK. Raises no interrupt and
 * touches no KVM interrupt line. 0, or -errno (-EINVAL; -EFAULT, -ELOOP... for a held
 * chain that no longer checks out) with one line in err ("virtio device 1 (virtio-net
 * eth0): queue 0: descriptor table outside guest RAM"); every device is then back at
 * reset. */
int virtio_set_restore(struct virtio_set *set, const struct snap_reader *r, char *err,
		       size_t errlen);

/* One device of virtio_set_restore() from its section's bytes data[0, len) (for tests and
 * fuzzing). 0, or -errno with one line in err, that device reset. */
int virtio_set_restore_device(struct virtio_set *set, unsigned index, const void *data, size_t len,
			      char *err, size_t errlen);

/* After virtio_set_restore() and the restore of the VM's interrupt controllers, before the
 * vCPUs run: every live device is interrupted again when its InterruptStatus is set and has
 * its queues kicked (the event loop serves them once it runs), and an activated vsock
 * posts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET into a buffer of its event queue, with an
 * interrupt. */
void virtio_set_after_restore(struct virtio_set *set);

/* The hang dump of every device (virtio_mmio_log_state at warning level), in the order
 * they were added. Call on the event-loop thread, which owns the queues' processing. */
void virtio_set_log_state(struct virtio_set *set);

/* Unwatches, closes and frees every device. The vCPUs must have stopped (the MMIO bus still
 * points at the transports). Safe on an empty set. */
void virtio_set_destroy(struct virtio_set *set);

#endif
