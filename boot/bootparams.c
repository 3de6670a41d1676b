/* The zero page (struct boot_params): e820 map, cmdline, initrd and RSDP pointers, and the
 * kernel's setup header; plus initrd placement. */
#include "boot/boot.h"

#include <errno.h>
#include <string.h>

#define PAGE_MASK_4K 0xfffULL
#define RSDP_V1_LEN 20 /* the part every kernel reads */

_Static_assert(sizeof(struct boot_params) == 4096, "the zero page is one page");

static int e820_add(struct boot_e820_entry *table, unsigned max, unsigned *n, uint64_t addr,
		    uint64_t size, uint32_t type)
{
	if (size == 0)
		return 0;
	if (*n >= max)
		return -ENOSPC;
	table[*n] = (struct boot_e820_entry){.addr = addr, .size = size, .type = type};
	(*n)++;
	return 0;
}

int e820_build(const struct guest_mem *gm, struct boot_e820_entry *table, unsigned max)
{
	uint64_t low_end = gm_low_end(gm);
	uint64_t base_end = low_end < LAYOUT_EBDA_START ? low_end : LAYOUT_EBDA_START;
	unsigned n = 0;
	int err = e820_add(table, max, &n, 0, base_end, BOOT_E820_RAM);
	if (!err)
		err = e820_add(table, max, &n, LAYOUT_EBDA_START,
			       LAYOUT_HIMEM_START - LAYOUT_EBDA_START, BOOT_E820_RESERVED);
	if (!err && low_end > LAYOUT_HIMEM_START)
		err = e820_add(table, max, &n, LAYOUT_HIMEM_START, low_end - LAYOUT_HIMEM_START,
			       BOOT_E820_RAM);
	for (unsigned i = 1; !err && i < gm->nr_regions; i++)
		err =
		    e820_add(table, max, &n, gm->region[i].gpa, gm->region[i].size, BOOT_E820_RAM);
	return err ? err : (int)n;
}

int initrd_choose_addr(const struct guest_mem *gm, const struct kernel_image *k, uint64_t size,
		       uint64_t *addr)
{
	if (size == 0)
		return -EINVAL;
	uint64_t top = gm_low_end(gm);
	/* top = min(low_end, initrd_addr_max + 1) without overflowing the + 1. */
	if (k->initrd_addr_max < top)
		top = k->initrd_addr_max + 1;
	uint64_t floor = k->load_end > LAYOUT_HIMEM_START ? k->load_end : LAYOUT_HIMEM_START;
	if (size > top)
		return -ENOMEM;
	uint64_t start = (top - size) & ~PAGE_MASK_4K;
	if (start < floor)
		return -ENOMEM;
	*addr = start;
	return 0;
}

static int check_cmdline(const struct guest_mem *gm, const struct kernel_image *k,
			 const struct boot_layout *bl)
{
	if (bl->cmdline_len > k->cmdline_max)
		return -EINVAL;
	const uint8_t *p = gm_ptr(gm, bl->cmdline_gpa, (uint64_t)bl->cmdline_len + 1);
	if (!p)
		return -EFAULT;
	if (p[bl->cmdline_len] != '\0')
		return -EINVAL;
	return 0;
}

static int check_initrd(const struct guest_mem *gm, const struct kernel_image *k,
			const struct boot_layout *bl)
{
	uint64_t gpa = bl->initrd_gpa, size = bl->initrd_size;
	if (size == 0)
		return 0;
	if (!gm_ptr(gm, gpa, size))
		return -EFAULT;
	/* In RAM, so gpa + size does not wrap. */
	if (gpa < LAYOUT_HIMEM_START || gpa > k->initrd_addr_max ||
	    size - 1 > k->initrd_addr_max - gpa)
		return -EINVAL;
	if (gpa < k->load_end && k->load_start < gpa + size)
		return -EINVAL;
	return 0;
}

static void fill_pointers(struct boot_params *bp, const struct boot_layout *bl)
{
	bp->hdr.cmd_line_ptr = (uint32_t)bl->cmdline_gpa;
	bp->ext_cmd_line_ptr = (uint32_t)(bl->cmdline_gpa >> 32);
	if (bl->initrd_size) {
		bp->hdr.ramdisk_image = (uint32_t)bl->initrd_gpa;
		bp->ext_ramdisk_image = (uint32_t)(bl->initrd_gpa >> 32);
		bp->hdr.ramdisk_size = (uint32_t)bl->initrd_size;
		bp->ext_ramdisk_size = (uint32_t)(bl->initrd_size >> 32);
	}
	bp->acpi_rsdp_addr = bl->rsdp_gpa;
}

int bootparams_write(const struct guest_mem *gm, const struct kernel_image *k,
		     const struct boot_layout *bl)
{
	int err = check_cmdline(gm, k, bl);
	if (!err)
		err = check_initrd(gm, k, bl);
	if (err)
		return err;
	if (bl->rsdp_gpa && !gm_ptr(gm, bl->rsdp_gpa, RSDP_V1_LEN))
		return -EFAULT;

	struct boot_params bp;
	memset(&bp, 0, sizeof(bp));
	bp.hdr = k->hdr;
	bp.hdr.type_of_loader = BOOT_LOADER_TYPE;
	bp.hdr.loadflags |= LOADED_HIGH;
	fill_pointers(&bp, bl);
	int n = e820_build(gm, bp.e820_table, E820_MAX_ENTRIES_ZEROPAGE);
	if (n < 0)
		return n;
	bp.e820_entries = (uint8_t)n;
	return gm_write(gm, LAYOUT_ZERO_PAGE_ADDR, &bp, sizeof(bp));
}
