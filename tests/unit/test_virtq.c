#include <errno.h>
#include <linux/virtio_ring.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/virtio_test_ring.h"
#include "virtio/virtq.h"
#include "vmm/layout.h"
#include "vmm/log.h"

#define RAM (1ULL << 20)
#define QSIZE 16
#define F_EVENT_IDX (1ULL << VIRTIO_RING_F_EVENT_IDX)
#define F_INDIRECT (1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define NEXT VRING_DESC_F_NEXT
#define WRITE VRING_DESC_F_WRITE
#define INDIRECT VRING_DESC_F_INDIRECT

static struct virtq_seg segs[VIRTQ_MAX_SEGS];

static int pop(struct tring *r, struct virtq_chain *c)
{
	return virtq_pop(&r->q, segs, VIRTQ_MAX_SEGS, c);
}

/* The queue registers as a driver would program them; virtq_setup() result. */
static int setup(struct tring *r, uint32_t num, uint64_t desc, uint64_t avail, uint64_t used,
		 uint64_t features)
{
	virtq_reset(&r->q);
	r->q.num = num;
	r->q.desc_gpa = desc;
	r->q.avail_gpa = avail;
	r->q.used_gpa = used;
	return virtq_setup(&r->q, &r->gm, features);
}

static void test_setup_checks_size(void **state)
{
	(void)state;
	struct tring r = {0};
	tring_layout(&r, RAM, QSIZE);
	assert_int_equal(setup(&r, 0, r.desc_gpa, r.avail_gpa, r.used_gpa, 0), -EINVAL);
	assert_int_equal(setup(&r, 3, r.desc_gpa, r.avail_gpa, r.used_gpa, 0), -EINVAL);
	assert_int_equal(setup(&r, 32, r.desc_gpa, r.avail_gpa, r.used_gpa, 0), -EINVAL);
	assert_int_equal(setup(&r, 0x10010, r.desc_gpa, r.avail_gpa, r.used_gpa, 0), -EINVAL);
	assert_false(r.q.ready);
	assert_int_equal(setup(&r, 1, r.desc_gpa, r.avail_gpa, r.used_gpa, 0), 0);
	assert_int_equal(setup(&r, QSIZE, r.desc_gpa, r.avail_gpa, r.used_gpa, 0), 0);
	assert_true(r.q.ready);
	assert_int_equal(r.q.size, QSIZE);
	virtq_reset(&r.q);
	assert_false(r.q.ready);
	assert_int_equal(r.q.max_size, QSIZE);
	tring_free(&r);
}

static void test_setup_checks_alignment(void **state)
{
	(void)state;
	struct tring r = {0};
	tring_layout(&r, RAM, QSIZE);
	assert_int_equal(setup(&r, QSIZE, r.desc_gpa + 8, r.avail_gpa, r.used_gpa, 0), -EINVAL);
	assert_int_equal(setup(&r, QSIZE, r.desc_gpa, r.avail_gpa + 1, r.used_gpa, 0), -EINVAL);
	assert_int_equal(setup(&r, QSIZE, r.desc_gpa, r.avail_gpa, r.used_gpa + 2, 0), -EINVAL);
	tring_free(&r);
}

static void test_setup_checks_ram(void **state)
{
	(void)state;
	struct tring r = {0};
	tring_layout(&r, RAM, QSIZE);
	uint64_t a = r.avail_gpa, u = r.used_gpa, d = r.desc_gpa;
	/* Descriptor table running off the end of RAM, or starting beyond it. */
	assert_int_equal(setup(&r, QSIZE, RAM - 16 * QSIZE + 16, a, u, 0), -EFAULT);
	assert_int_equal(setup(&r, QSIZE, RAM, a, u, 0), -EFAULT);
	assert_int_equal(setup(&r, QSIZE, d, LAYOUT_MMIO_GAP_START, u, 0), -EFAULT);
	/* Addresses that wrap around 2^64. */
	assert_int_equal(setup(&r, QSIZE, 0xfffffffffffffff0ULL, a, u, 0), -EFAULT);
	assert_int_equal(setup(&r, QSIZE, d, a, 0xfffffffffffffffcULL, 0), -EFAULT);
	/* The used ring fits exactly without EVENT_IDX, but not with its avail_event. */
	uint64_t used_end = RAM - (4 + 8 * QSIZE);
	assert_int_equal(setup(&r, QSIZE, d, a, used_end, 0), 0);
	assert_int_equal(setup(&r, QSIZE, d, a, used_end, F_EVENT_IDX), -EFAULT);
	/* Same for the avail ring's used_event. */
	uint64_t avail_end = RAM - (4 + 2 * QSIZE);
	assert_int_equal(setup(&r, QSIZE, d, avail_end, u, 0), 0);
	assert_int_equal(setup(&r, QSIZE, d, avail_end, u, F_EVENT_IDX), -EFAULT);
	tring_free(&r);
}

static void test_pop_empty_and_not_ready(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	assert_int_equal(pop(&r, &c), -EAGAIN);
	virtq_reset(&r.q);
	assert_int_equal(pop(&r, &c), -EINVAL);
	assert_int_equal(virtq_push_used(&r.q, 0, 0), -EINVAL);
	assert_false(virtq_should_notify(&r.q));
	assert_false(virtq_enable_notify(&r.q));
	tring_free(&r);
}

static void test_pop_chain(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	uint64_t hdr = tring_alloc(&r, 16), data = tring_alloc(&r, 512), st = tring_alloc(&r, 1);
	tring_desc(&r, 5, hdr, 16, NEXT, 9);
	tring_desc(&r, 9, data, 512, NEXT | WRITE, 2);
	tring_desc(&r, 2, st, 1, WRITE, 0);
	tring_publish(&r, 5);
	assert_int_equal(pop(&r, &c), 0);
	assert_int_equal(c.head, 5);
	assert_int_equal(c.nr_segs, 3);
	assert_int_equal(c.nr_read, 1);
	assert_int_equal(c.read_len, 16);
	assert_int_equal(c.write_len, 513);
	assert_ptr_equal(segs[0].host, tring_host(&r, hdr, 16));
	assert_ptr_equal(segs[1].host, tring_host(&r, data, 512));
	assert_true(segs[1].is_write && segs[2].is_write && !segs[0].is_write);
	assert_int_equal(pop(&r, &c), -EAGAIN);
	/* Completion: element and index are published. */
	assert_int_equal(virtq_push_used(&r.q, 5, 513), 0);
	uint32_t id, len;
	tring_used_elem(&r, 0, &id, &len);
	assert_int_equal(id, 5);
	assert_int_equal(len, 513);
	assert_int_equal(tring_used_idx(&r), 1);
	/* Nothing else is in flight. */
	assert_int_equal(virtq_push_used(&r.q, 5, 0), -EINVAL);
	tring_free(&r);
}

static void test_pop_bad_indices(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	uint64_t buf = tring_alloc(&r, 64);
	tring_publish(&r, QSIZE); /* head index out of range */
	assert_int_equal(pop(&r, &c), -EINVAL);
	tring_init(&r, RAM, QSIZE, 0);
	tring_desc(&r, 0, buf, 64, NEXT, QSIZE + 3); /* next out of range */
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), -EINVAL);
	tring_free(&r);
}

static void test_pop_loops_end(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	uint64_t buf = tring_alloc(&r, 64);
	tring_desc(&r, 0, buf, 8, NEXT, 1);
	tring_desc(&r, 1, buf, 8, NEXT, 0);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), -ELOOP);
	/* A self-loop, and a chain using every descriptor once (legal) then looping. */
	tring_init(&r, RAM, QSIZE, 0);
	tring_desc(&r, 3, buf, 8, NEXT, 3);
	tring_publish(&r, 3);
	assert_int_equal(pop(&r, &c), -ELOOP);
	tring_init(&r, RAM, QSIZE, 0);
	for (uint16_t i = 0; i < QSIZE; i++)
		tring_desc(&r, i, buf, 8, i + 1 < QSIZE ? NEXT : 0, i + 1);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), 0);
	assert_int_equal(c.nr_segs, QSIZE);
	tring_desc(&r, QSIZE - 1, buf, 8, NEXT, 0);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), -ELOOP);
	tring_free(&r);
}

static void test_pop_too_many_segments(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	uint64_t buf = tring_alloc(&r, 64);
	for (uint16_t i = 0; i < 4; i++)
		tring_desc(&r, i, buf, 8, i < 3 ? NEXT : 0, i + 1);
	tring_publish(&r, 0);
	assert_int_equal(virtq_pop(&r.q, segs, 3, &c), -E2BIG);
	tring_free(&r);
}

static void test_pop_read_after_write(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	uint64_t buf = tring_alloc(&r, 64);
	tring_desc(&r, 0, buf, 8, NEXT | WRITE, 1);
	tring_desc(&r, 1, buf, 8, 0, 0);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), -EINVAL);
	tring_free(&r);
}

static void test_pop_buffers_outside_ram(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	tring_desc(&r, 0, RAM - 8, 16, 0, 0); /* straddles the end of RAM */
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), -EFAULT);
	tring_init(&r, RAM, QSIZE, 0);
	tring_desc(&r, 0, 0xfffffffffffffff0ULL, 0x20, 0, 0); /* wraps */
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), -EFAULT);
	tring_init(&r, RAM, QSIZE, 0);
	tring_desc(&r, 0, LAYOUT_MMIO_GAP_START, 0, 0, 0); /* empty, but not RAM */
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), -EFAULT);
	tring_free(&r);
}

/* Segments of 3 GiB and 2 GiB are each inside RAM; together they overflow a u32. */
static void test_pop_total_length_overflow(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, 6ULL << 30, QSIZE, 0);
	tring_desc(&r, 0, 0x10000000ULL, 3U << 30, NEXT, 1);
	tring_desc(&r, 1, LAYOUT_HIGH_RAM_START, 2U << 30, 0, 0);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), -EOVERFLOW);
	tring_free(&r);
}

static void test_avail_idx_jump(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	uint64_t buf = tring_alloc(&r, 8);
	tring_desc(&r, 0, buf, 8, 0, 0);
	tring_put16(&r, r.avail_gpa + 2, QSIZE + 1);
	assert_int_equal(pop(&r, &c), -EOVERFLOW);
	/* Exactly `size` outstanding is fine (all slots are 0 -> descriptor 0). */
	tring_put16(&r, r.avail_gpa + 2, QSIZE);
	assert_int_equal(pop(&r, &c), 0);
	tring_free(&r);
}

static void test_indirect(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, F_INDIRECT);
	uint64_t table = tring_alloc(&r, 3 * 16), buf = tring_alloc(&r, 64);
	tring_desc_at(&r, table, 0, buf, 16, NEXT, 2);
	tring_desc_at(&r, table, 2, buf + 16, 32, NEXT | WRITE, 1);
	tring_desc_at(&r, table, 1, buf + 48, 1, WRITE, 0);
	tring_desc(&r, 7, table, 3 * 16, INDIRECT, 0);
	tring_publish(&r, 7);
	assert_int_equal(pop(&r, &c), 0);
	assert_int_equal(c.head, 7);
	assert_int_equal(c.nr_segs, 3);
	assert_int_equal(c.nr_read, 1);
	assert_int_equal(c.write_len, 33);
	assert_ptr_equal(segs[2].host, tring_host(&r, buf + 48, 1));
	/* Not negotiated: refused. */
	tring_init(&r, RAM, QSIZE, 0);
	tring_desc(&r, 7, table, 3 * 16, INDIRECT, 0);
	tring_publish(&r, 7);
	assert_int_equal(pop(&r, &c), -EINVAL);
	tring_free(&r);
}

/* Publishes one indirect head with the given table and returns virtq_pop()'s result. */
static int pop_indirect(struct tring *r, uint64_t table, uint32_t len, uint16_t flags)
{
	struct virtq_chain c;
	tring_desc(r, 0, table, len, flags, 1);
	tring_publish(r, 0);
	int err = pop(r, &c);
	r->q.last_avail = r->avail_idx; /* skip it whatever happened */
	return err;
}

static void test_indirect_bad_tables(void **state)
{
	(void)state;
	struct tring r = {0};
	tring_init(&r, RAM, QSIZE, F_INDIRECT);
	uint64_t table = tring_alloc(&r, 4 * 16), buf = tring_alloc(&r, 64);
	for (int i = 0; i < 4; i++)
		tring_desc_at(&r, table, i, buf, 8, 0, 0);
	assert_int_equal(pop_indirect(&r, table, 0, INDIRECT), -EINVAL);
	assert_int_equal(pop_indirect(&r, table, 17, INDIRECT), -EINVAL);
	assert_int_equal(pop_indirect(&r, table, (VIRTQ_MAX_INDIRECT + 1) * 16, INDIRECT), -EINVAL);
	assert_int_equal(pop_indirect(&r, RAM - 32, 64, INDIRECT), -EFAULT);
	assert_int_equal(pop_indirect(&r, table, 64, INDIRECT | NEXT), -EINVAL);
	tring_desc_at(&r, table, 0, table, 64, INDIRECT, 0); /* nested */
	assert_int_equal(pop_indirect(&r, table, 64, INDIRECT), -EINVAL);
	tring_desc_at(&r, table, 0, buf, 8, NEXT, 4); /* next outside the table */
	assert_int_equal(pop_indirect(&r, table, 64, INDIRECT), -EINVAL);
	tring_desc_at(&r, table, 0, buf, 8, NEXT, 1); /* loop inside the table */
	tring_desc_at(&r, table, 1, buf, 8, NEXT, 0);
	assert_int_equal(pop_indirect(&r, table, 64, INDIRECT), -ELOOP);
	/* Indirect descriptor in the middle of a direct chain. */
	tring_desc(&r, 0, buf, 8, NEXT, 1);
	tring_desc(&r, 1, table, 64, INDIRECT, 0);
	tring_publish(&r, 0);
	struct virtq_chain c;
	assert_int_equal(pop(&r, &c), -EINVAL);
	tring_free(&r);
}

/* used_event lets the driver ask for an interrupt only once a given entry is used. The
 * metrics' counts follow: every used chain, every "yes", both kept across a reset. */
static void test_event_idx_suppression(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, F_EVENT_IDX);
	uint64_t buf = tring_alloc(&r, 8);
	tring_desc(&r, 0, buf, 8, WRITE, 0);
	assert_false(virtq_should_notify(&r.q)); /* nothing used yet */
	tring_set_used_event(&r, 2);		 /* interrupt when used idx passes 2 */
	for (int i = 0; i < 3; i++) {
		tring_publish(&r, 0);
		assert_int_equal(pop(&r, &c), 0);
		assert_int_equal(virtq_push_used(&r.q, 0, 8), 0);
		/* used idx 1, 2: no; 3 crosses used_event = 2: yes. */
		assert_int_equal(virtq_should_notify(&r.q), i == 2);
	}
	/* A batch of 4 that steps over used_event notifies once. */
	tring_set_used_event(&r, 5);
	for (int i = 0; i < 4; i++) {
		tring_publish(&r, 0);
		assert_int_equal(pop(&r, &c), 0);
		assert_int_equal(virtq_push_used(&r.q, 0, 8), 0);
	}
	assert_true(virtq_should_notify(&r.q));
	assert_false(virtq_should_notify(&r.q));		/* batch already signalled */
	assert_int_equal(virtq_push_used(&r.q, 0, 8), -EINVAL); /* nothing in flight */
	assert_int_equal(r.q.counts.used, 7);
	assert_int_equal(r.q.counts.notifies, 2);
	virtq_reset(&r.q);
	assert_int_equal(r.q.counts.used, 7);
	assert_int_equal(r.q.counts.notifies, 2);
	tring_free(&r);
}

static void test_event_idx_wraps(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, F_EVENT_IDX);
	uint64_t buf = tring_alloc(&r, 8);
	tring_desc(&r, 0, buf, 8, WRITE, 0);
	/* Pretend 0xfffe entries went by. */
	r.q.last_avail = r.q.used_idx = r.q.signalled_used = 0xfffe;
	r.avail_idx = 0xfffe;
	tring_set_used_event(&r, 0xffff);
	bool expect[] = {false, true, false};
	for (int i = 0; i < 3; i++) {
		tring_publish(&r, 0);
		assert_int_equal(pop(&r, &c), 0);
		assert_int_equal(virtq_push_used(&r.q, 0, 8), 0);
		assert_int_equal(virtq_should_notify(&r.q), expect[i]);
	}
	assert_int_equal(tring_used_idx(&r), 1); /* wrapped */
	tring_free(&r);
}

static void test_no_interrupt_flag(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, 0);
	uint64_t buf = tring_alloc(&r, 8);
	tring_desc(&r, 0, buf, 8, WRITE, 0);
	tring_set_avail_flags(&r, VRING_AVAIL_F_NO_INTERRUPT);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), 0);
	assert_int_equal(virtq_push_used(&r.q, 0, 8), 0);
	assert_false(virtq_should_notify(&r.q));
	tring_set_avail_flags(&r, 0);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), 0);
	assert_int_equal(virtq_push_used(&r.q, 0, 8), 0);
	assert_true(virtq_should_notify(&r.q));
	tring_free(&r);
}

static void test_enable_notify(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	tring_init(&r, RAM, QSIZE, F_EVENT_IDX);
	uint64_t buf = tring_alloc(&r, 8);
	tring_desc(&r, 0, buf, 8, 0, 0);
	tring_publish(&r, 0);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), 0);
	/* One still pending: the caller must pop again. */
	assert_true(virtq_enable_notify(&r.q));
	assert_int_equal(tring_avail_event(&r), 1);
	assert_int_equal(pop(&r, &c), 0);
	assert_false(virtq_enable_notify(&r.q));
	assert_int_equal(tring_avail_event(&r), 2);
	tring_free(&r);
}

/* The device-dirty pages since the last call, as a bitmap of RAM / 4096 bits. */
static void take_dirty(struct tring *r, uint64_t bits[RAM / 4096 / 64])
{
	memset(bits, 0, RAM / 4096 / 8);
	gm_take_dirty(&r->gm, bits);
}

static bool page_dirty(const uint64_t *bits, uint64_t gpa)
{
	return bits[gpa / 4096 / 64] >> (gpa / 4096 % 64) & 1;
}

/* For diff snapshots: the writable buffers of a popped chain (again when it is used: it
 * may be written after a snapshot took the dirty pages), the used entry and index and
 * avail_event are device-dirty; readable buffers are not. */
static void test_marks_device_writes_dirty(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	uint64_t bits[RAM / 4096 / 64], rd = 0x50000, wr = 0x62000 + 4000;
	tring_init(&r, RAM, QSIZE, F_EVENT_IDX);
	assert_int_equal(r.used_gpa / 4096, 1); /* all three rings in page 1 */
	assert_int_equal(gm_track_dirty(&r.gm), 0);
	tring_desc(&r, 0, rd, 64, NEXT, 1);
	tring_desc(&r, 1, wr, 200, WRITE, 0); /* crosses into page 0x63 */
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), 0);
	take_dirty(&r, bits);
	assert_true(page_dirty(bits, 0x62000) && page_dirty(bits, 0x63000));
	assert_false(page_dirty(bits, rd) || page_dirty(bits, r.used_gpa));
	assert_int_equal(virtq_push_used(&r.q, 0, 200), 0);
	take_dirty(&r, bits);
	assert_true(page_dirty(bits, r.used_gpa));
	assert_true(page_dirty(bits, 0x62000) && page_dirty(bits, 0x63000));
	assert_false(page_dirty(bits, rd));
	assert_false(virtq_enable_notify(&r.q));
	take_dirty(&r, bits);
	assert_true(page_dirty(bits, r.used_gpa));
	assert_false(page_dirty(bits, 0x62000));
	tring_free(&r);
}

/* The hang dump's line: indexes read from the rings now, the device's own counters, and
 * the suppression fields; event idx values only when negotiated. */
static void test_format_state(void **state)
{
	(void)state;
	struct tring r = {0};
	struct virtq_chain c;
	char line[200];
	tring_layout(&r, RAM, QSIZE);
	assert_int_equal(virtq_format_state(&r.q, line, sizeof(line)), 9);
	assert_string_equal(line, "not ready");
	tring_init(&r, RAM, QSIZE, 0);
	uint64_t buf = tring_alloc(&r, 8);
	tring_desc(&r, 0, buf, 8, WRITE, 0);
	tring_publish(&r, 0);
	tring_publish(&r, 0);
	tring_publish(&r, 0);
	assert_int_equal(pop(&r, &c), 0);
	assert_int_equal(virtq_push_used(&r.q, 0, 8), 0);
	assert_int_equal(pop(&r, &c), 0);
	tring_set_avail_flags(&r, VRING_AVAIL_F_NO_INTERRUPT);
	int n = virtq_format_state(&r.q, line, sizeof(line));
	assert_string_equal(line, "size=16 avail_idx=3 last_avail=2 used_idx=1 device_used_idx=1 "
				  "inflight=1 avail_flags=0x1 used_flags=0x0");
	assert_int_equal(n, (int)strlen(line));
	/* The guest scribbled on used->idx: the dump shows both. */
	tring_put16(&r, r.used_gpa + 2, 7);
	virtq_format_state(&r.q, line, sizeof(line));
	assert_non_null(strstr(line, " used_idx=7 device_used_idx=1 "));
	assert_int_equal(virtq_format_state(&r.q, line, 20), -ENOSPC);

	tring_init(&r, RAM, QSIZE, F_EVENT_IDX);
	tring_set_used_event(&r, 0xffff);
	assert_false(virtq_enable_notify(&r.q)); /* writes avail_event = last_avail = 0 */
	virtq_format_state(&r.q, line, sizeof(line));
	assert_string_equal(line, "size=16 avail_idx=0 last_avail=0 used_idx=0 device_used_idx=0 "
				  "inflight=0 avail_flags=0x0 used_flags=0x0 used_event=65535 "
				  "avail_event=0");
	assert_int_equal(virtq_format_state(&r.q, line, strlen(line)), -ENOSPC);
	tring_free(&r);
}

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_setup_checks_size),
	    cmocka_unit_test(test_setup_checks_alignment),
	    cmocka_unit_test(test_setup_checks_ram),
	    cmocka_unit_test(test_pop_empty_and_not_ready),
	    cmocka_unit_test(test_pop_chain),
	    cmocka_unit_test(test_pop_bad_indices),
	    cmocka_unit_test(test_pop_loops_end),
	    cmocka_unit_test(test_pop_too_many_segments),
	    cmocka_unit_test(test_pop_read_after_write),
	    cmocka_unit_test(test_pop_buffers_outside_ram),
	    cmocka_unit_test(test_pop_total_length_overflow),
	    cmocka_unit_test(test_avail_idx_jump),
	    cmocka_unit_test(test_indirect),
	    cmocka_unit_test(test_indirect_bad_tables),
	    cmocka_unit_test(test_event_idx_suppression),
	    cmocka_unit_test(test_event_idx_wraps),
	    cmocka_unit_test(test_no_interrupt_flag),
	    cmocka_unit_test(test_enable_notify),
	    cmocka_unit_test(test_marks_device_writes_dirty),
	    cmocka_unit_test(test_format_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
