/* The minimal io_uring of virtio-blk's Async engine: readv, writev and fdatasync round
 * trips, completion through the eventfd, a full submission ring, and closing. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtio/blk_uring.h"

struct done {
	uint64_t user_data[16];
	int32_t res[16];
	int n;
};

static void record(void *ctx, uint64_t user_data, int32_t res)
{
	struct done *d = ctx;
	d->user_data[d->n] = user_data;
	d->res[d->n++] = res;
}

/* Reaps until `want` completions arrived. */
static void reap(struct blk_uring *u, struct done *d, int want)
{
	while (d->n < want)
		assert_true(blk_uring_reap(u, true, record, d) >= 0);
}

static void test_round_trips(void **state)
{
	(void)state;
	char path[] = "/tmp/kiln-uring-XXXXXX";
	int fd = mkstemp(path), efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(fd >= 0 && efd >= 0);
	unlink(path);
	struct blk_uring u;
	int err = blk_uring_init(&u, 4, efd);
	if (err == -ENOSYS || err == -EPERM)
		skip(); /* io_uring disabled on this host */
	assert_int_equal(err, 0);
	char out[4096], in[4096];
	memset(out, 0x3c, sizeof(out));
	struct iovec wv[2] = {{out, 1000}, {out + 1000, 3096}}, rv = {in, sizeof(in)};
	struct done d = {0};
	assert_int_equal(blk_uring_queue(&u, BLK_URING_WRITEV, fd, wv, 2, 8192, 7, false), 0);
	assert_int_equal(blk_uring_queue(&u, BLK_URING_FDATASYNC, fd, NULL, 0, 0, 8, true), 0);
	assert_int_equal(blk_uring_submit(&u), 0);
	reap(&u, &d, 2);
	assert_int_equal(d.user_data[0], 7);
	assert_int_equal(d.res[0], 4096);
	assert_int_equal(d.user_data[1], 8); /* drained: after the write */
	assert_int_equal(d.res[1], 0);
	uint64_t cnt = 0;
	assert_int_equal(read(efd, &cnt, 8), 8); /* the completions signalled the eventfd */
	assert_true(cnt >= 1);
	assert_int_equal(blk_uring_queue(&u, BLK_URING_READV, fd, &rv, 1, 8192, 9, false), 0);
	assert_int_equal(blk_uring_submit(&u), 0);
	reap(&u, &d, 3);
	assert_int_equal(d.res[2], 4096);
	assert_memory_equal(in, out, sizeof(in));
	/* Past the end of the file: a read of 0 bytes, for the engine to call an error. */
	assert_int_equal(blk_uring_queue(&u, BLK_URING_READV, fd, &rv, 1, 1 << 20, 10, false), 0);
	assert_int_equal(blk_uring_submit(&u), 0);
	reap(&u, &d, 4);
	assert_int_equal(d.res[3], 0);
	/* A bad fd is reported in the completion, not by the queue. */
	assert_int_equal(blk_uring_queue(&u, BLK_URING_READV, 999, &rv, 1, 0, 11, false), 0);
	assert_int_equal(blk_uring_submit(&u), 0);
	reap(&u, &d, 5);
	assert_int_equal(d.res[4], -EBADF);
	blk_uring_close(&u);
	blk_uring_close(&u); /* twice is fine */
	assert_int_equal(blk_uring_queue(&u, BLK_URING_READV, fd, &rv, 1, 0, 1, false), -EBUSY);
	close(fd);
	close(efd);
}

static void test_full_ring(void **state)
{
	(void)state;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct blk_uring u;
	int err = blk_uring_init(&u, 2, efd);
	if (err == -ENOSYS || err == -EPERM)
		skip();
	assert_int_equal(err, 0);
	unsigned n = 0;
	while (blk_uring_queue(&u, BLK_URING_FDATASYNC, efd, NULL, 0, 0, n, false) == 0)
		n++;
	assert_int_equal(n, u.entries); /* then -EBUSY, nothing overwritten */
	assert_int_equal(blk_uring_submit(&u), 0);
	struct done d = {0};
	reap(&u, &d, (int)n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(d.res[i], -EINVAL); /* an eventfd cannot be synced */
	blk_uring_close(&u);
	close(efd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_full_ring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
