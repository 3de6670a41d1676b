/* 4 KiB random reads and writes through the virtio-blk device model (requests placed in a
 * split virtqueue in fake guest memory, the queue handler called directly, as the event
 * loop would after a kick) against raw preadv/pwritev of the same blocks into the same
 * buffers. Prints requests/s for both and the cost ratio per request. The image lives in
 * the page cache, so the figures show the device model's overhead, not the disk's. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/virtio_test_ring.h"
#include "virtio/blk.h"
#include "vmm/log.h"

#define IMG_BYTES (64ULL << 20)
#define BLOCK 4096
#define QSIZE 256
#define MAX_BATCH 64
#define REQUESTS 200000
#define REPEATS 5

struct bench {
	struct tring r;
	struct virtio_blk blk;
	uint64_t hdr[MAX_BATCH], buf[MAX_BATCH], st[MAX_BATCH];
	uint64_t sector[REQUESTS];
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

static void make_image(struct bench *b)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	snprintf(b->path, sizeof(b->path), "%s/kiln-bench-blk-XXXXXX", dir);
	int fd = mkstemp(b->path);
	die_if(fd < 0, "mkstemp");
	static uint8_t chunk[1 << 20];
	memset(chunk, 0xa5, sizeof(chunk));
	for (uint64_t off = 0; off < IMG_BYTES; off += sizeof(chunk))
		die_if(pwrite(fd, chunk, sizeof(chunk), off) != sizeof(chunk), "pwrite");
	close(fd);
	struct drive_cfg d = {.id = "bench", .path_on_host = b->path};
	char err[256];
	if (virtio_blk_open(&b->blk, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	srand(42);
	for (int i = 0; i < REQUESTS; i++)
		b->sector[i] = (uint64_t)(rand() % (IMG_BYTES / BLOCK)) * (BLOCK / 512);
}

/* Descriptor chains 3i, 3i+1, 3i+2: header, one 4 KiB buffer, status. */
static void make_chains(struct bench *b, uint32_t type)
{
	tring_init(&b->r, 8ULL << 20, QSIZE, 1ULL << VIRTIO_RING_F_EVENT_IDX);
	bool dev_writes = type == VIRTIO_BLK_T_IN;
	for (int i = 0; i < MAX_BATCH; i++) {
		b->hdr[i] = tring_alloc(&b->r, 16);
		b->buf[i] = tring_alloc(&b->r, BLOCK);
		b->st[i] = tring_alloc(&b->r, 1);
		memcpy(tring_host(&b->r, b->hdr[i], 4), &type, 4);
		uint16_t d = 3 * i;
		tring_desc(&b->r, d, b->hdr[i], 16, VRING_DESC_F_NEXT, d + 1);
		tring_desc(&b->r, d + 1, b->buf[i], BLOCK,
			   VRING_DESC_F_NEXT | (dev_writes ? VRING_DESC_F_WRITE : 0), d + 2);
		tring_desc(&b->r, d + 2, b->st[i], 1, VRING_DESC_F_WRITE, 0);
	}
}

/* The driver queues `batch` requests, kicks once, the device drains the ring. */
static double run_device(struct bench *b, uint32_t type, int batch)
{
	make_chains(b, type);
	uint8_t *hdr[MAX_BATCH];
	for (int i = 0; i < batch; i++)
		hdr[i] = tring_host(&b->r, b->hdr[i], 16);
	double t0 = now();
	for (int done = 0; done < REQUESTS; done += batch) {
		for (int i = 0; i < batch; i++) {
			memcpy(hdr[i] + 8, &b->sector[done + i], 8);
			tring_put16(&b->r, b->r.avail_gpa + 4 + 2 * ((b->r.avail_idx + i) % QSIZE),
				    3 * i);
		}
		b->r.avail_idx += batch;
		tring_put16(&b->r, b->r.avail_gpa + 2, b->r.avail_idx);
		bool irq;
		die_if(virtio_blk_process(&b->blk, &b->r.q, &irq) < 0, "virtio_blk_process");
	}
	double t = now() - t0;
	die_if(*(uint8_t *)tring_host(&b->r, b->st[0], 1) != VIRTIO_BLK_S_OK, "request status");
	return REQUESTS / t;
}

static double run_raw(struct bench *b, uint32_t type)
{
	make_chains(b, type);
	struct iovec iov = {.iov_base = tring_host(&b->r, b->buf[0], BLOCK), .iov_len = BLOCK};
	double t0 = now();
	for (int i = 0; i < REQUESTS; i++) {
		off_t off = b->sector[i] * 512;
		ssize_t n = type == VIRTIO_BLK_T_IN ? preadv(b->blk.fd, &iov, 1, off)
						    : pwritev(b->blk.fd, &iov, 1, off);
		die_if(n != BLOCK, "preadv/pwritev");
	}
	return REQUESTS / (now() - t0);
}

/* Best of REPEATS, so a scheduling hiccup does not decide the figure. */
static double best(struct bench *b, uint32_t type, int batch)
{
	double top = 0;
	for (int i = 0; i < REPEATS; i++) {
		double r = batch ? run_device(b, type, batch) : run_raw(b, type);
		top = r > top ? r : top;
	}
	return top;
}

int main(void)
{
	log_setup(2, LOG_WARN, 0, 0);
	struct bench *b = calloc(1, sizeof(*b));
	die_if(!b, "calloc");
	make_image(b);
	printf("virtio-blk device model vs raw syscalls: 4 KiB random I/O on a %llu MiB image "
	       "(page cache), %d requests, best of %d\n",
	       (unsigned long long)(IMG_BYTES >> 20), REQUESTS, REPEATS);
	printf("%-6s %5s %14s %14s %10s\n", "op", "batch", "raw req/s", "device req/s",
	       "cost ratio");
	const uint32_t types[] = {VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
	const int batches[] = {1, 16, 64};
	for (int t = 0; t < 2; t++) {
		double raw = best(b, types[t], 0);
		for (int k = 0; k < 3; k++) {
			double dev = best(b, types[t], batches[k]);
			printf("%-6s %5d %14.0f %14.0f %9.3fx\n", t ? "write" : "read", batches[k],
			       raw, dev, raw / dev);
		}
	}
	virtio_blk_close(&b->blk);
	unlink(b->path);
	tring_free(&b->r);
	free(b);
	return 0;
}
