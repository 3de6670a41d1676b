/* Test-side guest for a whole virtio set: "processes" (a bus, an event loop and a set wired
 * to fake KVM ops) over one shared guest memory, a driver that programs devices through
 * their MMIO windows and fills rings the way Linux would, and state files in memory.
 * Header-only, shared by test_virtio_persist.c and the restore fuzzer; failures abort. */
#ifndef KILN_VSET_TEST_ENV_H
#define KILN_VSET_TEST_ENV_H

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/unit/virtio_regs_check.h"
#include "virtio/devices.h"
#include "vmm/bus.h"
#include "vmm/snapshot_file.h"

#define VS_RAM (4ULL << 20)
#define VS_QSIZE 16
#define VS_RING_BASE 0x10000ULL /* queue q of slot s: 4 KiB at +(s * 4 + q) * 4 KiB */
#define VS_DATA_BASE 0x80000ULL
#define VS_MAX_SLOTS 4

struct vs_kvm {
	unsigned nr_io, nr_irq;
	int io_efd[32], irq_efd[32];
};

/* One kiln process: its own bus, loop and devices. */
struct vs_proc {
	struct vm vm;
	struct evloop loop;
	struct virtio_set set;
	struct vs_kvm kvm;
};

/* What the guest driver knows of one queue. */
struct vs_queue {
	uint64_t desc, avail, used;
	uint16_t avail_idx;
	uint16_t next_desc;
};

/* The guest: its memory and its drivers' bookkeeping (restored with its RAM). */
struct vs_guest {
	struct vs_queue q[VS_MAX_SLOTS][4];
	uint64_t data_next;
};

static inline void vs_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "vset: %s\n", what);
		abort();
	}
}

static int vs_ioeventfd(void *ctx, int efd, uint64_t gpa, uint32_t datamatch)
{
	struct vs_kvm *k = ctx;
	(void)gpa, (void)datamatch;
	if (k->nr_io < 32)
		k->io_efd[k->nr_io++] = efd;
	return 0;
}

static int vs_irqfd(void *ctx, int efd, uint32_t gsi)
{
	struct vs_kvm *k = ctx;
	(void)gsi;
	if (k->nr_irq < 32)
		k->irq_efd[k->nr_irq++] = efd;
	return 0;
}

static int vs_map_readonly(void *ctx, uint64_t gpa, void *host, uint64_t size)
{
	(void)ctx, (void)gpa, (void)host, (void)size;
	return 0;
}

/* Whether slot's register copy (what the guest reads without an exit) says what a read
 * through the bus says. */
static inline bool vs_regs_match(struct vs_proc *p, unsigned slot)
{
	const struct virtio_slot *s = p->set.slot[slot];
	return virtio_regs_match(&p->vm.mmio,
				 LAYOUT_VIRTIO_MMIO_BASE + slot * LAYOUT_VIRTIO_MMIO_SIZE, s->regs,
				 s->mmio.ops->config_size);
}

static inline struct vs_proc *vs_proc_new(const struct guest_mem *gm)
{
	struct vs_proc *p = calloc(1, sizeof(*p));
	vs_check(p != NULL, "calloc");
	p->vm.mem = *gm; /* the same mapping: the snapshot's RAM */
	vs_check(evloop_init(&p->loop) == 0, "evloop_init");
	struct virtio_kvm_ops ops = {vs_ioeventfd, vs_irqfd, &p->kvm, vs_map_readonly};
	virtio_set_init(&p->set, &ops);
	return p;
}

static inline void vs_proc_free(struct vs_proc *p)
{
	if (!p)
		return;
	virtio_set_destroy(&p->set);
	evloop_destroy(&p->loop);
	free(p);
}

static inline void *vs_host(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	void *h = gm_ptr(gm, gpa, len);
	vs_check(h != NULL, "gpa outside guest memory");
	return h;
}

static inline void vs_wr(struct vs_proc *p, unsigned slot, uint32_t off, uint32_t v)
{
	uint64_t base = LAYOUT_VIRTIO_MMIO_BASE + (uint64_t)slot * LAYOUT_VIRTIO_MMIO_SIZE;
	vs_check(bus_write(&p->vm.mmio, base + off, (uint8_t *)&v, 4) == 0, "bus_write");
}

static inline uint32_t vs_rd(struct vs_proc *p, unsigned slot, uint32_t off)
{
	uint64_t base = LAYOUT_VIRTIO_MMIO_BASE + (uint64_t)slot * LAYOUT_VIRTIO_MMIO_SIZE;
	uint32_t v = 0;
	vs_check(bus_read(&p->vm.mmio, base + off, (uint8_t *)&v, 4) == 0, "bus_read");
	return v;
}

/* Interrupts the device raised through its irqfd since the last call. */
static inline uint64_t vs_irqs(struct vs_proc *p, unsigned slot)
{
	uint64_t n = 0;
	if (read(p->kvm.irq_efd[slot], &n, sizeof(n)) != sizeof(n))
		n = 0;
	return n;
}

/* The driver's bring-up: status steps, features, nq queues of VS_QSIZE, DRIVER_OK. */
static inline void vs_up(struct vs_proc *p, struct vs_guest *g, unsigned slot, uint64_t features,
			 unsigned nq)
{
	vs_wr(p, slot, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vs_wr(p, slot, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	for (uint32_t sel = 0; sel < 2; sel++) {
		vs_wr(p, slot, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		vs_wr(p, slot, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> (32 * sel)));
	}
	uint32_t st =
	    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	vs_wr(p, slot, VIRTIO_MMIO_STATUS, st);
	for (unsigned q = 0; q < nq; q++) {
		struct vs_queue *vq = &g->q[slot][q];
		uint64_t base = VS_RING_BASE + (slot * 4ULL + q) * 4096;
		*vq = (struct vs_queue){.desc = base, .avail = base + 1024, .used = base + 2048};
		vs_wr(p, slot, VIRTIO_MMIO_QUEUE_SEL, q);
		vs_wr(p, slot, VIRTIO_MMIO_QUEUE_NUM, VS_QSIZE);
		vs_wr(p, slot, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)vq->desc);
		vs_wr(p, slot, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)vq->avail);
		vs_wr(p, slot, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)vq->used);
		vs_wr(p, slot, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	vs_wr(p, slot, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* A zeroed guest buffer, 16-byte aligned. */
static inline uint64_t vs_alloc(const struct guest_mem *gm, struct vs_guest *g, uint32_t len)
{
	if (!g->data_next)
		g->data_next = VS_DATA_BASE;
	uint64_t gpa = g->data_next;
	g->data_next = (gpa + len + 15) & ~15ULL;
	memset(vs_host(gm, gpa, len), 0, len);
	return gpa;
}

/* Appends a descriptor to the queue's table; returns its index. */
static inline uint16_t vs_desc(const struct guest_mem *gm, struct vs_queue *q, uint64_t addr,
			       uint32_t len, uint16_t flags)
{
	uint16_t i = q->next_desc++ % VS_QSIZE;
	uint16_t next = (uint16_t)((i + 1) % VS_QSIZE);
	uint8_t d[16];
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	memcpy(vs_host(gm, q->desc + 16ULL * i, 16), d, 16);
	return i;
}

static inline void vs_publish(const struct guest_mem *gm, struct vs_queue *q, uint16_t head)
{
	memcpy(vs_host(gm, q->avail + 4 + 2ULL * (q->avail_idx % VS_QSIZE), 2), &head, 2);
	q->avail_idx++;
	__atomic_store_n((uint16_t *)vs_host(gm, q->avail + 2, 2), q->avail_idx, __ATOMIC_RELEASE);
}

static inline uint16_t vs_used_idx(const struct guest_mem *gm, const struct vs_queue *q)
{
	return __atomic_load_n((uint16_t *)vs_host(gm, q->used + 2, 2), __ATOMIC_ACQUIRE);
}

static inline void vs_used_elem(const struct guest_mem *gm, const struct vs_queue *q, uint16_t i,
				uint32_t *id, uint32_t *len)
{
	uint8_t *e = vs_host(gm, q->used + 4 + 8ULL * (i % VS_QSIZE), 8);
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}

/* Runs p's event loop until the queue's used index reaches n (or a few seconds pass). */
static inline void vs_run_until(struct vs_proc *p, const struct vs_queue *q, uint16_t n)
{
	for (int i = 0; i < 200 && vs_used_idx(&p->vm.mem, q) != n; i++)
		evloop_run_once(&p->loop, 20);
}

/* A whole state file holding what virtio_set_save() wrote: in buf (free() it). */
static inline void vs_save(struct vs_proc *p, uint8_t **buf, size_t *len)
{
	struct snap_writer w;
	snap_writer_init(&w);
	vs_check(virtio_set_save(&p->set, &w) == 0, "virtio_set_save");
	int fd = memfd_create("snap", MFD_CLOEXEC);
	vs_check(fd >= 0 && snap_writer_finish(&w, fd) == 0, "snap_writer_finish");
	snap_writer_free(&w);
	off_t n = lseek(fd, 0, SEEK_END);
	*buf = malloc(n);
	vs_check(*buf && pread(fd, *buf, n, 0) == n, "read back");
	*len = (size_t)n;
	close(fd);
}

#endif
