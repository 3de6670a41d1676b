#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#include <stdatomic.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define GUARD_LEN (1ULL << 21)
#define HUGE_LEN (1ULL << 21)

/* Reserves ram_size bytes between PROT_NONE guard gaps (of at least GUARD_LEN) and maps the
 * RAM over its middle, starting on a 2 MiB boundary: anonymous memory when fd < 0, else fd
 * from offset 0, MAP_PRIVATE. Then splits it at the MMIO gap. 0 or -errno; nothing stays
 * mapped on failure. */
static int gm_map(struct guest_mem *gm, uint64_t ram_size, int fd)
{
	memset(gm, 0, sizeof(*gm));
	if (ram_size == 0 || (ram_size & 0xfff) || ram_size > GUEST_MEM_MAX_BYTES)
		return -EINVAL;
	size_t len = ram_size + 2 * GUARD_LEN + HUGE_LEN;
	uint8_t *res =
	    mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return -errno;
	/* Host-virtual and guest-physical addresses agree modulo 2 MiB: where the host backs
	 * the RAM with transparent huge pages, KVM can then map them as huge pages too, one
	 * nested page fault per 2 MiB instead of per 4 KiB the guest touches (bench/net-vs-qemu
	 * counted 180 per MiB received before). */
	uint8_t *ram = (uint8_t *)(((uintptr_t)res + GUARD_LEN + HUGE_LEN - 1) &
				   ~(uintptr_t)(HUGE_LEN - 1));
	int flags = MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED | (fd < 0 ? MAP_ANONYMOUS : 0);
	if (mmap(ram, ram_size, PROT_READ | PROT_WRITE, flags, fd, 0) == MAP_FAILED) {
		int err = -errno;
		munmap(res, len);
		return err;
	}
	/* Guest RAM is not worth a core dump and must not leak into one. */
	madvise(ram, ram_size, MADV_DONTDUMP);
	/* The first 2 MiB hold what kiln writes before the guest runs (boot parameters, page
	 * tables, command line, ACPI: tens of KiB, scattered): as one huge page it would cost
	 * 2 MiB resident and zeroed per VM at start-up (bench/startup). */
	madvise(ram, ram_size < HUGE_LEN ? ram_size : HUGE_LEN, MADV_NOHUGEPAGE);
	gm->reservation = res;
	gm->reservation_len = len;
	gm->ram_size = ram_size;
	uint64_t low = ram_size < LAYOUT_MMIO_GAP_START ? ram_size : LAYOUT_MMIO_GAP_START;
	gm->region[0] = (struct gm_region){.gpa = 0, .size = low, .host = ram};
	gm->nr_regions = 1;
	if (ram_size > low) {
		gm->region[1] = (struct gm_region){
		    .gpa = LAYOUT_HIGH_RAM_START, .size = ram_size - low, .host = ram + low};
		gm->nr_regions = 2;
	}
	return 0;
}

int guest_mem_init(struct guest_mem *gm, uint64_t ram_size)
{
	return gm_map(gm, ram_size, -1);
}

int guest_mem_init_file(struct guest_mem *gm, uint64_t ram_size, int fd)
{
	struct stat st;
	memset(gm, 0, sizeof(*gm));
	if (fd < 0 || fstat(fd, &st) < 0)
		return fd < 0 ? -EBADF : -errno;
	/* Pages past the end of the file would SIGBUS on the guest's first touch. */
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < ram_size)
		return -EINVAL;
	return gm_map(gm, ram_size, fd);
}

void guest_mem_free(struct guest_mem *gm)
{
	if (gm->reservation)
		munmap(gm->reservation, gm->reservation_len);
	free((void *)gm->dirty);
	memset(gm, 0, sizeof(*gm));
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->region[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		/* off < size and len <= size - off: no addition that can wrap. */
		if (off >= r->size || len > r->size - off)
			continue;
		return r->host + off;
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

uint64_t gm_low_end(const struct guest_mem *gm)
{
	return gm->nr_regions ? gm->region[0].size : 0;
}

int gm_track_dirty(struct guest_mem *gm)
{
	size_t words = (size_t)((gm->ram_size / 4096 + 63) / 64);
	if (!gm->dirty && !(gm->dirty = calloc(words ? words : 1, sizeof(uint64_t))))
		return -ENOMEM;
	return 0;
}

/* The page number of gpa counted region after region (the memory file's order), or -1. */
static int64_t gm_page_index(const struct guest_mem *gm, uint64_t gpa)
{
	uint64_t before = 0;
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->region[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return (int64_t)((before + gpa - r->gpa) / 4096);
		before += r->size;
	}
	return -1;
}

void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (!gm->dirty || len == 0 || !gm_ptr(gm, gpa, len))
		return;
	/* In one region (gm_ptr), so the pages are consecutive in the bitmap. */
	int64_t first = gm_page_index(gm, gpa);
	int64_t last = first + (int64_t)(((gpa & 4095) + len - 1) / 4096);
	for (int64_t p = first; p <= last; p++)
		atomic_fetch_or(&gm->dirty[p / 64], 1ULL << (p % 64));
}

void gm_take_dirty(const struct guest_mem *gm, uint64_t *out)
{
	if (!gm->dirty)
		return;
	size_t words = (size_t)((gm->ram_size / 4096 + 63) / 64);
	for (size_t i = 0; i < words; i++)
		out[i] |= atomic_exchange(&gm->dirty[i], 0);
}
