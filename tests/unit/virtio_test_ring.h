/* Test-side virtio driver: lays out a split virtqueue in a small fake guest memory and
 * fills descriptors and the avail ring the way a guest driver would. Header-only, shared
 * by the virtio unit tests and bench/blk.c; failures abort (no cmocka dependency). */
#ifndef KILN_VIRTIO_TEST_RING_H
#define KILN_VIRTIO_TEST_RING_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtq.h"
#include "vmm/guest_mem.h"

#define TRING_DESC_GPA 0x1000ULL
#define TRING_DATA_GPA 0x40000ULL /* first data buffer; the rings live below */

struct tring {
	struct guest_mem gm;
	struct virtq q;
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t avail_idx; /* the driver's copy */
	uint64_t data_next; /* bump allocator for buffers */
};

static inline void tring_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "tring: %s\n", what);
		abort();
	}
}

/* Guest memory of ram bytes and ring addresses for a queue of `size` (not yet set up).
 * `r` must be zeroed or previously initialized (its old guest memory is freed). */
static inline void tring_layout(struct tring *r, uint64_t ram, uint16_t size)
{
	guest_mem_free(&r->gm);
	memset(r, 0, sizeof(*r));
	tring_check(guest_mem_init(&r->gm, ram) == 0, "guest_mem_init");
	r->size = size;
	r->desc_gpa = TRING_DESC_GPA;
	r->avail_gpa = r->desc_gpa + 16ULL * size;
	r->used_gpa = (r->avail_gpa + 6 + 2ULL * size + 3) & ~3ULL;
	tring_check(r->used_gpa + 6 + 8ULL * size <= TRING_DATA_GPA, "rings too big");
	r->data_next = TRING_DATA_GPA;
	r->q.max_size = size;
}

/* tring_layout() plus virtq_setup() with `features`, as the transport would do. */
static inline void tring_init(struct tring *r, uint64_t ram, uint16_t size, uint64_t features)
{
	tring_layout(r, ram, size);
	r->q.num = size;
	r->q.desc_gpa = r->desc_gpa;
	r->q.avail_gpa = r->avail_gpa;
	r->q.used_gpa = r->used_gpa;
	tring_check(virtq_setup(&r->q, &r->gm, features) == 0, "virtq_setup");
}

static inline void tring_free(struct tring *r)
{
	guest_mem_free(&r->gm);
}

static inline void *tring_host(struct tring *r, uint64_t gpa, uint64_t len)
{
	void *p = gm_ptr(&r->gm, gpa, len);
	tring_check(p != NULL, "gpa outside guest memory");
	return p;
}

/* A zeroed buffer in guest memory, 16-byte aligned. */
static inline uint64_t tring_alloc(struct tring *r, uint64_t len)
{
	uint64_t gpa = r->data_next;
	r->data_next = (gpa + len + 15) & ~15ULL;
	memset(tring_host(r, gpa, len), 0, len);
	return gpa;
}

/* Writes descriptor `idx` of the table at table_gpa (the ring's own table: r->desc_gpa). */
static inline void tring_desc_at(struct tring *r, uint64_t table_gpa, uint32_t idx, uint64_t addr,
				 uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	memcpy(tring_host(r, table_gpa + 16ULL * idx, 16), d, 16);
}

static inline void tring_desc(struct tring *r, uint16_t idx, uint64_t addr, uint32_t len,
			      uint16_t flags, uint16_t next)
{
	tring_desc_at(r, r->desc_gpa, idx, addr, len, flags, next);
}

static inline void tring_put16(struct tring *r, uint64_t gpa, uint16_t v)
{
	memcpy(tring_host(r, gpa, 2), &v, 2);
}

static inline uint16_t tring_get16(struct tring *r, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, tring_host(r, gpa, 2), 2);
	return v;
}

/* Makes chain `head` available and publishes the new avail->idx. */
static inline void tring_publish(struct tring *r, uint16_t head)
{
	tring_put16(r, r->avail_gpa + 4 + 2ULL * (r->avail_idx % r->size), head);
	r->avail_idx++;
	tring_put16(r, r->avail_gpa + 2, r->avail_idx);
}

/* avail->flags, avail->used_event, used->avail_event and used->idx. */
static inline void tring_set_avail_flags(struct tring *r, uint16_t f)
{
	tring_put16(r, r->avail_gpa, f);
}

static inline void tring_set_used_event(struct tring *r, uint16_t v)
{
	tring_put16(r, r->avail_gpa + 4 + 2ULL * r->size, v);
}

static inline uint16_t tring_avail_event(struct tring *r)
{
	return tring_get16(r, r->used_gpa + 4 + 8ULL * r->size);
}

static inline uint16_t tring_used_idx(struct tring *r)
{
	return tring_get16(r, r->used_gpa + 2);
}

/* Used ring element i (mod size). */
static inline void tring_used_elem(struct tring *r, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint8_t *e = tring_host(r, r->used_gpa + 4 + 8ULL * (i % r->size), 8);
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}

#endif
