/* The tiny guest's 'v': prints MagicValue, Version and DeviceID of every virtio-mmio window
 * holding a device, then sets up the first device (virtio 1.x, polled queues of 8, no
 * interrupts) and does I/O through it: block, net or vsock (see tiny.S). */
#include "tiny.h"

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

	.code64
	.section .text
	.globl virtio
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
	RDTSC64
	mov	%rax, %r8
1:	movzwl	Q_USED + 2(%rdi), %eax
	cmp	%ax, Q_SEEN(%rdi)
	jne	2f
	pause
	RDTSC64
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

/* Vsock: rx, tx and event queues; answer the host's connection request, send a line, then
 * receive the host's (printed with control characters as '.'). */
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
	mov	$8, %r14d		/* then the host's data: an RW among the next 8 packets */
vs_rx_next:
	xor	%ecx, %ecx
	xor	%edx, %edx
	call	vq_kick			/* the RX buffer again */
	call	vq_wait
	jc	vtimeout
	movzwl	VS_RX + 30, %eax
	cmp	$5, %eax		/* RW */
	je	1f
	dec	%r14d
	jnz	vs_rx_next
	lea	vs_no_data_msg(%rip), %rsi
	call	say
	call	put_dec
	call	newline
	jmp	poweroff
1:	lea	vs_rx_msg(%rip), %rsi
	call	say
	mov	VS_RX + 24, %eax	/* payload length */
	call	put_dec
	lea	vs_rx_from_msg(%rip), %rsi
	call	puts
	mov	%eax, %ecx
	cmp	$64, %ecx
	jbe	2f
	mov	$64, %ecx
2:	mov	$VS_RX + VS_HDR, %esi
	call	put_text
	call	newline
	jmp	poweroff
vs_unexpected:
	lea	vs_op_msg(%rip), %rsi
	call	say
	call	put_dec
	call	newline
	jmp	poweroff

	.section .rodata
virtio_msg:	.asciz "virtio-mmio "
version_msg:	.asciz ": version "
device_id_msg:	.asciz " device id "
virtio_done_msg:	.asciz "virtio probe done\n"
vfail_msg:	.asciz "virtio FAIL: the device refused its setup, status "
vtimeout_msg:	.asciz "virtio FAIL: timeout on queue "
colon_msg:	.asciz ": "
blk_read_msg:	.asciz "virtio-blk read sector 0, status "
blk_write_msg:	.asciz "virtio-blk wrote sector 1, status "
blk_data:	.asciz "kiln tiny guest wrote sector 1\n"
net_data:	.asciz "kiln tiny guest frame"
net_sent_msg:	.asciz "virtio-net sent a frame\n"
net_rx_msg:	.asciz "virtio-net received a frame of "
ethertype_msg:	.asciz " bytes, ethertype "
vs_wait_msg:	.asciz "virtio-vsock waiting for a connection, cid "
vs_data:	.asciz "kiln tiny guest over vsock\n"
vs_done_msg:	.asciz "virtio-vsock answered a connection to port "
vs_from_msg:	.asciz " and sent a line to host port "
vs_op_msg:	.asciz "virtio-vsock FAIL: expected a REQUEST, got op "
vs_no_data_msg:	.asciz "virtio-vsock FAIL: no data from the host, last op "
vs_rx_msg:	.asciz "virtio-vsock received "
vs_rx_from_msg:	.asciz " bytes from the host: "
