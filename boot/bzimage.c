/* bzImage loader (Linux x86 boot protocol, Documentation/arch/x86/boot.rst), 64-bit entry
 * only: the real-mode setup code is never run, only its setup header is used. */
#include "boot/boot.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define BZ_HDR_OFFSET 0x1f1 /* offsetof(struct boot_params, hdr) */
#define BZ_JUMP_LEN_OFFSET 0x201
#define BZ_JUMP_END 0x202 /* the jump's displacement counts from here */
#define BZ_SECTOR 512
#define BZ_PARAGRAPH 16 /* syssize unit */
#define BZ_DEFAULT_SETUP_SECTS 4
#define BZ_MIN_VERSION 0x020c /* 2.12: xloadflags, pref_address, init_size */

_Static_assert(offsetof(struct boot_params, hdr) == BZ_HDR_OFFSET, "setup header offset");

static int bz_bad(const char **why, const char *what)
{
	*why = what;
	return -ENOEXEC;
}

/* Copies the header as the kernel declares it: up to the end of its initial jump, bounded
 * by the struct and the image. The fields kiln reads (up to init_size) must be covered. */
static int bz_copy_hdr(const uint8_t *img, size_t len, struct setup_header *hdr, const char **why)
{
	if (len <= BZ_JUMP_LEN_OFFSET)
		return bz_bad(why, "bzImage shorter than its setup header");
	uint64_t end = BZ_JUMP_END + (uint64_t)img[BZ_JUMP_LEN_OFFSET];
	if (end > BZ_HDR_OFFSET + sizeof(*hdr))
		end = BZ_HDR_OFFSET + sizeof(*hdr);
	if (end > len)
		end = len;
	uint64_t need =
	    BZ_HDR_OFFSET + offsetof(struct setup_header, init_size) + sizeof(hdr->init_size);
	if (end < need)
		return bz_bad(why, "bzImage setup header too short (boot protocol < 2.12)");
	memset(hdr, 0, sizeof(*hdr));
	memcpy(hdr, img + BZ_HDR_OFFSET, end - BZ_HDR_OFFSET);
	return 0;
}

static int bz_check_hdr(const struct setup_header *hdr, const char **why)
{
	if (hdr->boot_flag != BOOT_FLAG_MAGIC || hdr->header != BOOT_HDR_MAGIC)
		return bz_bad(why, "bzImage without boot_flag/HdrS magic");
	if (hdr->version < BZ_MIN_VERSION || !(hdr->xloadflags & XLF_KERNEL_64))
		return bz_bad(why, "bzImage without a 64-bit entry (boot protocol >= 2.12)");
	uint32_t align = hdr->kernel_alignment;
	if (align == 0 || (align & (align - 1)) != 0)
		return bz_bad(why, "bzImage kernel_alignment not a power of two");
	return 0;
}

/* The header, and where the protected-mode payload lies in the file: after the setup
 * sectors, syssize 16-byte paragraphs, all of which the file must hold. */
static int bz_parse(const uint8_t *img, size_t len, struct setup_header *hdr, uint64_t *setup_len,
		    uint64_t *payload_len, const char **why)
{
	int err = bz_copy_hdr(img, len, hdr, why);
	if (!err)
		err = bz_check_hdr(hdr, why);
	if (err)
		return err;
	uint64_t sects = hdr->setup_sects ? hdr->setup_sects : BZ_DEFAULT_SETUP_SECTS;
	*setup_len = (sects + 1) * BZ_SECTOR; /* at most 128 KiB */
	*payload_len = (uint64_t)hdr->syssize * BZ_PARAGRAPH;
	if (*setup_len >= len)
		return bz_bad(why, "bzImage setup_sects claim more than the file holds");
	if (*payload_len > len - *setup_len)
		return bz_bad(why, "bzImage syssize claims more than the file holds");
	/* The 64-bit entry must be inside the payload. */
	if (*payload_len <= BOOT_ENTRY64_OFFSET)
		return bz_bad(why, "bzImage payload (syssize) too small for its 64-bit entry");
	return 0;
}

int kernel_check_bzimage(const uint8_t *img, size_t len, const char **why)
{
	struct setup_header hdr;
	uint64_t setup_len, payload_len;
	const char *ignored;
	return bz_parse(img, len, &hdr, &setup_len, &payload_len, why ? why : &ignored);
}

static bool bz_fits(uint64_t addr, uint64_t size, uint64_t low_end)
{
	return addr <= low_end && size <= low_end - addr;
}

/* pref_address if usable, else the first aligned address above the boot area when the
 * kernel is relocatable. Higher aligned addresses cannot fit if the lowest one does not. */
static int bz_choose_load(const struct guest_mem *gm, const struct setup_header *hdr,
			  uint64_t mem_size, uint64_t *load)
{
	uint64_t align = hdr->kernel_alignment;
	uint64_t low_end = gm_low_end(gm);
	uint64_t pref = hdr->pref_address;
	if ((pref & (align - 1)) == 0 && pref >= LAYOUT_HIMEM_START &&
	    bz_fits(pref, mem_size, low_end)) {
		*load = pref;
		return 0;
	}
	if (!hdr->relocatable_kernel)
		return -ENOMEM;
	/* align <= 2^31, so this cannot overflow. */
	uint64_t addr = (LAYOUT_HIMEM_START + align - 1) & ~(align - 1);
	if (!bz_fits(addr, mem_size, low_end))
		return -ENOMEM;
	*load = addr;
	return 0;
}

int kernel_load_bzimage(const struct guest_mem *gm, const uint8_t *img, size_t len,
			struct kernel_image *out)
{
	struct setup_header hdr;
	uint64_t setup_len, payload_len;
	const char *why;
	int err = bz_parse(img, len, &hdr, &setup_len, &payload_len, &why);
	if (err)
		return err;
	uint64_t mem_size = payload_len > hdr.init_size ? payload_len : hdr.init_size;
	uint64_t load;
	err = bz_choose_load(gm, &hdr, mem_size, &load);
	if (err)
		return err;
	err = gm_write(gm, load, img + setup_len, payload_len);
	if (err)
		return err;
	memset(out, 0, sizeof(*out));
	out->entry = load + BOOT_ENTRY64_OFFSET;
	out->load_start = load;
	out->load_end = load + mem_size;
	out->is_bzimage = true;
	out->hdr = hdr;
	out->initrd_addr_max = hdr.initrd_addr_max ? hdr.initrd_addr_max : BOOT_INITRD_ADDR_MAX;
	out->cmdline_max = hdr.cmdline_size;
	/* kiln's cmdline buffer is the other bound. */
	if (out->cmdline_max > LAYOUT_CMDLINE_MAX - 1)
		out->cmdline_max = (uint32_t)(LAYOUT_CMDLINE_MAX - 1);
	return 0;
}
