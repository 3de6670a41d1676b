/* ACPI tables for a hardware-reduced x86 microVM: RSDP, XSDT, FADT, MADT, DSDT (COM1, the
 * \_S5 sleep state, and one LNRO0005 device per virtio-mmio window). */
#ifndef KILN_ACPI_H
#define KILN_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

struct acpi_mmio_dev {
	uint64_t base;
	uint32_t size;
	uint32_t gsi;
};

struct acpi_config {
	unsigned nr_vcpus;
	const struct acpi_mmio_dev *mmio_devs;
	unsigned nr_mmio_devs;
};

/* Writes all tables into [LAYOUT_ACPI_START, LAYOUT_ACPI_END) and returns the RSDP
 * address in *rsdp_gpa. 0 or -errno (-ENOSPC if the tables do not fit). */
int acpi_build(const struct guest_mem *gm, const struct acpi_config *cfg, uint64_t *rsdp_gpa);

/* Byte sum used by ACPI checksums; a valid table sums to 0. */
uint8_t acpi_checksum(const void *buf, size_t len);

#endif
