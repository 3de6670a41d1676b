/* Small synthesized kernel images for the boot tests: a vmlinux-like ELF and a bzImage,
 * built into caller buffers so each test can corrupt one field. */
#ifndef KILN_BOOT_TEST_IMAGES_H
#define KILN_BOOT_TEST_IMAGES_H

#include <elf.h>
#include <stdint.h>
#include <string.h>

#include "boot/boot.h"

/* ELF: Ehdr, then PT_NOTE, PT_LOAD text (R+X) and PT_LOAD data (R+W, with bss). */
#define TEST_ELF_PADDR 0x1000000ULL
#define TEST_ELF_TEXT_OFF 0x100
#define TEST_ELF_TEXT_LEN 0x100
#define TEST_ELF_DATA_OFF 0x200
#define TEST_ELF_DATA_LEN 0x80
#define TEST_ELF_DATA_PADDR (TEST_ELF_PADDR + 0x1000)
#define TEST_ELF_DATA_MEMSZ 0x3000
#define TEST_ELF_ENTRY (TEST_ELF_PADDR + 0x10)
#define TEST_ELF_LEN 0x280
#define TEST_ELF_NOTE 0
#define TEST_ELF_TEXT 1
#define TEST_ELF_DATA 2

static inline uint8_t test_pattern(size_t i)
{
	return (uint8_t)(i * 7 + 0x5a);
}

static inline Elf64_Ehdr *test_elf_ehdr(uint8_t *img)
{
	return (Elf64_Ehdr *)img;
}

static inline Elf64_Phdr *test_elf_phdr(uint8_t *img, unsigned i)
{
	return (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr)) + i;
}

/* img must be 8-byte aligned and at least TEST_ELF_LEN bytes. Returns the length. */
static inline size_t test_make_elf(uint8_t *img)
{
	memset(img, 0, TEST_ELF_LEN);
	Elf64_Ehdr *eh = test_elf_ehdr(img);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = TEST_ELF_ENTRY;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 3;
	*test_elf_phdr(img, TEST_ELF_NOTE) =
	    (Elf64_Phdr){.p_type = PT_NOTE, .p_flags = PF_R, .p_offset = 0xf0, .p_filesz = 0x10};
	*test_elf_phdr(img, TEST_ELF_TEXT) = (Elf64_Phdr){.p_type = PT_LOAD,
							  .p_flags = PF_R | PF_X,
							  .p_offset = TEST_ELF_TEXT_OFF,
							  .p_vaddr = 0xffffffff81000000ULL,
							  .p_paddr = TEST_ELF_PADDR,
							  .p_filesz = TEST_ELF_TEXT_LEN,
							  .p_memsz = TEST_ELF_TEXT_LEN,
							  .p_align = 0x200000};
	*test_elf_phdr(img, TEST_ELF_DATA) = (Elf64_Phdr){.p_type = PT_LOAD,
							  .p_flags = PF_R | PF_W,
							  .p_offset = TEST_ELF_DATA_OFF,
							  .p_vaddr = 0xffffffff81001000ULL,
							  .p_paddr = TEST_ELF_DATA_PADDR,
							  .p_filesz = TEST_ELF_DATA_LEN,
							  .p_memsz = TEST_ELF_DATA_MEMSZ,
							  .p_align = 0x1000};
	for (size_t i = TEST_ELF_TEXT_OFF; i < TEST_ELF_LEN; i++)
		img[i] = test_pattern(i);
	return TEST_ELF_LEN;
}

/* bzImage: one setup sector after the boot sector, then a 0x400-byte payload. */
#define TEST_BZ_SETUP_SECTS 1
#define TEST_BZ_SETUP_LEN ((TEST_BZ_SETUP_SECTS + 1) * 512)
#define TEST_BZ_PAYLOAD_LEN 0x400
#define TEST_BZ_LEN (TEST_BZ_SETUP_LEN + TEST_BZ_PAYLOAD_LEN)
#define TEST_BZ_PREF 0x1000000ULL
#define TEST_BZ_ALIGN 0x200000U
#define TEST_BZ_INIT_SIZE 0x100000U
#define TEST_BZ_INITRD_MAX 0x7fffffffU
#define TEST_BZ_CMDLINE_SIZE 2047U
#define TEST_BZ_HDR_END 0x26c /* the jump at 0x200 lands here, past kernel_info_offset */

static inline struct setup_header *test_bz_hdr(uint8_t *img)
{
	return (struct setup_header *)(img + 0x1f1);
}

/* img must be at least TEST_BZ_LEN bytes. Returns the length. */
static inline size_t test_make_bzimage(uint8_t *img)
{
	memset(img, 0, TEST_BZ_LEN);
	struct setup_header *h = test_bz_hdr(img);
	h->setup_sects = TEST_BZ_SETUP_SECTS;
	h->syssize = TEST_BZ_PAYLOAD_LEN / 16;
	h->boot_flag = BOOT_FLAG_MAGIC;
	h->jump = (uint16_t)(0xeb | ((TEST_BZ_HDR_END - 0x202) << 8)); /* jmp short */
	h->header = BOOT_HDR_MAGIC;
	h->version = 0x020f;
	h->loadflags = LOADED_HIGH | CAN_USE_HEAP;
	h->initrd_addr_max = TEST_BZ_INITRD_MAX;
	h->kernel_alignment = TEST_BZ_ALIGN;
	h->relocatable_kernel = 1;
	h->min_alignment = 21;
	h->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
	h->cmdline_size = TEST_BZ_CMDLINE_SIZE;
	h->pref_address = TEST_BZ_PREF;
	h->init_size = TEST_BZ_INIT_SIZE;
	/* Bytes after the header (the "setup code") must not leak into the copied header. */
	for (size_t i = TEST_BZ_HDR_END; i < TEST_BZ_LEN; i++)
		img[i] = test_pattern(i);
	return TEST_BZ_LEN;
}

/* Deterministic generator for the mutation smoke tests. */
static inline uint64_t test_rand(uint64_t *state)
{
	*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
	return *state >> 33;
}

#endif
