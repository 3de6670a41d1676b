/* A tiny 64-bit guest for host-side tests and bench/startup. It runs at CPL0 in the long
 * mode kiln sets up, uses only instructions PVM's emulator handles, and behaves by the
 * first byte of the kernel command line (boot_params.hdr.cmd_line_ptr at 0x7000+0x228):
 *   'p' print a line, then power off through the ACPI sleep control register
 *   'r' print a line, then reset through the i8042
 *   'a' print a line, then reset through the ACPI reset register
 *   't' triple fault (load an empty IDT, then fault)
 *   'w' print a line, then wait forever (bench reads kiln's memory meanwhile)
 *   'c' print a line, then "tick <n>" lines forever, a busy-wait apart, the count kept in
 *       RAM at TICK_COUNT (a Diff snapshot that missed its page shows) (the API's pause
 *       test watches them stop and resume)
 *   's' print a line, then start every CPU the ACPI MADT lists (INIT-SIPI-SIPI through the
 *       xAPIC) into a real-mode trampoline that reports its CPUID APIC id and threads per
 *       core; print one "cpu <id> up" line per CPU and "all <n> cpus up" (or a timeout
 *       line), then power off
 *   'm' print a line, then map the RAM the e820 map lists above 4 GiB, write and read back
 *       4 GiB + 16 MiB and the last page of RAM, print "high memory ok" (or a FAIL line),
 *       then power off
 *   'v' print a line, then read MagicValue, Version and DeviceID of every virtio-mmio
 *       window and print one line per device found; then set up the first device (virtio
 *       1.x, polled queues of 8, no interrupts) and do I/O through it, then power off:
 *       block: read sector 0 (print its first bytes), write sector 1;
 *       net: send a broadcast frame (ethertype 0x88b5), then wait for a frame from the host;
 *       vsock: wait for a host-initiated connection request, answer it and send a line.
 *   'b' print a line, then write the byte 123 to Firecracker's boot timer at 0xc0000000
 *       (kiln's --boot-timer logs Guest-boot-time), then power off
 * Every line but the first starts with "kiln tiny guest: " too. The modes 's', 'm' and 'v'
 * are in smp.S, highmem.S and virtio.S. */
#include "tiny.h"

#define TICK_COUNT 0x400000 /* a page of its own, 4 MiB up */

	.code64
	.section .text
	.globl _start, poweroff, puts, say, put_dec, put_hex, newline, put_text, copy_str
_start:
	mov	$0x7228, %rbx
	mov	(%rbx), %ebx		/* cmd_line_ptr */
	movzbl	(%rbx), %ebx		/* first character */
	cmp	$'t', %bl
	je	triple
	lea	msg(%rip), %rsi
	call	puts
	cmp	$'r', %bl
	je	kbd_reset
	cmp	$'a', %bl
	je	acpi_reset
	cmp	$'w', %bl
	je	wait
	cmp	$'c', %bl
	je	ticks
	cmp	$'s', %bl
	je	smp
	cmp	$'m', %bl
	je	highmem
	cmp	$'v', %bl
	je	virtio
	cmp	$'b', %bl
	jne	poweroff
	mov	$0xc0000000, %eax	/* in a register: a disp32 would sign-extend */
	movb	$123, (%rax)
poweroff:
	mov	$0x600, %dx		/* sleep control: SLP_TYP 5, SLP_EN */
	mov	$0x34, %al
	out	%al, %dx
	jmp	wait
kbd_reset:
	mov	$0xfe, %al
	out	%al, $0x64
	jmp	wait
acpi_reset:
	mov	$0x602, %dx
	mov	$0x42, %al
	out	%al, %dx
wait:
	pause
	jmp	wait
ticks:
	movl	$0, TICK_COUNT
1:	lea	tick(%rip), %rsi
	call	say
	mov	TICK_COUNT, %eax
	call	put_dec
	call	newline
	incl	TICK_COUNT		/* in RAM: a snapshot must carry the page it is on */
	mov	$0x8000, %ecx
2:	dec	%ecx
	jnz	2b
	jmp	1b
triple:
	lidt	empty_idt(%rip)
	movq	$0, %rax
	mov	(%rax), %rax		/* cannot fault: page 0 is mapped; so divide by zero */
	xor	%ecx, %ecx
	div	%ecx
	jmp	wait

/* puts: prints the string at %rsi. */
puts:
	push	%rax
	push	%rdx
	push	%rsi
	mov	$0x3f8, %dx
1:	lodsb
	test	%al, %al
	jz	2f
	out	%al, %dx
	jmp	1b
2:	pop	%rsi
	pop	%rdx
	pop	%rax
	ret

/* say: prints the prefix "kiln tiny guest: ", then the string at %rsi. */
say:
	push	%rsi
	lea	prefix(%rip), %rsi
	call	puts
	pop	%rsi
	jmp	puts

/* put_dec: prints %eax in decimal. */
put_dec:
	push	%rax
	push	%rcx
	push	%rdx
	push	%r8
	xor	%ecx, %ecx
	mov	$10, %r8d
1:	xor	%edx, %edx
	div	%r8d
	add	$'0', %edx
	push	%rdx
	inc	%ecx
	test	%eax, %eax
	jnz	1b
	mov	$0x3f8, %dx
2:	pop	%rax
	out	%al, %dx
	loop	2b
	pop	%r8
	pop	%rdx
	pop	%rcx
	pop	%rax
	ret

/* put_hex: prints %rax as 0x and hex digits without leading zeros. */
put_hex:
	push	%rax
	push	%rcx
	push	%rdx
	push	%r8
	push	%r9
	mov	%rax, %r8
	mov	$0x3f8, %dx
	mov	$'0', %al
	out	%al, %dx
	mov	$'x', %al
	out	%al, %dx
	mov	$60, %ecx
	xor	%r9d, %r9d		/* a digit was printed */
1:	mov	%r8, %rax
	shr	%cl, %rax
	and	$0xf, %eax
	or	%eax, %r9d
	jnz	2f
	test	%ecx, %ecx
	jnz	3f
2:	lea	hexdigits(%rip), %rdx
	movzbl	(%rdx,%rax), %eax
	mov	$0x3f8, %dx
	out	%al, %dx
	mov	$1, %r9d
3:	sub	$4, %ecx
	jns	1b
	pop	%r9
	pop	%r8
	pop	%rdx
	pop	%rcx
	pop	%rax
	ret

newline:
	push	%rsi
	lea	nl(%rip), %rsi
	call	puts
	pop	%rsi
	ret

/* put_text: prints up to %ecx bytes at %rsi, up to a NUL; others than ASCII as '.'. */
put_text:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	mov	$0x3f8, %dx
	jrcxz	3f
1:	lodsb
	test	%al, %al
	jz	3f
	cmp	$0x20, %al
	jb	2f
	cmp	$0x7e, %al
	jbe	4f
2:	mov	$'.', %al
4:	out	%al, %dx
	loop	1b
3:	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	ret

/* copy_str: copies the NUL-terminated string at %rsi to %rdi; %ecx = its length. */
copy_str:
	push	%rax
	push	%rsi
	push	%rdi
	xor	%ecx, %ecx
1:	lodsb
	test	%al, %al
	jz	2f
	stosb
	inc	%ecx
	jmp	1b
2:	pop	%rdi
	pop	%rsi
	pop	%rax
	ret

	.section .rodata
	.globl space
msg:	.asciz "kiln tiny guest: hello\n"
prefix:	.asciz "kiln tiny guest: "
tick:	.asciz "tick "
nl:	.asciz "\n"
space:	.asciz " "
hexdigits:	.ascii "0123456789abcdef"
	.balign 8
empty_idt:
	.word	0
	.quad	0
