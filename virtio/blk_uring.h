/* A minimal io_uring for virtio-blk's Async engine, on the raw syscalls: kiln is a static
 * musl binary and Debian ships liburing only for glibc, and the engine needs four
 * operations (readv, writev, fdatasync, reap). One ring per drive, owned by the event-loop
 * thread; completions signal an eventfd. */
#ifndef KILN_VIRTIO_BLK_URING_H
#define KILN_VIRTIO_BLK_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_uring {
	int fd; /* -1: no ring */
	unsigned entries;
	void *sq_map, *cq_map, *sqes;
	size_t sq_map_len, cq_map_len, sqes_len;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct blk_uring_cqe *cqes;
	unsigned pending; /* queued with blk_uring_queue(), not yet submitted */
};

enum blk_uring_op { BLK_URING_READV, BLK_URING_WRITEV, BLK_URING_FDATASYNC };

/* A ring of `entries` (a power of two) whose completions write 1 to efd. 0 or -errno
 * (-ENOSYS or -EPERM where the host has io_uring disabled). */
int blk_uring_init(struct blk_uring *u, unsigned entries, int efd);

/* Unmaps and closes; safe on a zeroed ring (fd must then be -1) or twice. */
void blk_uring_close(struct blk_uring *u);

/* Queues one operation (iov and its nr iovecs must stay valid until it completes). `drain`
 * starts it only after everything queued before it completed (a flush after writes).
 * -EBUSY when the submission ring is full. */
int blk_uring_queue(struct blk_uring *u, enum blk_uring_op op, int fd, const struct iovec *iov,
		    unsigned nr, uint64_t off, uint64_t user_data, bool drain);

/* Hands what was queued to the kernel. 0 or -errno. */
int blk_uring_submit(struct blk_uring *u);

/* Calls done(ctx, user_data, res) for every completion that arrived; with `wait`, first
 * waits for at least one. Returns the number reaped or -errno. */
int blk_uring_reap(struct blk_uring *u, bool wait,
		   void (*done)(void *ctx, uint64_t user_data, int32_t res), void *ctx);

#endif
