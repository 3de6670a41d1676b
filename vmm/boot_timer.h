/* Firecracker's boot timer (--boot-timer): a pseudo device at Firecracker's
 * BOOT_DEVICE_MEM_START (x86_64: 0xc0000000, the start of its 32-bit MMIO gap). A guest
 * that writes the byte 123 at its offset 0 gets one Info line with the time since the VM
 * build began, in Firecracker's words:
 *   "Guest-boot-time = <%6 us> us <ms> ms, <%6 CPU us> CPU us <CPU ms> CPU ms"
 * kiln's RAM below the gap runs to 0xd0000000, so for guests above 3 GiB the address is RAM
 * (Firecracker's 1 GiB gap keeps it a hole): kiln leaves the device out then and says so. */
#ifndef KILN_BOOT_TIMER_H
#define KILN_BOOT_TIMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#define BOOT_TIMER_MAGIC 123 /* Firecracker's MAGIC_VALUE_SIGNAL_GUEST_BOOT_COMPLETE */

struct boot_timer {
	uint64_t start_us;     /* CLOCK_MONOTONIC when the VM build began */
	uint64_t start_cpu_us; /* CLOCK_PROCESS_CPUTIME_ID at the same moment */
	atomic_bool logged;    /* one line per VM: a guest cannot flood the log */
};

/* The device's accesses: a one-byte write of BOOT_TIMER_MAGIC at offset 0 logs the line
 * (the first time only); other writes are ignored, reads return zeros. */
extern const struct bus_dev_ops boot_timer_bus_ops;

/* Starts the clock: call where the VM build begins (Firecracker's request_ts). */
void boot_timer_start(struct boot_timer *bt);

/* Formats Firecracker's line for us / cpu_us elapsed microseconds into buf (with its NUL).
 * Returns its length, or -ENOSPC when it does not fit. */
int boot_timer_format(char *buf, size_t cap, uint64_t us, uint64_t cpu_us);

/* Puts the device on `mmio` at LAYOUT_BOOT_TIMER_ADDR, unless guest RAM (gm) covers that address:
 * then it logs a warning and leaves it out. 0, or bus_add()'s -errno. */
int boot_timer_add(struct boot_timer *bt, struct bus *mmio, const struct guest_mem *gm);

#endif
