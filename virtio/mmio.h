/* The virtio-mmio transport, version 2 (virtio 1.x, 4.2): the register window a driver
 * programs, the device status state machine, and the split between the transport (this
 * file) and a device model (a const struct virtio_dev_ops). Nothing here talks to KVM:
 * interrupts go through an injectable hook and queue notifications arrive either as MMIO
 * writes to QueueNotify or through virtio_mmio_notify() from an ioeventfd watcher. */
#ifndef KILN_VIRTIO_MMIO_H
#define KILN_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtq.h"
#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/log.h"

#define VIRTIO_MMIO_MAX_QUEUES 8
#define VIRTIO_MMIO_WINDOW 0x1000     /* bytes of MMIO space per device */
#define VIRTIO_MMIO_MAGIC 0x74726976  /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4e4c494b /* "KILN" */
#define VIRTIO_MMIO_NAME_MAX 80

/* A device model. Every callback runs with the transport's lock held, so the device needs
 * no lock of its own for anything it touches only from these callbacks. */
struct virtio_dev_ops {
	const char *name;	 /* "virtio-blk", for logs */
	uint32_t device_id;	 /* VIRTIO_ID_* */
	unsigned nr_queues;	 /* <= VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max_size; /* QueueNumMax of every queue, <= VIRTQ_MAX_SIZE */
	uint32_t config_size;	 /* bytes of device config space */
	/* Feature bits offered; must include VIRTIO_F_VERSION_1. */
	uint64_t (*features)(const void *dev);
	/* Config space access, already bounds- and width-checked by the transport. */
	void (*config_read)(void *dev, uint32_t off, uint8_t *data, uint32_t len);
	/* NULL when the config space is read-only. */
	void (*config_write)(void *dev, uint32_t off, const uint8_t *data, uint32_t len);
	/* DRIVER_OK: `vq` are the device's queues (unready ones have ready == false). 0, or
	 * -errno to refuse (the device then reports DEVICE_NEEDS_RESET). */
	int (*activate)(void *dev, uint64_t features, struct virtq *vq);
	/* The driver wrote 0 to Status: forget all per-driver state. */
	void (*reset)(void *dev);
	/* The driver kicked queue `idx` (ready, device activated). Processes what is available
	 * and sets *need_irq when the driver should be interrupted. -errno when the driver
	 * broke the queue: the device then reports DEVICE_NEEDS_RESET. */
	int (*queue_notify)(void *dev, struct virtq *vq, unsigned idx, bool *need_irq);
};

/* How the transport interrupts the guest (an irqfd write in kiln, a counter in tests). */
struct virtio_irq {
	int (*raise)(void *ctx); /* 0 or -errno */
	void *ctx;
};

/* How the transport brings back a queue whose device stopped at VIRTQ_BUDGET (kiln: a
 * write to the queue's ioeventfd, so the event loop serves it after what else is ready). */
struct virtio_requeue {
	void (*kick)(void *ctx, unsigned queue);
	void *ctx;
};

struct virtio_mmio {
	pthread_mutex_t lock; /* vCPU register accesses vs. queue processing */
	const struct virtio_dev_ops *ops;
	void *dev;
	const struct guest_mem *gm;
	struct virtio_irq irq;
	char name[VIRTIO_MMIO_NAME_MAX];
	uint32_t status;
	uint32_t dev_features_sel;
	uint32_t drv_features_sel;
	uint32_t queue_sel;
	uint64_t driver_features;
	uint32_t isr; /* InterruptStatus: VIRTIO_MMIO_INT_VRING | _CONFIG */
	uint32_t config_generation;
	bool activated;
	uint32_t *regs;	     /* the guest's read-only copy of the window, or NULL */
	int ack_fd;	     /* eventfd of the guest's InterruptACK of VRING, or -1 */
	uint64_t interrupts; /* raised so far, for metrics and tests */
	uint64_t coalesced;  /* not raised: the guest had yet to acknowledge the same reason */
	uint64_t requeues;   /* queues run again after the device spent its budget */
	struct virtio_requeue requeue;
	struct log_ratelimit rl;
	struct virtq vq[VIRTIO_MMIO_MAX_QUEUES];
};

/* The transport in a snapshot (pointer-free, fixed layout): what identifies the device,
 * what the driver programmed, and each queue. Entries past nr_queues are zero. */
struct virtio_mmio_state {
	char name[VIRTIO_MMIO_NAME_MAX]; /* the transport's name, NUL-terminated */
	uint32_t device_id;
	uint32_t nr_queues;
	uint32_t status;
	uint32_t dev_features_sel;
	uint32_t drv_features_sel;
	uint32_t queue_sel;
	uint64_t driver_features;
	uint32_t isr;
	uint32_t config_generation;
	uint8_t activated;
	uint8_t pad[7];
	struct virtq_state vq[VIRTIO_MMIO_MAX_QUEUES];
};

/* Prepares the transport for `dev` (which must outlive it). `name` identifies the device in
 * logs ("virtio-blk rootfs"). 0, -EINVAL for a bad ops table, or -errno from the mutex. */
int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
		     const struct guest_mem *gm, const struct virtio_irq *irq, const char *name);

void virtio_mmio_destroy(struct virtio_mmio *t);

/* Sets how a queue the device left at VIRTQ_BUDGET is run again (virtq_requeue()): after
 * every device callback the transport calls r->kick for each such queue. Without it (the
 * default) such queues wait for the guest's next kick. */
void virtio_mmio_set_requeue(struct virtio_mmio *t, const struct virtio_requeue *r);

/* The guest's fast path to the registers (kiln: a read-only KVM memory slot over the
 * window and an ioeventfd on InterruptACK): `regs` (VIRTIO_MMIO_WINDOW bytes, or NULL) is
 * kept equal, word by word, to what a read at each offset returns (0 where nothing can be
 * read), so the guest reads it without an exit; `ack_fd` (a non-blocking eventfd, or -1)
 * counts the driver's writes of VIRTIO_MMIO_INT_VRING to InterruptACK, applied before
 * InterruptStatus is next looked at. Both must outlive the transport. */
void virtio_mmio_set_fast_regs(struct virtio_mmio *t, uint32_t *regs, int ack_fd);

/* With t->lock held: applies pending acknowledgements and rewrites the guest's copy of the
 * registers (after a snapshot restore put them in, before a save reads them). */
void virtio_mmio_sync_regs_locked(struct virtio_mmio *t);

/* Bus ops for the device's VIRTIO_MMIO_WINDOW; `dev` is the struct virtio_mmio. */
extern const struct bus_dev_ops virtio_mmio_bus_ops;

/* A queue notification that did not come through the MMIO window (an ioeventfd fired):
 * takes the lock and runs the device's queue handler if the device is live. */
void virtio_mmio_notify(struct virtio_mmio *t, unsigned queue);

/* The device's config space changed: bumps ConfigGeneration and interrupts the driver. */
void virtio_mmio_config_changed(struct virtio_mmio *t);

/* Device-initiated work: `vq` is the device's queue array while it is live (activated and
 * not broken), else NULL (then fn must not touch the queues and should pause whatever host
 * source called it until the device is activated again). Same contract as queue_notify. */
typedef int (*virtio_work_fn)(void *dev, struct virtq *vq, void *arg, bool *need_irq);

/* Work the device starts itself (a host socket became readable, a timer fired), serialized
 * with the vCPUs: takes the lock, runs fn(dev, vq, arg, &need_irq), then, if the device is
 * live, raises the interrupt when need_irq was set, and an error from fn makes the device
 * report DEVICE_NEEDS_RESET, as one from queue_notify would. */
void virtio_mmio_run(struct virtio_mmio *t, virtio_work_fn fn, void *arg);

/* From inside a queue_notify or work function (t->lock held, device live): interrupts the
 * guest for used buffers now rather than when the function returns, so that its driver
 * starts on the first of a long batch while the device fills the rest. */
void virtio_mmio_interrupt_locked(struct virtio_mmio *t);

/* Returns the transport to its state before any driver (what a write of 0 to Status
 * does: the device's reset callback, every queue forgotten). Call with t->lock held. */
void virtio_mmio_reset_locked(struct virtio_mmio *t);

/* Whether saved state bytes are all zero: padding, and queues a device does not have, must
 * be, in every state struct a restore checks. */
bool virtio_state_all_zero(const void *p, size_t len);

/* Snapshot (virtio/mmio_persist.c). Copies the transport into *st under the lock. The
 * caller has made sure no chain is in flight that the device does not save itself. */
void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *st);

/* Puts *st into a transport fresh from virtio_mmio_init() (or reset), checked as if a
 * driver programmed it: same name, device id and queue count; a status a driver can
 * reach; driver features offered (VERSION_1 once FEATURES_OK); QueueSel < queues; only
 * known InterruptStatus bits; every ready queue through virtq_restore(). An activated
 * device is activated again with the negotiated features, so it is live as after
 * DRIVER_OK. Raises no interrupt. 0, or -EINVAL (or the activate callback's -errno) with
 * one line in err ("queue 0: used ring outside guest RAM"); the transport is then reset. */
int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *st, char *err,
			size_t errlen);

/* The checks of virtio_mmio_restore() that need no guest memory (identity, status,
 * features, registers), changing nothing: 0, or -EINVAL with one line in err. */
int virtio_mmio_check_state(const struct virtio_mmio *t, const struct virtio_mmio_state *st,
			    char *err, size_t errlen);

/* Once the whole VM is restored and before the vCPUs run: after DRIVER_OK, raises the
 * device's interrupt again when InterruptStatus is set (the guest has not acknowledged it;
 * an extra one is harmless), and if the device is live kicks every ready queue through the
 * requeue hook, as the guest's notification would, for work the old process had left for
 * its event loop. */
void virtio_mmio_after_restore(struct virtio_mmio *t);

/* The hang dump: under the lock, logs at `lvl` one line for the transport,
 * "<name> state: status=0x.. interrupt_status=0x.. activated=0|1 features=0x.. interrupts=N
 * coalesced=N", then "<name> queue <i>: <virtq_format_state line>" per queue. */
void virtio_mmio_log_state(struct virtio_mmio *t, enum log_level lvl);

#endif
