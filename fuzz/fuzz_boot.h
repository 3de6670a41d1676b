/* Shared body of the boot fuzz harnesses: one guest, loader invariants, and the rest of the
 * boot path (initrd placement, zero page) run on every image a loader accepts. */
#ifndef KILN_FUZZ_BOOT_H
#define KILN_FUZZ_BOOT_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "vmm/guest_mem.h"

#define FUZZ_RAM_SIZE (64ULL << 20)

typedef int (*fuzz_loader_fn)(const struct guest_mem *gm, const uint8_t *img, size_t len,
			      struct kernel_image *out);
typedef int (*fuzz_check_fn)(const uint8_t *img, size_t len, const char **why);

/* Mapped once (the pages stay lazily allocated); inputs only ever touch what they load. */
static const struct guest_mem *fuzz_guest(void)
{
	static struct guest_mem gm;
	static int ready;
	if (!ready) {
		if (guest_mem_init(&gm, FUZZ_RAM_SIZE) != 0)
			abort();
		ready = 1;
	}
	return &gm;
}

static void fuzz_check_image(const struct guest_mem *gm, const struct kernel_image *k)
{
	if (k->load_start < LAYOUT_HIMEM_START || k->load_end > gm_low_end(gm))
		abort();
	if (k->entry < k->load_start || k->entry >= k->load_end)
		abort();
	if (k->cmdline_max > LAYOUT_CMDLINE_MAX - 1)
		abort();
}

/* An initrd placed by initrd_choose_addr must always be accepted by bootparams_write. */
static void fuzz_boot_rest(const struct guest_mem *gm, const struct kernel_image *k, size_t len)
{
	static const char cmdline[] = "console=ttyS0 panic=1";
	uint32_t cmdline_len = sizeof(cmdline) - 1;
	if (cmdline_len > k->cmdline_max)
		cmdline_len = 0;
	if (gm_write(gm, LAYOUT_CMDLINE_ADDR, cmdline, cmdline_len) != 0 ||
	    gm_write(gm, LAYOUT_CMDLINE_ADDR + cmdline_len, "", 1) != 0)
		abort();
	struct boot_layout bl = {.cmdline_gpa = LAYOUT_CMDLINE_ADDR,
				 .cmdline_len = cmdline_len,
				 .initrd_size = 1 + (uint64_t)len * 40503 % (48ULL << 20),
				 .rsdp_gpa = LAYOUT_ACPI_START};
	if (initrd_choose_addr(gm, k, bl.initrd_size, &bl.initrd_gpa) != 0)
		bl.initrd_size = 0;
	if (bootparams_write(gm, k, &bl) != 0)
		abort();
}

static int fuzz_boot_one(fuzz_loader_fn load, fuzz_check_fn check, const uint8_t *data, size_t size)
{
	const struct guest_mem *gm = fuzz_guest();
	struct kernel_image k;
	const char *why = NULL;
	int checked = check(data, size, &why);
	/* The file check is exactly the part of loading that needs no guest memory. */
	if ((checked != 0) != (why != NULL) || (checked != 0 && checked != -ENOEXEC))
		abort();
	if (load(gm, data, size, &k) != 0)
		return 0;
	if (checked != 0)
		abort();
	fuzz_check_image(gm, &k);
	fuzz_boot_rest(gm, &k, size);
	return 0;
}

#endif
