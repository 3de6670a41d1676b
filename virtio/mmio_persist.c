/* The virtio-mmio transport in a snapshot: save, restore (every value checked as if a
 * driver had programmed it, since the state file is only as trustworthy as whoever could
 * write it), and what a restored device does before the vCPUs run again. */
#include "virtio/mmio.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <string.h>

#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRIVER VIRTIO_CONFIG_S_DRIVER
#define S_FEATURES_OK VIRTIO_CONFIG_S_FEATURES_OK
#define S_DRIVER_OK VIRTIO_CONFIG_S_DRIVER_OK
#define S_NEEDS_RESET VIRTIO_CONFIG_S_NEEDS_RESET
#define S_FAILED VIRTIO_CONFIG_S_FAILED
#define S_BROKEN (S_FAILED | S_NEEDS_RESET)
#define ISR_KNOWN (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)

_Static_assert(sizeof(struct virtio_mmio_state) == 128 + 40 * VIRTIO_MMIO_MAX_QUEUES,
	       "virtio_mmio_state layout");

void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&t->lock);
	virtio_mmio_sync_regs_locked(t); /* acknowledged interrupts are not pending */
	snprintf(st->name, sizeof(st->name), "%s", t->name);
	st->device_id = t->ops->device_id;
	st->nr_queues = t->ops->nr_queues;
	st->status = t->status;
	st->dev_features_sel = t->dev_features_sel;
	st->drv_features_sel = t->drv_features_sel;
	st->queue_sel = t->queue_sel;
	st->driver_features = t->driver_features;
	st->isr = t->isr;
	st->config_generation = t->config_generation;
	st->activated = t->activated;
	for (unsigned i = 0; i < t->ops->nr_queues; i++)
		virtq_save(&t->vq[i], &st->vq[i]);
	pthread_mutex_unlock(&t->lock);
}

bool virtio_state_all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* Status moves one step at a time (write_status in mmio.c): ACK, DRIVER, FEATURES_OK,
 * DRIVER_OK in order; the driver may add FAILED at any point; the device adds
 * NEEDS_RESET from FEATURES_OK on (a bad queue, a refused activation, a broken ring). */
static const char *check_status(const struct virtio_mmio_state *st)
{
	static const uint32_t steps[] = {0, S_ACK, S_ACK | S_DRIVER,
					 S_ACK | S_DRIVER | S_FEATURES_OK,
					 S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK};
	uint32_t base = st->status & ~S_BROKEN;
	bool reachable = false;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		reachable |= base == steps[i];
	if (!reachable || ((st->status & S_NEEDS_RESET) && !(base & S_FEATURES_OK)))
		return "status not reachable by a driver";
	if (st->activated > 1 || (st->activated && !(base & S_DRIVER_OK)))
		return "activated without DRIVER_OK";
	/* DRIVER_OK without activation only when the device refused it. */
	if ((base & S_DRIVER_OK) && !st->activated && !(st->status & S_NEEDS_RESET))
		return "DRIVER_OK but never activated";
	return NULL;
}

/* Everything but the queues' layouts; NULL, or why the state cannot be this device's. */
static const char *check_transport(const struct virtio_mmio *t, const struct virtio_mmio_state *st,
				   char *buf, size_t len)
{
	const struct virtio_dev_ops *ops = t->ops;
	if (!memchr(st->name, '\0', sizeof(st->name)) || strcmp(st->name, t->name)) {
		snprintf(buf, len, "the snapshot has \"%.*s\" in this slot", (int)sizeof(st->name),
			 st->name);
		return buf;
	}
	if (st->device_id != ops->device_id || st->nr_queues != ops->nr_queues) {
		snprintf(buf, len,
			 "the snapshot has device id %u with %u queues here, not %u with %u",
			 st->device_id, st->nr_queues, ops->device_id, ops->nr_queues);
		return buf;
	}
	const char *why = check_status(st);
	if (why)
		return why;
	if (st->driver_features & ~ops->features(t->dev))
		return "driver features not offered by the device";
	if ((st->status & S_FEATURES_OK) && !(st->driver_features & (1ULL << VIRTIO_F_VERSION_1)))
		return "FEATURES_OK without VERSION_1";
	if (st->queue_sel >= ops->nr_queues)
		return "QueueSel out of range";
	if (st->isr & ~ISR_KNOWN)
		return "unknown InterruptStatus bits";
	if (!virtio_state_all_zero(st->pad, sizeof(st->pad)))
		return "malformed transport state";
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		/* Queue registers are written only from FEATURES_OK on; others do not exist. */
		bool may_exist = i < ops->nr_queues && (st->status & S_FEATURES_OK);
		if (!may_exist && !virtio_state_all_zero(&st->vq[i], sizeof(st->vq[i]))) {
			snprintf(buf, len, "queue %u: programmed in status %#x", i, st->status);
			return buf;
		}
	}
	return NULL;
}

/* Fields and queues into t; 0 or -errno with the problem in err. */
static int apply(struct virtio_mmio *t, const struct virtio_mmio_state *st, char *err,
		 size_t errlen)
{
	t->status = st->status;
	t->dev_features_sel = st->dev_features_sel;
	t->drv_features_sel = st->drv_features_sel;
	t->queue_sel = st->queue_sel;
	t->driver_features = st->driver_features;
	t->isr = st->isr;
	t->config_generation = st->config_generation;
	for (unsigned i = 0; i < t->ops->nr_queues; i++) {
		const char *why = NULL;
		int ret = virtq_restore(&t->vq[i], &st->vq[i], t->gm, t->driver_features, &why);
		if (ret) {
			snprintf(err, errlen, "queue %u: %s", i, why);
			return ret;
		}
	}
	if (!st->activated || !t->ops->activate)
		goto out;
	int ret = t->ops->activate(t->dev, t->driver_features, t->vq);
	if (ret) {
		snprintf(err, errlen, "activation refused: %s", strerror(-ret));
		return ret;
	}
out:
	t->activated = st->activated;
	return 0;
}

int virtio_mmio_check_state(const struct virtio_mmio *t, const struct virtio_mmio_state *st,
			    char *err, size_t errlen)
{
	char buf[160];
	const char *why = check_transport(t, st, buf, sizeof(buf));
	if (why)
		snprintf(err, errlen, "%s", why);
	return why ? -EINVAL : 0;
}

int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *st, char *err,
			size_t errlen)
{
	if (virtio_mmio_check_state(t, st, err, errlen))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	virtio_mmio_reset_locked(t);
	int ret = apply(t, st, err, errlen);
	if (ret)
		virtio_mmio_reset_locked(t);
	virtio_mmio_sync_regs_locked(t);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void virtio_mmio_after_restore(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	/* A broken device's NEEDS_RESET interrupt counts too: the guest must see it. */
	if ((t->status & S_DRIVER_OK) && t->isr && t->irq.raise) {
		int err = t->irq.raise(t->irq.ctx);
		if (err)
			log_err("%s: cannot interrupt the guest: %s", t->name, strerror(-err));
	}
	if (!t->activated || (t->status & S_BROKEN))
		goto out;
	for (unsigned q = 0; q < t->ops->nr_queues; q++)
		if (t->vq[q].ready && t->requeue.kick)
			t->requeue.kick(t->requeue.ctx, q);
out:
	pthread_mutex_unlock(&t->lock);
}
