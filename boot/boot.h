/* Linux x86-64 boot: kernel loaders (vmlinux ELF and bzImage), initrd placement, the zero
 * page (boot_params with e820 map and cmdline) and the long-mode CPU state (GDT, identity
 * page tables, registers). Every size and header field is checked against the image and
 * guest memory; a bad image is an error, never a crash. Loaders take the image as a buffer
 * so they can be fuzzed. */
#ifndef KILN_BOOT_H
#define KILN_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <asm/bootparam.h>
#include <linux/kvm.h>

#include "vmm/guest_mem.h"
#include "vmm/layout.h"

/* Values kiln puts into a synthesized (ELF) setup header and uses as defaults. */
#define BOOT_HDR_MAGIC 0x53726448U /* "HdrS" */
#define BOOT_FLAG_MAGIC 0xaa55U
#define BOOT_LOADER_TYPE 0xffU		   /* "undefined" boot loader */
#define BOOT_INITRD_ADDR_MAX 0x37ffffffULL /* keeps an initrd below 896 MiB */
#define BOOT_ENTRY64_OFFSET 0x200ULL	   /* bzImage 64-bit entry, from the load address */

/* e820 entry types (the values are boot protocol ABI). */
#define BOOT_E820_RAM 1U
#define BOOT_E820_RESERVED 2U

/* Boot GDT at LAYOUT_GDT_ADDR: null, 64-bit code, data, TSS; an 8-byte zero IDT follows it
 * so that a fault before the kernel loads its own IDT is a clean triple fault. */
#define BOOT_GDT_ENTRIES 4
#define BOOT_IDT_ADDR (LAYOUT_GDT_ADDR + 8 * BOOT_GDT_ENTRIES)
#define BOOT_CS_SELECTOR 0x08
#define BOOT_DS_SELECTOR 0x10
#define BOOT_TSS_SELECTOR 0x18

struct kernel_image {
	uint64_t entry;	     /* 64-bit entry point, guest physical */
	uint64_t load_start; /* lowest guest address the kernel occupies */
	uint64_t load_end;   /* exclusive; includes bzImage init_size */
	bool is_bzimage;
	/* bzImage: the setup header as found in the image, copied into the zero page.
	 * ELF: a synthesized header (boot protocol 2.15 values). */
	struct setup_header hdr;
	uint64_t initrd_addr_max; /* highest byte address an initrd may end at (inclusive) */
	uint32_t cmdline_max;	  /* max cmdline length the kernel accepts, excluding NUL */
};

/* Detects the format (ELF magic, else "HdrS" at 0x202) and loads the kernel into guest
 * memory. Returns 0, -ENOEXEC for an unrecognized/malformed image, -EFAULT/-ENOMEM when it
 * does not fit in guest RAM. Guest memory must be fresh (all zero): the ELF loader copies
 * p_filesz bytes and relies on that for the bss, the bzImage loader leaves init_size alone.
 * An image that is refused leaves guest memory untouched.
 *
 * ELF (vmlinux): ELF64 LSB x86-64 ET_EXEC; every PT_LOAD lands at p_paddr, which must be in
 * RAM at or above LAYOUT_HIMEM_START and end at or below 4 GiB; e_entry (the physical startup_64)
 * must lie in the file bytes of an executable PT_LOAD. bzImage: boot protocol >= 2.12 with
 * XLF_KERNEL_64; the file must hold the setup sectors and syssize * 16 payload bytes (only those
 * are loaded). The protected-mode part is loaded at pref_address if it is kernel_alignment-aligned,
 * >= LAYOUT_HIMEM_START and max(payload, init_size) fits below gm_low_end(); otherwise, if
 * relocatable, at the lowest aligned address >= LAYOUT_HIMEM_START; entry = load +
 * BOOT_ENTRY64_OFFSET. cmdline_max is the smaller of the kernel's cmdline_size and
 * LAYOUT_CMDLINE_MAX - 1. */
int kernel_load(const struct guest_mem *gm, const uint8_t *img, size_t len,
		struct kernel_image *out);

/* Everything kernel_load() checks that needs no guest memory: the format, and every
 * header field that describes the file (bzImage setup_sects and syssize, ELF program
 * headers and segment offsets/sizes) against the file's length; ELF segments must lie in
 * [1 MiB, 4 GiB), which the boot page tables map. 0, or -ENOEXEC with *why (may be NULL)
 * set to a static phrase saying what is wrong. */
int kernel_check(const uint8_t *img, size_t len, const char **why);
int kernel_check_elf(const uint8_t *img, size_t len, const char **why);
int kernel_check_bzimage(const uint8_t *img, size_t len, const char **why);
int kernel_load_elf(const struct guest_mem *gm, const uint8_t *img, size_t len,
		    struct kernel_image *out);
int kernel_load_bzimage(const struct guest_mem *gm, const uint8_t *img, size_t len,
			struct kernel_image *out);

/* Picks the page-aligned guest address for an initrd of `size` (> 0) bytes: as high as
 * possible in low RAM with the last byte at or below k->initrd_addr_max, starting at or
 * above both k->load_end and LAYOUT_HIMEM_START. 0, -EINVAL for size 0, -ENOMEM when it
 * does not fit. */
int initrd_choose_addr(const struct guest_mem *gm, const struct kernel_image *k, uint64_t size,
		       uint64_t *addr);

struct boot_layout {
	uint64_t cmdline_gpa;
	uint32_t cmdline_len; /* excluding NUL; the NUL-terminated string must already be in
			       * guest memory */
	uint64_t initrd_gpa;  /* 0 if none */
	uint64_t initrd_size; /* 0 if none; this is what bootparams_write looks at */
	uint64_t rsdp_gpa;    /* 0 if none */
};

/* Builds the e820 map for this guest's RAM into `table`, returns the entry count or
 * -ENOSPC. RAM [0, EBDA), reserved [EBDA, 1 MiB) (EBDA, BIOS area and the ACPI tables),
 * RAM [1 MiB, gm_low_end()) and the RAM above 4 GiB; at most 4 entries. */
int e820_build(const struct guest_mem *gm, struct boot_e820_entry *table, unsigned max);

/* Writes the zero page at LAYOUT_ZERO_PAGE_ADDR (whole page zeroed first): k->hdr with
 * type_of_loader 0xff and LOADED_HIGH, the cmdline and initrd pointers (with their ext_
 * high halves), acpi_rsdp_addr and the e820 map. Returns 0; -EINVAL if cmdline_len >
 * k->cmdline_max, the cmdline is not NUL-terminated, or the initrd overlaps the kernel,
 * starts below LAYOUT_HIMEM_START or ends above k->initrd_addr_max (initrd_choose_addr's
 * answer always passes); -EFAULT if the cmdline, initrd, the 20-byte RSDP or the zero page
 * is not in guest RAM. Nothing is written on error. */
int bootparams_write(const struct guest_mem *gm, const struct kernel_image *k,
		     const struct boot_layout *bl);

/* Writes the GDT (+ zero IDT) and identity page tables (0..4 GiB, 2 MiB pages) to guest
 * memory and fills the BSP's special and general registers for the 64-bit entry: long mode
 * with paging, flat segments, rip = k->entry, rsp = rbp = LAYOUT_BOOT_STACK_ADDR, rsi = the
 * zero page, rflags = 0x2, every other general register 0. sregs must hold KVM_GET_SREGS
 * output (its apic_base and interrupt bitmap are kept). 0 or -EFAULT. */
int boot_setup_cpu(const struct guest_mem *gm, const struct kernel_image *k,
		   struct kvm_sregs *sregs, struct kvm_regs *regs);

#endif
