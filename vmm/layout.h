/* Guest-physical layout of a kiln microVM: the single source of every fixed address. */
#ifndef KILN_LAYOUT_H
#define KILN_LAYOUT_H

/* Low memory, used during boot (all inside the first 1 MiB). */
#define LAYOUT_GDT_ADDR 0x500ULL
#define LAYOUT_ZERO_PAGE_ADDR 0x7000ULL	 /* struct boot_params */
#define LAYOUT_BOOT_STACK_ADDR 0x8ff0ULL /* initial RSP/RBP */
#define LAYOUT_PML4_ADDR 0x9000ULL
#define LAYOUT_PDPT_ADDR 0xa000ULL
#define LAYOUT_PD_ADDR 0xb000ULL /* 4 pages: identity map of 0..4 GiB in 2 MiB pages */
#define LAYOUT_PD_PAGES 4
#define LAYOUT_CMDLINE_ADDR 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL /* kiln's own limit, incl. the NUL */
#define LAYOUT_EBDA_START 0x9fc00ULL  /* end of usable low RAM */
#define LAYOUT_ACPI_START 0xe0000ULL  /* RSDP first, where the kernel also scans for it */
#define LAYOUT_ACPI_END 0x100000ULL
#define LAYOUT_HIMEM_START 0x100000ULL /* default kernel load address */

/* The MMIO gap below 4 GiB: no RAM here, device windows and the APICs instead. */
#define LAYOUT_MMIO_GAP_START 0xd0000000ULL
#define LAYOUT_MMIO_GAP_END 0x100000000ULL
#define LAYOUT_VIRTIO_MMIO_BASE 0xd0000000ULL
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ULL
#define LAYOUT_VIRTIO_MMIO_MAX 32 /* windows reserved for virtio devices */
#define LAYOUT_IOAPIC_ADDR 0xfec00000ULL
#define LAYOUT_LAPIC_ADDR 0xfee00000ULL
#define LAYOUT_HIGH_RAM_START 0x100000000ULL
/* Firecracker's boot timer (--boot-timer) at its x86_64 BOOT_DEVICE_MEM_START, the start of
 * Firecracker's 1 GiB gap: below kiln's gap, so guest RAM when a guest has more than 3 GiB
 * (then kiln leaves the device out: vmm/boot_timer.h). */
#define LAYOUT_BOOT_TIMER_ADDR 0xc0000000ULL
#define LAYOUT_BOOT_TIMER_SIZE 0x1000ULL

/* Legacy I/O ports and ISA interrupts. */
#define LAYOUT_COM1_PORT 0x3f8
#define LAYOUT_COM1_IRQ 4
#define LAYOUT_I8042_DATA_PORT 0x60
#define LAYOUT_I8042_CMD_PORT 0x64
#define LAYOUT_I8042_KBD_IRQ 1
/* ACPI hardware-reduced registers (FADT): one byte each, port I/O. */
#define LAYOUT_ACPI_SLEEP_CTL_PORT 0x600
#define LAYOUT_ACPI_SLEEP_STS_PORT 0x601
#define LAYOUT_ACPI_RESET_PORT 0x602
#define LAYOUT_ACPI_RESET_VALUE 0x42
#define LAYOUT_ACPI_S5_SLP_TYP 5 /* value of \_S5 in the DSDT */

/* First GSI handed to virtio devices (0-15 are ISA; 4 is COM1). */
#define LAYOUT_VIRTIO_IRQ_BASE 5
#define LAYOUT_IOAPIC_PINS 24

#define LAYOUT_MAX_VCPUS 32

#endif
