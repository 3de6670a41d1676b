#include "vmm/boot_timer.h"
#include "vmm/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void boot_timer_start(struct boot_timer *bt)
{
	bt->start_us = clock_us(CLOCK_MONOTONIC);
	bt->start_cpu_us = clock_us(CLOCK_PROCESS_CPUTIME_ID);
	atomic_store(&bt->logged, false);
}

int boot_timer_format(char *buf, size_t cap, uint64_t us, uint64_t cpu_us)
{
	/* Firecracker: "Guest-boot-time = {:>6} us {} ms, {:>6} CPU us {} CPU ms". */
	int n = snprintf(buf, cap, "Guest-boot-time = %6llu us %llu ms, %6llu CPU us %llu CPU ms",
			 (unsigned long long)us, (unsigned long long)(us / 1000),
			 (unsigned long long)cpu_us, (unsigned long long)(cpu_us / 1000));
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

static void boot_timer_read(void *dev, uint64_t offset, uint8_t *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	memset(data, 0, len);
}

static void boot_timer_write(void *dev, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct boot_timer *bt = dev;
	/* As Firecracker: only a byte access at offset 0 counts. */
	if (len != 1 || offset != 0 || data[0] != BOOT_TIMER_MAGIC)
		return;
	uint64_t now = clock_us(CLOCK_MONOTONIC), now_cpu = clock_us(CLOCK_PROCESS_CPUTIME_ID);
	if (atomic_exchange(&bt->logged, true))
		return;
	char line[160];
	if (boot_timer_format(line, sizeof(line), now - bt->start_us, now_cpu - bt->start_cpu_us) >
	    0)
		log_info("%s", line);
}

const struct bus_dev_ops boot_timer_bus_ops = {
    .read = boot_timer_read,
    .write = boot_timer_write,
};

int boot_timer_add(struct boot_timer *bt, struct bus *mmio, const struct guest_mem *gm)
{
	if (gm_ptr(gm, LAYOUT_BOOT_TIMER_ADDR, 1)) {
		log_warn("--boot-timer: 0x%llx is guest RAM with more than 3 GiB (kiln's MMIO gap "
			 "starts at 0x%llx): no boot timer",
			 LAYOUT_BOOT_TIMER_ADDR, (unsigned long long)LAYOUT_MMIO_GAP_START);
		return 0;
	}
	return bus_add(mmio, LAYOUT_BOOT_TIMER_ADDR, LAYOUT_BOOT_TIMER_SIZE, &boot_timer_bus_ops,
		       bt);
}
