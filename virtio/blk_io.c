/* virtio-blk's I/O engines: step 2b of a request (see blk.h), run on the event-loop thread
 * without the transport lock. It touches only the slots in b->claimed (RUNNING ones, which
 * the lock holders leave alone), and of those only the state, with an atomic store. */
#include "virtio/blk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_blk.h>
#include <unistd.h>

/* preadv/pwritev until done: short transfers continue, EOF is an error. */
static int transfer(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write)
{
	while (n) {
		ssize_t r = write ? pwritev(fd, iov, n, off) : preadv(fd, iov, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += r;
		for (; n && (size_t)r >= iov->iov_len; iov++, n--)
			r -= iov->iov_len;
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	return 0;
}

/* The control run of tests/e2e/powercut.sh (kiln-testhooks only): a flush that does
 * nothing must lose data. */
static bool flush_is_skipped(const struct blk_slot *s)
{
#ifdef KILN_TEST_HOOKS
	return s->type == VIRTIO_BLK_T_FLUSH && getenv("KILN_TEST_NO_FLUSH");
#else
	(void)s;
	return false;
#endif
}

static int run_sync(int fd, struct blk_slot *s)
{
	if (flush_is_skipped(s))
		return 0;
	if (s->type == VIRTIO_BLK_T_FLUSH) {
		while (fdatasync(fd) < 0)
			if (errno != EINTR)
				return -errno;
		return 0;
	}
	return transfer(fd, s->iov, s->nr_iov, s->sector * VIRTIO_BLK_SECTOR,
			s->type == VIRTIO_BLK_T_OUT);
}

/* "Sync": every running request in slot order, which is ring order within a batch, so a
 * flush follows the writes popped before it. */
static void io_sync(struct virtio_blk *b)
{
	for (unsigned i = 0; i < VIRTIO_BLK_SLOTS; i++) {
		struct blk_slot *s = &b->slot[i];
		if (!(b->claimed & 1ULL << i) || blk_state(s) != BLK_RUNNING)
			continue;
		s->result = run_sync(b->fd, s);
		blk_set_state(s, BLK_DONE);
	}
}

/* Drops the first `done` bytes of the slot's iovecs (a short transfer goes on from there). */
static void iov_advance(struct blk_slot *s, uint64_t done)
{
	unsigned i = 0;
	for (; i < s->nr_iov && done >= s->iov[i].iov_len; i++)
		done -= s->iov[i].iov_len;
	memmove(s->iov, s->iov + i, (s->nr_iov - i) * sizeof(s->iov[0]));
	s->nr_iov -= i;
	if (s->nr_iov) {
		s->iov[0].iov_base = (uint8_t *)s->iov[0].iov_base + done;
		s->iov[0].iov_len -= done;
	}
}

static int submit_slot(struct virtio_blk *b, struct blk_slot *s)
{
	enum blk_uring_op op = s->type == VIRTIO_BLK_T_FLUSH ? BLK_URING_FDATASYNC
			       : s->type == VIRTIO_BLK_T_OUT ? BLK_URING_WRITEV
							     : BLK_URING_READV;
	uint64_t off = s->sector * VIRTIO_BLK_SECTOR + s->done;
	/* A flush drains: it starts only once every write submitted before it is done. */
	return blk_uring_queue(&b->ring, op, b->fd, s->iov, s->nr_iov, off, (uint64_t)(s - b->slot),
			       op == BLK_URING_FDATASYNC);
}

static void uring_done(void *ctx, uint64_t user_data, int32_t res)
{
	struct virtio_blk *b = ctx;
	if (user_data >= VIRTIO_BLK_SLOTS)
		return;
	struct blk_slot *s = &b->slot[user_data];
	s->in_ring = false;
	if (s->type != VIRTIO_BLK_T_FLUSH && res > 0 && s->done + (uint64_t)res < s->len) {
		s->done += (uint64_t)res;
		iov_advance(s, (uint64_t)res); /* stays RUNNING: submitted again */
		return;
	}
	bool eof = res == 0 && s->type != VIRTIO_BLK_T_FLUSH;
	s->result = res < 0 ? res : eof ? -EIO : 0;
	blk_set_state(s, BLK_DONE);
}

/* Submits the running requests not in the ring (new ones, short transfers to go on). */
static bool submit_running(struct virtio_blk *b)
{
	bool any = false;
	for (unsigned i = 0; i < VIRTIO_BLK_SLOTS; i++) {
		struct blk_slot *s = &b->slot[i];
		if (!(b->claimed & 1ULL << i) || blk_state(s) != BLK_RUNNING)
			continue;
		if (flush_is_skipped(s)) {
			s->result = 0;
			blk_set_state(s, BLK_DONE);
			continue;
		}
		if (!s->in_ring && submit_slot(b, s) == 0)
			s->in_ring = true;
		any = true;
	}
	int err = blk_uring_submit(&b->ring);
	if (err < 0 && log_ratelimit_ok(&b->rl, 1000000000ULL))
		log_warn("%s: io_uring submit: %s", b->name, strerror(-err));
	return any;
}

/* "Async": submit, then reap what completed (with `wait`, at least one) until nothing is
 * left to resubmit. */
static void io_async(struct virtio_blk *b, bool wait)
{
	int n;
	do {
		bool in_flight = submit_running(b);
		n = blk_uring_reap(&b->ring, wait && in_flight, uring_done, b);
		wait = false;
	} while (n > 0);
}

void virtio_blk_io(struct virtio_blk *b, bool wait)
{
	if (b->async)
		io_async(b, wait);
	else
		io_sync(b);
}
