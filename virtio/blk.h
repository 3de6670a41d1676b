/* virtio-blk (virtio 1.x 5.2): one request queue backed by a host file or block device.
 *
 * Disk I/O never runs under the transport lock, so a vCPU touching the device's registers
 * never waits for the host's disk. A request goes through three steps:
 *   1. virtio_blk_process() (queue_notify, under the lock): pops chains, answers what needs
 *      no I/O at once and queues the rest in a request slot, then signals io_efd;
 *   2. the event loop, woken by io_efd, runs virtio_blk_claim() under the lock (takes the
 *      queued requests), virtio_blk_io() WITHOUT it (the I/O engine: "Sync" does the
 *      preadv/pwritev/fdatasync itself, "Async" submits them to io_uring and reaps what
 *      completed), then virtio_blk_complete() under the lock (status bytes, used ring,
 *      interrupt). io_uring completions signal io_efd too.
 * A driver reset while requests run bumps a generation: their results are discarded. */
#ifndef KILN_VIRTIO_BLK_H
#define KILN_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/blk_uring.h"
#include "virtio/mmio.h"
#include "virtio/ratelimit.h"
#include "virtio/virtq.h"
#include "vmm/config.h"
#include "vmm/log.h"

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_CONFIG_BYTES 24 /* capacity, size_max, seg_max, geometry, blk_size */
#define VIRTIO_BLK_ID_LEN 20	   /* VIRTIO_BLK_ID_BYTES */
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2) /* data segments per request */
#define VIRTIO_BLK_SLOTS 64			       /* requests queued or in flight at once */

struct virtio_blk_stats {
	uint64_t reads;
	uint64_t writes;
	uint64_t flushes; /* fdatasync calls that completed */
	uint64_t read_bytes;
	uint64_t write_bytes;
	uint64_t io_errors;   /* requests completed with VIRTIO_BLK_S_IOERR */
	uint64_t unsupported; /* requests completed with VIRTIO_BLK_S_UNSUPP */
};

/* FREE -> QUEUED (pop) -> RUNNING (claim) -> DONE (engine) -> FREE (complete). Every change
 * but RUNNING -> DONE happens under the transport lock; that one happens in the engine,
 * without it, so the state is read and written with atomics (blk_state()). */
enum blk_slot_state { BLK_FREE = 0, BLK_QUEUED, BLK_RUNNING, BLK_DONE };

/* One request between its chain's pop and its completion. */
struct blk_slot {
	int state;     /* enum blk_slot_state, through blk_state()/blk_set_state() */
	uint32_t gen;  /* the device generation it was popped in */
	uint32_t type; /* VIRTIO_BLK_T_IN, _OUT or _FLUSH */
	uint64_t sector;
	uint64_t len; /* data bytes */
	uint16_t head;
	uint8_t *status; /* the chain's status byte in guest memory */
	int result;	 /* bytes moved (a full transfer) or -errno */
	uint64_t done;	 /* Async: bytes moved so far (a short transfer is resubmitted) */
	bool in_ring;	 /* Async: submitted, completion pending */
	unsigned nr_iov;
	struct iovec iov[VIRTIO_BLK_SEG_MAX];
};

struct virtio_blk {
	int fd;
	int io_efd; /* signalled when there is I/O to start or (Async) to reap */
	bool read_only;
	bool writeback;	   /* cache_type Writeback: FLUSH offered, fdatasync */
	bool async;	   /* io_engine Async: io_uring */
	uint64_t capacity; /* 512-byte sectors */
	char id[VIRTIO_BLK_ID_LEN];
	char name[CONFIG_ID_MAX + 16];
	uint8_t config[VIRTIO_BLK_CONFIG_BYTES];
	struct virtio_blk_stats stats;
	struct ratelimit limiter; /* drives[].rate_limiter: bytes and requests */
	struct log_ratelimit rl;
	uint32_t gen;	    /* bumped by a driver reset */
	uint64_t claimed;   /* slots (bits) the engine owns: RUNNING or DONE, event loop only */
	bool slots_full;    /* popping stopped for want of a slot */
	unsigned nr_active; /* slots not FREE */
	struct blk_uring ring;
	struct blk_slot slot[VIRTIO_BLK_SLOTS];
	struct virtq_seg segs[VIRTQ_MAX_SEGS];
};

/* Opens d->path_on_host (read-only drives O_RDONLY under a shared flock, others O_RDWR
 * under an exclusive one), sizes it (regular file: st_size, block device: BLKGETSIZE64),
 * sets up d->rate_limiter (whose timerfd, limiter.timer_fd >= 0 when a bucket limits, the
 * caller watches and answers with virtio_blk_resume()), io_efd and, for io_engine Async,
 * an io_uring. 0, or -errno with one line in err naming the drive and path (or io_engine
 * when the host has no usable io_uring). */
int virtio_blk_open(struct virtio_blk *b, const struct drive_cfg *d, char *err, size_t errlen);

/* The file part of virtio_blk_open(): opens, locks and sizes d->path_on_host into *fd and
 * *bytes, with the same errors. For a new backing file of a running drive (PATCH). */
int virtio_blk_open_backing(const struct drive_cfg *d, int *fd, uint64_t *bytes, char *err,
			    size_t errlen);

/* Puts fd (from virtio_blk_open_backing) behind b with its size: requests from now on use
 * it, the config space shows the new capacity. Returns the old fd for the caller to close.
 * Call with the transport's lock held (config reads) on the thread that runs the queue,
 * then virtio_mmio_config_changed() so the guest rereads the capacity. */
int virtio_blk_swap_backing(struct virtio_blk *b, int fd, uint64_t bytes);

/* Closes the backing file (dropping the lock), io_efd and the ring; safe on an unopened or
 * closed device. Requests still in flight in io_uring are cancelled by closing it. */
void virtio_blk_close(struct virtio_blk *b);

/* The device model for virtio_mmio_init(); `dev` is the struct virtio_blk. */
extern const struct virtio_dev_ops virtio_blk_ops;

/* Step 1 (under the transport lock): pops up to VIRTQ_BUDGET requests in ring order (the
 * rest is requeued), completes at once those that need no disk I/O and queues the others
 * (signalling io_efd); when every slot is taken it stops until completions free one. When
 * the rate limiter refuses a request it stays in the ring until virtio_blk_resume().
 * *need_irq is set when the driver wants an interrupt. 0, or -errno when the driver broke
 * the queue or sent a request without a status byte. */
int virtio_blk_process(struct virtio_blk *b, struct virtq *vq, bool *need_irq);

/* Step 2a, a virtio_work_fn (under the lock): marks the queued requests of the current
 * generation running. Always 0. */
int virtio_blk_claim(void *dev, struct virtq *vq, void *arg, bool *need_irq);

/* Step 2b, WITHOUT the lock, on the event loop thread only: Sync carries out every running
 * request; Async submits them and reaps the completions that arrived (with `wait`, blocks
 * until at least one request completes if any is in flight: for tests and benchmarks). */
void virtio_blk_io(struct virtio_blk *b, bool wait);

/* Step 2c, a virtio_work_fn (under the lock): completes every finished request of the
 * current generation (status byte, used ring) and frees the others; then, if popping had
 * stopped for want of a slot, pops again. Same return as virtio_blk_process(). */
int virtio_blk_complete(void *dev, struct virtq *vq, void *arg, bool *need_irq);

/* A virtio_work_fn for virtio_mmio_run() when limiter.timer_fd fires: unblocks the limiter
 * and, if the device is live (vq non-NULL), resumes virtio_blk_process() on vq[0]. */
int virtio_blk_resume(void *dev, struct virtq *vq, void *arg, bool *need_irq);

static inline enum blk_slot_state blk_state(const struct blk_slot *s)
{
	return (enum blk_slot_state)__atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

static inline void blk_set_state(struct blk_slot *s, enum blk_slot_state v)
{
	__atomic_store_n(&s->state, (int)v, __ATOMIC_RELEASE);
}

/* Requests popped and not yet completed. */
static inline unsigned virtio_blk_busy(const struct virtio_blk *b)
{
	return b->nr_active;
}

#endif
