/* virtio-blk through the device model (requests in a split virtqueue in fake guest memory,
 * run the way the transport and event loop run them: pop and check, then claim, carry out
 * and complete) with each io_engine, against raw preadv/pwritev of the same blocks:
 * 4 KiB random reads and writes and 1 MiB sequential ones. The image lives in the page
 * cache, so these show the device model's and the engines' overhead, not the disk's.
 *
 * Then what a vCPU sees: the latency of InterruptStatus reads on another thread while the
 * device flushes a large amount of dirty data, with the flush run under the transport lock
 * (as kiln did before) and as kiln runs it now (only popping and completing under it). */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/virtio_test_ring.h"
#include "virtio/blk.h"
#include "vmm/log.h"

#define IMG_BYTES (64ULL << 20)
#define RAM (80ULL << 20)
#define QSIZE 256
#define MAX_BATCH 64
#define REPEATS 3
#define DIRTY_BYTES (256ULL << 20)

struct bench {
	struct tring r;
	struct virtio_blk blk[2]; /* Sync, Async */
	uint64_t hdr[MAX_BATCH], buf[MAX_BATCH], st[MAX_BATCH];
	char path[64];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die_if(int bad, const char *what)
{
	if (bad) {
		perror(what);
		exit(1);
	}
}

static void make_image(struct bench *b, uint64_t bytes)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	snprintf(b->path, sizeof(b->path), "%s/kiln-bench-blk-XXXXXX", dir);
	int fd = mkstemp(b->path);
	die_if(fd < 0, "mkstemp");
	static uint8_t chunk[1 << 20];
	memset(chunk, 0xa5, sizeof(chunk));
	for (uint64_t off = 0; off < bytes; off += sizeof(chunk))
		die_if(pwrite(fd, chunk, sizeof(chunk), off) != sizeof(chunk), "pwrite");
	fsync(fd);
	close(fd);
	for (int e = 0; e < 2; e++) {
		struct drive_cfg d = {.id = "bench",
				      .path_on_host = b->path,
				      .is_read_only = false,
				      .cache_type = CACHE_WRITEBACK,
				      .io_engine = e};
		char err[256];
		if (virtio_blk_open(&b->blk[e], &d, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
		flock(b->blk[e].fd, LOCK_UN); /* both engines on the one image */
	}
}

/* Chains 3i, 3i+1, 3i+2: header, one buffer of `block` bytes, status. */
static void make_chains(struct bench *b, uint32_t type, uint32_t block, int n)
{
	tring_init(&b->r, RAM, QSIZE, 1ULL << VIRTIO_RING_F_EVENT_IDX);
	bool dev_writes = type == VIRTIO_BLK_T_IN;
	for (int i = 0; i < n; i++) {
		b->hdr[i] = tring_alloc(&b->r, 16);
		b->buf[i] = tring_alloc(&b->r, block);
		b->st[i] = tring_alloc(&b->r, 1);
		memcpy(tring_host(&b->r, b->hdr[i], 4), &type, 4);
		uint16_t d = 3 * i;
		tring_desc(&b->r, d, b->hdr[i], 16, VRING_DESC_F_NEXT, d + 1);
		tring_desc(&b->r, d + 1, b->buf[i], block,
			   VRING_DESC_F_NEXT | (dev_writes ? VRING_DESC_F_WRITE : 0), d + 2);
		tring_desc(&b->r, d + 2, b->st[i], 1, VRING_DESC_F_WRITE, 0);
	}
}

/* Step 2 of every request popped: claim, carry out (Async: waiting), complete. */
static void drain(struct virtio_blk *blk, struct virtq *q)
{
	bool irq;
	while (virtio_blk_busy(blk)) {
		virtio_blk_claim(blk, q, NULL, &irq);
		virtio_blk_io(blk, true);
		die_if(virtio_blk_complete(blk, q, NULL, &irq) < 0, "complete");
	}
}

struct workload {
	const char *name;
	uint32_t type, block;
	int batch, requests;
	bool sequential;
};

static uint64_t sector_of(const struct workload *w, int i)
{
	uint64_t blocks = IMG_BYTES / w->block;
	uint64_t n = w->sequential ? (uint64_t)i % blocks : (uint64_t)rand() % blocks;
	return n * (w->block / 512);
}

/* The driver queues `batch` requests, kicks once; the device runs them. Requests/s. */
static double run_device(struct bench *b, struct virtio_blk *blk, const struct workload *w)
{
	make_chains(b, w->type, w->block, w->batch);
	srand(42);
	double t0 = now();
	for (int done = 0; done < w->requests; done += w->batch) {
		for (int i = 0; i < w->batch; i++) {
			uint64_t sector = sector_of(w, done + i);
			memcpy(tring_host(&b->r, b->hdr[i] + 8, 8), &sector, 8);
			tring_put16(&b->r, b->r.avail_gpa + 4 + 2 * ((b->r.avail_idx + i) % QSIZE),
				    3 * i);
		}
		b->r.avail_idx += w->batch;
		tring_put16(&b->r, b->r.avail_gpa + 2, b->r.avail_idx);
		bool irq;
		die_if(virtio_blk_process(blk, &b->r.q, &irq) < 0, "virtio_blk_process");
		drain(blk, &b->r.q);
	}
	double t = now() - t0;
	die_if(*(uint8_t *)tring_host(&b->r, b->st[0], 1) != VIRTIO_BLK_S_OK, "request status");
	return w->requests / t;
}

static double run_raw(struct bench *b, const struct workload *w)
{
	make_chains(b, w->type, w->block, 1);
	struct iovec iov = {.iov_base = tring_host(&b->r, b->buf[0], w->block),
			    .iov_len = w->block};
	srand(42);
	double t0 = now();
	for (int i = 0; i < w->requests; i++) {
		off_t off = sector_of(w, i) * 512;
		ssize_t n = w->type == VIRTIO_BLK_T_IN ? preadv(b->blk[0].fd, &iov, 1, off)
						       : pwritev(b->blk[0].fd, &iov, 1, off);
		die_if(n != (ssize_t)w->block, "preadv/pwritev");
	}
	return w->requests / (now() - t0);
}

/* Best of REPEATS, so a scheduling hiccup does not decide the figure. engine -1: raw. */
static double best(struct bench *b, int engine, const struct workload *w)
{
	double top = 0;
	for (int i = 0; i < REPEATS; i++) {
		double r = engine < 0 ? run_raw(b, w) : run_device(b, &b->blk[engine], w);
		top = r > top ? r : top;
	}
	return top;
}

static void throughput(struct bench *b)
{
	static const struct workload wl[] = {
	    {"4k-randread", VIRTIO_BLK_T_IN, 4096, 1, 50000, false},
	    {"4k-randread", VIRTIO_BLK_T_IN, 4096, 32, 50000, false},
	    {"4k-randwrite", VIRTIO_BLK_T_OUT, 4096, 1, 50000, false},
	    {"4k-randwrite", VIRTIO_BLK_T_OUT, 4096, 32, 50000, false},
	    {"1m-seqread", VIRTIO_BLK_T_IN, 1 << 20, 4, 1024, true},
	    {"1m-seqwrite", VIRTIO_BLK_T_OUT, 1 << 20, 4, 1024, true},
	};
	printf("virtio-blk Sync vs Async vs raw syscalls on a %llu MiB image (page cache), "
	       "best of %d\n",
	       (unsigned long long)(IMG_BYTES >> 20), REPEATS);
	printf("%-13s %5s %12s %12s %12s %11s\n", "workload", "batch", "raw req/s", "Sync req/s",
	       "Async req/s", "Async MiB/s");
	for (size_t i = 0; i < sizeof(wl) / sizeof(wl[0]); i++) {
		const struct workload *w = &wl[i];
		double raw = best(b, -1, w), s = best(b, 0, w), a = best(b, 1, w);
		printf("%-13s %5d %12.0f %12.0f %12.0f %11.1f\n", w->name, w->batch, raw, s, a,
		       a * w->block / (1 << 20));
	}
}

/* ---- register reads while a flush runs ----------------------------------------------- */

struct prober {
	struct virtio_mmio *t;
	atomic_bool stop;
	double max_us;
	uint64_t reads;
};

/* The vCPU: reads InterruptStatus back to back, as an interrupt handler does. */
static void *probe(void *arg)
{
	struct prober *p = arg;
	while (!atomic_load(&p->stop)) {
		uint8_t v[4];
		double t0 = now();
		virtio_mmio_bus_ops.read(p->t, VIRTIO_MMIO_INTERRUPT_STATUS, v, 4);
		double us = (now() - t0) * 1e6;
		p->max_us = us > p->max_us ? us : p->max_us;
		p->reads++;
	}
	return NULL;
}

/* kiln before: the whole request, flush included, inside the transport lock. */
static int all_under_lock(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	(void)arg;
	int err = virtio_blk_process(dev, &vq[0], need_irq);
	drain(dev, &vq[0]);
	return err;
}

static int pop_only(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	(void)arg;
	return virtio_blk_process(dev, &vq[0], need_irq);
}

static int raise_nothing(void *ctx)
{
	(void)ctx;
	return 0;
}

/* Dirties DIRTY_BYTES of the image, then one FLUSH request; returns the flush's seconds
 * and the worst InterruptStatus read in µs meanwhile. */
static double flush_with_probe(struct bench *b, int engine, bool under_lock, double *max_us)
{
	struct virtio_blk *blk = &b->blk[engine];
	static uint8_t chunk[1 << 20];
	memset(chunk, rand(), sizeof(chunk));
	for (uint64_t off = 0; off < DIRTY_BYTES; off += sizeof(chunk))
		die_if(pwrite(blk->fd, chunk, sizeof(chunk), off % (4 * IMG_BYTES)) < 0, "dirty");
	make_chains(b, VIRTIO_BLK_T_FLUSH, 512, 1);
	struct virtio_mmio t;
	struct virtio_irq irq = {.raise = raise_nothing};
	die_if(virtio_mmio_init(&t, &virtio_blk_ops, blk, &b->r.gm, &irq, "bench") < 0, "mmio");
	t.status = VIRTIO_CONFIG_S_DRIVER_OK;
	t.activated = true;
	t.vq[0] = b->r.q;
	tring_publish(&b->r, 0);
	struct prober p = {.t = &t};
	pthread_t th;
	die_if(pthread_create(&th, NULL, probe, &p) != 0, "pthread_create");
	usleep(20000);
	double t0 = now();
	if (under_lock) {
		virtio_mmio_run(&t, all_under_lock, NULL);
	} else {
		virtio_mmio_run(&t, pop_only, NULL);
		virtio_mmio_run(&t, virtio_blk_claim, NULL);
		while (virtio_blk_busy(blk)) {
			virtio_blk_io(blk, true);
			virtio_mmio_run(&t, virtio_blk_complete, NULL);
		}
	}
	double secs = now() - t0;
	usleep(20000);
	atomic_store(&p.stop, true);
	pthread_join(th, NULL);
	die_if(*(uint8_t *)tring_host(&b->r, b->st[0], 1) != VIRTIO_BLK_S_OK, "flush status");
	virtio_mmio_destroy(&t);
	*max_us = p.max_us;
	return secs;
}

static void register_latency(struct bench *b)
{
	printf("\nInterruptStatus reads on a vCPU thread while a flush of %llu MiB of dirty data "
	       "runs (worst read)\n",
	       (unsigned long long)(DIRTY_BYTES >> 20));
	printf("%-6s %-22s %10s %16s\n", "engine", "flush runs", "flush ms", "worst read µs");
	for (int e = 0; e < 2; e++) {
		for (int under = 1; under >= 0; under--) {
			double max_us, s = flush_with_probe(b, e, under, &max_us);
			printf("%-6s %-22s %10.1f %16.1f\n", e ? "Async" : "Sync",
			       under ? "under the lock (old)" : "outside the lock (now)", s * 1e3,
			       max_us);
		}
	}
}

int main(int argc, char **argv)
{
	log_setup(2, LOG_WARN, 0, 0);
	struct bench *b = calloc(1, sizeof(*b));
	die_if(!b, "calloc");
	make_image(b, IMG_BYTES);
	if (argc < 2 || strcmp(argv[1], "latency"))
		throughput(b);
	if (argc < 2 || strcmp(argv[1], "throughput"))
		register_latency(b);
	for (int e = 0; e < 2; e++)
		virtio_blk_close(&b->blk[e]);
	unlink(b->path);
	tring_free(&b->r);
	free(b);
	return 0;
}
