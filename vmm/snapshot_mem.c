/* The snapshot memory file: Full (sparse) and Diff writers and the dirty logs they read and
 * clear. */
#include "vmm/snapshot_mem.h"
#include "vmm/pwrite_all.h"
#include "vmm/layout.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE SNAP_PAGE_SIZE
/* The most one pwrite() carries: long runs of pages are written in pieces of this size. */
#define MAX_RUN_PAGES ((64ULL << 20) / PAGE)

static size_t bitmap_words(const struct guest_mem *gm)
{
	return (size_t)((gm->ram_size / PAGE + 63) / 64);
}

static bool bit_test(const uint64_t *bitmap, uint64_t n)
{
	return (bitmap[n / 64] >> (n % 64)) & 1;
}

static bool page_is_zero(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;
	for (size_t i = 0; i < PAGE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	return true;
}

/* Writes the wanted pages of one region (its first page is page first_page of the file),
 * consecutive ones in one pwrite. 0 or -errno. */
static int write_region(const struct gm_region *r, uint64_t first_page, const uint64_t *bitmap,
			int fd)
{
	uint64_t pages = r->size / PAGE, run = 0, run_len = 0;
	for (uint64_t p = 0; p <= pages; p++) {
		bool want = false;
		if (p < pages)
			want = bitmap ? bit_test(bitmap, first_page + p)
				      : !page_is_zero(r->host + p * PAGE);
		if (want && run_len && run_len < MAX_RUN_PAGES) {
			run_len++;
			continue;
		}
		if (run_len) {
			int err = pwrite_all(fd, r->host + run * PAGE, run_len * PAGE,
					     (first_page + run) * PAGE);
			if (err)
				return err;
		}
		run = p;
		run_len = want ? 1 : 0;
	}
	return 0;
}

int snap_mem_write_pages(const struct guest_mem *gm, const uint64_t *bitmap, int fd)
{
	/* Empty first: pages left out must be holes, not what an old file held there. */
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)gm->ram_size) < 0)
		return -errno;
	uint64_t first_page = 0;
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		int err = write_region(&gm->region[i], first_page, bitmap, fd);
		if (err)
			return err;
		first_page += gm->region[i].size / PAGE;
	}
	return fdatasync(fd) < 0 ? -errno : 0;
}

int snap_mem_write_full(const struct guest_mem *gm, int fd)
{
	return snap_mem_write_pages(gm, NULL, fd);
}

/* Region 1 starts at a whole word of the bitmaps: logs merge word by word. */
_Static_assert(LAYOUT_MMIO_GAP_START % (64 * PAGE) == 0, "region 1 is not 64-page aligned");

void snap_mem_or_slot_log(const struct guest_mem *gm, unsigned slot, const uint64_t *log,
			  uint64_t *bitmap)
{
	uint64_t first_page = 0, pages = gm->region[slot].size / PAGE;
	for (unsigned i = 0; i < slot; i++)
		first_page += gm->region[i].size / PAGE;
	for (uint64_t w = 0; w < (pages + 63) / 64; w++) {
		uint64_t bits = log[w];
		if (pages - w * 64 < 64)
			bits &= (1ULL << (pages - w * 64)) - 1;
		bitmap[first_page / 64 + w] |= bits;
	}
}

/* Records every page set in bitmap as device-dirty again (a Diff that failed after the logs
 * were cleared): nothing when device tracking is off. */
static void remark_dirty(const struct guest_mem *gm, const uint64_t *bitmap)
{
	uint64_t first_page = 0;
	for (unsigned i = 0; i < gm->nr_regions && gm->dirty; i++) {
		const struct gm_region *r = &gm->region[i];
		for (uint64_t p = 0; p < r->size / PAGE; p++)
			if (bit_test(bitmap, first_page + p))
				gm_mark_dirty(gm, r->gpa + p * PAGE, PAGE);
		first_page += r->size / PAGE;
	}
}

/* ORs KVM's dirty log of every memslot (clearing it) and the device-dirty bits (clearing
 * them) into bitmap. On failure bitmap holds what was collected before it. 0 or -errno. */
static int collect_dirty(const struct guest_mem *gm, int vm_fd, uint64_t *bitmap)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		uint64_t pages = gm->region[i].size / PAGE;
		uint64_t *slot = calloc((size_t)((pages + 63) / 64), sizeof(uint64_t));
		if (!slot)
			return -ENOMEM;
		struct kvm_dirty_log log = {.slot = i, .dirty_bitmap = slot};
		if (ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			int err = -errno;
			free(slot);
			return err;
		}
		snap_mem_or_slot_log(gm, i, slot, bitmap);
		free(slot);
	}
	gm_take_dirty(gm, bitmap);
	return 0;
}

int snap_mem_write_diff(const struct guest_mem *gm, int vm_fd, int fd)
{
	uint64_t *bitmap = calloc(bitmap_words(gm), sizeof(uint64_t));
	if (!bitmap)
		return -ENOMEM;
	int err = collect_dirty(gm, vm_fd, bitmap);
	if (!err)
		err = snap_mem_write_pages(gm, bitmap, fd);
	if (err)
		remark_dirty(gm, bitmap);
	free(bitmap);
	return err;
}

int snap_mem_reset_dirty(const struct guest_mem *gm, int vm_fd)
{
	uint64_t *bitmap = calloc(bitmap_words(gm), sizeof(uint64_t));
	if (!bitmap)
		return -ENOMEM;
	int err = collect_dirty(gm, vm_fd, bitmap);
	if (err)
		remark_dirty(gm, bitmap);
	free(bitmap);
	return err;
}
