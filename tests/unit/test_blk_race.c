/* virtio-blk with the real transport on two threads, as in kiln: a "vCPU" kicks the queue
 * through its QueueNotify register (pops under the transport lock) while the "event loop"
 * claims, carries out and completes requests (the I/O without the lock). Every request
 * completes once with its data. Under ThreadSanitizer (make tsan) any unsynchronised access
 * between the two is reported and fails the test. Both engines. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/virtio_test_ring.h"
#include "virtio/blk.h"

#define QSIZE 16
#define ROUNDS 3000

struct env {
	struct tring r;
	struct virtio_blk blk;
	struct virtio_mmio t;
	atomic_bool stop;
	char path[32];
};

static int raise_irq(void *ctx)
{
	(void)ctx;
	return 0;
}

static void *event_loop(void *arg)
{
	struct env *e = arg;
	while (!atomic_load(&e->stop)) {
		uint64_t cnt;
		if (read(e->blk.io_efd, &cnt, sizeof(cnt)) < 0) {
			usleep(50);
			continue;
		}
		virtio_mmio_run(&e->t, virtio_blk_claim, NULL);
		virtio_blk_io(&e->blk, false);
		virtio_mmio_run(&e->t, virtio_blk_complete, NULL);
	}
	return NULL;
}

static void reg_write(struct env *e, uint32_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(&e->t, off, (const uint8_t *)&v, 4);
}

static void bring_up(struct env *e)
{
	reg_write(e, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	reg_write(e, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	reg_write(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(e, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	uint32_t s =
	    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	reg_write(e, VIRTIO_MMIO_STATUS, s);
	reg_write(e, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	reg_write(e, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)e->r.desc_gpa);
	reg_write(e, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)e->r.avail_gpa);
	reg_write(e, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)e->r.used_gpa);
	reg_write(e, VIRTIO_MMIO_QUEUE_READY, 1);
	reg_write(e, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
}

static uint16_t used_idx(struct env *e)
{
	return __atomic_load_n((uint16_t *)tring_host(&e->r, e->r.used_gpa + 2, 2),
			       __ATOMIC_ACQUIRE);
}

static void run(enum io_engine engine)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	tring_layout(&e->r, 1 << 20, QSIZE);
	snprintf(e->path, sizeof(e->path), "/tmp/kiln-blkrace-XXXXXX");
	int fd = mkstemp(e->path);
	assert_true(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	struct drive_cfg d = {.id = "race", .path_on_host = e->path, .io_engine = engine};
	char err[256];
	assert_int_equal(virtio_blk_open(&e->blk, &d, err, sizeof(err)), 0);
	struct virtio_irq irq = {.raise = raise_irq};
	assert_int_equal(virtio_mmio_init(&e->t, &virtio_blk_ops, &e->blk, &e->r.gm, &irq, "r"), 0);
	bring_up(e);
	/* QSIZE / 3 three-descriptor reads, re-published as they complete. */
	uint64_t st[QSIZE / 3];
	for (int i = 0; i < QSIZE / 3; i++) {
		uint64_t hdr = tring_alloc(&e->r, 16), buf = tring_alloc(&e->r, 4096);
		st[i] = tring_alloc(&e->r, 1);
		uint32_t type = VIRTIO_BLK_T_IN;
		uint64_t sector = 8 * i;
		memcpy(tring_host(&e->r, hdr, 4), &type, 4);
		memcpy(tring_host(&e->r, hdr + 8, 8), &sector, 8);
		tring_desc(&e->r, 3 * i, hdr, 16, VRING_DESC_F_NEXT, 3 * i + 1);
		tring_desc(&e->r, 3 * i + 1, buf, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
			   3 * i + 2);
		tring_desc(&e->r, 3 * i + 2, st[i], 1, VRING_DESC_F_WRITE, 0);
	}
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, event_loop, e), 0);
	uint16_t published = 0;
	for (int round = 0; round < ROUNDS; round++) {
		while ((uint16_t)(published - used_idx(e)) < QSIZE / 3) {
			uint8_t *slot =
			    tring_host(&e->r, e->r.avail_gpa + 4 + 2 * (published % QSIZE), 2);
			__atomic_store_n((uint16_t *)slot,
					 (uint16_t)(3 * (published % (QSIZE / 3))),
					 __ATOMIC_RELAXED);
			published++;
			__atomic_store_n((uint16_t *)tring_host(&e->r, e->r.avail_gpa + 2, 2),
					 published, __ATOMIC_RELEASE);
		}
		reg_write(e, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* the vCPU's kick */
		if (round % 500 == 0)
			usleep(100);
	}
	for (int i = 0; i < 2000 && used_idx(e) != published; i++)
		usleep(1000);
	assert_int_equal(used_idx(e), published);
	atomic_store(&e->stop, true);
	pthread_join(t, NULL);
	uint32_t status;
	virtio_mmio_bus_ops.read(&e->t, VIRTIO_MMIO_STATUS, (uint8_t *)&status, 4);
	assert_false(status & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(e->blk.stats.reads, published);
	assert_int_equal(e->blk.stats.io_errors, 0);
	virtio_mmio_destroy(&e->t);
	virtio_blk_close(&e->blk);
	unlink(e->path);
	tring_free(&e->r);
	free(e);
}

static void test_race_sync(void **state)
{
	(void)state;
	run(IO_ENGINE_SYNC);
}

static void test_race_async(void **state)
{
	(void)state;
	run(IO_ENGINE_ASYNC);
}

int main(void)
{
	log_setup(2, LOG_WARN, 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_race_sync),
	    cmocka_unit_test(test_race_async),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
