/* Guest RAM: one host mapping, at most two guest-physical regions (below and above the
 * MMIO gap), and the one checked accessor every guest memory access goes through. */
#ifndef KILN_GUEST_MEM_H
#define KILN_GUEST_MEM_H

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
};

#define GUEST_MEM_MAX_BYTES (1ULL << 46) /* the most guest_mem_init() maps */

/* Maps ram_size bytes (a non-zero multiple of 4 KiB, at most GUEST_MEM_MAX_BYTES) with PROT_NONE
 * guard gaps on both sides, split at the MMIO gap. Pages are not touched. Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *gm, uint64_t ram_size);

/* Unmaps everything; safe on a zeroed or already freed struct. */
void guest_mem_free(struct guest_mem *gm);

/* The checked accessor: a host pointer to [gpa, gpa+len) when the whole range lies in one
 * RAM region, else NULL. Overflow-safe for any gpa and len; len 0 is allowed inside RAM. */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy helpers over gm_ptr: 0, or -EFAULT when the range is not guest RAM. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

/* Highest RAM address below the MMIO gap (exclusive). */
uint64_t gm_low_end(const struct guest_mem *gm);

#endif
