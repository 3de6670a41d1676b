/* e820 map, initrd placement and the zero page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "boot/boot.h"
#include "tests/unit/boot_test_images.h"
#include "vmm/guest_mem.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define RAM_SIZE (256 * MIB)
#define CMDLINE "console=ttyS0 reboot=k panic=1"
#define RSDP_ADDR LAYOUT_ACPI_START

struct fixture {
	struct guest_mem gm;
	uint8_t img[TEST_BZ_LEN];
	struct kernel_image k;
	struct boot_layout bl;
};

static void put_cmdline(const struct guest_mem *gm, uint64_t gpa, const char *s)
{
	assert_int_equal(gm_write(gm, gpa, s, strlen(s) + 1), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->gm, RAM_SIZE), 0);
	test_make_bzimage(f->img);
	assert_int_equal(kernel_load(&f->gm, f->img, TEST_BZ_LEN, &f->k), 0);
	put_cmdline(&f->gm, LAYOUT_CMDLINE_ADDR, CMDLINE);
	f->bl = (struct boot_layout){.cmdline_gpa = LAYOUT_CMDLINE_ADDR,
				     .cmdline_len = strlen(CMDLINE),
				     .initrd_size = 3 * MIB + 123,
				     .rsdp_gpa = RSDP_ADDR};
	assert_int_equal(initrd_choose_addr(&f->gm, &f->k, f->bl.initrd_size, &f->bl.initrd_gpa),
			 0);
	/* Stale bytes that the zero page must not inherit. */
	memset(gm_ptr(&f->gm, LAYOUT_ZERO_PAGE_ADDR, 4096), 0xa5, 4096);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	guest_mem_free(&f->gm);
	free(f);
	return 0;
}

static void check_entry(const struct boot_e820_entry *e, uint64_t addr, uint64_t size,
			uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

static void test_e820_128m(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 128 * MIB), 0);
	struct boot_e820_entry t[E820_MAX_ENTRIES_ZEROPAGE];
	assert_int_equal(e820_build(&gm, t, E820_MAX_ENTRIES_ZEROPAGE), 3);
	check_entry(&t[0], 0, 0x9fc00, 1);
	check_entry(&t[1], 0x9fc00, 0x100000 - 0x9fc00, 2);
	check_entry(&t[2], 0x100000, 127 * MIB, 1);
	assert_int_equal(e820_build(&gm, t, 2), -ENOSPC);
	assert_int_equal(e820_build(&gm, t, 0), -ENOSPC);
	assert_int_equal(e820_build(&gm, t, 3), 3);
	guest_mem_free(&gm);
}

static void test_e820_5g(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 5 * GIB), 0);
	struct boot_e820_entry t[8];
	assert_int_equal(e820_build(&gm, t, 8), 4);
	check_entry(&t[0], 0, LAYOUT_EBDA_START, BOOT_E820_RAM);
	check_entry(&t[1], LAYOUT_EBDA_START, LAYOUT_HIMEM_START - LAYOUT_EBDA_START,
		    BOOT_E820_RESERVED);
	check_entry(&t[2], LAYOUT_HIMEM_START, LAYOUT_MMIO_GAP_START - LAYOUT_HIMEM_START,
		    BOOT_E820_RAM);
	check_entry(&t[3], 4 * GIB, 5 * GIB - LAYOUT_MMIO_GAP_START, BOOT_E820_RAM);
	assert_int_equal(e820_build(&gm, t, 3), -ENOSPC);
	guest_mem_free(&gm);
}

static void test_e820_tiny(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 256 * 1024), 0);
	struct boot_e820_entry t[4];
	assert_int_equal(e820_build(&gm, t, 4), 2);
	check_entry(&t[0], 0, 256 * 1024, BOOT_E820_RAM);
	check_entry(&t[1], LAYOUT_EBDA_START, LAYOUT_HIMEM_START - LAYOUT_EBDA_START,
		    BOOT_E820_RESERVED);
	guest_mem_free(&gm);
}

static void test_initrd_fits_high(void **state)
{
	struct fixture *f = *state;
	uint64_t addr = 0, size = 0x1234567;
	assert_int_equal(initrd_choose_addr(&f->gm, &f->k, size, &addr), 0);
	assert_int_equal(addr & 0xfff, 0);
	assert_true(addr + size <= RAM_SIZE);
	assert_true(RAM_SIZE - (addr + size) < 0x1000); /* as high as possible */
	assert_true(addr >= f->k.load_end);
	/* Exactly page sized: ends at the end of RAM. */
	assert_int_equal(initrd_choose_addr(&f->gm, &f->k, 2 * MIB, &addr), 0);
	assert_int_equal(addr, RAM_SIZE - 2 * MIB);
}

static void test_initrd_too_big(void **state)
{
	struct fixture *f = *state;
	uint64_t addr = 42;
	uint64_t room = RAM_SIZE - f->k.load_end;
	assert_int_equal(initrd_choose_addr(&f->gm, &f->k, room, &addr), 0);
	assert_int_equal(addr, f->k.load_end);
	assert_int_equal(initrd_choose_addr(&f->gm, &f->k, room + 1, &addr), -ENOMEM);
	assert_int_equal(initrd_choose_addr(&f->gm, &f->k, RAM_SIZE + 1, &addr), -ENOMEM);
	assert_int_equal(initrd_choose_addr(&f->gm, &f->k, UINT64_MAX, &addr), -ENOMEM);
	assert_int_equal(initrd_choose_addr(&f->gm, &f->k, 0, &addr), -EINVAL);
	struct kernel_image k = f->k;
	k.load_end = UINT64_MAX;
	assert_int_equal(initrd_choose_addr(&f->gm, &k, 4096, &addr), -ENOMEM);
	/* The boot area below 1 MiB is off limits even when the kernel sits higher. */
	k.load_end = 0;
	k.initrd_addr_max = LAYOUT_HIMEM_START + 0xfff;
	assert_int_equal(initrd_choose_addr(&f->gm, &k, 4096, &addr), 0);
	assert_int_equal(addr, LAYOUT_HIMEM_START);
	assert_int_equal(initrd_choose_addr(&f->gm, &k, 8192, &addr), -ENOMEM);
}

static void test_initrd_addr_max(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 5 * GIB), 0);
	struct kernel_image k = {.load_end = 32 * MIB, .initrd_addr_max = BOOT_INITRD_ADDR_MAX};
	uint64_t addr;
	assert_int_equal(initrd_choose_addr(&gm, &k, 10 * MIB, &addr), 0);
	assert_int_equal(addr, BOOT_INITRD_ADDR_MAX + 1 - 10 * MIB);
	k.initrd_addr_max = 0x7fffffff;
	assert_int_equal(initrd_choose_addr(&gm, &k, 10 * MIB + 1, &addr), 0);
	assert_int_equal(addr, 0x80000000 - 10 * MIB - 0x1000);
	/* No limit: the top of low RAM, never the high region. */
	k.initrd_addr_max = UINT64_MAX;
	assert_int_equal(initrd_choose_addr(&gm, &k, 10 * MIB, &addr), 0);
	assert_int_equal(addr, LAYOUT_MMIO_GAP_START - 10 * MIB);
	guest_mem_free(&gm);
}

static const struct boot_params *zero_page(const struct fixture *f)
{
	const struct boot_params *bp = gm_ptr(&f->gm, LAYOUT_ZERO_PAGE_ADDR, sizeof(*bp));
	assert_non_null(bp);
	return bp;
}

static void test_zero_page(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &f->bl), 0);
	const struct boot_params *bp = zero_page(f);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.loadflags, LOADED_HIGH | CAN_USE_HEAP); /* image's flags kept */
	assert_int_equal(bp->hdr.init_size, TEST_BZ_INIT_SIZE);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE_ADDR);
	assert_int_equal(bp->ext_cmd_line_ptr, 0);
	assert_int_equal(bp->hdr.ramdisk_image, f->bl.initrd_gpa);
	assert_int_equal(bp->hdr.ramdisk_size, 3 * MIB + 123);
	assert_int_equal(bp->ext_ramdisk_image, 0);
	assert_int_equal(bp->ext_ramdisk_size, 0);
	assert_int_equal(bp->acpi_rsdp_addr, RSDP_ADDR);
	assert_int_equal(bp->e820_entries, 3);
	check_entry(&bp->e820_table[0], 0, LAYOUT_EBDA_START, 1);
	check_entry(&bp->e820_table[1], LAYOUT_EBDA_START, 0x100000 - LAYOUT_EBDA_START, 2);
	check_entry(&bp->e820_table[2], 0x100000, RAM_SIZE - 0x100000, 1);
	/* Everything kiln does not set is zero, including the sentinel. */
	assert_int_equal(bp->sentinel, 0);
	assert_int_equal(bp->screen_info.orig_video_isVGA, 0);
	const uint8_t *raw = (const uint8_t *)bp;
	for (size_t i = offsetof(struct boot_params, eddbuf); i < sizeof(*bp); i++)
		assert_int_equal(raw[i], 0);
	/* The rest of the header is the image's. */
	struct setup_header want = f->k.hdr;
	want.type_of_loader = 0xff;
	want.loadflags |= LOADED_HIGH;
	want.cmd_line_ptr = LAYOUT_CMDLINE_ADDR;
	want.ramdisk_image = (uint32_t)f->bl.initrd_gpa;
	want.ramdisk_size = (uint32_t)f->bl.initrd_size;
	assert_memory_equal(&bp->hdr, &want, sizeof(want));
}

static void test_zero_page_elf(void **state)
{
	struct fixture *f = *state;
	_Alignas(8) uint8_t elf[TEST_ELF_LEN];
	test_make_elf(elf);
	struct kernel_image k;
	assert_int_equal(kernel_load(&f->gm, elf, sizeof(elf), &k), 0);
	f->bl.initrd_size = 0;
	f->bl.initrd_gpa = 0;
	f->bl.rsdp_gpa = 0;
	assert_int_equal(bootparams_write(&f->gm, &k, &f->bl), 0);
	const struct boot_params *bp = zero_page(f);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.loadflags, LOADED_HIGH);
	assert_int_equal(bp->hdr.kernel_alignment, 0x1000000);
	assert_int_equal(bp->hdr.ramdisk_image, 0);
	assert_int_equal(bp->hdr.ramdisk_size, 0);
	assert_int_equal(bp->acpi_rsdp_addr, 0);
	assert_int_equal(bp->e820_entries, 3);
}

static void test_cmdline_checks(void **state)
{
	struct fixture *f = *state;
	struct boot_layout bl = f->bl;
	char big[TEST_BZ_CMDLINE_SIZE + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put_cmdline(&f->gm, LAYOUT_CMDLINE_ADDR, big);
	bl.cmdline_len = TEST_BZ_CMDLINE_SIZE + 1;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EINVAL);
	big[TEST_BZ_CMDLINE_SIZE] = '\0';
	put_cmdline(&f->gm, LAYOUT_CMDLINE_ADDR, big);
	bl.cmdline_len = TEST_BZ_CMDLINE_SIZE;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), 0);
	bl.cmdline_len = 5; /* byte 5 is 'x', not the NUL */
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EINVAL);
	bl.cmdline_len = 0;
	bl.cmdline_gpa = RAM_SIZE;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EFAULT);
	bl.cmdline_gpa = UINT64_MAX;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EFAULT);
	bl.cmdline_gpa = RAM_SIZE - 4; /* string fits, its NUL does not */
	bl.cmdline_len = 4;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EFAULT);
}

static void test_initrd_checks(void **state)
{
	struct fixture *f = *state;
	struct boot_layout bl = f->bl;
	bl.initrd_gpa = RAM_SIZE - 4096;
	bl.initrd_size = 8192;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EFAULT);
	bl.initrd_gpa = UINT64_MAX - 10;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EFAULT);
	bl.initrd_gpa = f->k.load_end - 4096; /* overlaps the kernel's init_size */
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EINVAL);
	bl.initrd_gpa = f->k.load_start - 4096;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EINVAL);
	bl.initrd_gpa = 0; /* the boot structures */
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EINVAL);
	bl.initrd_gpa = LAYOUT_HIMEM_START;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), 0);
	struct kernel_image k = f->k;
	k.initrd_addr_max = RAM_SIZE - 4096 - 1;
	bl.initrd_gpa = RAM_SIZE - 8192; /* ends one page above initrd_addr_max */
	assert_int_equal(bootparams_write(&f->gm, &k, &bl), -EINVAL);
	k.initrd_addr_max = RAM_SIZE - 1;
	assert_int_equal(bootparams_write(&f->gm, &k, &bl), 0);
	bl.rsdp_gpa = RAM_SIZE - 8;
	assert_int_equal(bootparams_write(&f->gm, &k, &bl), -EFAULT);
}

static void test_refused_leaves_zero_page(void **state)
{
	struct fixture *f = *state;
	struct boot_layout bl = f->bl;
	bl.cmdline_gpa = UINT64_MAX;
	assert_int_equal(bootparams_write(&f->gm, &f->k, &bl), -EFAULT);
	const uint8_t *raw = (const uint8_t *)zero_page(f);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(raw[i], 0xa5);
}

static void test_high_pointers(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 5 * GIB), 0);
	_Alignas(8) uint8_t elf[TEST_ELF_LEN];
	test_make_elf(elf);
	struct kernel_image k;
	assert_int_equal(kernel_load(&gm, elf, sizeof(elf), &k), 0);
	k.initrd_addr_max = UINT64_MAX;
	put_cmdline(&gm, 4 * GIB + 0x1000, "quiet");
	struct boot_layout bl = {.cmdline_gpa = 4 * GIB + 0x1000,
				 .cmdline_len = 5,
				 .initrd_gpa = 4 * GIB + 0x100000,
				 .initrd_size = 0x123000};
	assert_int_equal(bootparams_write(&gm, &k, &bl), 0);
	const struct boot_params *bp = gm_ptr(&gm, LAYOUT_ZERO_PAGE_ADDR, sizeof(*bp));
	assert_int_equal(bp->hdr.cmd_line_ptr, 0x1000);
	assert_int_equal(bp->ext_cmd_line_ptr, 1);
	assert_int_equal(bp->hdr.ramdisk_image, 0x100000);
	assert_int_equal(bp->ext_ramdisk_image, 1);
	assert_int_equal(bp->hdr.ramdisk_size, 0x123000);
	assert_int_equal(bp->e820_entries, 4);
	check_entry(&bp->e820_table[3], 4 * GIB, 5 * GIB - LAYOUT_MMIO_GAP_START, 1);
	guest_mem_free(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_e820_128m),
	    cmocka_unit_test(test_e820_5g),
	    cmocka_unit_test(test_e820_tiny),
	    cmocka_unit_test_setup_teardown(test_initrd_fits_high, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_too_big, setup, teardown),
	    cmocka_unit_test(test_initrd_addr_max),
	    cmocka_unit_test_setup_teardown(test_zero_page, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_page_elf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmdline_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_leaves_zero_page, setup, teardown),
	    cmocka_unit_test(test_high_pointers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
