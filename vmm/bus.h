/* The I/O bus: guest port-I/O and MMIO ranges mapped to device ops. Built during setup,
 * read-only once vCPUs run (so lookups take no lock; devices lock their own state). */
#ifndef KILN_BUS_H
#define KILN_BUS_H

#include <stdint.h>

#define BUS_MAX_RANGES 64

struct bus_dev_ops {
	/* `offset` is relative to the range base; len is 1, 2, 4 or 8. */
	void (*read)(void *dev, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *dev, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_dev_ops *ops;
	void *dev;
};

struct bus {
	struct bus_range range[BUS_MAX_RANGES];
	unsigned nr;
};

/* Adds [base, base+len) for dev. -EINVAL for an empty or wrapping range, -EEXIST when it
 * overlaps an existing one, -ENOSPC when the bus is full. */
int bus_add(struct bus *bus, uint64_t base, uint64_t len, const struct bus_dev_ops *ops, void *dev);

/* Dispatches an access that lies entirely inside one range. Reads of unclaimed addresses
 * return all-ones (like an empty ISA/MMIO bus) and -ENOENT; writes there are dropped. */
int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len);
int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len);

#endif
