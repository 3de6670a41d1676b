/* vmlinux ELF loader and the kernel_load() dispatcher. */
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

#define RAM_SIZE (256ULL << 20)

struct fixture {
	struct guest_mem gm;
	_Alignas(8) uint8_t img[TEST_ELF_LEN];
	struct kernel_image k;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->gm, RAM_SIZE), 0);
	test_make_elf(f->img);
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
	return kernel_load_elf(&f->gm, f->img, TEST_ELF_LEN, &f->k);
}

static bool guest_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gm_ptr(gm, gpa, len);
	assert_non_null(p);
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void test_valid_elf(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load(f), 0);
	assert_false(f->k.is_bzimage);
	assert_int_equal(f->k.entry, TEST_ELF_ENTRY);
	assert_int_equal(f->k.load_start, TEST_ELF_PADDR);
	assert_int_equal(f->k.load_end, TEST_ELF_DATA_PADDR + TEST_ELF_DATA_MEMSZ);
	assert_memory_equal(gm_ptr(&f->gm, TEST_ELF_PADDR, TEST_ELF_TEXT_LEN),
			    f->img + TEST_ELF_TEXT_OFF, TEST_ELF_TEXT_LEN);
	assert_memory_equal(gm_ptr(&f->gm, TEST_ELF_DATA_PADDR, TEST_ELF_DATA_LEN),
			    f->img + TEST_ELF_DATA_OFF, TEST_ELF_DATA_LEN);
	/* bss untouched (zero), and nothing landed at the virtual addresses' low bits. */
	assert_true(guest_zero(&f->gm, TEST_ELF_DATA_PADDR + TEST_ELF_DATA_LEN,
			       TEST_ELF_DATA_MEMSZ - TEST_ELF_DATA_LEN));
	assert_true(guest_zero(&f->gm, 0, LAYOUT_HIMEM_START));
}

static void test_synth_hdr(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load(f), 0);
	const struct setup_header *h = &f->k.hdr;
	assert_int_equal(h->boot_flag, 0xaa55);
	assert_int_equal(h->header, 0x53726448);
	assert_int_equal(h->version, 0x020f);
	assert_int_equal(h->type_of_loader, 0xff);
	assert_int_equal(h->kernel_alignment, 0x1000000);
	assert_int_equal(h->initrd_addr_max, 0x37ffffff);
	assert_int_equal(h->cmdline_size, LAYOUT_CMDLINE_MAX - 1);
	assert_int_equal(f->k.initrd_addr_max, 0x37ffffff);
	assert_int_equal(f->k.cmdline_max, LAYOUT_CMDLINE_MAX - 1);
}

static void test_dispatch(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(kernel_load(&f->gm, f->img, TEST_ELF_LEN, &f->k), 0);
	assert_false(f->k.is_bzimage);
	assert_int_equal(f->k.entry, TEST_ELF_ENTRY);
	static const uint8_t junk[0x300] = {1, 2, 3};
	assert_int_equal(kernel_load(&f->gm, junk, sizeof(junk), &f->k), -ENOEXEC);
	assert_int_equal(kernel_load(&f->gm, junk, 0, &f->k), -ENOEXEC);
	assert_int_equal(kernel_load(&f->gm, f->img, 3, &f->k), -ENOEXEC);
}

/* Every prefix must fail cleanly (ASan checks the reads); only the full image loads. */
static void test_truncated(void **state)
{
	struct fixture *f = *state;
	for (size_t len = 0; len < TEST_ELF_LEN; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, f->img, len);
		assert_int_equal(kernel_load_elf(&f->gm, copy, len, &f->k), -ENOEXEC);
		assert_int_equal(kernel_load(&f->gm, copy, len, &f->k), -ENOEXEC);
		free(copy);
	}
	/* Nothing was copied by a refused image. */
	assert_true(guest_zero(&f->gm, TEST_ELF_PADDR, 0x4000));
}

static void test_bad_ident(void **state)
{
	struct fixture *f = *state;
	Elf64_Ehdr *eh = test_elf_ehdr(f->img);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	eh->e_ident[EI_DATA] = ELFDATA2MSB;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	eh->e_machine = EM_386;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	eh->e_type = ET_DYN;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	eh->e_ident[EI_MAG3] = 'G';
	assert_int_equal(load(f), -ENOEXEC);
	assert_int_equal(kernel_load(&f->gm, f->img, TEST_ELF_LEN, &f->k), -ENOEXEC);
	test_make_elf(f->img);
	eh->e_phentsize = sizeof(Elf64_Phdr) + 8;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	eh->e_phnum = 0;
	assert_int_equal(load(f), -ENOEXEC);
}

static void test_phdr_table_outside_file(void **state)
{
	struct fixture *f = *state;
	Elf64_Ehdr *eh = test_elf_ehdr(f->img);
	eh->e_phoff = TEST_ELF_LEN;
	assert_int_equal(load(f), -ENOEXEC);
	eh->e_phoff = TEST_ELF_LEN - sizeof(Elf64_Phdr) + 1;
	assert_int_equal(load(f), -ENOEXEC);
	eh->e_phoff = UINT64_MAX - 8;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	eh->e_phnum = 0xffff;
	assert_int_equal(load(f), -ENOEXEC);
	eh->e_phnum = (TEST_ELF_LEN - sizeof(Elf64_Ehdr)) / sizeof(Elf64_Phdr) + 1;
	assert_int_equal(load(f), -ENOEXEC);
}

static void test_segment_file_range(void **state)
{
	struct fixture *f = *state;
	Elf64_Phdr *ph = test_elf_phdr(f->img, TEST_ELF_TEXT);
	Elf64_Phdr *data = test_elf_phdr(f->img, TEST_ELF_DATA);
	ph->p_filesz = ph->p_memsz + 1;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	ph->p_offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	ph->p_offset = TEST_ELF_LEN - TEST_ELF_TEXT_LEN + 1;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	ph->p_filesz = UINT64_MAX;
	ph->p_memsz = UINT64_MAX;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	data->p_offset = TEST_ELF_LEN + 1; /* even an empty file range must be in the file */
	data->p_filesz = 0;
	assert_int_equal(load(f), -ENOEXEC);
	assert_true(guest_zero(&f->gm, TEST_ELF_PADDR, 0x4000));
	data->p_offset = TEST_ELF_LEN;
	assert_int_equal(load(f), 0);
}

static void test_segment_guest_range(void **state)
{
	struct fixture *f = *state;
	Elf64_Phdr *ph = test_elf_phdr(f->img, TEST_ELF_DATA);
	ph->p_paddr = UINT64_MAX - 0x100; /* paddr + memsz wraps: above 4 GiB */
	assert_int_equal(load(f), -ENOEXEC);
	ph->p_paddr = RAM_SIZE - 0x1000; /* memsz runs past the end of RAM */
	assert_int_equal(load(f), -ENOMEM);
	ph->p_paddr = RAM_SIZE;
	assert_int_equal(load(f), -ENOMEM);
	ph->p_paddr = LAYOUT_MMIO_GAP_START;
	assert_int_equal(load(f), -ENOMEM);
	/* Refused by the file check alone, whatever the guest's RAM. */
	ph->p_paddr = LAYOUT_HIMEM_START - 0x1000; /* would clobber the boot structures */
	assert_int_equal(load(f), -ENOEXEC);
	ph->p_paddr = LAYOUT_ZERO_PAGE_ADDR;
	assert_int_equal(load(f), -ENOEXEC);
	test_make_elf(f->img);
	ph->p_memsz = UINT64_MAX;
	assert_int_equal(load(f), -ENOEXEC);
	/* The last page of RAM is fine. */
	test_make_elf(f->img);
	ph->p_paddr = RAM_SIZE - TEST_ELF_DATA_MEMSZ;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_end, RAM_SIZE);
}

static void test_entry(void **state)
{
	struct fixture *f = *state;
	Elf64_Ehdr *eh = test_elf_ehdr(f->img);
	eh->e_entry = TEST_ELF_PADDR - 1;
	assert_int_equal(load(f), -ENOEXEC);
	eh->e_entry = TEST_ELF_PADDR + TEST_ELF_TEXT_LEN; /* one past the text */
	assert_int_equal(load(f), -ENOEXEC);
	eh->e_entry = TEST_ELF_DATA_PADDR; /* loaded, but not executable */
	assert_int_equal(load(f), -ENOEXEC);
	eh->e_entry = 0xffffffff81000000ULL; /* the virtual address */
	assert_int_equal(load(f), -ENOEXEC);
	eh->e_entry = TEST_ELF_PADDR;
	assert_int_equal(load(f), 0);
	eh->e_entry = TEST_ELF_PADDR + TEST_ELF_TEXT_LEN - 1;
	assert_int_equal(load(f), 0);
	/* In an executable segment's bss: not code. */
	test_make_elf(f->img);
	Elf64_Phdr *data = test_elf_phdr(f->img, TEST_ELF_DATA);
	data->p_flags |= PF_X;
	eh->e_entry = TEST_ELF_DATA_PADDR + TEST_ELF_DATA_LEN;
	assert_int_equal(load(f), -ENOEXEC);
	eh->e_entry = TEST_ELF_DATA_PADDR;
	assert_int_equal(load(f), 0);
}

static void test_no_load_segment(void **state)
{
	struct fixture *f = *state;
	test_elf_phdr(f->img, TEST_ELF_TEXT)->p_type = PT_NOTE;
	test_elf_phdr(f->img, TEST_ELF_DATA)->p_type = PT_GNU_STACK;
	assert_int_equal(load(f), -ENOEXEC);
	/* A non-LOAD header may point anywhere: it is not loaded. */
	test_make_elf(f->img);
	test_elf_phdr(f->img, TEST_ELF_NOTE)->p_offset = UINT64_MAX;
	test_elf_phdr(f->img, TEST_ELF_NOTE)->p_paddr = UINT64_MAX;
	assert_int_equal(load(f), 0);
}

/* The boot page tables map 0..4 GiB only: a segment (and so the entry) above is refused,
 * by the file check alone, even when the guest has RAM there. */
static void test_above_4g(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 5ULL << 30), 0);
	_Alignas(8) uint8_t img[TEST_ELF_LEN];
	const char *why = NULL;
	test_make_elf(img);
	test_elf_phdr(img, TEST_ELF_DATA)->p_paddr = LAYOUT_HIGH_RAM_START;
	struct kernel_image k;
	assert_int_equal(kernel_check(img, sizeof(img), &why), -ENOEXEC);
	assert_non_null(strstr(why, "4 GiB"));
	assert_int_equal(kernel_load_elf(&gm, img, sizeof(img), &k), -ENOEXEC);
	assert_int_equal(*(uint8_t *)gm_ptr(&gm, TEST_ELF_PADDR + TEST_ELF_TEXT_LEN - 1, 1), 0);
	/* Ending exactly at 4 GiB is mapped; one byte more is not. */
	test_elf_phdr(img, TEST_ELF_DATA)->p_paddr = (1ULL << 32) - TEST_ELF_DATA_MEMSZ;
	assert_int_equal(kernel_check(img, sizeof(img), &why), 0);
	test_elf_phdr(img, TEST_ELF_DATA)->p_paddr++;
	assert_int_equal(kernel_check(img, sizeof(img), &why), -ENOEXEC);
	/* The entry in a segment above 4 GiB. */
	test_make_elf(img);
	test_elf_phdr(img, TEST_ELF_TEXT)->p_paddr += LAYOUT_HIGH_RAM_START;
	test_elf_ehdr(img)->e_entry += LAYOUT_HIGH_RAM_START;
	assert_int_equal(kernel_load(&gm, img, sizeof(img), &k), -ENOEXEC);
	/* Straddling the MMIO gap is not one RAM range. */
	test_make_elf(img);
	test_elf_phdr(img, TEST_ELF_DATA)->p_paddr = LAYOUT_MMIO_GAP_START - 0x1000;
	assert_int_equal(kernel_check(img, sizeof(img), &why), 0);
	assert_int_equal(kernel_load_elf(&gm, img, sizeof(img), &k), -ENOMEM);
	guest_mem_free(&gm);
}

/* Segment sizes and offsets that claim more than the file holds, found without guest memory. */
static void test_check_file_claims(void **state)
{
	(void)state;
	_Alignas(8) uint8_t img[TEST_ELF_LEN];
	const char *why = NULL;
	test_make_elf(img);
	assert_int_equal(kernel_check(img, sizeof(img), &why), 0);
	assert_int_equal(kernel_check(img, sizeof(img) - 1, &why), -ENOEXEC);
	assert_non_null(strstr(why, "more bytes than the file holds"));
	test_elf_phdr(img, TEST_ELF_TEXT)->p_filesz = UINT64_MAX - TEST_ELF_TEXT_OFF + 2;
	assert_int_equal(kernel_check(img, sizeof(img), &why), -ENOEXEC);
	test_make_elf(img);
	test_elf_phdr(img, TEST_ELF_DATA)->p_offset = TEST_ELF_LEN;
	assert_int_equal(kernel_check(img, sizeof(img), &why), -ENOEXEC);
	test_make_elf(img);
	test_elf_ehdr(img)->e_phoff = TEST_ELF_LEN - 8;
	assert_int_equal(kernel_check(img, sizeof(img), &why), -ENOEXEC);
	assert_non_null(strstr(why, "program headers"));
}

/* Random byte and field corruption: must never crash, and success must mean sane output. */
static void test_mutations(void **state)
{
	struct fixture *f = *state;
	uint64_t rng = 1;
	for (int iter = 0; iter < 20000; iter++) {
		test_make_elf(f->img);
		int flips = 1 + (int)(test_rand(&rng) % 4);
		for (int i = 0; i < flips; i++) {
			size_t at = test_rand(&rng) % TEST_ELF_LEN;
			f->img[at] = (uint8_t)test_rand(&rng);
		}
		size_t len = TEST_ELF_LEN - (test_rand(&rng) % 8 == 0 ? test_rand(&rng) % 64 : 0);
		if (kernel_load(&f->gm, f->img, len, &f->k) == 0) {
			assert_true(f->k.load_start >= LAYOUT_HIMEM_START);
			assert_true(f->k.load_end <= gm_low_end(&f->gm));
			assert_true(f->k.entry >= f->k.load_start && f->k.entry < f->k.load_end);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_valid_elf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_synth_hdr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_ident, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_phdr_table_outside_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_segment_file_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_segment_guest_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_load_segment, setup, teardown),
	    cmocka_unit_test(test_above_4g),
	    cmocka_unit_test(test_check_file_claims),
	    cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
