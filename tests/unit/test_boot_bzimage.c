/* bzImage loader: synthesized images with one lying field each, and the host's real
 * Debian bzImage when present. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>

#include "boot/boot.h"
#include "tests/unit/boot_test_images.h"
#include "vmm/guest_mem.h"

#define RAM_SIZE (256ULL << 20)

struct fixture {
	struct guest_mem gm;
	uint8_t img[TEST_BZ_LEN];
	struct kernel_image k;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->gm, RAM_SIZE), 0);
	test_make_bzimage(f->img);
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

static int load(struct fixture *f)
{
	return kernel_load_bzimage(&f->gm, f->img, TEST_BZ_LEN, &f->k);
}

static void test_valid_bzimage(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load(f), 0);
	assert_true(f->k.is_bzimage);
	assert_int_equal(f->k.load_start, TEST_BZ_PREF);
	assert_int_equal(f->k.entry, TEST_BZ_PREF + 0x200);
	assert_int_equal(f->k.load_end, TEST_BZ_PREF + TEST_BZ_INIT_SIZE);
	assert_memory_equal(gm_ptr(&f->gm, TEST_BZ_PREF, TEST_BZ_PAYLOAD_LEN),
			    f->img + TEST_BZ_SETUP_LEN, TEST_BZ_PAYLOAD_LEN);
	assert_int_equal(f->k.initrd_addr_max, TEST_BZ_INITRD_MAX);
	assert_int_equal(f->k.cmdline_max, TEST_BZ_CMDLINE_SIZE);
	/* The header as in the image, up to the jump target and nothing after it. */
	assert_memory_equal(&f->k.hdr, f->img + 0x1f1, TEST_BZ_HDR_END - 0x1f1);
	assert_int_equal(f->k.hdr.loadflags, LOADED_HIGH | CAN_USE_HEAP);
}

static void test_dispatch(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kernel_load(&f->gm, f->img, TEST_BZ_LEN, &f->k), 0);
	assert_true(f->k.is_bzimage);
	assert_int_equal(f->k.entry, TEST_BZ_PREF + 0x200);
}

static void test_header_copy_bounded(void **state)
{
	struct fixture *f = *state;
	/* A jump past the struct copies only the struct. */
	f->img[0x201] = 0xff;
	assert_int_equal(load(f), 0);
	assert_memory_equal(&f->k.hdr, f->img + 0x1f1, sizeof(struct setup_header));
	/* A jump that ends before init_size hides fields kiln needs. */
	f->img[0x201] = 0x60;
	assert_int_equal(load(f), -ENOEXEC);
	/* A header that stops at init_size: later fields read as zero. */
	f->img[0x201] = 0x264 - 0x202;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.hdr.handover_offset, 0);
	assert_int_equal(f->k.hdr.init_size, TEST_BZ_INIT_SIZE);
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	for (size_t len = 0; len < TEST_BZ_LEN; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, f->img, len);
		int err = kernel_load_bzimage(&f->gm, copy, len, &f->k);
		/* The file is shorter than its header's setup_sects + syssize claim. */
		assert_int_equal(err, -ENOEXEC);
		assert_int_equal(kernel_check(copy, len, NULL), -ENOEXEC);
		assert_int_equal(kernel_load(&f->gm, copy, len, &f->k), err);
		free(copy);
	}
}

static void test_bad_magic(void **state)
{
	struct fixture *f = *state;
	test_bz_hdr(f->img)->boot_flag = 0x55aa;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_bzimage(f->img);
	test_bz_hdr(f->img)->header = 0x53726449;
	assert_int_equal(load(f), -ENOEXEC);
	assert_int_equal(kernel_load(&f->gm, f->img, TEST_BZ_LEN, &f->k), -ENOEXEC);
}

static void test_old_or_32bit(void **state)
{
	struct fixture *f = *state;
	struct setup_header *h = test_bz_hdr(f->img);
	h->version = 0x020b;
	assert_int_equal(load(f), -ENOEXEC);
	h->version = 0x020c;
	assert_int_equal(load(f), 0);
	h->xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G | XLF_EFI_HANDOVER_32;
	assert_int_equal(load(f), -ENOEXEC);
}

static void test_setup_sects(void **state)
{
	struct fixture *f = *state;
	struct setup_header *h = test_bz_hdr(f->img);
	h->setup_sects = 2 * TEST_BZ_LEN / 512;
	assert_int_equal(load(f), -ENOEXEC);
	h->setup_sects = 0xff;
	assert_int_equal(load(f), -ENOEXEC);
	/* The payload would be too short to hold the entry point. */
	h->setup_sects = TEST_BZ_LEN / 512 - 1;
	assert_int_equal(load(f), -ENOEXEC);
	/* 0 means 4: setup is 5 sectors, larger than this image. */
	h->setup_sects = 0;
	assert_int_equal(load(f), -ENOEXEC);
	uint8_t big[5 * 512 + 0x400];
	memset(big, 0, sizeof(big));
	memcpy(big, f->img, TEST_BZ_SETUP_LEN);
	big[5 * 512] = 0xcc;
	assert_int_equal(kernel_load_bzimage(&f->gm, big, sizeof(big), &f->k), 0);
	const uint8_t *p = gm_ptr(&f->gm, TEST_BZ_PREF, 1);
	assert_int_equal(p[0], 0xcc);
}

/* syssize says how many payload bytes the file holds: more is refused before anything is
 * loaded (a truncated kernel used to be loaded and triple-fault the guest), bytes after it
 * (an appended signature) are not loaded. */
static void test_syssize(void **state)
{
	struct fixture *f = *state;
	struct setup_header *h = test_bz_hdr(f->img);
	const char *why = NULL;
	assert_int_equal(kernel_check(f->img, TEST_BZ_LEN, &why), 0);
	h->syssize = TEST_BZ_PAYLOAD_LEN / 16 + 1;
	assert_int_equal(kernel_check(f->img, TEST_BZ_LEN, &why), -ENOEXEC);
	assert_non_null(strstr(why, "syssize"));
	assert_int_equal(load(f), -ENOEXEC);
	assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, TEST_BZ_PREF, 1), 0); /* nothing written */
	h->syssize = 0xffffffffU;
	assert_int_equal(load(f), -ENOEXEC);
	h->syssize = 0; /* no payload, so no 64-bit entry */
	assert_int_equal(load(f), -ENOEXEC);
	h->syssize = 0x200 / 16;
	assert_int_equal(load(f), -ENOEXEC);

	h->syssize = TEST_BZ_PAYLOAD_LEN / 16 - 1; /* the last paragraph is a signature */
	assert_int_equal(load(f), 0);
	const uint8_t *p = gm_ptr(&f->gm, TEST_BZ_PREF, TEST_BZ_PAYLOAD_LEN);
	assert_memory_equal(p, f->img + TEST_BZ_SETUP_LEN, TEST_BZ_PAYLOAD_LEN - 16);
	for (unsigned i = TEST_BZ_PAYLOAD_LEN - 16; i < TEST_BZ_PAYLOAD_LEN; i++)
		assert_int_equal(p[i], 0);
}

static void test_check_reasons(void **state)
{
	struct fixture *f = *state;
	const char *why = NULL;
	test_bz_hdr(f->img)->setup_sects = 0x40;
	assert_int_equal(kernel_check(f->img, TEST_BZ_LEN, &why), -ENOEXEC);
	assert_non_null(strstr(why, "setup_sects"));
	uint8_t junk[0x300] = {0};
	assert_int_equal(kernel_check(junk, sizeof(junk), &why), -ENOEXEC);
	assert_non_null(strstr(why, "neither"));
}

static void test_alignment(void **state)
{
	struct fixture *f = *state;
	struct setup_header *h = test_bz_hdr(f->img);
	h->kernel_alignment = 0;
	assert_int_equal(load(f), -ENOEXEC);
	h->kernel_alignment = 0x300000;
	assert_int_equal(load(f), -ENOEXEC);
	h->kernel_alignment = 0xffffffff;
	assert_int_equal(load(f), -ENOEXEC);
	/* 2 GiB alignment: pref 16 MiB is not aligned and 2 GiB is beyond RAM. */
	h->kernel_alignment = 0x80000000;
	assert_int_equal(load(f), -ENOMEM);
}

static void test_relocation(void **state)
{
	struct fixture *f = *state;
	struct setup_header *h = test_bz_hdr(f->img);
	h->pref_address = TEST_BZ_PREF + 0x1000; /* not aligned */
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_start, TEST_BZ_ALIGN); /* first 2 MiB boundary >= 1 MiB */
	assert_int_equal(f->k.entry, TEST_BZ_ALIGN + 0x200);
	h->pref_address = 0; /* aligned, but over the boot structures */
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_start, TEST_BZ_ALIGN);
	h->pref_address = RAM_SIZE - 0x200000; /* init_size runs past RAM */
	h->init_size = 0x400000;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_start, TEST_BZ_ALIGN);
	h->pref_address = UINT64_MAX & ~(uint64_t)(TEST_BZ_ALIGN - 1);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_start, TEST_BZ_ALIGN);
	h->kernel_alignment = 0x1000;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_start, LAYOUT_HIMEM_START);
	/* Not relocatable: pref_address or nothing. */
	h->relocatable_kernel = 0;
	assert_int_equal(load(f), -ENOMEM);
	h->pref_address = TEST_BZ_PREF;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_start, TEST_BZ_PREF);
}

static void test_huge_init_size(void **state)
{
	struct fixture *f = *state;
	struct setup_header *h = test_bz_hdr(f->img);
	h->init_size = 0xffffffff;
	assert_int_equal(load(f), -ENOMEM);
	h->init_size = (uint32_t)(RAM_SIZE - TEST_BZ_ALIGN); /* fits exactly once relocated */
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_start, TEST_BZ_ALIGN);
	assert_int_equal(f->k.load_end, RAM_SIZE);
	h->init_size++;
	assert_int_equal(load(f), -ENOMEM);
	/* init_size smaller than the payload: the payload counts. */
	h->init_size = 0x10;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_end, TEST_BZ_PREF + TEST_BZ_PAYLOAD_LEN);
}

static void test_header_limits(void **state)
{
	struct fixture *f = *state;
	struct setup_header *h = test_bz_hdr(f->img);
	h->initrd_addr_max = 0;
	h->cmdline_size = 0xffffffff;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.initrd_addr_max, BOOT_INITRD_ADDR_MAX);
	assert_int_equal(f->k.cmdline_max, LAYOUT_CMDLINE_MAX - 1);
}

static void test_mutations(void **state)
{
	struct fixture *f = *state;
	uint64_t rng = 7;
	for (int iter = 0; iter < 20000; iter++) {
		test_make_bzimage(f->img);
		int flips = 1 + (int)(test_rand(&rng) % 4);
		for (int i = 0; i < flips; i++) {
			/* Mostly the header, where the decisions are. */
			size_t at = 0x1f1 + test_rand(&rng) % (TEST_BZ_HDR_END - 0x1f1);
			f->img[at] = (uint8_t)test_rand(&rng);
		}
		if (kernel_load(&f->gm, f->img, TEST_BZ_LEN, &f->k) == 0) {
			assert_true(f->k.load_start >= LAYOUT_HIMEM_START);
			assert_true(f->k.load_end <= gm_low_end(&f->gm));
			assert_int_equal(f->k.entry, f->k.load_start + 0x200);
		}
	}
}

static uint8_t *read_real_kernel(size_t *len)
{
	glob_t g;
	if (glob("/boot/vmlinuz-*-cloud-amd64", 0, NULL, &g) != 0)
		return NULL;
	FILE *fp = fopen(g.gl_pathv[0], "rb");
	globfree(&g);
	if (!fp)
		return NULL;
	uint8_t *buf = NULL;
	if (fseek(fp, 0, SEEK_END) == 0) {
		long n = ftell(fp);
		buf = n > 0 ? malloc((size_t)n) : NULL;
		rewind(fp);
		if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(fp);
	return buf;
}

static void check_real_kernel(uint64_t ram, uint64_t want_load)
{
	size_t len = 0;
	uint8_t *img = read_real_kernel(&len);
	if (!img)
		skip();
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, ram), 0);
	struct kernel_image k;
	assert_int_equal(kernel_load(&gm, img, len, &k), 0);
	assert_true(k.is_bzimage);
	assert_int_equal(k.load_start, want_load);
	assert_int_equal(k.entry, want_load + 0x200);
	assert_true(k.hdr.version >= 0x020c);
	assert_true(k.load_end - k.load_start >= k.hdr.init_size);
	size_t setup = ((size_t)(img[0x1f1] ? img[0x1f1] : 4) + 1) * 512;
	assert_memory_equal(gm_ptr(&gm, want_load, 4096), img + setup, 4096);
	/* syssize paragraphs are loaded; a signature appended after them is not. */
	size_t payload = (size_t)k.hdr.syssize * 16;
	assert_true(payload <= len - setup);
	assert_memory_equal(gm_ptr(&gm, want_load + payload - 4096, 4096),
			    img + setup + payload - 4096, 4096);
	uint64_t initrd;
	assert_int_equal(initrd_choose_addr(&gm, &k, 4 << 20, &initrd), 0);
	assert_true(initrd >= k.load_end);
	guest_mem_free(&gm);
	free(img);
}

static void test_real_bzimage(void **state)
{
	(void)state;
	check_real_kernel(256ULL << 20, 0x1000000); /* at its pref_address */
}

static void test_real_bzimage_relocated(void **state)
{
	(void)state;
	/* 16 MiB + init_size (~52 MiB) does not fit in 64 MiB: relocated to 2 MiB. */
	check_real_kernel(64ULL << 20, 0x200000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_valid_bzimage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_copy_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_old_or_32bit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_setup_sects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syssize, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_reasons, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alignment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relocation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_huge_init_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
	    cmocka_unit_test(test_real_bzimage),
	    cmocka_unit_test(test_real_bzimage_relocated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
