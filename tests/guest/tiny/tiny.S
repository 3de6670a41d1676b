/* A tiny 64-bit guest for host-side tests and bench/startup. It runs at CPL0 in the long
 * mode kiln sets up, uses only instructions PVM's emulator handles, and behaves by the
 * first byte of the kernel command line (boot_params.hdr.cmd_line_ptr at 0x7000+0x228):
 *   'p' print a line, then power off through the ACPI sleep control register
 *   'r' print a line, then reset through the i8042
 *   'a' print a line, then reset through the ACPI reset register
 *   't' triple fault (load an empty IDT, then fault)
 *   'w' print a line, then wait forever (bench reads kiln's memory meanwhile) */
	.code64
	.section .text
	.globl _start
_start:
	mov	$0x7228, %rbx
	mov	(%rbx), %ebx		/* cmd_line_ptr */
	movzbl	(%rbx), %ebx		/* first character */
	cmp	$'t', %bl
	je	triple
	lea	msg(%rip), %rsi
	mov	$0x3f8, %dx
1:	lodsb
	test	%al, %al
	jz	2f
	out	%al, %dx
	jmp	1b
2:	cmp	$'r', %bl
	je	kbd_reset
	cmp	$'a', %bl
	je	acpi_reset
	cmp	$'w', %bl
	je	wait
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
triple:
	lidt	empty_idt(%rip)
	movq	$0, %rax
	mov	(%rax), %rax		/* cannot fault: page 0 is mapped; so divide by zero */
	xor	%ecx, %ecx
	div	%ecx
	jmp	wait

	.section .rodata
msg:	.asciz "kiln tiny guest: hello\n"
	.balign 8
empty_idt:
	.word	0
	.quad	0
