/* A tiny 64-bit guest for host-side tests and bench/startup. It runs at CPL0 in the long
 * mode kiln sets up, uses only instructions PVM's emulator handles, and behaves by the
 * first byte of the kernel command line (boot_params.hdr.cmd_line_ptr at 0x7000+0x228):
 *   'p' print a line, then power off through the ACPI sleep control register
 *   'r' print a line, then reset through the i8042
 *   'a' print a line, then reset through the ACPI reset register
 *   't' triple fault (load an empty IDT, then fault)
 *   'w' print a line, then wait forever (bench reads kiln's memory meanwhile)
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
 * Every line but the first starts with "kiln tiny guest: " too. */
#define ZERO_PAGE 0x7000
#define ZP_ACPI_RSDP (ZERO_PAGE + 0x070)
#define ZP_E820_ENTRIES (ZERO_PAGE + 0x1e8)
#define ZP_E820_TABLE (ZERO_PAGE + 0x2d0)
#define BOOT_PDPT 0xa000	/* kiln's boot page tables map 0..4 GiB (vmm/layout.h) */
#define HIGH_PD 0x30000		/* this guest's page directories for 1 GiB above 4 GiB each */
#define HIGH_PD_GIBS 16		/* ... up to 16 GiB of guest-physical addresses */
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
#define WAIT_TSC (1 << 35)	/* about 10 s at 3 GHz for every CPU to report */
#define VIRTIO_MMIO 0xd0000000
#define VIRTIO_MMIO_SIZE 0x1000
#define VIRTIO_MMIO_MAX 32
#define VM_DRV_FEAT 0x020	/* virtio-mmio registers */
#define VM_DRV_FEAT_SEL 0x024
#define VM_QUEUE_SEL 0x030
#define VM_QUEUE_NUM_MAX 0x034
#define VM_QUEUE_NUM 0x038
#define VM_QUEUE_READY 0x044
#define VM_QUEUE_NOTIFY 0x050
#define VM_STATUS 0x070
#define VM_QUEUE_DESC 0x080
#define VM_QUEUE_AVAIL 0x090
#define VM_QUEUE_USED 0x0a0
#define VM_CONFIG 0x100
#define QBASE 0x40000		/* virtqueue q: descriptors at QBASE + q * 0x1000, */
#define Q_AVAIL 0x400		/* its driver ring, */
#define Q_USED 0x800		/* its device ring, */
#define Q_SEEN 0xf00		/* and the device ring index this driver has seen */
#define QSIZE 8
#define D_NEXT 1		/* descriptor flags */
#define D_WRITE 2
#define IOBUF 0x50000		/* request buffers: header, status, data */
#define NET_RX 0x52000
#define NET_TX 0x53000
#define NET_HDR 12		/* struct virtio_net_hdr_v1 */
#define VS_RX 0x54000
#define VS_TX 0x56000
#define VS_HDR 44		/* struct virtio_vsock_hdr */

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
	.globl _start
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
	cmp	$'s', %bl
	je	smp
	cmp	$'m', %bl
	je	highmem
	cmp	$'v', %bl
	je	virtio
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

/* ---- 's': start the CPUs of the MADT ---------------------------------------------------- */
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
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, %r14
1:	cmp	%r13d, TRAMP + TRAMP_COUNT
	jae	2f
	pause
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
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

/* ---- 'm': RAM above 4 GiB ------------------------------------------------------------- */
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

/* ---- 'v': probe the virtio-mmio windows, then drive the first device ------------------- */
virtio:
	mov	$VIRTIO_MMIO, %ebx
	xor	%ecx, %ecx
	xor	%r12d, %r12d		/* the first device's window */
1:	cmpl	$0x74726976, (%rbx)	/* MagicValue "virt" */
	jne	2f
	lea	virtio_msg(%rip), %rsi
	call	say
	mov	%ecx, %eax
	call	put_dec
	lea	version_msg(%rip), %rsi
	call	puts
	mov	4(%rbx), %eax
	call	put_dec
	lea	device_id_msg(%rip), %rsi
	call	puts
	mov	8(%rbx), %eax
	call	put_dec
	call	newline
	test	%r12, %r12
	jnz	2f
	mov	%rbx, %r12
	mov	8(%rbx), %r13d
2:	add	$VIRTIO_MMIO_SIZE, %ebx
	inc	%ecx
	cmp	$VIRTIO_MMIO_MAX, %ecx
	jb	1b
	lea	virtio_done_msg(%rip), %rsi
	call	say
	mov	%r12, %rbx
	test	%rbx, %rbx
	jz	poweroff
	cmp	$2, %r13d
	je	vblk
	cmp	$1, %r13d
	je	vnet
	cmp	$19, %r13d
	je	vvsock
	jmp	poweroff

/* vdev_init: resets the device at %rbx, negotiates VERSION_1 only and sets up %r14d queues. */
vdev_init:
	movl	$0, VM_STATUS(%rbx)
	movl	$1, VM_STATUS(%rbx)	/* ACKNOWLEDGE */
	movl	$3, VM_STATUS(%rbx)	/* DRIVER */
	movl	$1, VM_DRV_FEAT_SEL(%rbx)
	movl	$1, VM_DRV_FEAT(%rbx)	/* VIRTIO_F_VERSION_1 (bit 32) */
	movl	$0, VM_DRV_FEAT_SEL(%rbx)
	movl	$0, VM_DRV_FEAT(%rbx)
	movl	$0xb, VM_STATUS(%rbx)	/* FEATURES_OK */
	testl	$8, VM_STATUS(%rbx)
	jz	vfail
	xor	%ecx, %ecx
1:	cmp	%r14d, %ecx
	jae	2f
	call	vq_setup
	inc	%ecx
	jmp	1b
2:	movl	$0xf, VM_STATUS(%rbx)	/* DRIVER_OK */
	testl	$0x40, VM_STATUS(%rbx)	/* NEEDS_RESET */
	jnz	vfail
	ret

/* vq_setup: queue %ecx of the device at %rbx: QSIZE entries in its page at QBASE. */
vq_setup:
	push	%rcx
	push	%rdx
	push	%rdi
	mov	%ecx, VM_QUEUE_SEL(%rbx)
	cmpl	$QSIZE, VM_QUEUE_NUM_MAX(%rbx)
	jb	vfail
	mov	%ecx, %edx
	shl	$12, %edx
	add	$QBASE, %edx
	mov	%edx, %edi
	mov	$512, %ecx
	xor	%eax, %eax
	rep stosq
	movl	$QSIZE, VM_QUEUE_NUM(%rbx)
	mov	%edx, VM_QUEUE_DESC(%rbx)
	movl	$0, VM_QUEUE_DESC + 4(%rbx)
	lea	Q_AVAIL(%rdx), %eax
	mov	%eax, VM_QUEUE_AVAIL(%rbx)
	movl	$0, VM_QUEUE_AVAIL + 4(%rbx)
	lea	Q_USED(%rdx), %eax
	mov	%eax, VM_QUEUE_USED(%rbx)
	movl	$0, VM_QUEUE_USED + 4(%rbx)
	movl	$1, VM_QUEUE_READY(%rbx)
	pop	%rdi
	pop	%rdx
	pop	%rcx
	ret

/* desc: descriptor %ecx of the table at %r8 := buffer %rax, length %edx, flags %r9w, next
 * %r9d >> 16. */
desc:
	push	%rcx
	shl	$4, %ecx
	mov	%rax, (%r8,%rcx)
	mov	%edx, 8(%r8,%rcx)
	mov	%r9d, 12(%r8,%rcx)
	pop	%rcx
	ret

/* vq_kick: makes descriptor %edx the next driver ring entry of queue %ecx and notifies. */
vq_kick:
	push	%rax
	push	%rdi
	mov	%ecx, %edi
	shl	$12, %edi
	add	$QBASE + Q_AVAIL, %edi
	movzwl	2(%rdi), %eax
	push	%rax
	and	$QSIZE - 1, %eax
	mov	%dx, 4(%rdi,%rax,2)
	pop	%rax
	inc	%eax
	mov	%ax, 2(%rdi)		/* after the entry: x86 keeps stores in order */
	mov	%ecx, VM_QUEUE_NOTIFY(%rbx)
	pop	%rdi
	pop	%rax
	ret

/* vq_wait: waits (WAIT_TSC at most) for the next device ring entry of queue %ecx; %eax =
 * its length. CF set on a timeout. */
vq_wait:
	push	%rdx
	push	%rdi
	push	%r8
	mov	%ecx, %edi
	shl	$12, %edi
	add	$QBASE, %edi
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, %r8
1:	movzwl	Q_USED + 2(%rdi), %eax
	cmp	%ax, Q_SEEN(%rdi)
	jne	2f
	pause
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	sub	%r8, %rax
	movabs	$WAIT_TSC, %rdx
	cmp	%rdx, %rax
	jb	1b
	stc
	jmp	3f
2:	movzwl	Q_SEEN(%rdi), %eax
	lea	1(%rax), %edx
	mov	%dx, Q_SEEN(%rdi)
	and	$QSIZE - 1, %eax
	mov	Q_USED + 8(%rdi,%rax,8), %eax	/* used element: id, then len */
	clc
3:	pop	%r8
	pop	%rdi
	pop	%rdx
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

vfail:
	lea	vfail_msg(%rip), %rsi
	call	say
	mov	VM_STATUS(%rbx), %eax
	call	put_hex
	call	newline
	jmp	poweroff
vtimeout:
	lea	vtimeout_msg(%rip), %rsi
	call	say
	mov	%ecx, %eax
	call	put_dec
	call	newline
	jmp	poweroff

/* Block: read sector 0, write sector 1 (header, data, status descriptors). */
vblk:
	mov	$1, %r14d
	call	vdev_init
	mov	$IOBUF, %edi
	mov	$0x800 / 8, %ecx
	xor	%eax, %eax
	rep stosq
	mov	$QBASE, %r8d
	xor	%ecx, %ecx
	mov	$IOBUF, %eax		/* type IN (0), sector 0 */
	mov	$16, %edx
	mov	$D_NEXT | 1 << 16, %r9d
	call	desc
	mov	$1, %ecx
	mov	$IOBUF + 0x200, %eax
	mov	$512, %edx
	mov	$D_NEXT | D_WRITE | 2 << 16, %r9d
	call	desc
	mov	$2, %ecx
	mov	$IOBUF + 0x10, %eax
	mov	$1, %edx
	mov	$D_WRITE, %r9d
	call	desc
	movb	$0xff, IOBUF + 0x10
	xor	%ecx, %ecx
	xor	%edx, %edx
	call	vq_kick
	call	vq_wait
	jc	vtimeout
	lea	blk_read_msg(%rip), %rsi
	call	say
	movzbl	IOBUF + 0x10, %eax
	call	put_dec
	lea	colon_msg(%rip), %rsi
	call	puts
	mov	$IOBUF + 0x200, %esi
	mov	$32, %ecx
	call	put_text
	call	newline
	movl	$1, IOBUF		/* type OUT, sector 1 */
	movq	$1, IOBUF + 8
	lea	blk_data(%rip), %rsi
	mov	$IOBUF + 0x200, %edi
	call	copy_str
	mov	$QBASE, %r8d
	mov	$1, %ecx
	mov	$IOBUF + 0x200, %eax
	mov	$512, %edx
	mov	$D_NEXT | 2 << 16, %r9d
	call	desc
	movb	$0xff, IOBUF + 0x10
	xor	%ecx, %ecx
	xor	%edx, %edx
	call	vq_kick
	call	vq_wait
	jc	vtimeout
	lea	blk_write_msg(%rip), %rsi
	call	say
	movzbl	IOBUF + 0x10, %eax
	call	put_dec
	call	newline
	jmp	poweroff

/* Net: an RX buffer on queue 0, a broadcast frame on queue 1, then a frame from the host. */
vnet:
	mov	$2, %r14d
	call	vdev_init
	mov	$QBASE, %r8d
	xor	%ecx, %ecx
	mov	$NET_RX, %eax
	mov	$2048, %edx
	mov	$D_WRITE, %r9d
	call	desc
	xor	%ecx, %ecx
	xor	%edx, %edx
	call	vq_kick
	mov	$NET_TX, %edi
	mov	$128 / 8, %ecx
	xor	%eax, %eax
	rep stosq
	movl	$0xffffffff, NET_TX + NET_HDR	/* to ff:ff:ff:ff:ff:ff */
	movw	$0xffff, NET_TX + NET_HDR + 4
	movl	$0x00000002, NET_TX + NET_HDR + 6	/* from 02:00:00:00:00:01 */
	movw	$0x0100, NET_TX + NET_HDR + 10
	movw	$0xb588, NET_TX + NET_HDR + 12	/* ethertype 0x88b5 */
	lea	net_data(%rip), %rsi
	mov	$NET_TX + NET_HDR + 14, %edi
	call	copy_str
	mov	$QBASE + 0x1000, %r8d
	xor	%ecx, %ecx
	mov	$NET_TX, %eax
	mov	$NET_HDR + 60, %edx
	xor	%r9d, %r9d
	call	desc
	mov	$1, %ecx
	xor	%edx, %edx
	call	vq_kick
	call	vq_wait
	jc	vtimeout
	lea	net_sent_msg(%rip), %rsi
	call	say
	xor	%ecx, %ecx
	call	vq_wait
	jc	vtimeout
	sub	$NET_HDR, %eax
	lea	net_rx_msg(%rip), %rsi
	call	say
	call	put_dec
	lea	ethertype_msg(%rip), %rsi
	call	puts
	movzwl	NET_RX + NET_HDR + 12, %eax
	xchg	%al, %ah
	call	put_hex
	call	newline
	jmp	poweroff

/* vs_hdr: a vsock header at VS_TX from cid %r15 port %r13d to the host's port %r12d, op
 * %eax, payload length %edx. */
vs_hdr:
	mov	%r15, VS_TX
	movq	$2, VS_TX + 8		/* the host's CID */
	mov	%r13d, VS_TX + 16
	mov	%r12d, VS_TX + 20
	mov	%edx, VS_TX + 24
	movw	$1, VS_TX + 28		/* stream */
	mov	%ax, VS_TX + 30
	movl	$0, VS_TX + 32
	movl	$65536, VS_TX + 36	/* buf_alloc */
	movl	$0, VS_TX + 40		/* fwd_cnt */
	ret

/* vs_send: sends the packet at VS_TX of %edx payload bytes on the TX queue. */
vs_send:
	mov	$QBASE + 0x1000, %r8d
	xor	%ecx, %ecx
	mov	$VS_TX, %eax
	add	$VS_HDR, %edx
	xor	%r9d, %r9d
	call	desc
	mov	$1, %ecx
	xor	%edx, %edx
	call	vq_kick
	call	vq_wait
	jc	vtimeout
	ret

/* Vsock: rx, tx and event queues; answer the host's connection request, then send a line. */
vvsock:
	mov	$3, %r14d
	call	vdev_init
	mov	VM_CONFIG(%rbx), %r15d	/* guest_cid (low half) */
	mov	$QBASE, %r8d
	xor	%ecx, %ecx
	mov	$VS_RX, %eax
	mov	$4096, %edx
	mov	$D_WRITE, %r9d
	call	desc
	xor	%ecx, %ecx
	xor	%edx, %edx
	call	vq_kick
	lea	vs_wait_msg(%rip), %rsi
	call	say
	mov	%r15d, %eax
	call	put_dec
	call	newline
	xor	%ecx, %ecx
	call	vq_wait
	jc	vtimeout
	mov	VS_RX + 16, %r12d	/* the host's port */
	mov	VS_RX + 20, %r13d	/* ours */
	movzwl	VS_RX + 30, %eax
	cmp	$1, %eax		/* REQUEST */
	jne	vs_unexpected
	mov	$2, %eax		/* RESPONSE */
	xor	%edx, %edx
	call	vs_hdr
	call	vs_send
	lea	vs_data(%rip), %rsi
	mov	$VS_TX + VS_HDR, %edi
	call	copy_str
	mov	%ecx, %edx
	mov	$5, %eax		/* RW */
	call	vs_hdr
	call	vs_send
	lea	vs_done_msg(%rip), %rsi
	call	say
	mov	%r13d, %eax
	call	put_dec
	lea	vs_from_msg(%rip), %rsi
	call	puts
	mov	%r12d, %eax
	call	put_dec
	call	newline
	jmp	poweroff
vs_unexpected:
	lea	vs_op_msg(%rip), %rsi
	call	say
	call	put_dec
	call	newline
	jmp	poweroff

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
msg:	.asciz "kiln tiny guest: hello\n"
prefix:	.asciz "kiln tiny guest: "
nl:	.asciz "\n"
space:	.asciz " "
hexdigits: .ascii "0123456789abcdef"
cpu_msg: .asciz "cpu "
threads_msg: .asciz " up, threads per core "
all_msg: .asciz "all "
cpus_up_msg: .asciz " cpus up\n"
timeout_msg: .asciz "timeout: "
of_msg: .asciz " of "
no_xapic_msg: .asciz "FAIL: the local APIC is not in xAPIC mode at 0xfee00000\n"
no_madt_msg: .asciz "FAIL: no MADT through boot_params.acpi_rsdp_addr\n"
madt_msg: .asciz "madt apic ids:"
ram_end_msg: .asciz "ram ends at "
no_high_msg: .asciz "FAIL: no RAM above 4 GiB + 16 MiB (or above 16 GiB) in the e820 map\n"
high_ok_msg: .asciz "high memory ok\n"
high_fail_msg: .asciz "high memory FAIL at "
read_msg: .asciz ": read "
high_alias_msg: .asciz "high memory FAIL: aliases low memory at "
virtio_msg: .asciz "virtio-mmio "
version_msg: .asciz ": version "
device_id_msg: .asciz " device id "
virtio_done_msg: .asciz "virtio probe done\n"
vfail_msg: .asciz "virtio FAIL: the device refused its setup, status "
vtimeout_msg: .asciz "virtio FAIL: timeout on queue "
colon_msg: .asciz ": "
blk_read_msg: .asciz "virtio-blk read sector 0, status "
blk_write_msg: .asciz "virtio-blk wrote sector 1, status "
blk_data: .asciz "kiln tiny guest wrote sector 1\n"
net_data: .asciz "kiln tiny guest frame"
net_sent_msg: .asciz "virtio-net sent a frame\n"
net_rx_msg: .asciz "virtio-net received a frame of "
ethertype_msg: .asciz " bytes, ethertype "
vs_wait_msg: .asciz "virtio-vsock waiting for a connection, cid "
vs_data: .asciz "kiln tiny guest over vsock\n"
vs_done_msg: .asciz "virtio-vsock answered a connection to port "
vs_from_msg: .asciz " and sent a line to host port "
vs_op_msg: .asciz "virtio-vsock FAIL: expected a REQUEST, got op "
	.balign 8
empty_idt:
	.word	0
	.quad	0
