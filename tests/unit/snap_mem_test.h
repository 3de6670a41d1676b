/* Helpers shared by test_snapshot_mem.c and test_snapshot_uffd.c: page patterns, temporary
 * files, the data pages of a sparse file, and running the snapshot tools. */
#ifndef KILN_SNAP_MEM_TEST_H
#define KILN_SNAP_MEM_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/test_child.h"
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#define PAGE 4096ULL
#define MIB (1ULL << 20)
/* RAM that spans the MMIO gap: region 0 is LAYOUT_MMIO_GAP_START bytes, region 1 8 MiB. */
#define TWO_REGION_RAM (LAYOUT_MMIO_GAP_START + 8 * MIB)
#define HIGH LAYOUT_HIGH_RAM_START

/* The byte at i of the page with this (non-zero) seed. */
static inline uint8_t pattern_byte(unsigned seed, size_t i)
{
	return (uint8_t)(seed * 31 + i * 7 + (i >> 8) + 1) | 1;
}

static inline void fill_page(uint8_t *page, unsigned seed)
{
	for (size_t i = 0; i < PAGE; i++)
		page[i] = pattern_byte(seed, i);
}

static inline bool page_matches(const uint8_t *page, unsigned seed)
{
	for (size_t i = 0; i < PAGE; i++)
		if (page[i] != (seed ? pattern_byte(seed, i) : 0))
			return false;
	return true;
}

/* Writes the pattern of seed into the guest page at gpa. */
static inline void put_page(const struct guest_mem *gm, uint64_t gpa, unsigned seed)
{
	uint8_t page[PAGE];
	fill_page(page, seed);
	if (gm_write(gm, gpa, page, PAGE) != 0)
		abort();
}

/* The guest pages fill_guest() fills in a TWO_REGION_RAM guest, with their seeds and
 * memory-file offsets: the first, a middle and the last page below the MMIO gap, the first
 * and last page above it. */
static const struct {
	uint64_t gpa;
	unsigned seed;
	uint64_t off;
} filled[] = {
    {0, 1, 0},
    {0x123000, 2, 0x123000},
    {LAYOUT_MMIO_GAP_START - PAGE, 3, LAYOUT_MMIO_GAP_START - PAGE},
    {HIGH, 4, LAYOUT_MMIO_GAP_START},
    {HIGH + 8 * MIB - PAGE, 5, TWO_REGION_RAM - PAGE},
};
#define NR_FILLED (sizeof(filled) / sizeof(filled[0]))

static inline void fill_guest(const struct guest_mem *gm)
{
	for (size_t i = 0; i < NR_FILLED; i++)
		put_page(gm, filled[i].gpa, filled[i].seed);
}

/* A new empty file in $TMPDIR (its name in path); the fd, or -1. */
static inline int temp_file(char path[64])
{
	const char *dir = getenv("TMPDIR");
	snprintf(path, 64, "%s/kiln-snapmem-XXXXXX", dir && dir[0] ? dir : "/tmp");
	return mkostemp(path, O_CLOEXEC);
}

/* The page offsets of fd's data (SEEK_DATA/SEEK_HOLE) into offs (at most max); how many. */
static inline size_t data_pages(int fd, uint64_t *offs, size_t max)
{
	size_t n = 0;
	off_t off = 0, data, hole;
	while ((data = lseek(fd, off, SEEK_DATA)) >= 0) {
		hole = lseek(fd, data, SEEK_HOLE);
		for (off_t p = data & ~(off_t)(PAGE - 1); p < hole && n < max; p += (off_t)PAGE)
			offs[n++] = (uint64_t)p;
		off = hole;
	}
	return n;
}

/* The page at off of fd matches seed (0: zeros). */
static inline bool file_page_matches(int fd, uint64_t off, unsigned seed)
{
	uint8_t page[PAGE];
	return pread(fd, page, PAGE, (off_t)off) == (ssize_t)PAGE && page_matches(page, seed);
}

/* The path of a snapshot tool: $BUILD/name (build/name by default). */
static inline const char *tool_path(const char *name, char *buf, size_t len)
{
	const char *b = getenv("BUILD");
	snprintf(buf, len, "%s/%s", b && b[0] ? b : "build", name);
	return buf;
}

/* Starts argv[0] with stderr into the file err_fd (when >= 0). Its pid. */
static inline pid_t spawn(char *const argv[], int err_fd)
{
	pid_t pid = fork();
	if (pid == 0) {
		test_child_begin();
		if (err_fd >= 0)
			dup2(err_fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Waits at most secs for pid; its wait status, or -1 after killing it when it did not end. */
static inline int wait_for(pid_t pid, int secs)
{
	int status;
	for (int i = 0; i < secs * 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

#endif
