#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/acpi.h"
#include "vmm/aml.h"
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#define RAM_SIZE (128ULL << 20)

struct tables {
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt;
	uint64_t xsdt_gpa, fadt_gpa, madt_gpa, dsdt_gpa;
};

static uint64_t rd(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = n; i-- > 0;)
		v = (v << 8) | p[i];
	return v;
}

static size_t count_bytes(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
	size_t n = 0;
	for (size_t i = 0; nlen <= len && i <= len - nlen; i++)
		n += memcmp(hay + i, needle, nlen) == 0;
	return n;
}

/* Asserts that gpa holds a whole table inside the ACPI region, aligned, summing to 0. */
static const uint8_t *table_at(const struct guest_mem *gm, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= LAYOUT_ACPI_START && gpa < LAYOUT_ACPI_END);
	assert_int_equal(gpa % 8, 0);
	const uint8_t *t = gm_ptr(gm, gpa, 36);
	assert_non_null(t);
	assert_memory_equal(t, sig, 4);
	uint64_t len = rd(t + 4, 4);
	assert_true(len >= 36 && len <= LAYOUT_ACPI_END - gpa);
	assert_int_equal(acpi_checksum(t, len), 0);
	assert_memory_equal(t + 10, "KILN  ", 6);
	return t;
}

static void load_tables(const struct guest_mem *gm, uint64_t rsdp_gpa, struct tables *t)
{
	assert_int_equal(rsdp_gpa, LAYOUT_ACPI_START);
	t->rsdp = gm_ptr(gm, rsdp_gpa, 36);
	assert_non_null(t->rsdp);
	t->xsdt_gpa = rd(t->rsdp + 24, 8);
	t->xsdt = table_at(gm, t->xsdt_gpa, "XSDT");
	assert_int_equal(rd(t->xsdt + 4, 4), 36 + 2 * 8);
	t->fadt_gpa = rd(t->xsdt + 36, 8);
	t->madt_gpa = rd(t->xsdt + 44, 8);
	t->fadt = table_at(gm, t->fadt_gpa, "FACP");
	t->madt = table_at(gm, t->madt_gpa, "APIC");
	t->dsdt_gpa = rd(t->fadt + 140, 8);
	t->dsdt = table_at(gm, t->dsdt_gpa, "DSDT");
}

static void make_devs(struct acpi_mmio_dev *devs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		devs[i].base = LAYOUT_VIRTIO_MMIO_BASE + i * LAYOUT_VIRTIO_MMIO_SIZE;
		devs[i].size = LAYOUT_VIRTIO_MMIO_SIZE;
		devs[i].gsi =
		    LAYOUT_VIRTIO_IRQ_BASE + i % (LAYOUT_IOAPIC_PINS - LAYOUT_VIRTIO_IRQ_BASE);
	}
}

static void build(const struct guest_mem *gm, unsigned vcpus, unsigned ndevs, struct tables *t)
{
	struct acpi_mmio_dev devs[LAYOUT_VIRTIO_MMIO_MAX];
	make_devs(devs, ndevs);
	struct acpi_config cfg = {.nr_vcpus = vcpus, .mmio_devs = devs, .nr_mmio_devs = ndevs};
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), 0);
	load_tables(gm, rsdp, t);
}

static int setup(void **state)
{
	struct guest_mem *gm = calloc(1, sizeof(*gm));
	if (!gm || guest_mem_init(gm, RAM_SIZE))
		return -1;
	*state = gm;
	return 0;
}

static int teardown(void **state)
{
	guest_mem_free(*state);
	free(*state);
	return 0;
}

static void test_checksum(void **state)
{
	(void)state;
	const uint8_t buf[] = {1, 2, 3, 0xfa};
	assert_int_equal(acpi_checksum(buf, sizeof(buf)), 0);
	assert_int_equal(acpi_checksum(buf, 3), 6);
	assert_int_equal(acpi_checksum(buf, 0), 0);
}

static void test_rsdp(void **state)
{
	struct tables t;
	build(*state, 2, 2, &t);
	assert_memory_equal(t.rsdp, "RSD PTR ", 8);
	assert_memory_equal(t.rsdp + 9, "KILN  ", 6);
	assert_int_equal(t.rsdp[15], 2);
	assert_int_equal(rd(t.rsdp + 16, 4), 0); /* no RSDT */
	assert_int_equal(rd(t.rsdp + 20, 4), 36);
	assert_int_equal(acpi_checksum(t.rsdp, 20), 0);
	assert_int_equal(acpi_checksum(t.rsdp, 36), 0);
	assert_int_equal(LAYOUT_ACPI_START % 16, 0);
}

static void test_tables_distinct_and_ordered(void **state)
{
	struct tables t;
	build(*state, 4, 8, &t);
	/* Every table is 16-byte aligned and none overlaps the next. */
	const uint64_t gpa[] = {LAYOUT_ACPI_START, t.xsdt_gpa, t.fadt_gpa, t.madt_gpa, t.dsdt_gpa};
	const uint8_t *p[] = {t.rsdp, t.xsdt, t.fadt, t.madt, t.dsdt};
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(gpa[i] % 16, 0);
		if (i + 1 < 5) {
			uint64_t len = i == 0 ? 36 : rd(p[i] + 4, 4);
			assert_true(gpa[i] + len <= gpa[i + 1]);
		}
	}
}

static void test_fadt(void **state)
{
	struct tables t;
	build(*state, 1, 1, &t);
	const uint8_t *f = t.fadt;
	assert_int_equal(rd(f + 4, 4), 276);
	assert_int_equal(f[8], 6);
	assert_memory_equal(f + 16, "KILNFACP", 8);
	uint32_t flags = (uint32_t)rd(f + 112, 4);
	assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10)); /* RESET_REG_SUP */
	assert_true(flags & (1u << 4));	 /* PWR_BUTTON */
	assert_true(flags & (1u << 5));	 /* SLP_BUTTON */
	uint16_t boot_arch = (uint16_t)rd(f + 109, 2);
	assert_int_equal(boot_arch, (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5)); /* no RTC */
	assert_false(boot_arch & (1u << 1));					    /* no 8042 */
	const uint8_t reset[12] = {
	    1, 8, 0, 1, LAYOUT_ACPI_RESET_PORT & 0xff, LAYOUT_ACPI_RESET_PORT >> 8};
	assert_memory_equal(f + 116, reset, 12);
	assert_int_equal(f[128], LAYOUT_ACPI_RESET_VALUE);
	const uint8_t ctl[12] = {
	    1, 8, 0, 1, LAYOUT_ACPI_SLEEP_CTL_PORT & 0xff, LAYOUT_ACPI_SLEEP_CTL_PORT >> 8};
	const uint8_t sts[12] = {
	    1, 8, 0, 1, LAYOUT_ACPI_SLEEP_STS_PORT & 0xff, LAYOUT_ACPI_SLEEP_STS_PORT >> 8};
	assert_memory_equal(f + 244, ctl, 12);
	assert_memory_equal(f + 256, sts, 12);
	assert_memory_equal(f + 268, "KILN", 4);
	assert_int_equal(rd(f + 40, 4), 0); /* 32-bit DSDT unused */
	assert_int_equal(rd(f + 140, 8), t.dsdt_gpa);
	assert_int_equal(rd(f + 46, 2), 0); /* no SCI */
	/* No fixed hardware: PM1 blocks and GPEs all absent. */
	for (unsigned off = 148; off < 244; off++)
		assert_int_equal(f[off], 0);
}

static void check_madt(const uint8_t *m, unsigned vcpus)
{
	uint32_t len = (uint32_t)rd(m + 4, 4);
	assert_int_equal(len, 44 + 8 * vcpus + 12 + 6);
	assert_int_equal(rd(m + 36, 4), LAYOUT_LAPIC_ADDR);
	unsigned nr_lapic = 0, nr_ioapic = 0, nr_nmi = 0;
	for (uint32_t off = 44; off < len; off += m[off + 1]) {
		const uint8_t *e = m + off;
		assert_true(e[1] >= 2 && e[1] <= len - off);
		if (e[0] == 0) {
			assert_int_equal(e[2], nr_lapic); /* UID */
			assert_int_equal(e[3], nr_lapic); /* APIC id */
			assert_int_equal(rd(e + 4, 4), 1);
			nr_lapic++;
		} else if (e[0] == 1) {
			assert_int_equal(e[2], vcpus);
			assert_int_equal(rd(e + 4, 4), LAYOUT_IOAPIC_ADDR);
			assert_int_equal(rd(e + 8, 4), 0);
			nr_ioapic++;
		} else if (e[0] == 4) {
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nr_nmi++;
		} else {
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	assert_int_equal(nr_lapic, vcpus);
	assert_int_equal(nr_ioapic, 1);
	assert_int_equal(nr_nmi, 1);
}

static void test_madt(void **state)
{
	const unsigned counts[] = {1, 2, LAYOUT_MAX_VCPUS};
	for (unsigned i = 0; i < 3; i++) {
		struct tables t;
		build(*state, counts[i], 0, &t);
		check_madt(t.madt, counts[i]);
	}
}

static void check_dsdt_devices(const uint8_t *d, unsigned ndevs)
{
	size_t len = rd(d + 4, 4);
	assert_int_equal(d[8], 2);
	const uint8_t device_op[] = {0x5b, 0x82};
	assert_int_equal(count_bytes(d, len, device_op, 2), 2 + ndevs);
	assert_int_equal(count_bytes(d, len, "COM1", 4), 1);
	/* The i8042 (PS2K, PNP0303): ports 0x60 and 0x64, IRQ 1. */
	assert_int_equal(count_bytes(d, len, "PS2K", 4), 1);
	const uint8_t pnp0303[] = {0x0c, 0x41, 0xd0, 0x03, 0x03};
	assert_int_equal(count_bytes(d, len, pnp0303, 5), 1);
	const uint8_t io60[] = {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x00, 0x01};
	const uint8_t io64[] = {0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x00, 0x01};
	assert_int_equal(count_bytes(d, len, io60, 8), 1);
	assert_int_equal(count_bytes(d, len, io64, 8), 1);
	const uint8_t irq1[] = {0x22, 0x02, 0x00};
	assert_int_equal(count_bytes(d, len, irq1, 3), 1);
	const uint8_t pnp0501[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
	assert_int_equal(count_bytes(d, len, pnp0501, 5), 1);
	const uint8_t io[] = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08};
	assert_int_equal(count_bytes(d, len, io, 8), 1);
	const uint8_t irq4[] = {0x22, 0x10, 0x00};
	assert_int_equal(count_bytes(d, len, irq4, 3), 1);
	assert_int_equal(count_bytes(d, len, "LNRO0005", 9), ndevs);
	struct acpi_mmio_dev devs[LAYOUT_VIRTIO_MMIO_MAX];
	make_devs(devs, ndevs);
	for (unsigned i = 0; i < ndevs; i++) {
		char name[5];
		snprintf(name, sizeof(name), "V%03u", i % 1000);
		assert_int_equal(count_bytes(d, len, name, 4), 1);
		/* Memory32Fixed(ReadWrite, base, size) then Interrupt(ResourceConsumer, Edge,
		 * ActiveHigh, Exclusive) {gsi}: unique per device through its base. */
		uint8_t crs[21] = {0x86, 0x09, 0x00, 0x01};
		for (unsigned b = 0; b < 4; b++) {
			crs[4 + b] = (uint8_t)(devs[i].base >> (8 * b));
			crs[8 + b] = (uint8_t)(devs[i].size >> (8 * b));
			crs[17 + b] = (uint8_t)(devs[i].gsi >> (8 * b));
		}
		memcpy(crs + 12, (const uint8_t[]){0x89, 0x06, 0x00, 0x03, 0x01}, 5);
		assert_int_equal(count_bytes(d, len, crs, sizeof(crs)), 1);
	}
	/* Name(\_S5, Package(4) {typ, typ, 0, 0}) */
	const uint8_t typ = LAYOUT_ACPI_S5_SLP_TYP;
	const uint8_t s5[] = {0x08, 0x5c, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08,
			      0x04, 0x0a, typ,	0x0a, typ,  0x00, 0x00};
	assert_int_equal(count_bytes(d, len, s5, sizeof(s5)), 1);
}

static void test_dsdt(void **state)
{
	const unsigned counts[] = {0, 1, 3, LAYOUT_VIRTIO_MMIO_MAX};
	for (unsigned i = 0; i < 4; i++) {
		struct tables t;
		build(*state, 1, counts[i], &t);
		check_dsdt_devices(t.dsdt, counts[i]);
	}
}

static void test_bad_config(void **state)
{
	struct guest_mem *gm = *state;
	struct acpi_mmio_dev devs[LAYOUT_VIRTIO_MMIO_MAX + 1];
	make_devs(devs, LAYOUT_VIRTIO_MMIO_MAX + 1);
	struct acpi_config cfg = {.nr_vcpus = 0, .mmio_devs = devs, .nr_mmio_devs = 1};
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), -EINVAL);
	cfg.nr_vcpus = LAYOUT_MAX_VCPUS + 1;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), -EINVAL);
	cfg.nr_vcpus = 1;
	cfg.nr_mmio_devs = LAYOUT_VIRTIO_MMIO_MAX + 1;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), -EINVAL);
	cfg.nr_mmio_devs = 2;
	devs[1].gsi = LAYOUT_IOAPIC_PINS;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), -EINVAL);
	devs[1].gsi = LAYOUT_IOAPIC_PINS - 1;
	devs[1].base = 0x100000000ULL; /* not expressible as Memory32Fixed */
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), -EINVAL);
	devs[1].base = 0xfffff000ULL;
	devs[1].size = 0x2000;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), -EINVAL);
	devs[1].size = 0;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), -EINVAL);
	cfg.mmio_devs = NULL;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(gm, NULL, &rsdp), -EINVAL);
	assert_int_equal(rsdp, 0);
	/* The top window below 4 GiB and the last GSI are fine. */
	make_devs(devs, 2);
	devs[1].base = 0xfffff000ULL;
	devs[1].gsi = LAYOUT_IOAPIC_PINS - 1;
	cfg.mmio_devs = devs;
	assert_int_equal(acpi_build(gm, &cfg, &rsdp), 0);
	assert_int_equal(rsdp, LAYOUT_ACPI_START);
}

static void test_no_ram_for_tables(void **state)
{
	(void)state;
	struct guest_mem small;
	assert_int_equal(guest_mem_init(&small, 512 << 10), 0);
	struct acpi_config cfg = {.nr_vcpus = 1};
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(&small, &cfg, &rsdp), -EFAULT);
	guest_mem_free(&small);
}

static void test_aml_pkglen(void **state)
{
	(void)state;
	uint8_t out[4];
	/* Encoded value = body + field size; 1 byte up to 63, 2 bytes up to 4095. */
	assert_int_equal(aml_pkglen_encode(out, 0), 1);
	assert_int_equal(out[0], 1);
	assert_int_equal(aml_pkglen_encode(out, 62), 1);
	assert_int_equal(out[0], 63);
	assert_int_equal(aml_pkglen_encode(out, 63), 2); /* 64 would not fit one byte */
	assert_int_equal(out[0], 0x40 | (65 & 0xf));
	assert_int_equal(out[1], 65 >> 4);
	assert_int_equal(aml_pkglen_encode(out, 4093), 2);
	assert_int_equal(out[0], 0x40 | 0xf);
	assert_int_equal(out[1], 0xff); /* 4095 */
	assert_int_equal(aml_pkglen_encode(out, 4094), 3);
	assert_int_equal(out[0], 0x80 | ((4094 + 3) & 0xf));
	assert_int_equal(rd(out + 1, 2), (4094 + 3) >> 4);
	assert_int_equal(aml_pkglen_encode(out, 0xffffc), 3); /* 0xfffff */
	assert_int_equal(aml_pkglen_encode(out, 0xffffd), 4);
	assert_int_equal(out[0], 0xc0 | ((0xffffd + 4) & 0xf));
	assert_int_equal(rd(out + 1, 3), (0xffffd + 4) >> 4);
	assert_int_equal(aml_pkglen_encode(out, 0xffffffb), 4); /* 0xfffffff */
	assert_int_equal(aml_pkglen_encode(out, 0xffffffc), 0);
	assert_int_equal(aml_pkglen_encode(out, SIZE_MAX), 0);
}

static void expect_aml_int(uint64_t v, const uint8_t *want, size_t want_len)
{
	uint8_t mem[16];
	struct aml_buf b;
	aml_init(&b, mem, sizeof(mem));
	aml_integer(&b, v);
	assert_int_equal(aml_status(&b), 0);
	assert_int_equal(b.len, want_len);
	assert_memory_equal(mem, want, want_len);
}

static void test_aml_integer(void **state)
{
	(void)state;
	expect_aml_int(0, (const uint8_t[]){0x00}, 1);
	expect_aml_int(1, (const uint8_t[]){0x01}, 1);
	expect_aml_int(2, (const uint8_t[]){0x0a, 0x02}, 2);
	expect_aml_int(0xff, (const uint8_t[]){0x0a, 0xff}, 2);
	expect_aml_int(0x100, (const uint8_t[]){0x0b, 0x00, 0x01}, 3);
	expect_aml_int(0xffff, (const uint8_t[]){0x0b, 0xff, 0xff}, 3);
	expect_aml_int(0x10000, (const uint8_t[]){0x0c, 0x00, 0x00, 0x01, 0x00}, 5);
	expect_aml_int(0xffffffff, (const uint8_t[]){0x0c, 0xff, 0xff, 0xff, 0xff}, 5);
	expect_aml_int(0x100000000ULL, (const uint8_t[]){0x0e, 0, 0, 0, 0, 1, 0, 0, 0}, 9);
	expect_aml_int(UINT64_MAX,
		       (const uint8_t[]){0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9);
}

static void test_aml_names(void **state)
{
	(void)state;
	uint8_t mem[64];
	struct aml_buf b;
	aml_init(&b, mem, sizeof(mem));
	aml_name_string(&b, "\\_SB");
	aml_name_string(&b, "COM1");
	aml_name_string(&b, "_SB.PCI0");
	aml_name_string(&b, "^^A.B.C");
	aml_name_string(&b, "\\");
	assert_int_equal(aml_status(&b), 0);
	const uint8_t want[] = {'\\', '_', 'S', 'B', '_', 'C', 'O', 'M', '1',  0x2e, '_',  'S',
				'B',  '_', 'P', 'C', 'I', '0', '^', '^', 0x2f, 3,    'A',  '_',
				'_',  '_', 'B', '_', '_', '_', 'C', '_', '_',  '_',  '\\', 0x00};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(mem, want, sizeof(want));
	const char *bad[] = {"", "ABCDE", "1ABC", "A..B", "A.", "a", "\\\\A", "AB-C"};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&b, mem, sizeof(mem));
		aml_name_string(&b, bad[i]);
		assert_int_equal(aml_status(&b), -EINVAL);
	}
}

static void test_aml_eisaid_string(void **state)
{
	(void)state;
	uint8_t mem[32];
	struct aml_buf b;
	aml_init(&b, mem, sizeof(mem));
	aml_eisaid(&b, "PNP0501");
	aml_eisaid(&b, "PNP0A03");
	aml_string(&b, "AB");
	assert_int_equal(aml_status(&b), 0);
	const uint8_t want[] = {0x0c, 0x41, 0xd0, 0x05, 0x01, 0x0c, 0x41,
				0xd0, 0x0a, 0x03, 0x0d, 'A',  'B',  0x00};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(mem, want, sizeof(want));
	const char *bad[] = {"PNP050", "PNP05011", "pnp0501", "PNP050G", "1NP0501"};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&b, mem, sizeof(mem));
		aml_eisaid(&b, bad[i]);
		assert_int_equal(aml_status(&b), -EINVAL);
	}
}

/* A Device whose body is body_len bytes gets the shortest PkgLength once closed. */
static void check_device_pkglen(size_t body_len, size_t want_pkglen_bytes)
{
	uint8_t mem[8192];
	uint8_t filler[8192];
	memset(filler, 0xa5, sizeof(filler));
	struct aml_buf b;
	aml_init(&b, mem, sizeof(mem));
	struct aml_mark m = aml_device_open(&b, "DEV0");
	aml_bytes(&b, filler, body_len - 4); /* the name is part of the body */
	aml_close(&b, m);
	assert_int_equal(aml_status(&b), 0);
	assert_int_equal(b.len, 2 + want_pkglen_bytes + body_len);
	uint8_t want[4];
	assert_int_equal(aml_pkglen_encode(want, body_len), want_pkglen_bytes);
	assert_memory_equal(mem + 2, want, want_pkglen_bytes);
	assert_memory_equal(mem + 2 + want_pkglen_bytes, "DEV0", 4);
	assert_int_equal(mem[b.len - 1], 0xa5);
}

static void test_aml_nested_close(void **state)
{
	(void)state;
	check_device_pkglen(62, 1);
	check_device_pkglen(63, 2);
	check_device_pkglen(4093, 2);
	check_device_pkglen(4094, 3);
	/* ResourceTemplate: Buffer, PkgLength, BufferSize, descriptors, EndTag. */
	uint8_t mem[64];
	struct aml_buf b;
	aml_init(&b, mem, sizeof(mem));
	struct aml_mark pkg = aml_package_open(&b, 1);
	struct aml_mark rt = aml_rt_open(&b);
	aml_rt_irq_noflags(&b, 4);
	aml_rt_close(&b, rt);
	aml_close(&b, pkg);
	assert_int_equal(aml_status(&b), 0);
	const uint8_t want[] = {0x12, 0x0b, 0x01, 0x11, 0x08, 0x0a,
				0x05, 0x22, 0x10, 0x00, 0x79, 0x00};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(mem, want, sizeof(want));
}

static void test_aml_overflow(void **state)
{
	(void)state;
	uint8_t mem[16];
	memset(mem, 0xee, sizeof(mem));
	struct aml_buf b;
	aml_init(&b, mem, 8);
	struct aml_mark m = aml_scope_open(&b, "\\_SB"); /* 1 + 4 reserved + 5 > 8 */
	aml_integer(&b, 7);
	aml_close(&b, m);
	assert_int_equal(aml_status(&b), -ENOSPC);
	assert_true(b.len <= 8);
	for (unsigned i = 8; i < sizeof(mem); i++)
		assert_int_equal(mem[i], 0xee);
	aml_init(&b, mem, 8);
	aml_rt_irq_noflags(&b, 16);
	assert_int_equal(aml_status(&b), -EINVAL);
	aml_init(&b, mem, 8);
	aml_package_open(&b, 256);
	assert_int_equal(aml_status(&b), -EINVAL);
}

/* Writes len bytes of guest memory at gpa to dir/name. */
static void dump_table(const struct guest_mem *gm, const char *dir, const char *name, uint64_t gpa,
		       size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(gm_ptr(gm, gpa, len), 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Runs iasl with args in dir; returns its exit status and the named output file. */
static int run_iasl(const char *dir, const char *args, const char *out, char *text, size_t cap)
{
	char cmd[512], path[256];
	snprintf(cmd, sizeof(cmd), "cd '%s' && iasl %s >iasl.log 2>&1", dir, args);
	int rc = system(cmd);
	snprintf(path, sizeof(path), "%s/%s", dir, out);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(text, 1, cap - 1, f) : 0;
	text[n] = 0;
	if (f)
		fclose(f);
	return rc;
}

/* Whether some line of text contains a, and b after it. */
static int line_has(const char *text, const char *a, const char *b)
{
	for (const char *p = strstr(text, a); p; p = strstr(p + 1, a)) {
		const char *eol = strchr(p, '\n');
		const char *q = strstr(p, b);
		if (q && (!eol || q < eol))
			return 1;
	}
	return 0;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	char path[512];
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
	rmdir(dir);
}

/* Cross-checks the encoding with ACPICA: the DSDT disassembles, recompiles cleanly, and
 * the data tables disassemble without errors. */
static void test_iasl(void **state)
{
	if (system("command -v iasl >/dev/null 2>&1") != 0)
		skip(); /* Debian: apt-get install acpica-tools */
	const struct guest_mem *gm = *state;
	struct tables t;
	build(gm, 2, 3, &t);
	char dir[] = "/tmp/kiln-acpi-XXXXXX";
	assert_non_null(mkdtemp(dir));
	dump_table(gm, dir, "dsdt.aml", t.dsdt_gpa, rd(t.dsdt + 4, 4));
	dump_table(gm, dir, "facp.dat", t.fadt_gpa, rd(t.fadt + 4, 4));
	dump_table(gm, dir, "apic.dat", t.madt_gpa, rd(t.madt + 4, 4));
	static char text[1 << 16];
	assert_int_equal(run_iasl(dir, "-d dsdt.aml", "dsdt.dsl", text, sizeof(text)), 0);
	assert_non_null(strstr(text, "\"LNRO0005\""));
	assert_non_null(strstr(text, "EisaId (\"PNP0501\")"));
	assert_non_null(strstr(text, "Device (V002)"));
	assert_non_null(strstr(text, "Name (\\_S5, Package (0x04)"));
	/* Recompiling the disassembly must produce no errors or warnings. */
	assert_int_equal(run_iasl(dir, "-p re dsdt.dsl", "iasl.log", text, sizeof(text)), 0);
	assert_non_null(strstr(text, "0 Errors, 0 Warnings"));
	assert_int_equal(run_iasl(dir, "-d facp.dat", "facp.dsl", text, sizeof(text)), 0);
	assert_true(line_has(text, "Hardware Reduced", ": 1"));
	assert_true(line_has(text, "Sleep Control Register", "Generic Address"));
	assert_null(strstr(text, "Invalid"));
	assert_int_equal(run_iasl(dir, "-d apic.dat", "apic.dsl", text, sizeof(text)), 0);
	assert_non_null(strstr(text, "Local APIC NMI"));
	assert_null(strstr(text, "Invalid"));
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checksum),
	    cmocka_unit_test(test_rsdp),
	    cmocka_unit_test(test_tables_distinct_and_ordered),
	    cmocka_unit_test(test_fadt),
	    cmocka_unit_test(test_madt),
	    cmocka_unit_test(test_dsdt),
	    cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_no_ram_for_tables),
	    cmocka_unit_test(test_aml_pkglen),
	    cmocka_unit_test(test_aml_integer),
	    cmocka_unit_test(test_aml_names),
	    cmocka_unit_test(test_aml_eisaid_string),
	    cmocka_unit_test(test_aml_nested_close),
	    cmocka_unit_test(test_aml_overflow),
	    cmocka_unit_test(test_iasl),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
