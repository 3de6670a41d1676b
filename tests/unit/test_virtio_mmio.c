#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/virtio_test_ring.h"
#include "virtio/mmio.h"
#include "vmm/layout.h"
#include "vmm/log.h"

#define RAM (1ULL << 20)
#define QSIZE 16
#define F_V1 (1ULL << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ULL << VIRTIO_RING_F_EVENT_IDX)
#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRV VIRTIO_CONFIG_S_DRIVER
#define S_FOK VIRTIO_CONFIG_S_FEATURES_OK
#define S_DOK VIRTIO_CONFIG_S_DRIVER_OK
#define S_NEEDS_RESET VIRTIO_CONFIG_S_NEEDS_RESET

/* A device model that records what the transport asks of it. */
struct fake_dev {
	uint8_t config[8];
	int activations, resets, notifies, works;
	bool work_saw_queues;
	unsigned last_queue;
	int notify_ret, activate_ret;
	bool spend_budget; /* notify leaves its queue at the budget */
	unsigned kicked[4];
};

struct env {
	struct tring r; /* guest memory and a ring layout for queue 1 */
	struct fake_dev dev;
	struct virtio_mmio t;
	int irqs;
};

static uint64_t fake_features(const void *dev)
{
	(void)dev;
	return F_V1 | F_EVENT_IDX | 1ULL << 3;
}

static void fake_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, ((struct fake_dev *)dev)->config + off, len);
}

static void fake_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	memcpy(((struct fake_dev *)dev)->config + off, data, len);
}

static int fake_activate(void *dev, uint64_t features, struct virtq *vq)
{
	struct fake_dev *f = dev;
	(void)features;
	(void)vq;
	f->activations++;
	return f->activate_ret;
}

static void fake_reset(void *dev)
{
	((struct fake_dev *)dev)->resets++;
}

static int fake_notify(void *dev, struct virtq *vq, unsigned idx, bool *need_irq)
{
	struct fake_dev *f = dev;
	(void)vq;
	f->notifies++;
	f->last_queue = idx;
	*need_irq = true;
	if (f->spend_budget)
		virtq_requeue(vq);
	return f->notify_ret;
}

static int fake_work(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	struct fake_dev *f = dev;
	f->works++;
	f->work_saw_queues = vq != NULL;
	*need_irq = true;
	return *(int *)arg;
}

static const struct virtio_dev_ops fake_ops = {
    .name = "fake",
    .device_id = 42,
    .nr_queues = 2,
    .queue_max_size = QSIZE,
    .config_size = 8,
    .features = fake_features,
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .activate = fake_activate,
    .reset = fake_reset,
    .queue_notify = fake_notify,
};

static int count_irq(void *ctx)
{
	((struct env *)ctx)->irqs++;
	return 0;
}

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	tring_layout(&e->r, RAM, QSIZE);
	memcpy(e->dev.config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	struct virtio_irq irq = {.raise = count_irq, .ctx = e};
	assert_int_equal(virtio_mmio_init(&e->t, &fake_ops, &e->dev, &e->r.gm, &irq, "fake 0"), 0);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;
	virtio_mmio_destroy(&e->t);
	tring_free(&e->r);
	free(e);
	return 0;
}

static uint64_t rd_n(struct env *e, uint64_t off, uint32_t len)
{
	uint8_t buf[8];
	uint64_t v = 0;
	virtio_mmio_bus_ops.read(&e->t, off, buf, len);
	memcpy(&v, buf, len);
	return v;
}

static void wr_n(struct env *e, uint64_t off, uint64_t v, uint32_t len)
{
	uint8_t buf[8];
	memcpy(buf, &v, len);
	virtio_mmio_bus_ops.write(&e->t, off, buf, len);
}

#define rd(e, off) ((uint32_t)rd_n(e, off, 4))
#define wr(e, off, v) wr_n(e, off, v, 4)

static void write_features(struct env *e, uint64_t f)
{
	wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(e, VIRTIO_MMIO_DRIVER_FEATURES, f >> 32);
}

/* ACKNOWLEDGE, DRIVER, features, FEATURES_OK: returns the status read back. */
static uint32_t negotiate(struct env *e, uint64_t f)
{
	wr(e, VIRTIO_MMIO_STATUS, S_ACK);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	write_features(e, f);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK);
	return rd(e, VIRTIO_MMIO_STATUS);
}

static void program_queue(struct env *e, uint32_t q, uint32_t num, uint64_t desc, uint64_t avail,
			  uint64_t used)
{
	wr(e, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(e, VIRTIO_MMIO_QUEUE_NUM, num);
	wr(e, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(e, VIRTIO_MMIO_QUEUE_DESC_HIGH, desc >> 32);
	wr(e, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	wr(e, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, avail >> 32);
	wr(e, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	wr(e, VIRTIO_MMIO_QUEUE_USED_HIGH, used >> 32);
	wr(e, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* The whole driver bring-up with queue 1 on the ring layout; DRIVER_OK last. */
static void bring_up(struct env *e)
{
	int activations = e->dev.activations;
	assert_int_equal(negotiate(e, F_V1 | F_EVENT_IDX), S_ACK | S_DRV | S_FOK);
	program_queue(e, 1, QSIZE, e->r.desc_gpa, e->r.avail_gpa, e->r.used_gpa);
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
	assert_int_equal(e->dev.activations, activations + 1);
}

static void test_identity_registers(void **state)
{
	struct env *e = *state;
	assert_int_equal(rd(e, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(e, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_ID), 42);
	assert_int_equal(rd(e, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)fake_features(NULL));
	wr(e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 is bit 32 */
	wr(e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr(e, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_NUM_MAX), QSIZE);
	wr(e, VIRTIO_MMIO_QUEUE_SEL, 2); /* no such queue */
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd(e, 0x0b0), 0); /* unknown register */
}

static void test_status_transitions(void **state)
{
	struct env *e = *state;
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV); /* skips ACKNOWLEDGE */
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), 0);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK); /* skips two steps */
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_ACK);
	wr(e, VIRTIO_MMIO_STATUS, S_DRV); /* clears ACKNOWLEDGE */
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_ACK);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_DOK); /* DRIVER_OK before FEATURES_OK */
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_ACK | S_DRV);
	assert_int_equal(e->dev.activations, 0);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_ACK | S_DRV | VIRTIO_CONFIG_S_FAILED);
	write_features(e, F_V1);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK); /* FAILED sticks */
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS) & S_FOK, 0);
	wr(e, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(e->dev.resets, 1);
}

static void test_feature_negotiation(void **state)
{
	struct env *e = *state;
	/* Features written before DRIVER are ignored, so FEATURES_OK is refused. */
	write_features(e, F_V1);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK);
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_ACK | S_DRV);
	wr(e, VIRTIO_MMIO_STATUS, 0);
	/* Without VERSION_1 (a legacy driver), or with bits never offered. */
	assert_int_equal(negotiate(e, F_EVENT_IDX), S_ACK | S_DRV);
	wr(e, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(e, F_V1 | 1ULL << 5), S_ACK | S_DRV);
	wr(e, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(e, F_V1 | 1ULL << 3), S_ACK | S_DRV | S_FOK);
	/* After FEATURES_OK the features are frozen. */
	write_features(e, F_V1 | F_EVENT_IDX);
	assert_int_equal(e->t.driver_features, F_V1 | 1ULL << 3);
}

static void test_queue_register_states(void **state)
{
	struct env *e = *state;
	/* Before FEATURES_OK: ignored. */
	wr(e, VIRTIO_MMIO_STATUS, S_ACK);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	program_queue(e, 1, QSIZE, e->r.desc_gpa, e->r.avail_gpa, e->r.used_gpa);
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(e->t.vq[1].num, 0);
	wr(e, VIRTIO_MMIO_STATUS, 0);
	bring_up(e);
	/* After DRIVER_OK: ignored, and so are writes to a ready queue. */
	wr(e, VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(e, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(e->t.vq[1].num, QSIZE);
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(e, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(e, F_V1), S_ACK | S_DRV | S_FOK);
	program_queue(e, 1, QSIZE, e->r.desc_gpa, e->r.avail_gpa, e->r.used_gpa);
	wr(e, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x8000);
	assert_int_equal(e->t.vq[1].desc_gpa, e->r.desc_gpa);
}

/* A bad ring is caught at QueueReady: the queue stays unready, the device needs reset. */
static void check_bad_queue(struct env *e, uint32_t num, uint64_t desc, uint64_t avail,
			    uint64_t used)
{
	wr(e, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(e, F_V1 | F_EVENT_IDX), S_ACK | S_DRV | S_FOK);
	program_queue(e, 0, num, desc, avail, used);
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(e, VIRTIO_MMIO_STATUS) & S_NEEDS_RESET);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	assert_int_equal(e->dev.activations, 0);
}

static void test_bad_queue_addresses(void **state)
{
	struct env *e = *state;
	uint64_t d = e->r.desc_gpa, a = e->r.avail_gpa, u = e->r.used_gpa;
	check_bad_queue(e, QSIZE, d + 4, a, u);
	check_bad_queue(e, QSIZE, d, a + 1, u);
	check_bad_queue(e, QSIZE, d, a, u + 2);
	check_bad_queue(e, QSIZE, RAM - 64, a, u);
	check_bad_queue(e, QSIZE, d, a, 0xfffffffffffffff0ULL);
	check_bad_queue(e, QSIZE, d, LAYOUT_MMIO_GAP_START, u);
	check_bad_queue(e, 12, d, a, u);
	check_bad_queue(e, QSIZE * 2, d, a, u);
	check_bad_queue(e, 0, d, a, u);
}

static void test_notify_and_interrupts(void **state)
{
	struct env *e = *state;
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 1); /* before DRIVER_OK: dropped */
	assert_int_equal(e->dev.notifies, 0);
	bring_up(e);
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* queue 0 is not ready */
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 9); /* no such queue */
	assert_int_equal(e->dev.notifies, 0);
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(e->dev.notifies, 1);
	assert_int_equal(e->dev.last_queue, 1);
	assert_int_equal(e->irqs, 1);
	assert_int_equal(rd(e, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(e, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(e, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	virtio_mmio_notify(&e->t, 1); /* the ioeventfd path */
	assert_int_equal(e->dev.notifies, 2);
	/* Every notification of an existing queue counts as its event, served or not. */
	assert_int_equal(e->t.vq[0].counts.events, 1);
	assert_int_equal(e->t.vq[1].counts.events, 3);
	virtio_mmio_config_changed(&e->t);
	assert_int_equal(rd(e, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	assert_int_equal(rd(e, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
}

/* A reason the driver has not acknowledged yet interrupts only once; a new reason, or the same
 * one after the acknowledgement, interrupts again. */
static void test_interrupts_coalesce_until_acked(void **state)
{
	struct env *e = *state;
	bring_up(e);
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	virtio_mmio_notify(&e->t, 1);
	assert_int_equal(e->dev.notifies, 2);
	assert_int_equal(e->irqs, 1);
	assert_int_equal(e->t.coalesced, 1);
	virtio_mmio_config_changed(&e->t); /* CONFIG is new: interrupts */
	assert_int_equal(e->irqs, 2);
	assert_int_equal(rd(e, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	wr(e, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG); /* VRING still pending */
	virtio_mmio_notify(&e->t, 1);
	assert_int_equal(e->irqs, 2);
	wr(e, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	virtio_mmio_notify(&e->t, 1);
	assert_int_equal(e->irqs, 3);
	assert_int_equal(e->t.interrupts, 3);
	assert_int_equal(e->t.coalesced, 2);
}

static void fake_kick(void *ctx, unsigned queue)
{
	((struct fake_dev *)ctx)->kicked[queue]++;
}

/* A device that stops at its budget has its queue run again through the requeue hook,
 * once per callback; without a hook the flag is still cleared. */
static void test_budget_requeue(void **state)
{
	struct env *e = *state;
	bring_up(e);
	e->dev.spend_budget = true;
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(e->t.requeues, 1);
	assert_false(e->t.vq[1].requeue);
	virtio_mmio_set_requeue(&e->t, &(struct virtio_requeue){.kick = fake_kick, .ctx = &e->dev});
	virtio_mmio_notify(&e->t, 1);
	assert_int_equal(e->dev.kicked[1], 1);
	assert_int_equal(e->dev.kicked[0], 0);
	e->dev.spend_budget = false;
	virtio_mmio_notify(&e->t, 1);
	assert_int_equal(e->dev.kicked[1], 1);
	assert_int_equal(e->t.requeues, 2);
}

static void test_queue_error_needs_reset(void **state)
{
	struct env *e = *state;
	bring_up(e);
	e->dev.notify_ret = -ELOOP;
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_true(rd(e, VIRTIO_MMIO_STATUS) & S_NEEDS_RESET);
	assert_true(rd(e, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 1); /* a broken device processes nothing */
	assert_int_equal(e->dev.notifies, 1);
	/* Reset brings it back to a blank device. */
	wr(e, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(e, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	wr(e, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_NUM_MAX), QSIZE);
	e->dev.notify_ret = 0;
	bring_up(e);
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(e->dev.notifies, 2);
}

static void test_activation_refused(void **state)
{
	struct env *e = *state;
	e->dev.activate_ret = -EINVAL;
	assert_int_equal(negotiate(e, F_V1), S_ACK | S_DRV | S_FOK);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	assert_true(rd(e, VIRTIO_MMIO_STATUS) & S_NEEDS_RESET);
	assert_int_equal(e->irqs, 1); /* config change notification */
}

static void test_config_space_access(void **state)
{
	struct env *e = *state;
	uint64_t cfg = VIRTIO_MMIO_CONFIG;
	assert_int_equal(rd_n(e, cfg, 1), 0x01);
	assert_int_equal(rd_n(e, cfg + 2, 2), 0x0403);
	assert_int_equal(rd_n(e, cfg + 4, 4), 0x08070605);
	assert_int_equal(rd_n(e, cfg, 8), 0x0807060504030201ULL);
	assert_int_equal(rd_n(e, cfg + 1, 2), 0); /* misaligned */
	assert_int_equal(rd_n(e, cfg + 4, 8), 0); /* runs past config_size */
	assert_int_equal(rd_n(e, cfg + 8, 1), 0);
	assert_int_equal(rd_n(e, 0xffc, 4), 0);
	/* Writes only once the driver is loaded. */
	wr_n(e, cfg, 0xaa, 1);
	assert_int_equal(e->dev.config[0], 0x01);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK);
	wr(e, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	wr_n(e, cfg, 0xaa, 1);
	wr_n(e, cfg + 6, 0xbbcc, 2);
	wr_n(e, cfg + 7, 0xdd, 2); /* misaligned: dropped */
	assert_memory_equal(e->dev.config, "\xaa\x02\x03\x04\x05\x06\xcc\xbb", 8);
}

static void test_register_widths(void **state)
{
	struct env *e = *state;
	assert_int_equal(rd_n(e, VIRTIO_MMIO_MAGIC_VALUE, 2), 0);
	assert_int_equal(rd_n(e, VIRTIO_MMIO_MAGIC_VALUE, 8), 0);
	assert_int_equal(rd_n(e, VIRTIO_MMIO_MAGIC_VALUE + 1, 4), 0);
	wr_n(e, VIRTIO_MMIO_STATUS, S_ACK, 1);
	wr_n(e, VIRTIO_MMIO_STATUS, S_ACK, 8);
	wr_n(e, VIRTIO_MMIO_STATUS + 2, S_ACK, 4);
	assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), 0);
}

/* virtio_mmio_run(): device-initiated work, serialized like a queue notification. */
static void test_device_work(void **state)
{
	struct env *e = *state;
	int ret = 0;
	virtio_mmio_run(&e->t, fake_work, &ret); /* not live: no queues, no interrupt */
	assert_int_equal(e->dev.works, 1);
	assert_false(e->dev.work_saw_queues);
	assert_int_equal(e->irqs, 0);
	bring_up(e);
	virtio_mmio_run(&e->t, fake_work, &ret);
	assert_true(e->dev.work_saw_queues);
	assert_int_equal(e->irqs, 1);
	ret = -EINVAL;
	virtio_mmio_run(&e->t, fake_work, &ret);
	assert_true(rd(e, VIRTIO_MMIO_STATUS) & S_NEEDS_RESET);
	virtio_mmio_run(&e->t, fake_work, &ret); /* broken: not live any more */
	assert_false(e->dev.work_saw_queues);
}

/* The hang dump: the transport's line, then one line per queue (ready or not). */
static void test_log_state(void **state)
{
	struct env *e = *state;
	bring_up(e);
	wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	int p[2];
	assert_int_equal(pipe(p), 0);
	log_setup(p[1], LOG_WARN, 0, 0);
	virtio_mmio_log_state(&e->t, LOG_WARN);
	log_setup(2, LOG_OFF, 0, 0);
	char buf[1024] = {0};
	assert_true(read(p[0], buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf,
			    "kiln: fake 0 state: status=0xf interrupt_status=0x1 activated=1 "
			    "features=0x120000000 interrupts=1 coalesced=0\n"
			    "kiln: fake 0 queue 0: not ready\n"
			    "kiln: fake 0 queue 1: size=16 avail_idx=0 last_avail=0 used_idx=0 "
			    "device_used_idx=0 inflight=0 avail_flags=0x0 used_flags=0x0 "
			    "used_event=0 avail_event=0\n");
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_identity_registers),
	    T(test_status_transitions),
	    T(test_feature_negotiation),
	    T(test_queue_register_states),
	    T(test_bad_queue_addresses),
	    T(test_notify_and_interrupts),
	    T(test_interrupts_coalesce_until_acked),
	    T(test_budget_requeue),
	    T(test_queue_error_needs_reset),
	    T(test_activation_refused),
	    T(test_config_space_access),
	    T(test_register_widths),
	    T(test_device_work),
	    T(test_log_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
