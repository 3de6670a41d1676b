#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/virtio_test_ring.h"
#include "virtio/blk.h"
#include "vmm/log.h"

#define RAM (4ULL << 20)
#define QSIZE 64
#define IMG_BYTES (1 << 20)
#define IMG_SECTORS (IMG_BYTES / 512)
#define FEATURES (1ULL << VIRTIO_RING_F_EVENT_IDX | 1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define NEXT VRING_DESC_F_NEXT
#define WRITE VRING_DESC_F_WRITE

struct env {
	struct tring r;
	struct virtio_blk blk;
	struct drive_cfg d;
	char path[32];
	char err[256];
	uint16_t next_desc;
};

/* What a test request looks like in guest memory. */
struct req {
	uint64_t hdr, data, st;
	uint16_t head;
};

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9));
}

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	tring_init(&e->r, RAM, QSIZE, FEATURES);
	snprintf(e->path, sizeof(e->path), "/tmp/kiln-blk-XXXXXX");
	int fd = mkstemp(e->path);
	assert_true(fd >= 0);
	static uint8_t img[IMG_BYTES];
	for (uint64_t i = 0; i < IMG_BYTES; i++)
		img[i] = pattern(i);
	assert_int_equal(write(fd, img, IMG_BYTES), IMG_BYTES);
	close(fd);
	snprintf(e->d.id, sizeof(e->d.id), "disk0");
	e->d.path_on_host = e->path;
	e->d.cache_type = CACHE_WRITEBACK;
	e->blk.fd = -1;
	e->blk.io_efd = -1;
	e->blk.ring.fd = -1;
	*state = e;
	return 0;
}

static int env_setup_async(void **state)
{
	env_setup(state);
	((struct env *)*state)->d.io_engine = IO_ENGINE_ASYNC;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;
	virtio_blk_close(&e->blk);
	unlink(e->path);
	tring_free(&e->r);
	free(e);
	return 0;
}

static void open_blk(struct env *e)
{
	assert_int_equal(virtio_blk_open(&e->blk, &e->d, e->err, sizeof(e->err)), 0);
}

static void put_header(struct env *e, uint64_t gpa, uint32_t type, uint64_t sector)
{
	uint8_t *h = tring_host(&e->r, gpa, 16);
	memset(h, 0, 16);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
}

/* header / data (device-writable when dev_writes) / status, as three descriptors. */
static struct req submit(struct env *e, uint32_t type, uint64_t sector, uint32_t len,
			 bool dev_writes)
{
	struct req q = {.hdr = tring_alloc(&e->r, 16), .st = tring_alloc(&e->r, 1)};
	q.data = tring_alloc(&e->r, len ? len : 1);
	put_header(e, q.hdr, type, sector);
	*(uint8_t *)tring_host(&e->r, q.st, 1) = 0xee;
	uint16_t d = e->next_desc;
	e->next_desc = (d + 3) % (QSIZE - QSIZE % 3);
	q.head = d;
	tring_desc(&e->r, d, q.hdr, 16, NEXT, d + 1);
	tring_desc(&e->r, d + 1, q.data, len, NEXT | (dev_writes ? WRITE : 0), d + 2);
	tring_desc(&e->r, d + 2, q.st, 1, WRITE, 0);
	tring_publish(&e->r, d);
	return q;
}

/* What the transport and the event loop do: pop (under the lock), then claim, carry out
 * (without it) and complete the requests until none is left in flight. */
static int drain(struct env *e, bool *irq)
{
	bool more = false;
	int err = 0;
	while (!err && virtio_blk_busy(&e->blk)) {
		virtio_blk_claim(&e->blk, &e->r.q, NULL, &more);
		virtio_blk_io(&e->blk, true);
		err = virtio_blk_complete(&e->blk, &e->r.q, NULL, &more);
		*irq |= more;
	}
	return err;
}

static int run(struct env *e, bool *irq)
{
	bool dummy;
	irq = irq ? irq : &dummy;
	int err = virtio_blk_process(&e->blk, &e->r.q, irq);
	return err ? err : drain(e, irq);
}

static uint8_t status(struct env *e, const struct req *q)
{
	return *(uint8_t *)tring_host(&e->r, q->st, 1);
}

/* Runs one submitted request; returns its status and checks the used entry. */
static uint8_t complete(struct env *e, const struct req *q, uint32_t used_len)
{
	uint16_t idx = tring_used_idx(&e->r);
	assert_int_equal(run(e, NULL), 0);
	assert_int_equal(tring_used_idx(&e->r), (uint16_t)(idx + 1));
	uint32_t id, len;
	tring_used_elem(&e->r, idx, &id, &len);
	assert_int_equal(id, q->head);
	if (used_len)
		assert_int_equal(len, used_len);
	return status(e, q);
}

static void test_open_config_and_features(void **state)
{
	struct env *e = *state;
	open_blk(e);
	assert_int_equal(e->blk.capacity, IMG_SECTORS);
	uint8_t cfg[VIRTIO_BLK_CONFIG_BYTES];
	for (uint32_t off = 0; off < sizeof(cfg); off++)
		virtio_blk_ops.config_read(&e->blk, off, cfg + off, 1);
	uint64_t cap;
	uint32_t seg_max, blk_size;
	memcpy(&cap, cfg, 8);
	memcpy(&seg_max, cfg + 12, 4);
	memcpy(&blk_size, cfg + 20, 4);
	assert_int_equal(cap, IMG_SECTORS);
	assert_int_equal(seg_max, VIRTIO_BLK_QUEUE_SIZE - 2);
	assert_int_equal(blk_size, 512);
	uint64_t f = virtio_blk_ops.features(&e->blk);
	assert_true(f & 1ULL << VIRTIO_BLK_F_FLUSH);
	assert_false(f & 1ULL << VIRTIO_BLK_F_RO);
	virtio_blk_close(&e->blk);
	e->d.cache_type = CACHE_UNSAFE;
	e->d.is_read_only = true;
	open_blk(e);
	f = virtio_blk_ops.features(&e->blk);
	assert_false(f & 1ULL << VIRTIO_BLK_F_FLUSH);
	assert_true(f & 1ULL << VIRTIO_BLK_F_RO);
}

static void test_open_errors_and_locks(void **state)
{
	struct env *e = *state;
	e->d.path_on_host = "/nonexistent/kiln.img";
	assert_int_equal(virtio_blk_open(&e->blk, &e->d, e->err, sizeof(e->err)), -ENOENT);
	assert_string_equal(e->err, "drives[disk0].path_on_host: /nonexistent/kiln.img: "
				    "No such file or directory");
	e->d.path_on_host = "/tmp";
	e->d.is_read_only = true;
	assert_int_equal(virtio_blk_open(&e->blk, &e->d, e->err, sizeof(e->err)), -ENOTBLK);
	assert_non_null(strstr(e->err, "not a regular file or block device"));
	/* Another process's exclusive lock keeps both kinds of drive out. */
	e->d.path_on_host = e->path;
	int other = open(e->path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(flock(other, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(virtio_blk_open(&e->blk, &e->d, e->err, sizeof(e->err)), -EBUSY);
	assert_non_null(strstr(e->err, "drives[disk0].path_on_host: "));
	assert_non_null(strstr(e->err, "locked by another process"));
	/* A shared lock admits read-only drives only. */
	assert_int_equal(flock(other, LOCK_SH | LOCK_NB), 0);
	open_blk(e);
	virtio_blk_close(&e->blk);
	e->d.is_read_only = false;
	assert_int_equal(virtio_blk_open(&e->blk, &e->d, e->err, sizeof(e->err)), -EBUSY);
	close(other);
	open_blk(e);
}

static void test_read(void **state)
{
	struct env *e = *state;
	open_blk(e);
	struct req q = submit(e, VIRTIO_BLK_T_IN, 3, 1024, true);
	assert_int_equal(complete(e, &q, 1025), VIRTIO_BLK_S_OK);
	const uint8_t *p = tring_host(&e->r, q.data, 1024);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(p[i], pattern(3 * 512 + i));
	assert_int_equal(e->blk.stats.reads, 1);
	assert_int_equal(e->blk.stats.read_bytes, 1024);
}

static void test_write_and_flush(void **state)
{
	struct env *e = *state;
	open_blk(e);
	struct req q = submit(e, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, 512, false);
	memset(tring_host(&e->r, q.data, 512), 0x5a, 512);
	assert_int_equal(complete(e, &q, 1), VIRTIO_BLK_S_OK);
	struct req f = submit(e, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	assert_int_equal(complete(e, &f, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(e->blk.stats.flushes, 1);
	/* The data is in the file, as seen through an independent descriptor. */
	int fd = open(e->path, O_RDONLY | O_CLOEXEC);
	uint8_t buf[512];
	assert_int_equal(pread(fd, buf, 512, IMG_BYTES - 512), 512);
	close(fd);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], 0x5a);
}

static void test_flush_unsafe_is_unsupported(void **state)
{
	struct env *e = *state;
	e->d.cache_type = CACHE_UNSAFE;
	open_blk(e);
	struct req f = submit(e, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	assert_int_equal(complete(e, &f, 1), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(e->blk.stats.flushes, 0);
}

static void test_indirect_multi_segment(void **state)
{
	struct env *e = *state;
	open_blk(e);
	uint64_t t = tring_alloc(&e->r, 5 * 16), hdr = tring_alloc(&e->r, 16);
	uint64_t d0 = tring_alloc(&e->r, 512), d1 = tring_alloc(&e->r, 1024);
	uint64_t d2 = tring_alloc(&e->r, 512), st = tring_alloc(&e->r, 1);
	put_header(e, hdr, VIRTIO_BLK_T_IN, 8);
	tring_desc_at(&e->r, t, 0, hdr, 16, NEXT, 1);
	tring_desc_at(&e->r, t, 1, d0, 512, NEXT | WRITE, 2);
	tring_desc_at(&e->r, t, 2, d1, 1024, NEXT | WRITE, 3);
	tring_desc_at(&e->r, t, 3, d2, 512, NEXT | WRITE, 4);
	tring_desc_at(&e->r, t, 4, st, 1, WRITE, 0);
	tring_desc(&e->r, 0, t, 5 * 16, VRING_DESC_F_INDIRECT, 0);
	tring_publish(&e->r, 0);
	struct req q = {.st = st, .head = 0};
	assert_int_equal(complete(e, &q, 2049), VIRTIO_BLK_S_OK);
	uint64_t bufs[] = {d0, d1, d2}, lens[] = {512, 1024, 512}, off = 8 * 512;
	for (int b = 0; b < 3; b++) {
		const uint8_t *p = tring_host(&e->r, bufs[b], lens[b]);
		for (uint64_t i = 0; i < lens[b]; i++, off++)
			assert_int_equal(p[i], pattern(off));
	}
}

/* Header and data in one readable descriptor; data and status in one writable one. */
static void test_merged_descriptors(void **state)
{
	struct env *e = *state;
	open_blk(e);
	uint64_t hd = tring_alloc(&e->r, 16 + 512), ds = tring_alloc(&e->r, 512 + 1);
	put_header(e, hd, VIRTIO_BLK_T_OUT, 1);
	memset(tring_host(&e->r, hd + 16, 512), 0x77, 512);
	tring_desc(&e->r, 0, hd, 16 + 512, NEXT, 1);
	tring_desc(&e->r, 1, ds + 512, 1, WRITE, 0);
	tring_publish(&e->r, 0);
	struct req w = {.st = ds + 512, .head = 0};
	assert_int_equal(complete(e, &w, 1), VIRTIO_BLK_S_OK);
	put_header(e, hd, VIRTIO_BLK_T_IN, 1);
	tring_desc(&e->r, 2, hd, 16, NEXT, 3);
	tring_desc(&e->r, 3, ds, 513, WRITE, 0);
	tring_publish(&e->r, 2);
	struct req r = {.st = ds + 512, .head = 2};
	assert_int_equal(complete(e, &r, 513), VIRTIO_BLK_S_OK);
	const uint8_t *p = tring_host(&e->r, ds, 512);
	for (int i = 0; i < 512; i++)
		assert_int_equal(p[i], 0x77);
}

static void test_sector_ranges(void **state)
{
	struct env *e = *state;
	open_blk(e);
	struct {
		uint64_t sector;
		uint32_t len;
		uint8_t status;
	} cases[] = {
	    {IMG_SECTORS, 512, VIRTIO_BLK_S_IOERR},
	    {IMG_SECTORS - 1, 1024, VIRTIO_BLK_S_IOERR},
	    {UINT64_MAX, 512, VIRTIO_BLK_S_IOERR},
	    {UINT64_MAX / 512 + 1, 512, VIRTIO_BLK_S_IOERR}, /* sector * 512 wraps */
	    {0, 100, VIRTIO_BLK_S_IOERR},		     /* not whole sectors */
	    {IMG_SECTORS, 0, VIRTIO_BLK_S_OK},
	    {IMG_SECTORS - 2, 1024, VIRTIO_BLK_S_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct req q = submit(e, VIRTIO_BLK_T_IN, cases[i].sector, cases[i].len, true);
		assert_int_equal(complete(e, &q, 0), cases[i].status);
		q = submit(e, VIRTIO_BLK_T_OUT, cases[i].sector, cases[i].len, false);
		assert_int_equal(complete(e, &q, 0), cases[i].status);
	}
	assert_int_equal(e->blk.stats.io_errors, 10);
}

static void test_read_only_rejects_writes(void **state)
{
	struct env *e = *state;
	e->d.is_read_only = true;
	open_blk(e);
	struct req q = submit(e, VIRTIO_BLK_T_OUT, 0, 512, false);
	assert_int_equal(complete(e, &q, 1), VIRTIO_BLK_S_IOERR);
	int fd = open(e->path, O_RDONLY | O_CLOEXEC);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, 0), 1);
	close(fd);
	assert_int_equal(b, pattern(0));
	q = submit(e, VIRTIO_BLK_T_IN, 0, 512, true);
	assert_int_equal(complete(e, &q, 513), VIRTIO_BLK_S_OK);
}

static void test_get_id(void **state)
{
	struct env *e = *state;
	open_blk(e);
	struct req q = submit(e, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, true);
	assert_int_equal(complete(e, &q, 21), VIRTIO_BLK_S_OK);
	assert_memory_equal(tring_host(&e->r, q.data, 20), "disk0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	virtio_blk_close(&e->blk);
	snprintf(e->d.id, sizeof(e->d.id), "abcdefghijklmnopqrstuvwxyz");
	open_blk(e);
	q = submit(e, VIRTIO_BLK_T_GET_ID, 0, 32, true);
	assert_int_equal(complete(e, &q, 21), VIRTIO_BLK_S_OK);
	const uint8_t *p = tring_host(&e->r, q.data, 32);
	assert_memory_equal(p, "abcdefghijklmnopqrst", 20);
	assert_int_equal(p[20], 0); /* nothing written past the 20 bytes */
}

static void test_unsupported_types(void **state)
{
	struct env *e = *state;
	open_blk(e);
	uint32_t types[] = {2, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, 0xffffffff};
	for (int i = 0; i < 4; i++) {
		struct req q = submit(e, types[i], 0, 512, false);
		assert_int_equal(complete(e, &q, 1), VIRTIO_BLK_S_UNSUPP);
	}
	assert_int_equal(e->blk.stats.unsupported, 4);
}

static void test_bad_framing(void **state)
{
	struct env *e = *state;
	open_blk(e);
	uint64_t hdr = tring_alloc(&e->r, 16), st = tring_alloc(&e->r, 1);
	put_header(e, hdr, VIRTIO_BLK_T_IN, 0);
	tring_desc(&e->r, 0, hdr, 16, NEXT | WRITE, 1); /* write-only header */
	tring_desc(&e->r, 1, st, 1, WRITE, 0);
	tring_publish(&e->r, 0);
	struct req q = {.st = st, .head = 0};
	assert_int_equal(complete(e, &q, 1), VIRTIO_BLK_S_IOERR);
	tring_desc(&e->r, 0, hdr, 8, NEXT, 1); /* short header */
	tring_publish(&e->r, 0);
	assert_int_equal(complete(e, &q, 1), VIRTIO_BLK_S_IOERR);
	/* Data in the wrong direction for the request type. */
	q = submit(e, VIRTIO_BLK_T_IN, 0, 512, false);
	assert_int_equal(complete(e, &q, 1), VIRTIO_BLK_S_IOERR);
	q = submit(e, VIRTIO_BLK_T_OUT, 0, 512, true);
	assert_int_equal(complete(e, &q, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(e->blk.stats.reads + e->blk.stats.writes, 0);
}

static void test_missing_status_breaks_queue(void **state)
{
	struct env *e = *state;
	open_blk(e);
	uint64_t hdr = tring_alloc(&e->r, 16), st = tring_alloc(&e->r, 1);
	put_header(e, hdr, VIRTIO_BLK_T_FLUSH, 0);
	tring_desc(&e->r, 0, hdr, 16, 0, 0); /* nothing writable at all */
	tring_publish(&e->r, 0);
	assert_int_equal(run(e, NULL), -EINVAL);
	tring_init(&e->r, RAM, QSIZE, FEATURES);
	tring_desc(&e->r, 0, hdr, 16, NEXT, 1);
	tring_desc(&e->r, 1, st, 0, WRITE, 0); /* zero-length status */
	tring_publish(&e->r, 0);
	assert_int_equal(run(e, NULL), -EINVAL);
}

static void test_batch_one_interrupt(void **state)
{
	struct env *e = *state;
	open_blk(e);
	bool irq = false;
	for (int i = 0; i < 16; i++)
		submit(e, VIRTIO_BLK_T_IN, i, 512, true);
	assert_int_equal(run(e, &irq), 0);
	assert_true(irq);
	assert_int_equal(tring_used_idx(&e->r), 16);
	assert_int_equal(tring_avail_event(&e->r), 16); /* kick me at the next request */
	/* The driver only wants an interrupt once entry 40 is used. */
	tring_set_used_event(&e->r, 40);
	for (int i = 0; i < 8; i++)
		submit(e, VIRTIO_BLK_T_IN, i, 512, true);
	assert_int_equal(run(e, &irq), 0);
	assert_false(irq);
	assert_int_equal(tring_used_idx(&e->r), 24);
}

/* A "guest" vCPU that re-publishes one cheap request (GET_ID, descriptors 0-2) as fast as
 * the device completes it, until `total` have been published. */
struct republisher {
	struct env *e;
	unsigned total;
};

static void *republish(void *arg)
{
	struct republisher *p = arg;
	struct tring *r = &p->e->r;
	uint8_t *avail = tring_host(r, r->avail_gpa, 4 + 2 * QSIZE);
	uint8_t *used = tring_host(r, r->used_gpa, 4);
	for (uint16_t idx = 0; idx < p->total;) {
		uint16_t done = __atomic_load_n((uint16_t *)(used + 2), __ATOMIC_ACQUIRE);
		if ((uint16_t)(idx - done) >= QSIZE)
			continue;
		__atomic_store_n((uint16_t *)(avail + 4 + 2 * (idx % QSIZE)), 0, __ATOMIC_RELAXED);
		idx++;
		__atomic_store_n((uint16_t *)(avail + 2), idx, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* However fast the guest re-publishes, one call completes at most VIRTQ_BUDGET requests
 * and leaves the queue marked for the transport to run again. */
static void test_budget_against_republishing_guest(void **state)
{
	struct env *e = *state;
	open_blk(e);
	uint64_t hdr = tring_alloc(&e->r, 16), id = tring_alloc(&e->r, 20),
		 st = tring_alloc(&e->r, 1);
	put_header(e, hdr, VIRTIO_BLK_T_GET_ID, 0);
	tring_desc(&e->r, 0, hdr, 16, NEXT, 1);
	tring_desc(&e->r, 1, id, 20, NEXT | WRITE, 2);
	tring_desc(&e->r, 2, st, 1, WRITE, 0);
	struct republisher p = {.e = e, .total = 5000};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, republish, &p), 0);
	unsigned calls = 0, requeued = 0, done = 0;
	while (done < p.total) {
		uint16_t before = tring_used_idx(&e->r);
		assert_int_equal(run(e, NULL), 0);
		uint16_t n = (uint16_t)(tring_used_idx(&e->r) - before);
		assert_true(n <= VIRTQ_BUDGET);
		if (n == VIRTQ_BUDGET)
			assert_true(e->r.q.requeue);
		requeued += e->r.q.requeue;
		e->r.q.requeue = false; /* what the transport does */
		done += n;
		calls++;
	}
	pthread_join(t, NULL);
	assert_int_equal(done, p.total);
	assert_true(calls >= p.total / VIRTQ_BUDGET);
	print_message("%u calls, %u left at the budget\n", calls, requeued);
}

static void test_broken_chain_after_good_one(void **state)
{
	struct env *e = *state;
	open_blk(e);
	struct req q = submit(e, VIRTIO_BLK_T_IN, 0, 512, true);
	tring_desc(&e->r, 40, q.hdr, 16, NEXT, 40); /* self-loop */
	tring_publish(&e->r, 40);
	bool irq = false;
	assert_int_equal(run(e, &irq), -ELOOP);
	/* The transport now reports DEVICE_NEEDS_RESET: the good request, popped but not yet
	 * carried out, is dropped with the rings (completion finds the device not live). */
	assert_int_equal(virtio_blk_busy(&e->blk), 1);
	virtio_blk_claim(&e->blk, NULL, NULL, &irq);
	virtio_blk_io(&e->blk, true);
	assert_int_equal(virtio_blk_complete(&e->blk, NULL, NULL, &irq), 0);
	assert_int_equal(virtio_blk_busy(&e->blk), 0);
	assert_int_equal(status(e, &q), 0xee);
}

static void test_file_shrank(void **state)
{
	struct env *e = *state;
	open_blk(e);
	assert_int_equal(truncate(e->path, 4096), 0);
	struct req q = submit(e, VIRTIO_BLK_T_IN, 16, 512, true);
	assert_int_equal(complete(e, &q, 1), VIRTIO_BLK_S_IOERR);
}

/* Two requests per 20 ms: the rest wait in the ring for the limiter's timer. */
static void test_rate_limited(void **state)
{
	struct env *e = *state;
	e->d.rate_limiter.present = e->d.rate_limiter.ops.present = true;
	e->d.rate_limiter.ops.size = 2;
	e->d.rate_limiter.ops.refill_time_ms = 20;
	open_blk(e);
	assert_true(e->blk.limiter.timer_fd >= 0);
	for (int i = 0; i < 4; i++)
		submit(e, VIRTIO_BLK_T_IN, i, 512, true);
	bool irq;
	assert_int_equal(run(e, &irq), 0);
	assert_int_equal(tring_used_idx(&e->r), 2);
	assert_int_equal(run(e, &irq), 0); /* a kick while throttled changes nothing */
	assert_int_equal(tring_used_idx(&e->r), 2);
	assert_int_equal(virtio_blk_resume(&e->blk, NULL, NULL, &irq), 0); /* not live */
	struct pollfd p = {.fd = e->blk.limiter.timer_fd, .events = POLLIN};
	for (int rounds = 0; tring_used_idx(&e->r) < 4; rounds++) {
		assert_true(rounds < 10);
		assert_int_equal(poll(&p, 1, 1000), 1);
		assert_int_equal(virtio_blk_resume(&e->blk, &e->r.q, NULL, &irq), 0);
		assert_int_equal(drain(e, &irq), 0);
	}
	assert_int_equal(e->blk.stats.reads, 4);
	assert_true(e->blk.limiter.throttled >= 2);
}

int main(void)
{
	log_setup(2, getenv("BLK_LOG") ? LOG_DEBUG : LOG_OFF, 0, 0);
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
#define A(f) cmocka_unit_test_setup_teardown(f, env_setup_async, env_teardown)
#define BOTH(f) T(f), A(f)
	const struct CMUnitTest tests[] = {
	    BOTH(test_open_config_and_features),
	    BOTH(test_open_errors_and_locks),
	    BOTH(test_read),
	    BOTH(test_write_and_flush),
	    BOTH(test_flush_unsafe_is_unsupported),
	    BOTH(test_indirect_multi_segment),
	    BOTH(test_merged_descriptors),
	    BOTH(test_sector_ranges),
	    BOTH(test_read_only_rejects_writes),
	    BOTH(test_get_id),
	    BOTH(test_unsupported_types),
	    BOTH(test_bad_framing),
	    BOTH(test_missing_status_breaks_queue),
	    BOTH(test_batch_one_interrupt),
	    BOTH(test_budget_against_republishing_guest),
	    BOTH(test_broken_chain_after_good_one),
	    BOTH(test_file_shrank),
	    BOTH(test_rate_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
