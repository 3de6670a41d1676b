/* Test-side guest for virtio-vsock: a fake guest memory with the three queues, a driver
 * that brings the device up through the virtio-mmio registers, sends packets on tx, posts
 * rx buffers and reads back what kiln put there, plus host-side socket helpers. Header-only,
 * shared by the vsock unit tests; failures abort. */
#ifndef KILN_VSOCK_TEST_ENV_H
#define KILN_VSOCK_TEST_ENV_H

#include <dirent.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "virtio/vsock.h"

#define VT_RAM (128ULL << 20)
#define VT_QSIZE 256
#define VT_CID 3
#define VT_SLOT_BYTES 0x11000ULL /* one descriptor's buffer: header + 64 KiB + slack */
#define VT_RX_BUF 4096		 /* payload room of the rx buffers vt_post_rx() adds */

struct vt_queue {
	uint64_t desc, avail, used, data;
	uint16_t avail_idx, used_seen;
	uint32_t next; /* descriptor pairs handed out, mod VT_QSIZE / 2 */
};

/* A packet as the guest sees it. */
struct vt_pkt {
	struct vsock_hdr h;
	uint8_t data[VSOCK_MAX_PAYLOAD];
};

struct vt_env {
	struct guest_mem gm;
	struct evloop loop;
	struct virtio_vsock v;
	struct virtio_mmio t;
	struct vt_queue q[3];
	uint64_t features;
	int irqs;
	uint64_t skew; /* added to the muxer's clock */
	char dir[64], path[96];
	int fds_before;
	char err[256];
};

static inline void vt_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "vsock test env: %s (errno %d)\n", what, errno);
		abort();
	}
}

static inline int vt_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	vt_check(d != NULL, "opendir /proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The guest's handler, run at once: counts the interrupt and acknowledges it (the hook runs
 * under the transport lock, so it clears InterruptStatus itself), so the next used buffer
 * interrupts again. */
static inline int vt_raise(void *ctx)
{
	struct vt_env *e = ctx;
	e->irqs++;
	e->t.isr = 0;
	return 0;
}

/* The clock every env installs in place of CLOCK_MONOTONIC: the real one (so timerfd
 * deadlines make sense) plus whatever the test skipped ahead. */
static inline uint64_t vt_clock(void *ctx)
{
	const uint64_t *skew = ctx;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec + *skew;
}

static inline void vt_reg_write(struct vt_env *e, uint32_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(&e->t, off, (const uint8_t *)&v, 4);
}

static inline uint32_t vt_reg_read(struct vt_env *e, uint32_t off)
{
	uint32_t v;
	virtio_mmio_bus_ops.read(&e->t, off, (uint8_t *)&v, 4);
	return v;
}

static inline void *vt_host(struct vt_env *e, uint64_t gpa, uint64_t len)
{
	void *p = gm_ptr(&e->gm, gpa, len);
	vt_check(p != NULL, "gpa outside guest memory");
	return p;
}

static inline void vt_put16(struct vt_env *e, uint64_t gpa, uint16_t v)
{
	memcpy(vt_host(e, gpa, 2), &v, 2);
}

static inline uint16_t vt_get16(struct vt_env *e, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, vt_host(e, gpa, 2), 2);
	return v;
}

static inline void vt_setup_queue(struct vt_env *e, unsigned i)
{
	struct vt_queue *q = &e->q[i];
	uint64_t base = 0x100000ULL + i * 0x10000ULL;
	q->desc = base;
	q->avail = base + 16 * VT_QSIZE;
	q->used = base + 0x8000;
	q->data = 0x1000000ULL + i * VT_SLOT_BYTES * VT_QSIZE;
	memset(vt_host(e, q->desc, 0x8000), 0, 16 * VT_QSIZE + 6 + 2 * VT_QSIZE); /* fresh rings */
	memset(vt_host(e, q->used, 6 + 8 * VT_QSIZE), 0, 6 + 8 * VT_QSIZE);
	vt_reg_write(e, VIRTIO_MMIO_QUEUE_SEL, i);
	vt_reg_write(e, VIRTIO_MMIO_QUEUE_NUM, VT_QSIZE);
	vt_reg_write(e, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
	vt_reg_write(e, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)q->avail);
	vt_reg_write(e, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)q->used);
	vt_reg_write(e, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* The driver's side of bringing the device up (virtio 1.x 3.1.1). */
static inline void vt_activate(struct vt_env *e)
{
	memset(e->q, 0, sizeof(e->q));
	vt_reg_write(e, VIRTIO_MMIO_STATUS, 0);
	vt_reg_write(e, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vt_reg_write(e, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vt_reg_write(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vt_reg_write(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)e->features);
	vt_reg_write(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vt_reg_write(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(e->features >> 32));
	uint32_t s =
	    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	vt_reg_write(e, VIRTIO_MMIO_STATUS, s);
	vt_check(vt_reg_read(e, VIRTIO_MMIO_STATUS) == s, "FEATURES_OK refused");
	for (unsigned i = 0; i < 3; i++)
		vt_setup_queue(e, i);
	vt_reg_write(e, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
	vt_check(vt_reg_read(e, VIRTIO_MMIO_STATUS) == (s | VIRTIO_CONFIG_S_DRIVER_OK),
		 "DRIVER_OK refused");
}

/* Runs the event loop until nothing is ready. */
static inline void vt_pump(struct vt_env *e)
{
	for (int i = 0; i < 1000 && evloop_run_once(&e->loop, 0) > 0; i++)
		;
}

static inline void vt_init(struct vt_env *e, uint64_t features)
{
	memset(e, 0, sizeof(*e));
	e->fds_before = vt_count_fds();
	e->features = (1ULL << VIRTIO_F_VERSION_1) | features;
	snprintf(e->dir, sizeof(e->dir), "/tmp/kiln-vsock-XXXXXX");
	vt_check(mkdtemp(e->dir) != NULL, "mkdtemp");
	snprintf(e->path, sizeof(e->path), "%s/v.sock", e->dir);
	vt_check(guest_mem_init(&e->gm, VT_RAM) == 0, "guest_mem_init");
	vt_check(evloop_init(&e->loop) == 0, "evloop_init");
	struct vsock_cfg cfg = {.present = true, .guest_cid = VT_CID, .uds_path = e->path};
	vt_check(virtio_vsock_open(&e->v, &cfg, &e->loop, e->err, sizeof(e->err)) == 0, e->err);
	e->v.mux.clock = vt_clock;
	e->v.mux.clock_ctx = &e->skew;
	struct virtio_irq irq = {.raise = vt_raise, .ctx = e};
	vt_check(virtio_mmio_init(&e->t, &virtio_vsock_ops, &e->v, &e->gm, &irq, "vsock test") == 0,
		 "virtio_mmio_init");
	e->v.transport = &e->t;
	vt_activate(e);
}

/* Frees everything; 0, or -1 (with a message) when a descriptor or the socket leaked. */
static inline int vt_fini(struct vt_env *e)
{
	virtio_vsock_close(&e->v);
	virtio_mmio_destroy(&e->t);
	evloop_destroy(&e->loop);
	guest_mem_free(&e->gm);
	struct stat st;
	int fds = vt_count_fds();
	if (stat(e->path, &st) == 0 || rmdir(e->dir) < 0 || fds != e->fds_before) {
		fprintf(stderr, "vsock test env: leaked: %s%d fds (%d before, %d after)\n",
			stat(e->path, &st) == 0 ? "uds_path, " : "", fds - e->fds_before,
			e->fds_before, fds);
		return -1;
	}
	return 0;
}

static inline void vt_desc(struct vt_env *e, struct vt_queue *q, uint16_t idx, uint64_t addr,
			   uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	memcpy(vt_host(e, q->desc + 16ULL * idx, 16), d, 16);
}

static inline void vt_publish(struct vt_env *e, struct vt_queue *q, uint16_t head)
{
	vt_put16(e, q->avail + 4 + 2 * (q->avail_idx % VT_QSIZE), head);
	q->avail_idx++;
	vt_put16(e, q->avail + 2, q->avail_idx);
}

/* The next descriptor pair of q: head index; its buffers are slot(head), slot(head + 1). */
static inline uint16_t vt_pair(struct vt_queue *q)
{
	return (uint16_t)(2 * (q->next++ % (VT_QSIZE / 2)));
}

static inline uint64_t vt_slot(struct vt_queue *q, uint16_t idx)
{
	return q->data + idx * VT_SLOT_BYTES;
}

static inline void vt_notify(struct vt_env *e, unsigned queue)
{
	vt_reg_write(e, VIRTIO_MMIO_QUEUE_NOTIFY, queue);
}

/* Queues a raw tx chain: `bytes` readable bytes, split after `split` bytes into two
 * descriptors (0: one descriptor). Does not notify. */
static inline void vt_tx_raw(struct vt_env *e, const void *bytes, uint32_t len, uint32_t split)
{
	struct vt_queue *q = &e->q[VIRTIO_VSOCK_TXQ];
	uint16_t head = vt_pair(q);
	memcpy(vt_host(e, vt_slot(q, head), len), bytes, len);
	if (split && split < len) {
		vt_desc(e, q, head, vt_slot(q, head), split, VRING_DESC_F_NEXT, head + 1);
		vt_desc(e, q, head + 1, vt_slot(q, head) + split, len - split, 0, 0);
	} else {
		vt_desc(e, q, head, vt_slot(q, head), len, 0, 0);
	}
	vt_publish(e, q, head);
}

/* Sends one packet the way Linux 6.1 does (header and payload in two descriptors). */
static inline void vt_send(struct vt_env *e, const struct vsock_hdr *h, const void *data)
{
	static uint8_t buf[VSOCK_HDR_BYTES + VSOCK_MAX_PAYLOAD];
	uint32_t len = h->op == VIRTIO_VSOCK_OP_RW ? h->len : 0;
	vsock_hdr_encode(h, buf);
	if (len && data)
		memcpy(buf + VSOCK_HDR_BYTES, data, len);
	vt_tx_raw(e, buf, VSOCK_HDR_BYTES + len, VSOCK_HDR_BYTES);
	vt_notify(e, VIRTIO_VSOCK_TXQ);
}

/* A header from the guest (CID 3) to the host (CID 2). */
static inline struct vsock_hdr vt_hdr(uint16_t op, uint32_t guest_port, uint32_t host_port)
{
	return (struct vsock_hdr){.src_cid = VT_CID,
				  .dst_cid = VSOCK_HOST_CID,
				  .src_port = guest_port,
				  .dst_port = host_port,
				  .type = VIRTIO_VSOCK_TYPE_STREAM,
				  .op = op,
				  .buf_alloc = 256 * 1024};
}

/* Posts n rx buffers of VT_RX_BUF payload bytes each (header and payload descriptors), then
 * notifies. */
static inline void vt_post_rx(struct vt_env *e, unsigned n)
{
	struct vt_queue *q = &e->q[VIRTIO_VSOCK_RXQ];
	for (unsigned i = 0; i < n; i++) {
		uint16_t head = vt_pair(q);
		uint16_t w = VRING_DESC_F_WRITE;
		vt_desc(e, q, head, vt_slot(q, head), VSOCK_HDR_BYTES, w | VRING_DESC_F_NEXT,
			head + 1);
		vt_desc(e, q, head + 1, vt_slot(q, head + 1), VT_RX_BUF, w, 0);
		vt_publish(e, q, head);
	}
	vt_notify(e, VIRTIO_VSOCK_RXQ);
}

/* The next packet kiln put in an rx buffer: 1 with *p filled, 0 if there is none. */
static inline int vt_recv(struct vt_env *e, struct vt_pkt *p)
{
	struct vt_queue *q = &e->q[VIRTIO_VSOCK_RXQ];
	if (vt_get16(e, q->used + 2) == q->used_seen)
		return 0;
	uint8_t *el = vt_host(e, q->used + 4 + 8ULL * (q->used_seen++ % VT_QSIZE), 8);
	uint32_t id, len;
	memcpy(&id, el, 4);
	memcpy(&len, el + 4, 4);
	vt_check(len >= VSOCK_HDR_BYTES, "rx used length below a header");
	vsock_hdr_decode(&p->h, vt_host(e, vt_slot(q, id), VSOCK_HDR_BYTES));
	vt_check(len - VSOCK_HDR_BYTES == p->h.len && p->h.len <= VT_RX_BUF, "rx length");
	memcpy(p->data, vt_host(e, vt_slot(q, id + 1), p->h.len), p->h.len);
	return 1;
}

/* ---- host side ----------------------------------------------------------------------- */

static inline int vt_unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	vt_check(strlen(path) < sizeof(sa.sun_path), "socket path too long");
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	vt_check(fd >= 0, "socket");
	vt_check(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect");
	return fd;
}

static inline int vt_unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	vt_check(strlen(path) < sizeof(sa.sun_path), "socket path too long");
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	vt_check(fd >= 0, "socket");
	vt_check(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind");
	vt_check(listen(fd, 4096) == 0, "listen");
	return fd;
}

/* Non-blocking read of what the socket has: bytes, 0 at EOF, -EAGAIN when nothing. */
static inline ssize_t vt_read(int fd, void *buf, size_t len)
{
	ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
	return r < 0 ? -errno : r;
}

static inline void vt_write(int fd, const void *buf, size_t len)
{
	vt_check(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len, "host write");
}

#endif
