/* Guest RAM: the split at the MMIO gap, the checked accessor's boundaries, and the guard
 * gaps around the host mapping. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define PAGE 4096ULL

/* The permissions ("rw-p", "---p", ...) of the mapping holding addr, from /proc/self/maps;
 * false when addr is not mapped at all. Never touches addr itself. */
static bool maps_perms(const void *addr, char perms[5], uintptr_t *start, uintptr_t *end)
{
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	char line[512];
	bool found = false;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi;
		char p[5];
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &lo, &hi, p) != 3)
			continue;
		if ((uintptr_t)addr >= lo && (uintptr_t)addr < hi) {
			memcpy(perms, p, 5);
			if (start)
				*start = lo;
			if (end)
				*end = hi;
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

/* The VmFlags line of the smaps entry that starts at `start`. */
static bool smaps_vmflags(uintptr_t start, char *flags, size_t flags_len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	assert_non_null(f);
	char line[512];
	bool in_entry = false, found = false;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi;
		/* Only entry headers parse as "lo-hi"; field names stop sscanf early. */
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2) {
			in_entry = lo == start;
			continue;
		}
		if (in_entry && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, flags_len, "%s", line + 8);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

static bool page_resident(const void *p)
{
	unsigned char vec = 0xff;
	uintptr_t page = (uintptr_t)p & ~(uintptr_t)(PAGE - 1);
	assert_int_equal(mincore((void *)page, PAGE, &vec), 0);
	return vec & 1;
}

static void test_small_one_region(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 128 * MIB), 0);
	assert_int_equal(gm.nr_regions, 1);
	assert_int_equal(gm.ram_size, 128 * MIB);
	assert_int_equal(gm.region[0].gpa, 0);
	assert_int_equal(gm.region[0].size, 128 * MIB);
	assert_non_null(gm.region[0].host);
	assert_int_equal(gm_low_end(&gm), 128 * MIB);
	assert_ptr_equal(gm_ptr(&gm, 0, 1), gm.region[0].host);
	/* Nothing at 4 GiB with a single region. */
	assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START, 1));
	assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START, 0));
	guest_mem_free(&gm);
}

static void test_exactly_gap_start_one_region(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, LAYOUT_MMIO_GAP_START), 0);
	assert_int_equal(gm.nr_regions, 1);
	assert_int_equal(gm.region[0].size, LAYOUT_MMIO_GAP_START);
	assert_int_equal(gm_low_end(&gm), LAYOUT_MMIO_GAP_START);
	assert_non_null(gm_ptr(&gm, LAYOUT_MMIO_GAP_START - 1, 1));
	assert_null(gm_ptr(&gm, LAYOUT_MMIO_GAP_START, 1));
	guest_mem_free(&gm);
}

static void test_one_page_above_gap(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, LAYOUT_MMIO_GAP_START + PAGE), 0);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(gm.region[0].size, LAYOUT_MMIO_GAP_START);
	assert_int_equal(gm.region[1].gpa, LAYOUT_HIGH_RAM_START);
	assert_int_equal(gm.region[1].size, PAGE);
	assert_non_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START, PAGE));
	assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START, PAGE + 1));
	assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START + PAGE, 0));
	guest_mem_free(&gm);
}

static void test_4g_two_regions(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 4 * GIB), 0);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(gm.ram_size, 4 * GIB);
	assert_int_equal(gm.region[0].gpa, 0);
	assert_int_equal(gm.region[0].size, LAYOUT_MMIO_GAP_START);
	assert_int_equal(gm.region[1].gpa, LAYOUT_HIGH_RAM_START);
	assert_int_equal(gm.region[1].size, 4 * GIB - LAYOUT_MMIO_GAP_START);
	assert_int_equal(gm.region[0].size + gm.region[1].size, 4 * GIB);
	/* One host mapping: the high region follows the low one. */
	assert_ptr_equal(gm.region[1].host, gm.region[0].host + gm.region[0].size);
	assert_int_equal(gm_low_end(&gm), LAYOUT_MMIO_GAP_START);

	/* The gap has no RAM, anywhere in it. */
	assert_null(gm_ptr(&gm, LAYOUT_MMIO_GAP_START, 1));
	assert_null(gm_ptr(&gm, LAYOUT_MMIO_GAP_START, 0));
	assert_null(gm_ptr(&gm, LAYOUT_IOAPIC_ADDR, 4));
	assert_null(gm_ptr(&gm, LAYOUT_MMIO_GAP_END - 1, 1));
	/* Last low byte and first high byte. */
	uint8_t *last_low = gm_ptr(&gm, LAYOUT_MMIO_GAP_START - 1, 1);
	assert_ptr_equal(last_low, gm.region[0].host + LAYOUT_MMIO_GAP_START - 1);
	assert_ptr_equal(gm_ptr(&gm, LAYOUT_HIGH_RAM_START, 1), gm.region[1].host);
	/* Ranges crossing the gap, even though the host bytes are contiguous. */
	assert_null(gm_ptr(&gm, LAYOUT_MMIO_GAP_START - 1, 2));
	assert_null(gm_ptr(&gm, LAYOUT_MMIO_GAP_START - 8,
			   LAYOUT_MMIO_GAP_END - LAYOUT_MMIO_GAP_START + 16));
	assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START - 1, 2));
	/* Top of the high region. */
	uint64_t top = LAYOUT_HIGH_RAM_START + gm.region[1].size;
	assert_non_null(gm_ptr(&gm, top - 1, 1));
	assert_non_null(gm_ptr(&gm, top - PAGE, PAGE));
	assert_null(gm_ptr(&gm, top - 1, 2));
	assert_null(gm_ptr(&gm, top, 0));
	assert_null(gm_ptr(&gm, top, 1));

	/* Data really lands in both regions, at the right host addresses. */
	uint32_t v = 0x11223344, r = 0;
	assert_int_equal(gm_write(&gm, LAYOUT_HIGH_RAM_START + 0x1000, &v, 4), 0);
	assert_memory_equal(gm.region[1].host + 0x1000, &v, 4);
	assert_int_equal(gm_read(&gm, LAYOUT_HIGH_RAM_START + 0x1000, &r, 4), 0);
	assert_int_equal(r, v);
	assert_int_equal(gm_write(&gm, LAYOUT_MMIO_GAP_START - 4, &v, 4), 0);
	assert_memory_equal(last_low - 3, &v, 4);
	assert_int_equal(gm_write(&gm, LAYOUT_MMIO_GAP_START - 2, &v, 4), -EFAULT);
	guest_mem_free(&gm);
}

static void test_big_sizes_are_cheap(void **state)
{
	(void)state;
	struct guest_mem gm;
	/* MAP_NORESERVE and no touching: 16 GiB costs address space only. */
	assert_int_equal(guest_mem_init(&gm, 16 * GIB), 0);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(gm.region[1].size, 16 * GIB - LAYOUT_MMIO_GAP_START);
	assert_false(page_resident(gm.region[0].host));
	assert_false(page_resident(gm.region[0].host + 8 * GIB));
	assert_false(page_resident(gm.region[1].host + gm.region[1].size - PAGE));
	uint8_t b = 0x5a;
	assert_int_equal(gm_write(&gm, 15 * GIB, &b, 1), 0);
	assert_true(page_resident(gm_ptr(&gm, 15 * GIB, 1)));
	guest_mem_free(&gm);
	assert_null(gm.reservation);
	assert_int_equal(gm.nr_regions, 0);
}

static void test_ptr_boundaries(void **state)
{
	(void)state;
	struct guest_mem gm;
	const uint64_t size = 128 * MIB;
	assert_int_equal(guest_mem_init(&gm, size), 0);
	uint8_t *host = gm.region[0].host;

	assert_ptr_equal(gm_ptr(&gm, 0, size), host);
	assert_ptr_equal(gm_ptr(&gm, size - 1, 1), host + size - 1);
	assert_ptr_equal(gm_ptr(&gm, 0x1234, 0x100), host + 0x1234);
	assert_null(gm_ptr(&gm, 0, size + 1));
	assert_null(gm_ptr(&gm, size - 1, 2));
	assert_null(gm_ptr(&gm, size, 1));
	/* len 0: fine inside RAM, not one past the end. */
	assert_ptr_equal(gm_ptr(&gm, 0, 0), host);
	assert_ptr_equal(gm_ptr(&gm, size - 1, 0), host + size - 1);
	assert_null(gm_ptr(&gm, size, 0));
	/* Values whose sum wraps: a naive gpa+len check would accept them. */
	assert_null(gm_ptr(&gm, 0, UINT64_MAX));
	assert_null(gm_ptr(&gm, 1, UINT64_MAX));
	assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX - 0x0fff));
	assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX - 0x0fff + 0x10));
	assert_null(gm_ptr(&gm, UINT64_MAX, 1));
	assert_null(gm_ptr(&gm, UINT64_MAX, 0));
	assert_null(gm_ptr(&gm, UINT64_MAX, UINT64_MAX));
	assert_null(gm_ptr(&gm, UINT64_MAX - 0xff, 0x100));
	assert_null(gm_ptr(&gm, size - 1, UINT64_MAX));
	assert_null(gm_ptr(&gm, 1ULL << 63, 1ULL << 63));
	guest_mem_free(&gm);
}

static void test_ptr_overflow_high_region(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, LAYOUT_MMIO_GAP_START + 64 * MIB), 0);
	/* gpa in the low region with a len that would wrap to land in the high one. */
	assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX - 0x0fff + LAYOUT_HIGH_RAM_START + 1));
	assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START, UINT64_MAX));
	assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START + 1, UINT64_MAX - LAYOUT_HIGH_RAM_START));
	assert_null(gm_ptr(&gm, UINT64_MAX - 0xfff, 0x1000));
	assert_non_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START + 64 * MIB - 1, 1));
	assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM_START + 64 * MIB - 1, 2));
	guest_mem_free(&gm);
}

static void test_read_write(void **state)
{
	(void)state;
	struct guest_mem gm;
	const uint64_t size = 2 * MIB;
	assert_int_equal(guest_mem_init(&gm, size), 0);
	uint8_t buf[64], out[64];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);

	assert_int_equal(gm_write(&gm, 0x100, buf, sizeof(buf)), 0);
	assert_memory_equal(gm.region[0].host + 0x100, buf, sizeof(buf));
	memset(out, 0, sizeof(out));
	assert_int_equal(gm_read(&gm, 0x100, out, sizeof(out)), 0);
	assert_memory_equal(out, buf, sizeof(buf));
	/* The very end of RAM. */
	assert_int_equal(gm_write(&gm, size - sizeof(buf), buf, sizeof(buf)), 0);
	assert_int_equal(gm_read(&gm, size - sizeof(buf), out, sizeof(out)), 0);
	assert_memory_equal(out, buf, sizeof(buf));
	/* len 0 inside RAM is a no-op that succeeds. */
	assert_int_equal(gm_write(&gm, 0, buf, 0), 0);
	assert_int_equal(gm_read(&gm, 0, out, 0), 0);

	/* Out of range: -EFAULT, and nothing copied either way. */
	memset(out, 0xee, sizeof(out));
	assert_int_equal(gm_read(&gm, size - 1, out, 2), -EFAULT);
	assert_int_equal(gm_read(&gm, size, out, 1), -EFAULT);
	assert_int_equal(gm_read(&gm, UINT64_MAX, out, 1), -EFAULT);
	assert_int_equal(gm_read(&gm, 1, out, UINT64_MAX), -EFAULT);
	for (unsigned i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xee);
	uint8_t before = gm.region[0].host[size - 1];
	assert_int_equal(gm_write(&gm, size - 1, buf, 2), -EFAULT);
	assert_int_equal(gm.region[0].host[size - 1], before);
	assert_int_equal(gm_write(&gm, size, buf, 1), -EFAULT);
	assert_int_equal(gm_write(&gm, LAYOUT_MMIO_GAP_START, buf, 1), -EFAULT);
	assert_int_equal(gm_write(&gm, LAYOUT_HIGH_RAM_START, buf, 1), -EFAULT);
	assert_int_equal(gm_write(&gm, 0x10, buf, UINT64_MAX - 0x8), -EFAULT);
	guest_mem_free(&gm);
}

static void test_invalid_sizes(void **state)
{
	(void)state;
	static const uint64_t bad[] = {
	    0,
	    1,
	    0xfff,
	    PAGE + 1,
	    128 * MIB + 0x800,
	    (1ULL << 46) + PAGE,
	    1ULL << 63,
	    UINT64_MAX,
	    UINT64_MAX - 0xfff,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct guest_mem gm;
		memset(&gm, 0xa5, sizeof(gm));
		assert_int_equal(guest_mem_init(&gm, bad[i]), -EINVAL);
		/* Left zeroed: usable with gm_ptr and freeable. */
		assert_int_equal(gm.nr_regions, 0);
		assert_null(gm.reservation);
		assert_null(gm_ptr(&gm, 0, 0));
		assert_int_equal(gm_low_end(&gm), 0);
		guest_mem_free(&gm);
	}
}

static void test_smallest_size(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, PAGE), 0);
	assert_int_equal(gm.nr_regions, 1);
	assert_non_null(gm_ptr(&gm, 0, PAGE));
	assert_null(gm_ptr(&gm, 0, PAGE + 1));
	guest_mem_free(&gm);
}

static void test_free_is_idempotent(void **state)
{
	(void)state;
	struct guest_mem gm;
	memset(&gm, 0, sizeof(gm));
	guest_mem_free(&gm); /* zeroed */
	assert_int_equal(guest_mem_init(&gm, 4 * MIB), 0);
	guest_mem_free(&gm);
	assert_int_equal(gm.nr_regions, 0);
	assert_null(gm.reservation);
	assert_null(gm_ptr(&gm, 0, 1));
	guest_mem_free(&gm); /* already freed */
}

static void check_guards(uint64_t ram_size)
{
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, ram_size), 0);
	uint8_t *ram = gm.region[0].host;
	uint8_t *ram_end = ram + ram_size;
	uint8_t *res = gm.reservation;
	uint8_t *res_end = res + gm.reservation_len;
	/* At least a page of guard on each side, inside the reservation. */
	assert_true(res + PAGE <= ram);
	assert_true(ram_end + PAGE <= res_end);
	/* RAM starts on a 2 MiB boundary, as guest-physical 0 does (huge pages line up). */
	assert_int_equal((uintptr_t)ram % (2u << 20), 0);
	if (gm.nr_regions > 1)
		assert_int_equal((uintptr_t)gm.region[1].host % (2u << 20), 0);
	assert_int_equal(gm.reservation_len,
			 ram_size + (uint64_t)(ram - res) + (res_end - ram_end));

	char perms[5];
	uintptr_t lo, hi;
	/* The byte just before RAM and the reservation's first byte: PROT_NONE. */
	assert_true(maps_perms(ram - 1, perms, &lo, &hi));
	assert_string_equal(perms, "---p");
	assert_true(lo <= (uintptr_t)res);
	assert_true(maps_perms(res, perms, NULL, NULL));
	assert_string_equal(perms, "---p");
	/* RAM itself: read-write private mappings covering it exactly, the first 2 MiB on
	 * their own without huge pages (nh), all of it out of core dumps (dd). */
	uint64_t head = ram_size < (2u << 20) ? ram_size : (2u << 20);
	char flags[512];
	assert_true(maps_perms(ram, perms, &lo, &hi));
	assert_string_equal(perms, "rw-p");
	assert_int_equal(lo, (uintptr_t)ram);
	assert_int_equal(hi, (uintptr_t)ram + head);
	assert_true(smaps_vmflags(lo, flags, sizeof(flags)));
	assert_non_null(strstr(flags, " dd"));
	assert_non_null(strstr(flags, " nh"));
	if (head < ram_size) {
		assert_true(maps_perms(ram + head, perms, &lo, &hi));
		assert_string_equal(perms, "rw-p");
		assert_int_equal(lo, (uintptr_t)ram + head);
		assert_int_equal(hi, (uintptr_t)ram_end);
		assert_true(smaps_vmflags(lo, flags, sizeof(flags)));
		assert_non_null(strstr(flags, " dd"));
		assert_null(strstr(flags, " nh"));
	}
	/* The byte just after RAM and the reservation's last byte: PROT_NONE. */
	assert_true(maps_perms(ram_end, perms, &lo, &hi));
	assert_string_equal(perms, "---p");
	assert_true(hi >= (uintptr_t)res_end);
	assert_true(maps_perms(res_end - 1, perms, NULL, NULL));
	assert_string_equal(perms, "---p");

	guest_mem_free(&gm);
	/* Everything is gone afterwards (or reused by someone else, never rw RAM of ours). */
	if (maps_perms(ram, perms, &lo, &hi))
		assert_false(lo == (uintptr_t)ram && hi == (uintptr_t)ram_end);
}

static void test_guard_gaps_small(void **state)
{
	(void)state;
	check_guards(128 * MIB);
}

static void test_guard_gaps_split(void **state)
{
	(void)state;
	check_guards(4 * GIB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_one_region),
	    cmocka_unit_test(test_exactly_gap_start_one_region),
	    cmocka_unit_test(test_one_page_above_gap),
	    cmocka_unit_test(test_4g_two_regions),
	    cmocka_unit_test(test_big_sizes_are_cheap),
	    cmocka_unit_test(test_ptr_boundaries),
	    cmocka_unit_test(test_ptr_overflow_high_region),
	    cmocka_unit_test(test_read_write),
	    cmocka_unit_test(test_invalid_sizes),
	    cmocka_unit_test(test_smallest_size),
	    cmocka_unit_test(test_free_is_idempotent),
	    cmocka_unit_test(test_guard_gaps_small),
	    cmocka_unit_test(test_guard_gaps_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
