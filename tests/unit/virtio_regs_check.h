/* Test-side check of a virtio-mmio device's register copy (the page the guest reads without
 * an exit): header-only, shared by test_virtio_devices.c, test_virtio_persist.c and the
 * restore fuzzer. */
#ifndef KILN_VIRTIO_REGS_CHECK_H
#define KILN_VIRTIO_REGS_CHECK_H

#include <linux/virtio_mmio.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"

/* Whether `regs` says what a read through `mmio` at the window `base` says, at every
 * readable register and at each of the config_size config bytes. */
static inline bool virtio_regs_match(const struct bus *mmio, uint64_t base, const uint32_t *regs,
				     uint32_t config_size)
{
	static const uint32_t readable[] = {
	    VIRTIO_MMIO_MAGIC_VALUE,	  VIRTIO_MMIO_VERSION,		VIRTIO_MMIO_DEVICE_ID,
	    VIRTIO_MMIO_VENDOR_ID,	  VIRTIO_MMIO_DEVICE_FEATURES,	VIRTIO_MMIO_QUEUE_NUM_MAX,
	    VIRTIO_MMIO_QUEUE_READY,	  VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_STATUS,
	    VIRTIO_MMIO_CONFIG_GENERATION};
	if (!regs)
		return false;
	for (size_t i = 0; i < sizeof(readable) / sizeof(readable[0]); i++) {
		uint32_t v = 0;
		if (bus_read(mmio, base + readable[i], (uint8_t *)&v, 4) ||
		    regs[readable[i] / 4] != v)
			return false;
	}
	for (uint32_t off = 0; off < config_size; off++) {
		uint8_t b = 0;
		if (bus_read(mmio, base + VIRTIO_MMIO_CONFIG + off, &b, 1) ||
		    ((const uint8_t *)regs)[VIRTIO_MMIO_CONFIG + off] != b)
			return false;
	}
	return true;
}

#endif
