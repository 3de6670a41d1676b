/* Guest RAM: one host mapping, at most two guest-physical regions (below and above the
 * MMIO gap), and the one checked accessor every guest memory access goes through. */
#ifndef KILN_GUEST_MEM_H
#define KILN_GUEST_MEM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct gm_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_mem {
	struct gm_region region[2];
	unsigned nr_regions;
	uint64_t ram_size; /* total bytes of RAM */
	void *reservation; /* whole mapping including guard gaps */
	size_t reservation_len;
	/* Pages kiln's devices wrote since the last gm_take_dirty(), one bit per 4 KiB page of
	 * RAM counted region after region; NULL unless gm_track_dirty() turned it on. KVM's
	 * dirty log sees only the guest's own writes: diff snapshots need both. */
	_Atomic(uint64_t) *dirty;
};

#define GUEST_MEM_MAX_BYTES (1ULL << 46) /* the most guest_mem_init() maps */

/* Maps ram_size bytes (a non-zero multiple of 4 KiB, at most GUEST_MEM_MAX_BYTES) with PROT_NONE
 * guard gaps on both sides, split at the MMIO gap. Pages are not touched. Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *gm, uint64_t ram_size);

/* Like guest_mem_init(), but the RAM is fd (the snapshot's memory file, file offset 0 = gpa 0,
 * offset region[0].size = region[1]'s first byte) mapped MAP_PRIVATE: pages come in from the
 * page cache on first touch (clones of one snapshot share it), writes stay private to this
 * process and never reach the file. fd needs only read access and may be closed afterwards.
 * 0, -EINVAL when fd is not a regular file at least ram_size long (or ram_size is bad), or
 * -errno. */
int guest_mem_init_file(struct guest_mem *gm, uint64_t ram_size, int fd);

/* Unmaps everything; safe on a zeroed or already freed struct. */
void guest_mem_free(struct guest_mem *gm);

/* The checked accessor: a host pointer to [gpa, gpa+len) when the whole range lies in one
 * RAM region, else NULL. Overflow-safe for any gpa and len; len 0 is allowed inside RAM. */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy helpers over gm_ptr: 0, or -EFAULT when the range is not guest RAM. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

/* Starts recording the pages devices write (gm_mark_dirty), all clean. 0 or -ENOMEM. Call
 * before any device runs; guest_mem_free() frees the bitmap. */
int gm_track_dirty(struct guest_mem *gm);

/* Records that a device wrote [gpa, gpa+len) (the writable buffers of a chain, a used
 * ring entry). Safe from any thread; nothing when tracking is off or the range is not RAM. */
void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Moves the device-dirty bits into out (ram_size / 4096 bits, region after region, ORed
 * into what out holds) and clears them. Nothing when tracking is off. */
void gm_take_dirty(const struct guest_mem *gm, uint64_t *out);

/* Highest RAM address below the MMIO gap (exclusive). */
uint64_t gm_low_end(const struct guest_mem *gm);

#endif
