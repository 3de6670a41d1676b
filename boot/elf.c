/* vmlinux (ELF64) loader and the format dispatcher. The image is untrusted: every header
 * field is checked against the file and guest RAM before a single byte is copied. */
#include "boot/boot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

/* Kernel protocol values kiln claims for an ELF kernel, which carries no setup header. */
#define ELF_HDR_VERSION 0x020f
#define ELF_KERNEL_ALIGNMENT 0x1000000U

/* Summary of the PT_LOAD segments gathered by the validation pass. */
struct elf_span {
	uint64_t lo;	  /* lowest p_paddr */
	uint64_t hi;	  /* highest p_paddr + p_memsz, exclusive */
	unsigned nr_load; /* PT_LOAD count */
	bool entry_ok;	  /* e_entry lies in the file bytes of an executable PT_LOAD */
};

/* The boot page tables identity-map 0..4 GiB; a kernel outside that is never reached. */
#define ELF_MAPPED_END 0x100000000ULL

static int elf_bad(const char **why, const char *what)
{
	*why = what;
	return -ENOEXEC;
}

static int elf_check_ehdr(const Elf64_Ehdr *eh, size_t len, const char **why)
{
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return elf_bad(why, "not a 64-bit little-endian ELF");
	if (eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
		return elf_bad(why, "not an x86-64 executable ELF");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0)
		return elf_bad(why, "ELF program header table malformed");
	/* The table must lie inside the file; e_phnum * 56 cannot overflow 64 bits. */
	uint64_t table = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > len || table > len - eh->e_phoff)
		return elf_bad(why, "ELF program headers lie beyond the end of the file");
	return 0;
}

static void elf_read_phdr(const uint8_t *img, const Elf64_Ehdr *eh, unsigned i, Elf64_Phdr *ph)
{
	/* memcpy: the image buffer gives no alignment guarantee for e_phoff. */
	memcpy(ph, img + eh->e_phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

/* One PT_LOAD against the file alone: its bytes inside the image, its destination above
 * the boot area and below 4 GiB. */
static int elf_check_segment(const Elf64_Phdr *ph, size_t len, const char **why)
{
	if (ph->p_filesz > ph->p_memsz)
		return elf_bad(why, "ELF segment with p_filesz > p_memsz");
	if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset)
		return elf_bad(why, "ELF segment claims more bytes than the file holds");
	/* Below 1 MiB live the zero page, GDT, page tables and cmdline. */
	if (ph->p_paddr < LAYOUT_HIMEM_START)
		return elf_bad(why, "ELF segment below 1 MiB");
	if (ph->p_memsz > ELF_MAPPED_END || ph->p_paddr > ELF_MAPPED_END - ph->p_memsz)
		return elf_bad(why, "ELF segment above 4 GiB (the boot page tables map 0-4 GiB)");
	return 0;
}

static int elf_scan_segments(const uint8_t *img, size_t len, const Elf64_Ehdr *eh,
			     struct elf_span *span, const char **why)
{
	*span = (struct elf_span){.lo = UINT64_MAX};
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		elf_read_phdr(img, eh, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		int err = elf_check_segment(&ph, len, why);
		if (err)
			return err;
		span->nr_load++;
		/* Checked above: paddr + memsz <= 4 GiB. */
		uint64_t end = ph.p_paddr + ph.p_memsz;
		if (ph.p_paddr < span->lo)
			span->lo = ph.p_paddr;
		if (end > span->hi)
			span->hi = end;
		if ((ph.p_flags & PF_X) && eh->e_entry >= ph.p_paddr &&
		    eh->e_entry - ph.p_paddr < ph.p_filesz)
			span->entry_ok = true;
	}
	if (span->nr_load == 0)
		return elf_bad(why, "ELF without a PT_LOAD segment");
	if (!span->entry_ok)
		return elf_bad(why, "ELF entry point outside its executable segments");
	return 0;
}

/* Every PT_LOAD destination in guest RAM (the file checks passed). */
static int elf_check_ram(const struct guest_mem *gm, const uint8_t *img, const Elf64_Ehdr *eh)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		elf_read_phdr(img, eh, i, &ph);
		/* gm_ptr is overflow-safe: a wrapping paddr + memsz is simply not RAM. */
		if (ph.p_type == PT_LOAD && !gm_ptr(gm, ph.p_paddr, ph.p_memsz))
			return -ENOMEM;
	}
	return 0;
}

/* The ELF header and a check of everything in it against the file. */
static int elf_parse(const uint8_t *img, size_t len, Elf64_Ehdr *eh, struct elf_span *span,
		     const char **why)
{
	if (len < sizeof(*eh) || memcmp(img, ELFMAG, SELFMAG) != 0)
		return elf_bad(why, "not an ELF file");
	memcpy(eh, img, sizeof(*eh));
	int err = elf_check_ehdr(eh, len, why);
	return err ? err : elf_scan_segments(img, len, eh, span, why);
}

static int elf_copy_segments(const struct guest_mem *gm, const uint8_t *img, const Elf64_Ehdr *eh)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		elf_read_phdr(img, eh, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		/* The bss (p_memsz - p_filesz) is already zero in fresh guest memory. */
		int err = gm_write(gm, ph.p_paddr, img + ph.p_offset, ph.p_filesz);
		if (err)
			return err;
	}
	return 0;
}

/* An ELF kernel has no setup header; give the zero page the one Firecracker gives it. */
static void elf_synth_hdr(struct setup_header *hdr)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->boot_flag = BOOT_FLAG_MAGIC;
	hdr->header = BOOT_HDR_MAGIC;
	hdr->version = ELF_HDR_VERSION;
	hdr->type_of_loader = BOOT_LOADER_TYPE;
	hdr->kernel_alignment = ELF_KERNEL_ALIGNMENT;
	hdr->initrd_addr_max = (uint32_t)BOOT_INITRD_ADDR_MAX;
	hdr->cmdline_size = (uint32_t)(LAYOUT_CMDLINE_MAX - 1);
}

int kernel_load_elf(const struct guest_mem *gm, const uint8_t *img, size_t len,
		    struct kernel_image *out)
{
	Elf64_Ehdr eh;
	struct elf_span span;
	const char *why;
	int err = elf_parse(img, len, &eh, &span, &why);
	if (err)
		return err;
	err = elf_check_ram(gm, img, &eh);
	if (err)
		return err;
	err = elf_copy_segments(gm, img, &eh);
	if (err)
		return err;
	memset(out, 0, sizeof(*out));
	out->entry = eh.e_entry;
	out->load_start = span.lo;
	out->load_end = span.hi;
	out->is_bzimage = false;
	elf_synth_hdr(&out->hdr);
	out->initrd_addr_max = BOOT_INITRD_ADDR_MAX;
	out->cmdline_max = (uint32_t)(LAYOUT_CMDLINE_MAX - 1);
	return 0;
}

static bool is_elf(const uint8_t *img, size_t len)
{
	return len >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0;
}

/* The "HdrS" magic at 0x202; the bzImage code checks the rest. */
static bool is_bzimage(const uint8_t *img, size_t len)
{
	static const uint8_t hdrs[4] = {'H', 'd', 'r', 'S'};
	return len >= 0x206 && memcmp(img + 0x202, hdrs, sizeof(hdrs)) == 0;
}

int kernel_check_elf(const uint8_t *img, size_t len, const char **why)
{
	Elf64_Ehdr eh;
	struct elf_span span;
	const char *ignored;
	return elf_parse(img, len, &eh, &span, why ? why : &ignored);
}

int kernel_check(const uint8_t *img, size_t len, const char **why)
{
	if (is_elf(img, len))
		return kernel_check_elf(img, len, why);
	if (is_bzimage(img, len))
		return kernel_check_bzimage(img, len, why);
	if (why)
		*why = "neither a vmlinux ELF nor a bzImage";
	return -ENOEXEC;
}

int kernel_load(const struct guest_mem *gm, const uint8_t *img, size_t len,
		struct kernel_image *out)
{
	if (is_elf(img, len))
		return kernel_load_elf(gm, img, len, out);
	if (is_bzimage(img, len))
		return kernel_load_bzimage(gm, img, len, out);
	return -ENOEXEC;
}
