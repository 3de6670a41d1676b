#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/virtio_test_ring.h"
#include "tests/unit/virtio_regs_check.h"
#include "virtio/devices.h"
#include "vmm/bus.h"
#include "vmm/evloop.h"
#include "vmm/log.h"
#include "vmm/metrics.h"

#define RAM (1ULL << 20)
#define QSIZE 16
#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRV VIRTIO_CONFIG_S_DRIVER
#define S_FOK VIRTIO_CONFIG_S_FEATURES_OK
#define S_DOK VIRTIO_CONFIG_S_DRIVER_OK

struct fake_kvm {
	unsigned nr_io, nr_irq;
	uint64_t io_gpa[32];
	uint32_t io_match[32], irq_gsi[32];
	int io_efd[32], irq_efd[32];
	unsigned nr_ro;
	uint64_t ro_gpa[32];
	void *ro_host[32];
};

struct denv {
	struct tring r;
	struct vm *vm;
	struct evloop loop;
	struct virtio_set set;
	struct fake_kvm kvm;
	char path[3][32];
	struct drive_cfg d[3];
	char err[256];
};

static int fake_ioeventfd(void *ctx, int efd, uint64_t gpa, uint32_t datamatch)
{
	struct fake_kvm *k = ctx;
	k->io_gpa[k->nr_io] = gpa;
	k->io_match[k->nr_io] = datamatch;
	k->io_efd[k->nr_io++] = efd;
	return 0;
}

static int fake_irqfd(void *ctx, int efd, uint32_t gsi)
{
	struct fake_kvm *k = ctx;
	k->irq_gsi[k->nr_irq] = gsi;
	k->irq_efd[k->nr_irq++] = efd;
	return 0;
}

static int fake_map_readonly(void *ctx, uint64_t gpa, void *host, uint64_t size)
{
	struct fake_kvm *k = ctx;
	assert_int_equal(size, LAYOUT_VIRTIO_MMIO_SIZE);
	k->ro_gpa[k->nr_ro] = gpa;
	k->ro_host[k->nr_ro++] = host;
	return 0;
}

/* Three 64 KiB images; drive 1 is the read-only root. */
static int denv_setup(void **state)
{
	struct denv *e = calloc(1, sizeof(*e));
	e->vm = calloc(1, sizeof(*e->vm));
	tring_layout(&e->r, RAM, QSIZE);
	e->vm->mem = e->r.gm; /* shares the tring's mapping */
	assert_int_equal(evloop_init(&e->loop), 0);
	struct virtio_kvm_ops ops = {fake_ioeventfd, fake_irqfd, &e->kvm, fake_map_readonly};
	virtio_set_init(&e->set, &ops);
	for (int i = 0; i < 3; i++) {
		snprintf(e->path[i], sizeof(e->path[i]), "/tmp/kiln-vdev-XXXXXX");
		int fd = mkstemp(e->path[i]);
		assert_true(fd >= 0 && ftruncate(fd, 65536) == 0);
		close(fd);
		snprintf(e->d[i].id, sizeof(e->d[i].id), "disk%d", i);
		e->d[i].path_on_host = e->path[i];
	}
	e->d[1].is_root_device = e->d[1].is_read_only = true;
	*state = e;
	return 0;
}

static int denv_teardown(void **state)
{
	struct denv *e = *state;
	virtio_set_destroy(&e->set);
	evloop_destroy(&e->loop);
	for (int i = 0; i < 3; i++)
		unlink(e->path[i]);
	tring_free(&e->r);
	free(e->vm);
	free(e);
	return 0;
}

static int add_all(struct denv *e)
{
	return virtio_blk_add_all(&e->set, e->vm, &e->loop, e->d, 3, e->err, sizeof(e->err));
}

static void test_devices_layout(void **state)
{
	struct denv *e = *state;
	e->d[2].rate_limiter.present = e->d[2].rate_limiter.bandwidth.present = true;
	e->d[2].rate_limiter.bandwidth.size = 1 << 20;
	e->d[2].rate_limiter.bandwidth.refill_time_ms = 100;
	assert_int_equal(add_all(e), 0);
	assert_int_equal(e->set.nr, 3);
	/* Every drive's limiter timer is watched, limiting or not: PATCH can make it limit. */
	assert_true(e->set.slot[1]->limiter_watched);
	assert_true(e->set.slot[2]->limiter_watched); /* its timer resumes the queue */
	for (unsigned i = 0; i < 3; i++) {
		uint64_t base = LAYOUT_VIRTIO_MMIO_BASE + i * LAYOUT_VIRTIO_MMIO_SIZE;
		assert_int_equal(e->set.acpi[i].base, base);
		assert_int_equal(e->set.acpi[i].size, 0x1000);
		assert_int_equal(e->set.acpi[i].gsi, LAYOUT_VIRTIO_IRQ_BASE + i);
		/* Per device: its queue's notification, then the acknowledgement of VRING. */
		assert_int_equal(e->kvm.io_gpa[2 * i], base + VIRTIO_MMIO_QUEUE_NOTIFY);
		assert_int_equal(e->kvm.io_match[2 * i], 0);
		assert_int_equal(e->kvm.io_gpa[2 * i + 1], base + VIRTIO_MMIO_INTERRUPT_ACK);
		assert_int_equal(e->kvm.io_match[2 * i + 1], VIRTIO_MMIO_INT_VRING);
		assert_int_equal(e->kvm.ro_gpa[i], base);
		assert_ptr_equal(e->kvm.ro_host[i], e->set.slot[i]->regs);
		assert_int_equal(e->kvm.irq_gsi[i], LAYOUT_VIRTIO_IRQ_BASE + i);
		uint8_t v[4];
		assert_int_equal(bus_read(&e->vm->mmio, base + VIRTIO_MMIO_DEVICE_ID, v, 4), 0);
		assert_int_equal(v[0], VIRTIO_ID_BLOCK);
	}
	/* The root drive went first: it is vda, and read-only. */
	assert_int_equal(e->set.root_blk, 0);
	assert_int_equal(virtio_slot_blk(e->set.slot[0])->read_only, true);
	char buf[256] = "console=ttyS0";
	assert_int_equal(virtio_set_cmdline(&e->set, false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "console=ttyS0 root=/dev/vda ro");
	buf[13] = '\0';
	assert_int_equal(virtio_set_cmdline(&e->set, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5"
				 " virtio_mmio.device=4K@0xd0001000:6"
				 " virtio_mmio.device=4K@0xd0002000:7 root=/dev/vda ro");
	char small[40] = "console=ttyS0";
	assert_int_equal(virtio_set_cmdline(&e->set, true, small, sizeof(small)), -ENOSPC);
	assert_string_equal(small, "console=ttyS0");
}

static void test_devices_partuuid_and_locks(void **state)
{
	struct denv *e = *state;
	e->d[1].partuuid = "x y";
	assert_int_equal(add_all(e), -EINVAL);
	assert_non_null(strstr(e->err, "drives[disk1].partuuid"));
	e->d[1].partuuid = "0eaa91a0-01";
	e->d[1].is_read_only = false;
	e->d[2].path_on_host = e->path[0]; /* disk0 and disk2 are the same file */
	assert_int_equal(add_all(e), -EBUSY);
	assert_non_null(strstr(e->err, "drives[disk2]"));
	assert_non_null(strstr(e->err, "locked by another process"));
	assert_int_equal(e->set.nr, 2);
	char buf[128] = "";
	assert_int_equal(virtio_set_cmdline(&e->set, false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, " root=PARTUUID=0eaa91a0-01 rw");
}

static void test_devices_limit(void **state)
{
	struct denv *e = *state;
	e->d[0].is_read_only = true; /* shared locks: the same image many times */
	for (unsigned i = 0; i < VIRTIO_DEVICES_MAX; i++)
		assert_int_equal(
		    virtio_blk_add(&e->set, e->vm, &e->loop, &e->d[0], e->err, sizeof(e->err)), 0);
	assert_int_equal(virtio_blk_add(&e->set, e->vm, &e->loop, &e->d[0], e->err, sizeof(e->err)),
			 -ENOSPC);
	assert_int_equal(e->set.acpi[VIRTIO_DEVICES_MAX - 1].gsi, LAYOUT_IOAPIC_PINS - 1);
}

static void mmio_wr(struct denv *e, uint64_t off, uint32_t v)
{
	assert_int_equal(bus_write(&e->vm->mmio, LAYOUT_VIRTIO_MMIO_BASE + off, (uint8_t *)&v, 4),
			 0);
}

static void bring_up_disk0(struct denv *e)
{
	mmio_wr(e, VIRTIO_MMIO_STATUS, S_ACK);
	mmio_wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	mmio_wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_wr(e, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	mmio_wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK);
	mmio_wr(e, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	mmio_wr(e, VIRTIO_MMIO_QUEUE_DESC_LOW, e->r.desc_gpa);
	mmio_wr(e, VIRTIO_MMIO_QUEUE_AVAIL_LOW, e->r.avail_gpa);
	mmio_wr(e, VIRTIO_MMIO_QUEUE_USED_LOW, e->r.used_gpa);
	mmio_wr(e, VIRTIO_MMIO_QUEUE_READY, 1);
	mmio_wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
}

/* The device's register copy says what a read through the bus says, at every readable
 * register and config byte, and 0 where nothing can be read. */
static void assert_copy_matches(struct denv *e, unsigned slot)
{
	const uint32_t *regs = e->set.slot[slot]->regs;
	uint32_t cfg = e->set.slot[slot]->mmio.ops->config_size;
	assert_true(virtio_regs_match(
	    &e->vm->mmio, LAYOUT_VIRTIO_MMIO_BASE + slot * LAYOUT_VIRTIO_MMIO_SIZE, regs, cfg));
	assert_int_equal(regs[VIRTIO_MMIO_QUEUE_NOTIFY / 4], 0);
	assert_int_equal(((const uint8_t *)regs)[VIRTIO_MMIO_CONFIG + cfg], 0);
}

/* The guest reads registers from the read-only copy: it follows every register write of a
 * driver's bring-up, the selectors, a new backing file's capacity and a reset. */
static void test_devices_register_copy(void **state)
{
	struct denv *e = *state;
	assert_int_equal(add_all(e), 0);
	for (unsigned i = 0; i < 3; i++) {
		assert_non_null(e->set.slot[i]->regs);
		assert_int_equal(e->set.slot[i]->regs[0], VIRTIO_MMIO_MAGIC);
		assert_copy_matches(e, i);
	}
	const uint32_t steps[][2] = {
	    {VIRTIO_MMIO_STATUS, S_ACK},
	    {VIRTIO_MMIO_STATUS, S_ACK | S_DRV},
	    {VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1},
	    {VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1},
	    {VIRTIO_MMIO_DRIVER_FEATURES, 1},
	    {VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK},
	    {VIRTIO_MMIO_QUEUE_SEL, 3}, /* no such queue: QueueNumMax reads 0 */
	    {VIRTIO_MMIO_QUEUE_SEL, 0},
	    {VIRTIO_MMIO_QUEUE_NUM, QSIZE},
	    {VIRTIO_MMIO_QUEUE_DESC_LOW, e->r.desc_gpa},
	    {VIRTIO_MMIO_QUEUE_AVAIL_LOW, e->r.avail_gpa},
	    {VIRTIO_MMIO_QUEUE_USED_LOW, e->r.used_gpa},
	    {VIRTIO_MMIO_QUEUE_READY, 1},
	    {VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK},
	};
	uint32_t seen_max = 0;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		mmio_wr(e, steps[i][0], steps[i][1]);
		assert_copy_matches(e, 0);
		seen_max |= e->set.slot[0]->regs[VIRTIO_MMIO_QUEUE_NUM_MAX / 4];
	}
	assert_int_equal(seen_max, e->set.slot[0]->mmio.ops->queue_max_size);
	assert_int_equal(e->set.slot[0]->regs[VIRTIO_MMIO_STATUS / 4],
			 S_ACK | S_DRV | S_FOK | S_DOK);
	assert_int_equal(e->set.slot[0]->regs[VIRTIO_MMIO_QUEUE_READY / 4], 1);
	int fd = open(e->path[2], O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(virtio_set_blk_swap(&e->set, "disk1", fd, 2 << 20), 0);
	uint64_t cap = 0;
	memcpy(&cap, (uint8_t *)e->set.slot[0]->regs + VIRTIO_MMIO_CONFIG, 8);
	assert_int_equal(cap, (2 << 20) / 512);
	assert_int_equal(e->set.slot[0]->regs[VIRTIO_MMIO_CONFIG_GENERATION / 4], 1);
	assert_copy_matches(e, 0);
	mmio_wr(e, VIRTIO_MMIO_STATUS, 0);
	assert_copy_matches(e, 0);
	assert_int_equal(e->set.slot[0]->regs[VIRTIO_MMIO_STATUS / 4], 0);
}

/* GET_ID request `n` in descriptors 3n..3n+2, published and kicked through the queue's
 * ioeventfd as KVM would; returns the number of interrupts raised through the irqfd. */
static uint64_t get_id_request(struct denv *e, uint16_t n)
{
	uint64_t hdr = tring_alloc(&e->r, 16), id = tring_alloc(&e->r, 20);
	uint64_t st = tring_alloc(&e->r, 1);
	uint32_t type = VIRTIO_BLK_T_GET_ID;
	memcpy(tring_host(&e->r, hdr, 4), &type, 4);
	tring_desc(&e->r, 3 * n, hdr, 16, VRING_DESC_F_NEXT, 3 * n + 1);
	tring_desc(&e->r, 3 * n + 1, id, 20, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3 * n + 2);
	tring_desc(&e->r, 3 * n + 2, st, 1, VRING_DESC_F_WRITE, 0);
	tring_publish(&e->r, 3 * n);
	uint64_t one = 1, cnt = 0;
	assert_int_equal(write(e->kvm.io_efd[0], &one, 8), 8);
	assert_int_equal(evloop_run_once(&e->loop, 1000), 1);
	assert_int_equal(tring_used_idx(&e->r), n + 1);
	return read(e->kvm.irq_efd[0], &cnt, 8) == 8 ? cnt : 0;
}

/* The driver's acknowledgement reaches kiln through the eventfd KVM signals: an interrupt
 * after it is raised, one before it is coalesced, and the copy shows InterruptStatus. */
static void test_devices_ack_through_eventfd(void **state)
{
	struct denv *e = *state;
	assert_int_equal(add_all(e), 0);
	bring_up_disk0(e);
	const uint32_t *regs = e->set.slot[0]->regs;
	assert_int_equal(get_id_request(e, 0), 1);
	assert_int_equal(regs[VIRTIO_MMIO_INTERRUPT_STATUS / 4], VIRTIO_MMIO_INT_VRING);
	assert_int_equal(get_id_request(e, 1), 0); /* not acknowledged yet */
	uint64_t one = 1;
	assert_int_equal(write(e->kvm.io_efd[1], &one, 8), 8); /* the driver's InterruptACK */
	assert_int_equal(get_id_request(e, 2), 1);
	assert_int_equal(regs[VIRTIO_MMIO_INTERRUPT_STATUS / 4], VIRTIO_MMIO_INT_VRING);
	assert_int_equal(e->set.slot[0]->mmio.interrupts, 2);
	assert_int_equal(e->set.slot[0]->mmio.coalesced, 1);
	/* An acknowledgement through the bus (another value) clears the copy too. */
	mmio_wr(e, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(regs[VIRTIO_MMIO_INTERRUPT_STATUS / 4], 0);
}

/* A GET_ID request kicked through the queue's ioeventfd and answered through the irqfd. */
static void test_devices_kick_and_irq(void **state)
{
	struct denv *e = *state;
	assert_int_equal(add_all(e), 0);
	bring_up_disk0(e);
	uint64_t hdr = tring_alloc(&e->r, 16), id = tring_alloc(&e->r, 20);
	uint64_t st = tring_alloc(&e->r, 1);
	uint32_t type = VIRTIO_BLK_T_GET_ID;
	memcpy(tring_host(&e->r, hdr, 4), &type, 4);
	tring_desc(&e->r, 0, hdr, 16, VRING_DESC_F_NEXT, 1);
	tring_desc(&e->r, 1, id, 20, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	tring_desc(&e->r, 2, st, 1, VRING_DESC_F_WRITE, 0);
	tring_publish(&e->r, 0);
	uint64_t one = 1, cnt = 0;
	assert_int_equal(write(e->kvm.io_efd[0], &one, 8), 8); /* what KVM would do */
	assert_int_equal(evloop_run_once(&e->loop, 1000), 1);
	assert_memory_equal(tring_host(&e->r, id, 20), "disk1\0\0\0", 8);
	assert_int_equal(*(uint8_t *)tring_host(&e->r, st, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(tring_used_idx(&e->r), 1);
	assert_int_equal(read(e->kvm.irq_efd[0], &cnt, 8), 8);
	assert_int_equal(cnt, 1);
	uint8_t isr[4];
	bus_read(&e->vm->mmio, LAYOUT_VIRTIO_MMIO_BASE + VIRTIO_MMIO_INTERRUPT_STATUS, isr, 4);
	assert_int_equal(isr[0], VIRTIO_MMIO_INT_VRING);

	/* The metrics count it after the device's own counters: one event, one chain used,
	 * one interrupt asked for and raised, none coalesced; the other drives saw nothing. */
	static struct metrics_snapshot snap; /* large: not on the stack */
	struct metrics m;
	assert_int_equal(metrics_start(&m, -1, &e->loop, NULL, &e->set, NULL), 0);
	metrics_snapshot_take(&m, &snap);
	assert_int_equal(snap.nr_blk, 3);
	for (unsigned i = 0; i < snap.nr_blk; i++) {
		const uint64_t *t = snap.blk[i].c + BLK_NR_COUNTERS;
		uint64_t n = strcmp(snap.blk[i].id, "disk1") == 0; /* slot 0, the root */
		const uint64_t want[METRICS_TRANSPORT_COUNTERS(1)] = {n, n, n, n, 0};
		assert_memory_equal(t, want, sizeof(want));
	}
	metrics_stop(&m);
}

/* The hang dump covers every device in the order they were added, at warning level. */
static void test_devices_log_state(void **state)
{
	struct denv *e = *state;
	assert_int_equal(add_all(e), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	log_setup(p[1], LOG_WARN, 0, 0);
	virtio_set_log_state(&e->set);
	log_setup(2, LOG_OFF, 0, 0);
	char buf[2048] = {0};
	assert_true(read(p[0], buf, sizeof(buf) - 1) > 0);
	close(p[0]);
	close(p[1]);
	const char *want[] = {"disk1 state: status=0x0", "disk1 queue 0: not ready",
			      "disk0 state: status=0x0", "disk0 queue 0: not ready",
			      "disk2 state: status=0x0", "disk2 queue 0: not ready"};
	const char *at = buf;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		at = strstr(at, want[i]);
		assert_non_null(at);
	}
	int lines = 0;
	for (const char *c = buf; *c; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 6);
}

/* A read kicked by a vCPU's QueueNotify write: the register write (under the transport
 * lock) only queues it; the disk is read from the event loop, without the lock, and the
 * completion comes back under it with the interrupt. Both engines. */
static void read_outside_lock(struct denv *e, enum io_engine engine)
{
	e->d[1].io_engine = engine;
	int fd = open(e->path[1], O_WRONLY);
	uint8_t sector[512];
	memset(sector, 0xa5, sizeof(sector));
	assert_int_equal(pwrite(fd, sector, 512, 512), 512);
	close(fd);
	assert_int_equal(add_all(e), 0);
	bring_up_disk0(e);
	uint64_t hdr = tring_alloc(&e->r, 16), buf = tring_alloc(&e->r, 512);
	uint64_t st = tring_alloc(&e->r, 1), sector_nr = 1;
	uint32_t type = VIRTIO_BLK_T_IN;
	memcpy(tring_host(&e->r, hdr, 4), &type, 4);
	memcpy(tring_host(&e->r, hdr + 8, 8), &sector_nr, 8);
	*(uint8_t *)tring_host(&e->r, st, 1) = 0xee;
	tring_desc(&e->r, 0, hdr, 16, VRING_DESC_F_NEXT, 1);
	tring_desc(&e->r, 1, buf, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	tring_desc(&e->r, 2, st, 1, VRING_DESC_F_WRITE, 0);
	tring_publish(&e->r, 0);
	mmio_wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* on the vCPU thread, under the lock */
	assert_int_equal(*(uint8_t *)tring_host(&e->r, st, 1), 0xee);
	assert_int_equal(tring_used_idx(&e->r), 0);
	assert_int_equal(virtio_blk_busy(virtio_slot_blk(e->set.slot[0])), 1);
	for (int i = 0; i < 100 && tring_used_idx(&e->r) == 0; i++)
		assert_true(evloop_run_once(&e->loop, 1000) >= 0);
	assert_int_equal(tring_used_idx(&e->r), 1);
	assert_int_equal(*(uint8_t *)tring_host(&e->r, st, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(tring_host(&e->r, buf, 512), sector, 512);
	uint64_t cnt = 0;
	assert_int_equal(read(e->kvm.irq_efd[0], &cnt, 8), 8);
	assert_int_equal(virtio_slot_blk(e->set.slot[0])->stats.reads, 1);
}

static void test_devices_read_outside_lock_sync(void **state)
{
	read_outside_lock(*state, IO_ENGINE_SYNC);
}

static void test_devices_read_outside_lock_async(void **state)
{
	read_outside_lock(*state, IO_ENGINE_ASYNC);
}

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
#define D(f) cmocka_unit_test_setup_teardown(f, denv_setup, denv_teardown)
	const struct CMUnitTest tests[] = {
	    D(test_devices_layout),
	    D(test_devices_partuuid_and_locks),
	    D(test_devices_limit),
	    D(test_devices_kick_and_irq),
	    D(test_devices_register_copy),
	    D(test_devices_ack_through_eventfd),
	    D(test_devices_log_state),
	    D(test_devices_read_outside_lock_sync),
	    D(test_devices_read_outside_lock_async),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
