#include "vmm/acpi.h"
#include "vmm/aml.h"
#include "vmm/layout.h"

#include <errno.h>
#include <string.h>

#define ACPI_OEM_ID "KILN  "
#define ACPI_OEM_TABLE_PREFIX "KILN" /* + signature = OEM table id */
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "KILN"
#define ACPI_CREATOR_REVISION 1
#define ACPI_TABLE_ALIGN 16

/* System Description Table header (ACPI 6.5, section 5.2.6). */
#define SDT_HDR_LEN 36
#define SDT_LENGTH 4
#define SDT_REVISION 8
#define SDT_CHECKSUM 9
#define SDT_OEM_ID 10
#define SDT_OEM_TABLE_ID 16
#define SDT_OEM_REVISION 24
#define SDT_CREATOR_ID 28
#define SDT_CREATOR_REVISION 32

/* RSDP (section 5.2.5.3): the first checksum covers the ACPI 1.0 part only. */
#define RSDP_LEN 36
#define RSDP_V1_LEN 20
#define RSDP_CHECKSUM 8
#define RSDP_OEM_ID 9
#define RSDP_REVISION 15
#define RSDP_LENGTH 20
#define RSDP_XSDT 24
#define RSDP_EXT_CHECKSUM 32

#define XSDT_NR_ENTRIES 2 /* FADT, MADT */
#define XSDT_LEN (SDT_HDR_LEN + 8 * XSDT_NR_ENTRIES)

/* FADT revision 6 (section 5.2.9). */
#define FADT_LEN 276
#define FADT_REVISION 6
#define FADT_MINOR_REVISION 5
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_SLEEP_STATUS_REG 256
#define FADT_HYPERVISOR_ID 268

#define FADT_F_PWR_BUTTON (1u << 4) /* power button, if any, is a control method device */
#define FADT_F_SLP_BUTTON (1u << 5)
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
/* No 8042 bit: the i8042 is found through its DSDT entry (PNP0303) instead. */
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_MSI_NOT_SUPPORTED (1u << 3)
#define IAPC_PCIE_ASPM_CONTROLS (1u << 4)
#define IAPC_CMOS_RTC_NOT_PRESENT (1u << 5) /* kiln has no RTC; kvm-clock gives wall time */

/* Generic Address Structure (section 5.2.3.2). */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

/* MADT (section 5.2.12). */
#define MADT_REVISION 5
#define MADT_LAPIC_ADDR 36
#define MADT_FLAGS 40
#define MADT_ENTRIES 44
#define MADT_TYPE_LAPIC 0
#define MADT_TYPE_IOAPIC 1
#define MADT_TYPE_LAPIC_NMI 4
#define MADT_LAPIC_LEN 8
#define MADT_IOAPIC_LEN 12
#define MADT_LAPIC_NMI_LEN 6
#define MADT_LAPIC_ENABLED 1
#define MADT_ALL_PROCESSORS 0xff

#define DSDT_REVISION 2 /* 64-bit AML integers */

_Static_assert(LAYOUT_VIRTIO_MMIO_MAX <= 1000, "device names are V000..V999");
_Static_assert(LAYOUT_MAX_VCPUS <= 255, "xAPIC ids and MADT UIDs are one byte");

/* The ACPI region of guest memory, handed out front to back. */
struct acpi_area {
	uint8_t *host; /* LAYOUT_ACPI_START */
	uint64_t size;
	uint64_t used;
};

struct acpi_table {
	uint8_t *host;
	uint64_t gpa;
};

uint8_t acpi_checksum(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return sum;
}

static void put_le(uint8_t *out, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

/* The aligned remainder of the area: its start, and its size in *avail. */
static int area_next(const struct acpi_area *a, struct acpi_table *t, uint64_t *avail)
{
	uint64_t off = (a->used + ACPI_TABLE_ALIGN - 1) & ~(uint64_t)(ACPI_TABLE_ALIGN - 1);
	if (off > a->size)
		return -ENOSPC;
	t->host = a->host + off;
	t->gpa = LAYOUT_ACPI_START + off;
	*avail = a->size - off;
	return 0;
}

/* The next len bytes of the area, zeroed: the only bytes of it acpi_build() writes. */
static int area_alloc(struct acpi_area *a, uint64_t len, struct acpi_table *t)
{
	uint64_t avail;
	if (area_next(a, t, &avail) || len > avail)
		return -ENOSPC;
	memset(t->host, 0, len);
	a->used = t->gpa - LAYOUT_ACPI_START + len;
	return 0;
}

static void sdt_header(uint8_t *t, const char *sig, uint32_t len, uint8_t revision)
{
	memcpy(t, sig, 4);
	put_le(t + SDT_LENGTH, len, 4);
	t[SDT_REVISION] = revision;
	memcpy(t + SDT_OEM_ID, ACPI_OEM_ID, 6);
	memcpy(t + SDT_OEM_TABLE_ID, ACPI_OEM_TABLE_PREFIX, 4);
	memcpy(t + SDT_OEM_TABLE_ID + 4, sig, 4);
	put_le(t + SDT_OEM_REVISION, ACPI_OEM_REVISION, 4);
	memcpy(t + SDT_CREATOR_ID, ACPI_CREATOR_ID, 4);
	put_le(t + SDT_CREATOR_REVISION, ACPI_CREATOR_REVISION, 4);
}

/* Last step for every table, once all its fields are final. */
static void sdt_seal(uint8_t *t, uint32_t len)
{
	t[SDT_CHECKSUM] = 0;
	t[SDT_CHECKSUM] = (uint8_t)-acpi_checksum(t, len);
}

static void put_gas_io8(uint8_t *gas, uint16_t port)
{
	gas[0] = GAS_SYSTEM_IO;
	gas[1] = 8; /* register bit width */
	gas[2] = 0; /* bit offset */
	gas[3] = GAS_ACCESS_BYTE;
	put_le(gas + 4, port, 8);
}

static void write_rsdp(uint8_t *p, uint64_t xsdt_gpa)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + RSDP_OEM_ID, ACPI_OEM_ID, 6);
	p[RSDP_REVISION] = 2;
	put_le(p + RSDP_LENGTH, RSDP_LEN, 4);
	put_le(p + RSDP_XSDT, xsdt_gpa, 8);
	/* The extended checksum covers the first one, so it goes last. */
	p[RSDP_CHECKSUM] = (uint8_t)-acpi_checksum(p, RSDP_V1_LEN);
	p[RSDP_EXT_CHECKSUM] = (uint8_t)-acpi_checksum(p, RSDP_LEN);
}

static void write_xsdt(uint8_t *t, const uint64_t entries[XSDT_NR_ENTRIES])
{
	sdt_header(t, "XSDT", XSDT_LEN, 1);
	for (unsigned i = 0; i < XSDT_NR_ENTRIES; i++)
		put_le(t + SDT_HDR_LEN + 8 * i, entries[i], 8);
	sdt_seal(t, XSDT_LEN);
}

static void write_fadt(uint8_t *t, uint64_t dsdt_gpa)
{
	sdt_header(t, "FACP", FADT_LEN, FADT_REVISION);
	put_le(t + FADT_IAPC_BOOT_ARCH,
	       IAPC_VGA_NOT_PRESENT | IAPC_MSI_NOT_SUPPORTED | IAPC_PCIE_ASPM_CONTROLS |
		   IAPC_CMOS_RTC_NOT_PRESENT,
	       2);
	put_le(t + FADT_FLAGS,
	       FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP |
		   FADT_F_HW_REDUCED_ACPI,
	       4);
	put_gas_io8(t + FADT_RESET_REG, LAYOUT_ACPI_RESET_PORT);
	t[FADT_RESET_VALUE] = LAYOUT_ACPI_RESET_VALUE;
	t[FADT_MINOR_VERSION] = FADT_MINOR_REVISION;
	/* Only the 64-bit pointer: OSPM must ignore DSDT when X_DSDT is set anyway. */
	put_le(t + FADT_X_DSDT, dsdt_gpa, 8);
	put_gas_io8(t + FADT_SLEEP_CONTROL_REG, LAYOUT_ACPI_SLEEP_CTL_PORT);
	put_gas_io8(t + FADT_SLEEP_STATUS_REG, LAYOUT_ACPI_SLEEP_STS_PORT);
	memcpy(t + FADT_HYPERVISOR_ID, "KILN", 4);
	sdt_seal(t, FADT_LEN);
}

static uint32_t madt_len(unsigned nr_vcpus)
{
	return MADT_ENTRIES + nr_vcpus * MADT_LAPIC_LEN + MADT_IOAPIC_LEN + MADT_LAPIC_NMI_LEN;
}

static void write_madt(uint8_t *t, unsigned nr_vcpus)
{
	uint32_t len = madt_len(nr_vcpus);
	sdt_header(t, "APIC", len, MADT_REVISION);
	put_le(t + MADT_LAPIC_ADDR, LAYOUT_LAPIC_ADDR, 4);
	put_le(t + MADT_FLAGS, 0, 4); /* no PCAT_COMPAT: hardware-reduced, no 8259 */
	uint8_t *e = t + MADT_ENTRIES;
	for (unsigned i = 0; i < nr_vcpus; i++, e += MADT_LAPIC_LEN) {
		e[0] = MADT_TYPE_LAPIC;
		e[1] = MADT_LAPIC_LEN;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC id */
		put_le(e + 4, MADT_LAPIC_ENABLED, 4);
	}
	e[0] = MADT_TYPE_IOAPIC;
	e[1] = MADT_IOAPIC_LEN;
	e[2] = (uint8_t)nr_vcpus; /* I/O APIC id, after the CPUs' */
	e[3] = 0;
	put_le(e + 4, LAYOUT_IOAPIC_ADDR, 4);
	put_le(e + 8, 0, 4); /* GSI base */
	e += MADT_IOAPIC_LEN;
	e[0] = MADT_TYPE_LAPIC_NMI;
	e[1] = MADT_LAPIC_NMI_LEN;
	e[2] = MADT_ALL_PROCESSORS;
	put_le(e + 3, 0, 2); /* MPS INTI flags: conforms to the bus */
	e[5] = 1;	     /* LINT1 */
	sdt_seal(t, len);
}

static void dsdt_com1(struct aml_buf *b)
{
	struct aml_mark dev = aml_device_open(b, "COM1");
	aml_name(b, "_HID");
	aml_eisaid(b, "PNP0501");
	aml_name(b, "_UID");
	aml_integer(b, 0);
	aml_name(b, "_CRS");
	struct aml_mark crs = aml_rt_open(b);
	aml_rt_io(b, LAYOUT_COM1_PORT, LAYOUT_COM1_PORT, 0, 8);
	aml_rt_irq_noflags(b, LAYOUT_COM1_IRQ);
	aml_rt_close(b, crs);
	aml_close(b, dev);
}

/* The i8042 keyboard controller, so Linux's i8042 driver binds and keyboard input (the
 * API's SendCtrlAltDel) reaches the guest on IRQ 1. */
static void dsdt_i8042(struct aml_buf *b)
{
	struct aml_mark dev = aml_device_open(b, "PS2K");
	aml_name(b, "_HID");
	aml_eisaid(b, "PNP0303");
	aml_name(b, "_CRS");
	struct aml_mark crs = aml_rt_open(b);
	aml_rt_io(b, LAYOUT_I8042_DATA_PORT, LAYOUT_I8042_DATA_PORT, 0, 1);
	aml_rt_io(b, LAYOUT_I8042_CMD_PORT, LAYOUT_I8042_CMD_PORT, 0, 1);
	aml_rt_irq_noflags(b, LAYOUT_I8042_KBD_IRQ);
	aml_rt_close(b, crs);
	aml_close(b, dev);
}

/* One virtio-mmio window, found by Linux's virtio_mmio driver through its ACPI id. */
static void dsdt_virtio_mmio(struct aml_buf *b, unsigned idx, const struct acpi_mmio_dev *d)
{
	char name[5] = {'V', (char)('0' + idx / 100), (char)('0' + idx / 10 % 10),
			(char)('0' + idx % 10), 0};
	struct aml_mark dev = aml_device_open(b, name);
	aml_name(b, "_HID");
	aml_string(b, "LNRO0005");
	aml_name(b, "_UID");
	aml_integer(b, idx);
	aml_name(b, "_CCA"); /* DMA is cache-coherent */
	aml_integer(b, 1);
	aml_name(b, "_CRS");
	struct aml_mark crs = aml_rt_open(b);
	aml_rt_memory32_fixed(b, 1, (uint32_t)d->base, d->size);
	aml_rt_ext_irq(b, AML_IRQ_CONSUMER | AML_IRQ_EDGE, d->gsi);
	aml_rt_close(b, crs);
	aml_close(b, dev);
}

static int build_dsdt(struct acpi_area *a, const struct acpi_config *cfg, struct acpi_table *t)
{
	uint64_t avail;
	if (area_next(a, t, &avail) || avail < SDT_HDR_LEN)
		return -ENOSPC;
	memset(t->host, 0, SDT_HDR_LEN); /* the AML after it is written byte for byte */
	struct aml_buf b;
	aml_init(&b, t->host + SDT_HDR_LEN, avail - SDT_HDR_LEN);
	struct aml_mark sb = aml_scope_open(&b, "\\_SB");
	dsdt_com1(&b);
	dsdt_i8042(&b);
	for (unsigned i = 0; i < cfg->nr_mmio_devs; i++)
		dsdt_virtio_mmio(&b, i, &cfg->mmio_devs[i]);
	aml_close(&b, sb);
	/* Linux powers off by writing SLP_TYP from here to the sleep control register. */
	aml_name(&b, "\\_S5");
	struct aml_mark s5 = aml_package_open(&b, 4);
	aml_integer(&b, LAYOUT_ACPI_S5_SLP_TYP);
	aml_integer(&b, LAYOUT_ACPI_S5_SLP_TYP);
	aml_integer(&b, 0);
	aml_integer(&b, 0);
	aml_close(&b, s5);
	int err = aml_status(&b);
	if (err)
		return err;
	uint32_t len = (uint32_t)(SDT_HDR_LEN + b.len);
	sdt_header(t->host, "DSDT", len, DSDT_REVISION);
	sdt_seal(t->host, len);
	a->used = t->gpa - LAYOUT_ACPI_START + len;
	return 0;
}

static int validate(const struct acpi_config *cfg)
{
	if (cfg->nr_vcpus < 1 || cfg->nr_vcpus > LAYOUT_MAX_VCPUS)
		return -EINVAL;
	if (cfg->nr_mmio_devs > LAYOUT_VIRTIO_MMIO_MAX || (cfg->nr_mmio_devs && !cfg->mmio_devs))
		return -EINVAL;
	for (unsigned i = 0; i < cfg->nr_mmio_devs; i++) {
		const struct acpi_mmio_dev *d = &cfg->mmio_devs[i];
		/* Memory32Fixed: the window must lie below 4 GiB. */
		if (d->gsi >= LAYOUT_IOAPIC_PINS || d->size == 0 || d->base > 0xffffffffULL ||
		    d->size > 0x100000000ULL - d->base)
			return -EINVAL;
	}
	return 0;
}

int acpi_build(const struct guest_mem *gm, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	if (!cfg || !rsdp_gpa)
		return -EINVAL;
	int err = validate(cfg);
	if (err)
		return err;
	struct acpi_area a = {.size = LAYOUT_ACPI_END - LAYOUT_ACPI_START};
	a.host = gm_ptr(gm, LAYOUT_ACPI_START, a.size);
	if (!a.host)
		return -EFAULT;
	/* Each table is zeroed as it is laid out, not the whole region: the rest keeps what
	 * fresh guest RAM holds, zeroes, and its 32 pages stay untouched (bench/startup). */
	/* RSDP first, at the start of the region, where the kernel also scans for it. */
	struct acpi_table rsdp, xsdt, fadt, madt, dsdt;
	if (area_alloc(&a, RSDP_LEN, &rsdp) || area_alloc(&a, XSDT_LEN, &xsdt) ||
	    area_alloc(&a, FADT_LEN, &fadt) || area_alloc(&a, madt_len(cfg->nr_vcpus), &madt))
		return -ENOSPC;
	err = build_dsdt(&a, cfg, &dsdt);
	if (err)
		return err;
	write_fadt(fadt.host, dsdt.gpa);
	write_madt(madt.host, cfg->nr_vcpus);
	const uint64_t entries[XSDT_NR_ENTRIES] = {fadt.gpa, madt.gpa};
	write_xsdt(xsdt.host, entries);
	write_rsdp(rsdp.host, xsdt.gpa);
	*rsdp_gpa = rsdp.gpa;
	return 0;
}
