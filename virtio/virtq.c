#include "virtio/virtq.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

/* Ring layouts (virtio 1.x 2.7): offsets inside the three areas. */
#define DESC_BYTES 16
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_IDX 2
#define USED_RING 4
#define USED_ELEM_BYTES 8

/* A descriptor copied out of guest memory once, so the guest cannot change it under us. */
struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Segments collected while walking one chain; with mark_only, nothing is collected and
 * the writable buffers are only recorded as dirty. */
struct walk {
	struct virtq_seg *segs;
	unsigned max;
	unsigned n;
	unsigned nr_read;
	uint64_t total;
	bool mark_only;
};

static uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static uint16_t load16_acquire(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED);
}

/* Diff snapshots need every page the device writes; the test keeps it one load when off. */
static void mark_dirty(const struct virtq *q, uint64_t gpa, uint64_t len)
{
	if (q->gm->dirty)
		gm_mark_dirty(q->gm, gpa, len);
}

void virtq_reset(struct virtq *q)
{
	uint16_t max = q->max_size;
	struct virtq_counts counts = q->counts;
	memset(q, 0, sizeof(*q));
	q->max_size = max;
	q->counts = counts;
}

/* The driver's QueueNum and ring addresses checked against gm: NULL with the rings' host
 * pointers in ring[0..2], or why not with *err set to -EINVAL or -EFAULT. */
static const char *check_layout(const struct virtq *q, const struct guest_mem *gm,
				uint64_t features, uint8_t *ring[3], int *err)
{
	uint32_t n = q->num;
	*err = -EINVAL;
	if (n == 0 || n > q->max_size || (n & (n - 1)))
		return "size not a power of two up to QueueNumMax";
	if (q->desc_gpa % VRING_DESC_ALIGN_SIZE)
		return "descriptor table misaligned";
	if (q->avail_gpa % VRING_AVAIL_ALIGN_SIZE)
		return "available ring misaligned";
	if (q->used_gpa % VRING_USED_ALIGN_SIZE)
		return "used ring misaligned";
	/* With EVENT_IDX both rings carry one more u16 after the ring (used_event/avail_event). */
	uint64_t trailer = features & (1ULL << VIRTIO_RING_F_EVENT_IDX) ? 2 : 0;
	*err = -EFAULT;
	if (!(ring[0] = gm_ptr(gm, q->desc_gpa, (uint64_t)n * DESC_BYTES)))
		return "descriptor table outside guest RAM";
	if (!(ring[1] = gm_ptr(gm, q->avail_gpa, AVAIL_RING + 2ULL * n + trailer)))
		return "available ring outside guest RAM";
	if (!(ring[2] =
		  gm_ptr(gm, q->used_gpa, USED_RING + (uint64_t)USED_ELEM_BYTES * n + trailer)))
		return "used ring outside guest RAM";
	*err = 0;
	return NULL;
}

int virtq_setup(struct virtq *q, const struct guest_mem *gm, uint64_t features)
{
	uint8_t *ring[3];
	int err;
	if (check_layout(q, gm, features, ring, &err))
		return err;
	q->gm = gm;
	q->size = (uint16_t)q->num;
	q->event_idx = features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	q->indirect = features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	q->desc = ring[0];
	q->avail = ring[1];
	q->used = ring[2];
	q->last_avail = q->used_idx = q->signalled_used = 0;
	q->unsignalled = false;
	q->inflight = 0;
	q->requeue = false;
	q->ready = true;
	return 0;
}

_Static_assert(sizeof(struct virtq_state) == 40, "virtq_state layout");

void virtq_save(const struct virtq *q, struct virtq_state *st)
{
	memset(st, 0, sizeof(*st));
	st->desc_gpa = q->desc_gpa;
	st->avail_gpa = q->avail_gpa;
	st->used_gpa = q->used_gpa;
	st->num = q->num;
	if (!q->ready)
		return;
	st->ready = 1;
	st->last_avail = q->last_avail;
	st->used_idx = q->used_idx;
	st->signalled_used = q->signalled_used;
	st->event_idx = q->event_idx;
	st->indirect = q->indirect;
	st->unsignalled = q->unsignalled;
}

/* What a saved queue must look like apart from its layout: NULL, or why not. */
static const char *check_saved(const struct virtq_state *st, uint64_t features)
{
	bool ev = features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	bool ind = features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	if (st->pad[0] || st->pad[1] || st->ready > 1 || st->unsignalled > 1)
		return "malformed queue state";
	if (!st->ready)
		return st->last_avail || st->used_idx || st->signalled_used || st->event_idx ||
			       st->indirect || st->unsignalled
			   ? "not ready but has ring indices"
			   : NULL;
	if (st->event_idx != ev || st->indirect != ind)
		return "EVENT_IDX or INDIRECT_DESC not as negotiated";
	/* Chains popped and not yet used: never more than the driver can have outstanding. */
	if ((uint16_t)(st->last_avail - st->used_idx) > st->num)
		return "more chains in flight than the queue holds";
	return NULL;
}

int virtq_restore(struct virtq *q, const struct virtq_state *st, const struct guest_mem *gm,
		  uint64_t features, const char **why)
{
	virtq_reset(q);
	int err = -EINVAL;
	if ((*why = check_saved(st, features)))
		goto fail;
	q->num = st->num;
	q->desc_gpa = st->desc_gpa;
	q->avail_gpa = st->avail_gpa;
	q->used_gpa = st->used_gpa;
	if (!st->ready)
		return 0;
	uint8_t *ring[3];
	if ((*why = check_layout(q, gm, features, ring, &err)) ||
	    (err = virtq_setup(q, gm, features)))
		goto fail;
	q->last_avail = st->last_avail;
	q->used_idx = st->used_idx;
	q->signalled_used = st->signalled_used;
	q->unsignalled = st->unsignalled;
	return 0;
fail:
	if (!*why)
		*why = virtq_strerror(err);
	virtq_reset(q);
	return err;
}

/* Copies one descriptor out of shared memory with loads the compiler must do exactly once
 * (a plain memcpy may be turned into re-reads of guest memory after the checks). The ring
 * is 16-byte aligned; an indirect table may not be, and is then copied byte by byte. */
static void read_desc(const uint8_t *table, uint32_t idx, struct vdesc *d)
{
	const uint8_t *p = table + (size_t)idx * DESC_BYTES;
	uint64_t w[2];
	if (((uintptr_t)p & 7) == 0) {
		w[0] = __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
		w[1] = __atomic_load_n((const uint64_t *)p + 1, __ATOMIC_RELAXED);
	} else {
		const volatile uint8_t *v = p;
		uint8_t b[DESC_BYTES];
		for (unsigned i = 0; i < DESC_BYTES; i++)
			b[i] = v[i];
		memcpy(w, b, sizeof(w));
	}
	_Static_assert(sizeof(*d) == sizeof(w), "descriptor layout");
	memcpy(d, w, sizeof(*d));
}

static int add_seg(const struct virtq *q, struct walk *w, const struct vdesc *d)
{
	bool is_write = d->flags & VRING_DESC_F_WRITE;
	if (w->mark_only) {
		if (is_write)
			mark_dirty(q, d->addr, d->len);
		return 0;
	}
	if (w->n == w->max)
		return -E2BIG;
	/* Device-readable descriptors must all come before the writable ones. */
	if (!is_write && w->nr_read != w->n)
		return -EINVAL;
	void *host = gm_ptr(q->gm, d->addr, d->len);
	if (!host)
		return -EFAULT;
	w->total += d->len;
	if (w->total > UINT32_MAX)
		return -EOVERFLOW;
	if (is_write)
		mark_dirty(q, d->addr, d->len);
	w->segs[w->n++] = (struct virtq_seg){.host = host, .len = d->len, .is_write = is_write};
	w->nr_read += !is_write;
	return 0;
}

static int walk_chain(const struct virtq *q, struct walk *w, const uint8_t *table, uint32_t entries,
		      uint32_t idx, bool in_indirect);

/* The head descriptor points at a table of descriptors that forms the whole chain. */
static int walk_indirect(const struct virtq *q, struct walk *w, const struct vdesc *d)
{
	if (!q->indirect || (d->flags & VRING_DESC_F_NEXT))
		return -EINVAL;
	if (d->len == 0 || d->len % DESC_BYTES || d->len / DESC_BYTES > VIRTQ_MAX_INDIRECT)
		return -EINVAL;
	const uint8_t *table = gm_ptr(q->gm, d->addr, d->len);
	if (!table)
		return -EFAULT;
	return walk_chain(q, w, table, d->len / DESC_BYTES, 0, true);
}

/* Follows NEXT links from entry `idx` (the head) of a table of `entries` descriptors. A
 * chain visits each entry at most once, so more than `entries` steps means a loop. */
static int walk_chain(const struct virtq *q, struct walk *w, const uint8_t *table, uint32_t entries,
		      uint32_t idx, bool in_indirect)
{
	for (uint32_t step = 0; step < entries; step++) {
		struct vdesc d;
		if (idx >= entries)
			return -EINVAL;
		read_desc(table, idx, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* Only a direct chain's head may be indirect, and tables never nest. */
			if (in_indirect || step != 0)
				return -EINVAL;
			return walk_indirect(q, w, &d);
		}
		int err = add_seg(q, w, &d);
		if (err)
			return err;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
	return -ELOOP;
}

/* Walks chain `head` into segs and fills *chain; the queue's indices are left alone. */
static int take_chain(struct virtq *q, uint16_t head, struct virtq_seg *segs, unsigned max_segs,
		      struct virtq_chain *chain)
{
	if (head >= q->size)
		return -EINVAL;
	struct walk w = {.segs = segs, .max = max_segs};
	int err = walk_chain(q, &w, q->desc, q->size, head, false);
	if (err)
		return err;
	uint32_t read_len = 0;
	for (unsigned i = 0; i < w.nr_read; i++)
		read_len += segs[i].len;
	*chain = (struct virtq_chain){.head = head,
				      .nr_segs = w.n,
				      .nr_read = w.nr_read,
				      .read_len = read_len,
				      .write_len = (uint32_t)w.total - read_len};
	return 0;
}

int virtq_pop(struct virtq *q, struct virtq_seg *segs, unsigned max_segs, struct virtq_chain *chain)
{
	if (!q->ready)
		return -EINVAL;
	uint16_t avail_idx = load16_acquire(q->avail + AVAIL_IDX);
	uint16_t pending = avail_idx - q->last_avail;
	if (pending == 0)
		return -EAGAIN;
	/* The driver can never have more than `size` buffers outstanding. */
	if (pending > q->size)
		return -EOVERFLOW;
	uint32_t slot = q->last_avail & (q->size - 1);
	int err = take_chain(q, load16(q->avail + AVAIL_RING + 2 * slot), segs, max_segs, chain);
	if (err)
		return err;
	q->last_avail++;
	q->inflight++;
	return 0;
}

int virtq_retake(struct virtq *q, uint16_t head, struct virtq_seg *segs, unsigned max_segs,
		 struct virtq_chain *chain)
{
	if (!q->ready || q->inflight >= q->size)
		return -EINVAL;
	int err = take_chain(q, head, segs, max_segs, chain);
	if (!err)
		q->inflight++;
	return err;
}

void virtq_mark_chain_dirty(const struct virtq *q, uint16_t head)
{
	struct walk w = {.mark_only = true};
	if (q->ready && head < q->size && q->gm->dirty)
		walk_chain(q, &w, q->desc, q->size, head, false);
}

void virtq_unpop(struct virtq *q)
{
	if (!q->ready || q->inflight == 0)
		return;
	q->last_avail--;
	q->inflight--;
}

int virtq_push_used(struct virtq *q, uint16_t head, uint32_t len)
{
	if (!q->ready || head >= q->size || q->inflight == 0)
		return -EINVAL;
	uint32_t off = USED_RING + USED_ELEM_BYTES * (q->used_idx & (q->size - 1));
	uint8_t *elem = q->used + off;
	uint32_t id = head;
	memcpy(elem, &id, 4);
	memcpy(elem + 4, &len, 4);
	q->used_idx++;
	/* The element must be visible before the index that publishes it. */
	__atomic_store_n((uint16_t *)(q->used + USED_IDX), q->used_idx, __ATOMIC_RELEASE);
	q->inflight--;
	q->unsignalled = true;
	q->counts.used++;
	if (q->gm->dirty) {
		/* The chain's buffers again: they may have been written after the dirty pages
		 * were last taken (a net RX buffer held across a snapshot). */
		virtq_mark_chain_dirty(q, head);
		gm_mark_dirty(q->gm, q->used_gpa + USED_IDX, 2);
		gm_mark_dirty(q->gm, q->used_gpa + off, USED_ELEM_BYTES);
	}
	return 0;
}

bool virtq_should_notify(struct virtq *q)
{
	if (!q->ready || !q->unsignalled)
		return false;
	/* Order the used->idx store before reading the driver's suppression fields. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bool notify;
	if (q->event_idx) {
		uint16_t used_event = load16(q->avail + AVAIL_RING + 2 * q->size);
		uint16_t new_idx = q->used_idx, old_idx = q->signalled_used;
		/* vring_need_event(): did used_idx step past used_event in (old, new]? */
		notify = (uint16_t)(new_idx - used_event - 1) < (uint16_t)(new_idx - old_idx);
	} else {
		notify = !(load16(q->avail) & VRING_AVAIL_F_NO_INTERRUPT);
	}
	q->signalled_used = q->used_idx;
	q->unsignalled = false;
	q->counts.notifies += notify;
	return notify;
}

bool virtq_enable_notify(struct virtq *q)
{
	if (!q->ready)
		return false;
	if (q->event_idx) {
		uint32_t off = USED_RING + USED_ELEM_BYTES * q->size;
		store16(q->used + off, q->last_avail);
		mark_dirty(q, q->used_gpa + off, 2);
	}
	/* Publish avail_event before re-reading avail->idx (pairs with the driver's barrier
	 * between writing avail->idx and reading avail_event). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16_acquire(q->avail + AVAIL_IDX) != q->last_avail;
}

int virtq_format_state(const struct virtq *q, char *buf, size_t len)
{
	int n;
	if (!q->ready) {
		n = snprintf(buf, len, "not ready");
		return n >= 0 && (size_t)n < len ? n : -ENOSPC;
	}
	/* Read now, without ordering: a snapshot for a human, not for processing. */
	uint16_t avail_flags = load16(q->avail), avail_idx = load16(q->avail + AVAIL_IDX);
	uint16_t used_flags = load16(q->used), used_idx = load16(q->used + USED_IDX);
	n = snprintf(buf, len,
		     "size=%u avail_idx=%u last_avail=%u used_idx=%u device_used_idx=%u "
		     "inflight=%u avail_flags=0x%x used_flags=0x%x",
		     q->size, avail_idx, q->last_avail, used_idx, q->used_idx, q->inflight,
		     avail_flags, used_flags);
	if (n >= 0 && (size_t)n < len && q->event_idx) {
		uint16_t used_event = load16(q->avail + AVAIL_RING + 2 * q->size);
		uint16_t avail_event = load16(q->used + USED_RING + USED_ELEM_BYTES * q->size);
		int m = snprintf(buf + n, len - n, " used_event=%u avail_event=%u", used_event,
				 avail_event);
		n = m < 0 ? m : n + m;
	}
	return n >= 0 && (size_t)n < len ? n : -ENOSPC;
}

const char *virtq_strerror(int err)
{
	switch (err) {
	case -EINVAL:
		return "bad queue size, alignment, index or descriptor flags";
	case -EFAULT:
		return "ring or buffer outside guest memory";
	case -ELOOP:
		return "descriptor chain loops or is longer than the queue";
	case -E2BIG:
		return "descriptor chain has too many segments";
	case -EOVERFLOW:
		return "avail index or chain length out of range";
	default:
		return "malformed request";
	}
}
