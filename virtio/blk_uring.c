#include "virtio/blk_uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct blk_uring_cqe {
	struct io_uring_cqe c;
};

static int uring_setup(unsigned entries, struct io_uring_params *p)
{
	long r = syscall(__NR_io_uring_setup, entries, p);
	return r < 0 ? -errno : (int)r;
}

static int uring_enter(int fd, unsigned submit, unsigned min_complete, unsigned flags)
{
	long r;
	do
		r = syscall(__NR_io_uring_enter, fd, submit, min_complete, flags, NULL, 0);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (int)r;
}

static void *map_ring(int fd, size_t len, uint64_t off)
{
	void *p =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)off);
	return p == MAP_FAILED ? NULL : p;
}

/* The three shared areas: the SQ ring (head, tail, index array), the CQ ring, the SQEs. */
static int map_rings(struct blk_uring *u, const struct io_uring_params *p)
{
	u->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
	u->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	u->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
	if (!(p->features & IORING_FEAT_SINGLE_MMAP))
		return -ENOSYS; /* Linux < 5.4 */
	if (u->cq_map_len > u->sq_map_len)
		u->sq_map_len = u->cq_map_len;
	u->sq_map = map_ring(u->fd, u->sq_map_len, IORING_OFF_SQ_RING);
	u->sqes = map_ring(u->fd, u->sqes_len, IORING_OFF_SQES);
	if (!u->sq_map || !u->sqes)
		return -errno;
	u->cq_map = u->sq_map; /* one mapping holds both rings */
	u->cq_map_len = 0;
	uint8_t *sq = u->sq_map, *cq = u->cq_map;
	u->sq_head = (unsigned *)(sq + p->sq_off.head);
	u->sq_tail = (unsigned *)(sq + p->sq_off.tail);
	u->sq_mask = (unsigned *)(sq + p->sq_off.ring_mask);
	u->sq_array = (unsigned *)(sq + p->sq_off.array);
	u->cq_head = (unsigned *)(cq + p->cq_off.head);
	u->cq_tail = (unsigned *)(cq + p->cq_off.tail);
	u->cq_mask = (unsigned *)(cq + p->cq_off.ring_mask);
	u->cqes = (struct blk_uring_cqe *)(cq + p->cq_off.cqes);
	return 0;
}

int blk_uring_init(struct blk_uring *u, unsigned entries, int efd)
{
	struct io_uring_params p;
	memset(u, 0, sizeof(*u));
	memset(&p, 0, sizeof(p));
	u->fd = uring_setup(entries, &p);
	if (u->fd < 0) {
		int err = u->fd;
		u->fd = -1;
		return err;
	}
	u->entries = p.sq_entries;
	int err = map_rings(u, &p);
	if (!err && syscall(__NR_io_uring_register, u->fd, IORING_REGISTER_EVENTFD, &efd, 1) < 0)
		err = -errno;
	if (err)
		blk_uring_close(u);
	return err;
}

void blk_uring_close(struct blk_uring *u)
{
	if (u->sq_map)
		munmap(u->sq_map, u->sq_map_len);
	if (u->sqes)
		munmap(u->sqes, u->sqes_len);
	if (u->fd >= 0)
		close(u->fd);
	memset(u, 0, sizeof(*u));
	u->fd = -1;
}

int blk_uring_queue(struct blk_uring *u, enum blk_uring_op op, int fd, const struct iovec *iov,
		    unsigned nr, uint64_t off, uint64_t user_data, bool drain)
{
	static const uint8_t opcode[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC};
	if (u->fd < 0)
		return -EBUSY;
	unsigned tail = *u->sq_tail; /* only this thread writes it */
	unsigned head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	if (tail - head >= u->entries)
		return -EBUSY;
	unsigned idx = tail & *u->sq_mask;
	struct io_uring_sqe *sqe = (struct io_uring_sqe *)u->sqes + idx;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode[op];
	sqe->fd = fd;
	sqe->flags = drain ? IOSQE_IO_DRAIN : 0;
	sqe->addr = (uintptr_t)iov;
	sqe->len = nr;
	sqe->off = off;
	sqe->user_data = user_data;
	if (op == BLK_URING_FDATASYNC) { /* the whole file: no buffer, no range */
		sqe->addr = sqe->len = 0;
		sqe->off = 0;
		sqe->fsync_flags = IORING_FSYNC_DATASYNC;
	}
	u->sq_array[idx] = idx;
	/* The entry must be complete before the kernel can see the new tail. */
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	u->pending++;
	return 0;
}

int blk_uring_submit(struct blk_uring *u)
{
	while (u->pending) {
		int n = uring_enter(u->fd, u->pending, 0, 0);
		if (n < 0)
			return n;
		if (n == 0)
			return -EAGAIN;
		u->pending -= (unsigned)n < u->pending ? (unsigned)n : u->pending;
	}
	return 0;
}

int blk_uring_reap(struct blk_uring *u, bool wait,
		   void (*done)(void *ctx, uint64_t user_data, int32_t res), void *ctx)
{
	if (u->fd < 0)
		return 0;
	if (wait) {
		int err = uring_enter(u->fd, 0, 1, IORING_ENTER_GETEVENTS);
		if (err < 0)
			return err;
	}
	unsigned head = *u->cq_head, n = 0;
	unsigned tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	for (; head != tail; head++, n++) {
		const struct io_uring_cqe *c = &u->cqes[head & *u->cq_mask].c;
		done(ctx, c->user_data, c->res);
	}
	/* The entries are read before the kernel may reuse them. */
	__atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
	return (int)n;
}
