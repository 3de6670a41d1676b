/* The I/O bus: range bookkeeping and dispatch with range-relative offsets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/bus.h"

/* A device that records its last access and answers reads with offset-derived bytes. */
struct rec_dev {
	unsigned reads, writes;
	uint64_t last_off;
	uint32_t last_len;
	uint8_t last_data[8];
	uint8_t tag;
};

static void rec_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct rec_dev *d = dev;
	d->reads++;
	d->last_off = off;
	d->last_len = len;
	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint8_t)(d->tag + off + i);
}

static void rec_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct rec_dev *d = dev;
	d->writes++;
	d->last_off = off;
	d->last_len = len;
	memcpy(d->last_data, data, len < 8 ? len : 8);
}

static const struct bus_dev_ops rec_ops = {.read = rec_read, .write = rec_write};
static const struct bus_dev_ops read_only_ops = {.read = rec_read};
static const struct bus_dev_ops write_only_ops = {.write = rec_write};

static void test_add_basic(void **state)
{
	(void)state;
	struct bus bus = {0};
	struct rec_dev a = {0}, b = {0};
	assert_int_equal(bus_add(&bus, 0x3f8, 8, &rec_ops, &a), 0);
	assert_int_equal(bus.nr, 1);
	assert_int_equal(bus.range[0].base, 0x3f8);
	assert_int_equal(bus.range[0].len, 8);
	assert_ptr_equal(bus.range[0].ops, &rec_ops);
	assert_ptr_equal(bus.range[0].dev, &a);
	/* Adjacent on both sides is fine. */
	assert_int_equal(bus_add(&bus, 0x3f0, 8, &rec_ops, &b), 0);
	assert_int_equal(bus_add(&bus, 0x400, 1, &rec_ops, &b), 0);
	assert_int_equal(bus.nr, 3);
}

static void test_add_invalid(void **state)
{
	(void)state;
	struct bus bus = {0};
	struct rec_dev a = {0};
	assert_int_equal(bus_add(&bus, 0x1000, 0, &rec_ops, &a), -EINVAL);
	assert_int_equal(bus_add(&bus, UINT64_MAX, 2, &rec_ops, &a), -EINVAL);
	assert_int_equal(bus_add(&bus, UINT64_MAX - 0xf, 0x20, &rec_ops, &a), -EINVAL);
	assert_int_equal(bus_add(&bus, 1, UINT64_MAX, &rec_ops, &a), -EINVAL);
	assert_int_equal(bus.nr, 0);
	/* The highest range whose end is still representable. */
	assert_int_equal(bus_add(&bus, UINT64_MAX - 0xff, 0xff, &rec_ops, &a), 0);
	uint8_t v[2];
	assert_int_equal(bus_read(&bus, UINT64_MAX - 1, v, 1), 0);
	assert_int_equal(a.last_off, 0xfe);
	assert_int_equal(bus_read(&bus, UINT64_MAX - 1, v, 2), -ENOENT);
	assert_int_equal(bus_read(&bus, UINT64_MAX, v, 1), -ENOENT);
}

static void test_add_overlap(void **state)
{
	(void)state;
	struct bus bus = {0};
	struct rec_dev a = {0};
	assert_int_equal(bus_add(&bus, 0x100, 0x10, &rec_ops, &a), 0);
	assert_int_equal(bus_add(&bus, 0x100, 0x10, &rec_ops, &a), -EEXIST);   /* identical */
	assert_int_equal(bus_add(&bus, 0x0f8, 0x09, &rec_ops, &a), -EEXIST);   /* last byte in */
	assert_int_equal(bus_add(&bus, 0x10f, 0x01, &rec_ops, &a), -EEXIST);   /* inside end */
	assert_int_equal(bus_add(&bus, 0x104, 0x02, &rec_ops, &a), -EEXIST);   /* contained */
	assert_int_equal(bus_add(&bus, 0x000, 0x1000, &rec_ops, &a), -EEXIST); /* containing */
	assert_int_equal(bus_add(&bus, 0x108, 0x100, &rec_ops, &a), -EEXIST);  /* tail */
	assert_int_equal(bus.nr, 1);
	assert_int_equal(bus_add(&bus, 0x0f8, 0x08, &rec_ops, &a), 0);
	assert_int_equal(bus_add(&bus, 0x110, 0x08, &rec_ops, &a), 0);
	assert_int_equal(bus.nr, 3);
	/* A range near the top of the address space against one at the bottom. */
	assert_int_equal(bus_add(&bus, UINT64_MAX - 0x1000, 0x1000, &rec_ops, &a), 0);
	assert_int_equal(bus_add(&bus, UINT64_MAX - 0x800, 0x10, &rec_ops, &a), -EEXIST);
	assert_int_equal(bus_add(&bus, 0, 0x10, &rec_ops, &a), 0);
}

static void test_add_full(void **state)
{
	(void)state;
	struct bus bus = {0};
	struct rec_dev a = {0};
	for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_add(&bus, 0x1000 + i * 0x10, 0x10, &rec_ops, &a), 0);
	assert_int_equal(bus.nr, BUS_MAX_RANGES);
	assert_int_equal(bus_add(&bus, 0x100000, 0x10, &rec_ops, &a), -ENOSPC);
	assert_int_equal(bus.nr, BUS_MAX_RANGES);
	/* All of them still dispatch, the last one too. */
	uint8_t v;
	assert_int_equal(bus_read(&bus, 0x1000 + (BUS_MAX_RANGES - 1) * 0x10 + 0xf, &v, 1), 0);
	assert_int_equal(a.last_off, 0xf);
}

static void test_dispatch_offsets(void **state)
{
	(void)state;
	struct bus bus = {0};
	struct rec_dev a = {.tag = 0x10}, b = {.tag = 0x80};
	assert_int_equal(bus_add(&bus, 0x60, 5, &rec_ops, &a), 0);
	assert_int_equal(bus_add(&bus, 0xd0000000, 0x1000, &rec_ops, &b), 0);

	uint8_t buf[8];
	assert_int_equal(bus_read(&bus, 0x64, buf, 1), 0);
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.last_off, 4);
	assert_int_equal(a.last_len, 1);
	assert_int_equal(buf[0], 0x14);

	assert_int_equal(bus_read(&bus, 0xd0000ff8, buf, 8), 0);
	assert_int_equal(b.reads, 1);
	assert_int_equal(b.last_off, 0xff8);
	assert_int_equal(b.last_len, 8);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(buf[i], (uint8_t)(0x80 + 0xff8 + i));

	const uint8_t w[4] = {1, 2, 3, 4};
	assert_int_equal(bus_write(&bus, 0xd0000010, w, 4), 0);
	assert_int_equal(b.writes, 1);
	assert_int_equal(b.last_off, 0x10);
	assert_int_equal(b.last_len, 4);
	assert_memory_equal(b.last_data, w, 4);
	assert_int_equal(bus_write(&bus, 0x60, w, 2), 0);
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.last_off, 0);
	assert_int_equal(a.last_len, 2);
	assert_int_equal(a.reads, 1);
	assert_int_equal(b.reads, 1);
}

static void test_unclaimed(void **state)
{
	(void)state;
	struct bus bus = {0};
	struct rec_dev a = {0};
	uint8_t buf[8];
	/* An empty bus. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(bus_read(&bus, 0x80, buf, 4), -ENOENT);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(buf[i], 0xff);
	assert_int_equal(bus_write(&bus, 0x80, buf, 4), -ENOENT);

	assert_int_equal(bus_add(&bus, 0x100, 8, &rec_ops, &a), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(bus_read(&bus, 0x0ff, buf, 1), -ENOENT);
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0); /* only len bytes are filled */
	assert_int_equal(bus_read(&bus, 0x108, buf, 1), -ENOENT);
	assert_int_equal(bus_write(&bus, 0x108, buf, 1), -ENOENT);
	assert_int_equal(bus_write(&bus, 0x0ff, buf, 1), -ENOENT);
	assert_int_equal(a.reads, 0);
	assert_int_equal(a.writes, 0);
}

static void test_straddling(void **state)
{
	(void)state;
	struct bus bus = {0};
	struct rec_dev a = {0}, b = {0};
	assert_int_equal(bus_add(&bus, 0x100, 8, &rec_ops, &a), 0);
	assert_int_equal(bus_add(&bus, 0x108, 8, &rec_ops, &b), 0);
	uint8_t buf[8];

	/* Last bytes fit, one more does not. */
	assert_int_equal(bus_read(&bus, 0x106, buf, 2), 0);
	assert_int_equal(a.reads, 1);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(bus_read(&bus, 0x106, buf, 4), -ENOENT);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(buf[i], 0xff);
	assert_int_equal(bus_read(&bus, 0x107, buf, 2), -ENOENT);
	assert_int_equal(bus_read(&bus, 0x0ff, buf, 2), -ENOENT);
	assert_int_equal(bus_read(&bus, 0x100, buf, 8), 0);
	assert_int_equal(bus_read(&bus, 0x101, buf, 8), -ENOENT);
	/* Straddling into the adjacent range is claimed by neither. */
	const uint8_t w[4] = {9, 9, 9, 9};
	assert_int_equal(bus_write(&bus, 0x106, w, 4), -ENOENT);
	assert_int_equal(bus_write(&bus, 0x107, w, 2), -ENOENT);
	assert_int_equal(a.writes, 0);
	assert_int_equal(b.writes, 0);
	assert_int_equal(a.reads, 2);
	assert_int_equal(b.reads, 0);
	/* Huge len never wraps into a match. */
	assert_int_equal(bus_write(&bus, 0x100, w, UINT32_MAX), -ENOENT);
}

static void test_missing_ops(void **state)
{
	(void)state;
	struct bus bus = {0};
	struct rec_dev r = {0}, w = {0};
	assert_int_equal(bus_add(&bus, 0x10, 4, &read_only_ops, &r), 0);
	assert_int_equal(bus_add(&bus, 0x20, 4, &write_only_ops, &w), 0);
	uint8_t buf[4] = {0};
	assert_int_equal(bus_write(&bus, 0x10, buf, 1), -ENOENT);
	assert_int_equal(bus_read(&bus, 0x10, buf, 1), 0);
	assert_int_equal(r.reads, 1);
	buf[0] = 0;
	assert_int_equal(bus_read(&bus, 0x20, buf, 2), -ENOENT);
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0xff);
	assert_int_equal(bus_write(&bus, 0x22, buf, 2), 0);
	assert_int_equal(w.writes, 1);
	assert_int_equal(w.last_off, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_basic),	     cmocka_unit_test(test_add_invalid),
	    cmocka_unit_test(test_add_overlap),	     cmocka_unit_test(test_add_full),
	    cmocka_unit_test(test_dispatch_offsets), cmocka_unit_test(test_unclaimed),
	    cmocka_unit_test(test_straddling),	     cmocka_unit_test(test_missing_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
