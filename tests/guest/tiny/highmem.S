/* The tiny guest's 'm': maps the RAM the e820 map lists above 4 GiB, writes and reads back
 * 4 GiB + 16 MiB and the last page of RAM and prints "high memory ok" (or a FAIL line). */
#include "tiny.h"

#define HIGH_PD 0x30000		/* this guest's page directories for 1 GiB above 4 GiB each */
#define HIGH_PD_GIBS 16		/* ... up to 16 GiB of guest-physical addresses */

	.code64
	.section .text
	.globl highmem
highmem:
	movzbl	ZP_E820_ENTRIES, %ecx	/* %r8 = the end of the highest e820 RAM entry */
	mov	$ZP_E820_TABLE, %edx
	xor	%r8d, %r8d
	jrcxz	2f
1:	cmpl	$1, 16(%rdx)
	jne	3f
	mov	(%rdx), %rax
	add	8(%rdx), %rax
	cmp	%r8, %rax
	cmova	%rax, %r8
3:	add	$20, %rdx
	loop	1b
2:	lea	ram_end_msg(%rip), %rsi
	call	say
	mov	%r8, %rax
	call	put_hex
	call	newline
	movabs	$0x101001000, %rax	/* 4 GiB + 16 MiB, a page of it */
	cmp	%rax, %r8
	jb	no_high_ram
	mov	$HIGH_PD_GIBS, %eax
	shl	$30, %rax
	cmp	%rax, %r8
	ja	no_high_ram
	movabs	$0x101000000, %rax
	call	map_gib
	lea	-1(%r8), %rax
	call	map_gib
	mov	%cr3, %rax		/* flush the TLB */
	mov	%rax, %cr3
	movabs	$0x101000000, %rax
	call	write_pattern
	lea	-4096(%r8), %rax
	call	write_pattern
	lea	-8(%r8), %rax
	call	write_pattern
	movabs	$0x101000000, %rax
	call	check_pattern
	lea	-4096(%r8), %rax
	call	check_pattern
	lea	-8(%r8), %rax
	call	check_pattern
	lea	high_ok_msg(%rip), %rsi
	call	say
	jmp	poweroff
no_high_ram:
	lea	no_high_msg(%rip), %rsi
	call	say
	jmp	poweroff

/* map_gib: maps the GiB holding address %rax (4..HIGH_PD_GIBS GiB) with 2 MiB pages. */
map_gib:
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	shr	$30, %rax
	mov	%rax, %rsi
	shl	$12, %rsi
	add	$HIGH_PD, %rsi		/* this GiB's page directory */
	mov	%rsi, %rdi
	mov	%rax, %rdx
	shl	$30, %rdx
	or	$0x83, %rdx		/* present, writable, 2 MiB page */
	mov	$512, %ecx
1:	mov	%rdx, (%rdi)
	add	$8, %rdi
	add	$0x200000, %rdx
	loop	1b
	or	$3, %rsi		/* present, writable */
	mov	%rsi, BOOT_PDPT(,%rax,8)
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	ret

/* write_pattern: stores a value derived from address %rax at %rax. */
write_pattern:
	push	%rdx
	movabs	$0x6b696c6e74696e79, %rdx	/* "kilntiny" */
	xor	%rax, %rdx
	mov	%rdx, (%rax)
	pop	%rdx
	ret

/* check_pattern: the value at %rax is write_pattern's and its 4 GiB-lower alias is not;
 * else prints a FAIL line and powers off. */
check_pattern:
	push	%rdx
	movabs	$0x6b696c6e74696e79, %rdx
	xor	%rax, %rdx
	cmp	%rdx, (%rax)
	jne	1f
	movabs	$0x100000000, %rdx
	neg	%rdx
	mov	(%rax,%rdx), %rdx	/* the same offset below 4 GiB */
	xor	%rax, %rdx
	movabs	$0x6b696c6e74696e79, %rdi
	cmp	%rdi, %rdx
	je	2f
	pop	%rdx
	ret
1:	lea	high_fail_msg(%rip), %rsi
	call	say
	call	put_hex
	lea	read_msg(%rip), %rsi
	call	puts
	mov	(%rax), %rax
	call	put_hex
	call	newline
	jmp	poweroff
2:	lea	high_alias_msg(%rip), %rsi
	call	say
	call	put_hex
	call	newline
	jmp	poweroff

	.section .rodata
ram_end_msg:	.asciz "ram ends at "
no_high_msg:	.asciz "FAIL: no RAM above 4 GiB + 16 MiB (or above 16 GiB) in the e820 map\n"
high_ok_msg:	.asciz "high memory ok\n"
high_fail_msg:	.asciz "high memory FAIL at "
read_msg:	.asciz ": read "
high_alias_msg:	.asciz "high memory FAIL: aliases low memory at "
