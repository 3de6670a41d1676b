/* The tiny guest's 's': starts every CPU the ACPI MADT lists (INIT-SIPI-SIPI through the
 * xAPIC) into a real-mode trampoline where each reports its CPUID APIC id and threads per
 * core; prints one "cpu <id> up" line per CPU and "all <n> cpus up" (or a timeout line). */
#include "tiny.h"

#define TRAMP 0x10000		/* AP start page: free in kiln's layout, SIPI vector 0x10 */
#define TRAMP_LOCK 0x800	/* offsets in the trampoline page: a spinlock byte, */
#define TRAMP_COUNT 0x804	/* the count of CPUs that reported, */
#define TRAMP_SLOTS 0x810	/* and per CPU a word: APIC id, threads per core */
#define APIC_IDS (TRAMP + 0xa00)	/* the APIC ids listed in the MADT, one byte each */
#define LAPIC 0xfee00000
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_INIT 0x4500		/* INIT, level assert */
#define ICR_SIPI (0x4600 | (TRAMP >> 12))
#define ICR_BUSY 0x1000

/* CPU_INFO: %esi = initial APIC id (CPUID 1 EBX[31:24]), %edi = threads per core from CPUID
 * 0xB subleaf 0 (SMT level) or else AMD's 0x8000001E EBX[15:8] + 1, 0 if neither exists.
 * Clobbers eax, ebx, ecx, edx. Assembles as 16-bit and 64-bit code alike. */
.macro CPU_INFO
	mov	$1, %eax
	cpuid
	mov	%ebx, %esi
	shr	$24, %esi
	xor	%edi, %edi
	xor	%eax, %eax
	cpuid
	cmp	$0xb, %eax
	jb	1f
	mov	$0xb, %eax
	xor	%ecx, %ecx
	cpuid
	cmp	$1, %ch			/* level type SMT */
	jne	1f
	movzwl	%bx, %edi
	jmp	2f
1:	mov	$0x80000000, %eax
	cpuid
	cmp	$0x8000001e, %eax
	jb	2f
	mov	$0x8000001e, %eax
	cpuid
	movzbl	%bh, %edi
	inc	%edi
2:
.endm

	.code64
	.section .text
	.globl smp
smp:
	mov	$TRAMP, %edi		/* clear the shared page, copy the trampoline in */
	xor	%eax, %eax
	mov	$4096, %ecx
	rep stosb
	lea	tramp(%rip), %rsi
	mov	$TRAMP, %edi
	mov	$(tramp_end - tramp), %ecx
	rep movsb
	CPU_INFO
	mov	%esi, %r12d		/* the BSP's APIC id */
	shl	$8, %edi
	or	%esi, %edi
	mov	%di, TRAMP + TRAMP_SLOTS
	movl	$1, TRAMP + TRAMP_COUNT
	mov	$LAPIC, %ebx		/* xAPIC mode: the MMIO id register matches CPUID */
	mov	LAPIC_ID(%rbx), %eax
	shr	$24, %eax
	cmp	%r12d, %eax
	jne	no_xapic
	orl	$0x100, LAPIC_SVR(%rbx)	/* software-enable the local APIC */
	call	find_madt
	test	%r9, %r9
	jz	no_madt
	call	madt_apic_ids		/* -> %r13d CPUs */
	mov	$ICR_INIT, %eax
	call	ipi_aps
	call	delay
	mov	$ICR_SIPI, %eax
	call	ipi_aps
	call	delay
	mov	$ICR_SIPI, %eax
	call	ipi_aps
	RDTSC64
	mov	%rax, %r14
1:	cmp	%r13d, TRAMP + TRAMP_COUNT
	jae	2f
	pause
	RDTSC64
	sub	%r14, %rax
	movabs	$WAIT_TSC, %rdx
	cmp	%rdx, %rax
	jb	1b
2:	mov	TRAMP + TRAMP_COUNT, %r15d
	xor	%ecx, %ecx
3:	cmp	%r15d, %ecx		/* one line per CPU that reported */
	jae	4f
	lea	cpu_msg(%rip), %rsi
	call	say
	movzbl	TRAMP + TRAMP_SLOTS(,%rcx,4), %eax
	call	put_dec
	lea	threads_msg(%rip), %rsi
	call	puts
	movzbl	TRAMP + TRAMP_SLOTS + 1(,%rcx,4), %eax
	call	put_dec
	call	newline
	inc	%ecx
	jmp	3b
4:	cmp	%r13d, %r15d
	jb	5f
	lea	all_msg(%rip), %rsi
	call	say
	mov	%r13d, %eax
	call	put_dec
	lea	cpus_up_msg(%rip), %rsi
	call	puts
	jmp	poweroff
5:	lea	timeout_msg(%rip), %rsi
	call	say
	mov	%r15d, %eax
	call	put_dec
	lea	of_msg(%rip), %rsi
	call	puts
	mov	%r13d, %eax
	call	put_dec
	lea	cpus_up_msg(%rip), %rsi
	call	puts
	jmp	poweroff
no_xapic:
	lea	no_xapic_msg(%rip), %rsi
	call	say
	jmp	poweroff
no_madt:
	lea	no_madt_msg(%rip), %rsi
	call	say
	jmp	poweroff

/* find_madt: %r9 = the MADT through boot_params.acpi_rsdp_addr, RSDP and XSDT; 0 if none. */
find_madt:
	xor	%r9d, %r9d
	mov	ZP_ACPI_RSDP, %rax
	test	%rax, %rax
	jz	3f
	movabs	$0x2052545020445352, %rcx	/* "RSD PTR " */
	cmp	(%rax), %rcx
	jne	3f
	cmpb	$2, 15(%rax)		/* revision 2: has an XSDT */
	jb	3f
	mov	24(%rax), %rax
	cmpl	$0x54445358, (%rax)	/* "XSDT" */
	jne	3f
	mov	4(%rax), %ecx
	lea	(%rax,%rcx), %r8	/* end of the XSDT */
	lea	36(%rax), %rdx
1:	lea	8(%rdx), %rax
	cmp	%r8, %rax
	ja	3f
	mov	(%rdx), %rax
	cmpl	$0x43495041, (%rax)	/* "APIC" */
	je	2f
	add	$8, %rdx
	jmp	1b
2:	mov	%rax, %r9
3:	ret

/* madt_apic_ids: lists the APIC ids of the enabled local APICs of the MADT at %r9 at
 * APIC_IDS and prints them; %r13d = their count. */
madt_apic_ids:
	xor	%r13d, %r13d
	mov	4(%r9), %ecx
	lea	(%r9,%rcx), %r8		/* end of the MADT */
	lea	44(%r9), %rdx
	lea	madt_msg(%rip), %rsi
	call	say
1:	lea	2(%rdx), %rax
	cmp	%r8, %rax
	ja	3f
	movzbl	1(%rdx), %ecx		/* entry length */
	cmp	$2, %ecx
	jb	3f
	cmpb	$0, (%rdx)		/* processor local APIC */
	jne	2f
	testb	$1, 4(%rdx)		/* enabled */
	jz	2f
	movzbl	3(%rdx), %eax
	mov	%al, APIC_IDS(%r13)
	inc	%r13d
	lea	space(%rip), %rsi
	call	puts
	call	put_dec
2:	add	%rcx, %rdx
	jmp	1b
3:	jmp	newline

/* ipi_aps: sends the IPI of ICR low word %eax to every listed APIC id but the BSP's. */
ipi_aps:
	mov	$LAPIC, %ebx
	xor	%ecx, %ecx
1:	cmp	%r13d, %ecx
	jae	3f
	movzbl	APIC_IDS(%rcx), %edx
	cmp	%r12d, %edx
	je	2f
	shl	$24, %edx
	mov	%edx, LAPIC_ICR_HI(%rbx)
	mov	%eax, LAPIC_ICR_LO(%rbx)
	mov	$100000, %edx
4:	testl	$ICR_BUSY, LAPIC_ICR_LO(%rbx)
	jz	2f
	pause
	dec	%edx
	jnz	4b
2:	inc	%ecx
	jmp	1b
3:	ret

/* delay: a short pause between INIT and SIPIs (KVM needs none; real hardware 10 ms). */
delay:
	mov	$10000, %ecx
1:	pause
	loop	1b
	ret
/* ---- the AP trampoline, copied to TRAMP: real mode, CS = TRAMP >> 4, IP = 0 ------------ */
	.code16
tramp:
	cli
	mov	%cs, %ax
	mov	%ax, %ds
	CPU_INFO
1:	mov	$1, %al
	xchg	%al, TRAMP_LOCK
	test	%al, %al
	jz	2f
	pause
	jmp	1b
2:	mov	TRAMP_COUNT, %bx
	shl	$2, %bx
	mov	%di, %ax
	shl	$8, %ax
	or	%si, %ax
	mov	%ax, TRAMP_SLOTS(%bx)
	incl	TRAMP_COUNT
	movb	$0, TRAMP_LOCK
3:	hlt
	jmp	3b
tramp_end:
	.code64

	.section .rodata
cpu_msg:	.asciz "cpu "
threads_msg:	.asciz " up, threads per core "
all_msg:	.asciz "all "
cpus_up_msg:	.asciz " cpus up\n"
timeout_msg:	.asciz "timeout: "
of_msg:	.asciz " of "
no_xapic_msg:	.asciz "FAIL: the local APIC is not in xAPIC mode at 0xfee00000\n"
no_madt_msg:	.asciz "FAIL: no MADT through boot_params.acpi_rsdp_addr\n"
madt_msg:	.asciz "madt apic ids:"
