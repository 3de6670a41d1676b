/* Shared by the tiny test guest's files (tiny.S, smp.S, highmem.S, virtio.S): fixed
 * addresses of kiln's boot layout (vmm/layout.h) and the guest's helpers, all 64-bit code:
 *   puts: prints the NUL-terminated string at %rsi
 *   say: prints "kiln tiny guest: ", then the string at %rsi
 *   put_dec: prints %eax in decimal; put_hex: %rax as 0x and hex digits; newline
 *   put_text: prints up to %ecx bytes at %rsi, up to a NUL, others than ASCII as '.'
 *   copy_str: copies the string at %rsi to %rdi, %ecx = its length
 *   poweroff: ends the VM through the ACPI sleep control register (never returns)
 * Each preserves every register but those named. */
#ifndef TINY_H
#define TINY_H

#define ZERO_PAGE 0x7000
#define ZP_ACPI_RSDP (ZERO_PAGE + 0x070)
#define ZP_E820_ENTRIES (ZERO_PAGE + 0x1e8)
#define ZP_E820_TABLE (ZERO_PAGE + 0x2d0)
#define BOOT_PDPT 0xa000	/* kiln's boot page tables map 0..4 GiB (vmm/layout.h) */
#define WAIT_TSC (1 << 35)	/* about 10 s at 3 GHz: how long the guest waits for anything */

/* RDTSC64: %rax = the time stamp counter; clobbers rdx. */
.macro RDTSC64
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
.endm

#endif
