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

/* Detects the format and loads the kernel into guest memory. Returns 0, -ENOEXEC for an
 * unrecognized/malformed image, -EFAULT/-ENOMEM when it does not fit in guest RAM. */
int kernel_load(const struct guest_mem *gm, const uint8_t *img, size_t len,
		struct kernel_image *out);
int kernel_load_elf(const struct guest_mem *gm, const uint8_t *img, size_t len,
		    struct kernel_image *out);
int kernel_load_bzimage(const struct guest_mem *gm, const uint8_t *img, size_t len,
			struct kernel_image *out);

/* Picks the page-aligned guest address for an initrd of `size` bytes: as high as possible
 * in low RAM, below initrd_addr_max, above the kernel and the boot structures. */
int initrd_choose_addr(const struct guest_mem *gm, const struct kernel_image *k, uint64_t size,
		       uint64_t *addr);

struct boot_layout {
	uint64_t cmdline_gpa;
	uint32_t cmdline_len; /* excluding NUL; the string must already be in guest memory */
	uint64_t initrd_gpa;  /* 0 if none */
	uint64_t initrd_size;
	uint64_t rsdp_gpa; /* 0 if none */
};

/* Builds the e820 map for this guest's RAM into `table`, returns the entry count or
 * -ENOSPC. Reserves the EBDA/BIOS area and the ACPI tables. */
int e820_build(const struct guest_mem *gm, struct boot_e820_entry *table, unsigned max);

/* Writes the zero page at LAYOUT_ZERO_PAGE_ADDR. */
int bootparams_write(const struct guest_mem *gm, const struct kernel_image *k,
		     const struct boot_layout *bl);

/* Writes the GDT and identity page tables to guest memory and fills the BSP's special and
 * general registers for the 64-bit entry. sregs must hold KVM_GET_SREGS output. */
int boot_setup_cpu(const struct guest_mem *gm, const struct kernel_image *k,
		   struct kvm_sregs *sregs, struct kvm_regs *regs);

#endif
