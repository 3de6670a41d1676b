/* Split virtqueues (virtio 1.x, 2.7): the rings live in guest memory, are validated once
 * when the driver sets QueueReady, and every chain the device walks is bounds-checked. Not
 * thread-safe: the owning transport serializes access with its device lock. */
#ifndef KILN_VIRTQ_H
#define KILN_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

#define VIRTQ_MAX_SIZE 1024	/* largest QueueNumMax a device may offer */
#define VIRTQ_MAX_INDIRECT 1024 /* entries in one indirect table */
/* Longest chain virtq_pop() can return: a direct chain (<= queue size) or one table. */
#define VIRTQ_MAX_SEGS 1024
/* Chains a device handles from one queue in one call. A guest that keeps re-publishing
 * would otherwise hold the event loop (signals, console, other devices, metrics) and let
 * one batch's used-index arithmetic wrap; a device that reaches the budget with chains
 * left calls virtq_requeue() and the transport runs the queue again after the event loop
 * has served everything else that is ready. */
#define VIRTQ_BUDGET 128

/* One descriptor of a chain, resolved to host memory. */
struct virtq_seg {
	void *host;
	uint32_t len;
	bool is_write; /* device-writable */
};

/* What virtq_pop() found: segs[0, nr_read) are device-readable, the rest writable. */
struct virtq_chain {
	uint16_t head;
	unsigned nr_segs;
	unsigned nr_read;
	uint32_t read_len;
	uint32_t write_len;
};

/* What a queue has done since the device was created (kept across resets), for metrics. */
struct virtq_counts {
	uint64_t events;   /* times the transport was told to look at it (kick or requeue) */
	uint64_t used;	   /* chains returned to the driver */
	uint64_t notifies; /* times its new used entries called for an interrupt */
};

struct virtq {
	/* Programmed by the driver through the transport; checked by virtq_setup(). */
	uint16_t max_size; /* QueueNumMax, set by the device, kept across resets */
	uint32_t num;	   /* QueueNum as written */
	uint64_t desc_gpa;
	uint64_t avail_gpa;
	uint64_t used_gpa;
	bool ready;
	/* Valid once ready. */
	const struct guest_mem *gm;
	uint16_t size;
	bool event_idx;
	bool indirect;
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
	uint16_t last_avail;	 /* next avail ring slot to consume */
	uint16_t used_idx;	 /* device's copy of used->idx (never read back) */
	uint16_t signalled_used; /* used_idx when the driver was last interrupted */
	bool unsignalled;	 /* used entries added since the last interrupt */
	uint32_t inflight;	 /* chains popped and not yet pushed */
	bool requeue;		 /* budget spent with chains left: the transport runs it again */
	struct virtq_counts counts;
};

/* A queue in a snapshot: what the driver programmed and, once ready, the device's ring
 * indices. Pointer-free, fixed layout (vmm/snapshot_file.h). */
struct virtq_state {
	uint64_t desc_gpa;
	uint64_t avail_gpa;
	uint64_t used_gpa;
	uint32_t num;
	uint16_t last_avail;
	uint16_t used_idx;
	uint16_t signalled_used;
	uint8_t ready;
	uint8_t event_idx; /* as negotiated, for a ready queue */
	uint8_t indirect;
	uint8_t unsignalled;
	uint8_t pad[2];
};

/* The device stopped at VIRTQ_BUDGET with work left on q. */
static inline void virtq_requeue(struct virtq *q)
{
	q->requeue = true;
}

/* Forgets everything the driver programmed (keeps max_size). */
void virtq_reset(struct virtq *q);

/* Validates the driver's QueueNum and ring addresses against `gm` and the negotiated
 * `features` (VIRTIO_RING_F_EVENT_IDX / _INDIRECT_DESC): size a power of two in
 * [1, max_size], rings aligned (16/2/4) and entirely inside one RAM region. On success the
 * queue is ready and 0 is returned; else -EINVAL / -EFAULT and the queue is unchanged. */
int virtq_setup(struct virtq *q, const struct guest_mem *gm, uint64_t features);

/* Copies q into *st (the indices only when ready; everything else zero). */
void virtq_save(const struct virtq *q, struct virtq_state *st);

/* Programs q from *st as a driver would (the registers, then QueueReady through
 * virtq_setup() against gm and the negotiated features) and puts back the device's indices,
 * with no chain in flight: a device that held chains takes them back with virtq_retake().
 * 0, or -EINVAL / -EFAULT with *why naming the problem ("used ring outside guest RAM"), q
 * then reset. */
int virtq_restore(struct virtq *q, const struct virtq_state *st, const struct guest_mem *gm,
		  uint64_t features, const char **why);

/* Takes the next available chain into segs[0, max_segs). 0 with *chain filled; -EAGAIN when
 * the ring is empty; any other -errno means the driver broke the ring (bad avail idx, head
 * or next index, loop, bad indirect table, buffer outside RAM, readable after writable,
 * length overflow, more than max_segs) and the queue must not be used until reset. */
int virtq_pop(struct virtq *q, struct virtq_seg *segs, unsigned max_segs,
	      struct virtq_chain *chain);

/* Takes chain `head` again, checked as virtq_pop() checks it, without reading the avail
 * ring or moving last_avail: a restored device re-taking a chain it held popped when the
 * snapshot was taken. It counts in flight. 0, or -EINVAL (not ready, head out of range,
 * already `size` in flight) or virtq_pop()'s errors for a broken chain. */
int virtq_retake(struct virtq *q, uint16_t head, struct virtq_seg *segs, unsigned max_segs,
		 struct virtq_chain *chain);

/* Records the writable buffers of chain `head`, which the device holds popped and may have
 * written, as device-dirty (a snapshot saving the chain must carry what is in them). */
void virtq_mark_chain_dirty(const struct virtq *q, uint16_t head);

/* Gives back the chain virtq_pop() returned last (the device cannot serve it yet, e.g. a
 * rate limiter refused it): the next virtq_pop() returns it again. No-op if none is out. */
void virtq_unpop(struct virtq *q);

/* Returns a popped chain to the driver with `len` bytes written. 0, or -EINVAL when head
 * was not popped (a device bug, not the guest's). */
int virtq_push_used(struct virtq *q, uint16_t head, uint32_t len);

/* After a batch of virtq_push_used(): whether the driver wants an interrupt now (used_event
 * with EVENT_IDX, else VRING_AVAIL_F_NO_INTERRUPT). Resets the batch either way. */
bool virtq_should_notify(struct virtq *q);

/* Before waiting for the next kick: asks the driver to notify once it adds buffers past what
 * was consumed (avail_event with EVENT_IDX), then re-checks the ring. True when new buffers
 * arrived meanwhile, so the caller must pop again instead of sleeping. */
bool virtq_enable_notify(struct virtq *q);

/* The queue's state now, as one line for the hang dump: "not ready", or
 * "size=N avail_idx=N last_avail=N used_idx=N device_used_idx=N inflight=N avail_flags=0x..
 * used_flags=0x.." with avail_idx, used_idx and the flags read from guest memory now
 * (last_avail is the next avail index the device consumes, device_used_idx the device's own
 * copy), then " used_event=N avail_event=N" when EVENT_IDX was negotiated. Returns the
 * length, or -ENOSPC when it did not fit in len bytes. */
int virtq_format_state(const struct virtq *q, char *buf, size_t len);

/* A description of a virtq_pop()/virtq_setup() error for logs ("descriptor chain loops"). */
const char *virtq_strerror(int err);

#endif
