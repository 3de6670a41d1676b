#include "virtio/mmio.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_INTERVAL_NS 1000000000ULL

#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRIVER VIRTIO_CONFIG_S_DRIVER
#define S_FEATURES_OK VIRTIO_CONFIG_S_FEATURES_OK
#define S_DRIVER_OK VIRTIO_CONFIG_S_DRIVER_OK
#define S_NEEDS_RESET VIRTIO_CONFIG_S_NEEDS_RESET
#define S_FAILED VIRTIO_CONFIG_S_FAILED
#define S_BROKEN (S_FAILED | S_NEEDS_RESET)

int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
		     const struct guest_mem *gm, const struct virtio_irq *irq, const char *name)
{
	memset(t, 0, sizeof(*t));
	if (!ops->nr_queues || ops->nr_queues > VIRTIO_MMIO_MAX_QUEUES || !ops->queue_max_size ||
	    ops->queue_max_size > VIRTQ_MAX_SIZE ||
	    ops->config_size > VIRTIO_MMIO_WINDOW - VIRTIO_MMIO_CONFIG || !ops->features ||
	    !ops->queue_notify || !(ops->features(dev) & (1ULL << VIRTIO_F_VERSION_1)))
		return -EINVAL;
	int err = pthread_mutex_init(&t->lock, NULL);
	if (err)
		return -err;
	t->ops = ops;
	t->dev = dev;
	t->gm = gm;
	t->irq = *irq;
	t->ack_fd = -1;
	snprintf(t->name, sizeof(t->name), "%s", name);
	for (unsigned i = 0; i < ops->nr_queues; i++)
		t->vq[i].max_size = ops->queue_max_size;
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	if (t->ops)
		pthread_mutex_destroy(&t->lock);
	t->ops = NULL;
}

static void regs_refresh(struct virtio_mmio *t);

/* One word of the guest's read-only copy: a single aligned store, so a vCPU reading it
 * concurrently sees the old value or the new one. */
static void regs_store(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	if (t->regs)
		__atomic_store_n(&t->regs[off / 4], v, __ATOMIC_RELEASE);
}

static void set_isr(struct virtio_mmio *t, uint32_t v)
{
	t->isr = v;
	regs_store(t, VIRTIO_MMIO_INTERRUPT_STATUS, v);
}

/* Applies the acknowledgements KVM counted on ack_fd. KVM signals it before the writing
 * vCPU goes on, so an acknowledgement not seen here comes after this point, and the
 * driver's walk of the used rings after it will see whatever was used before. Only the
 * event loop's thread calls it (vCPU threads may not read()): a late acknowledgement can
 * only clear a bit already seen, since each VRING interrupt applies them before setting
 * its bit, and a guest reads InterruptStatus when interrupted. */
static void take_acks(struct virtio_mmio *t)
{
	uint64_t n;
	if (t->ack_fd >= 0 && read(t->ack_fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		set_isr(t, t->isr & ~(uint32_t)VIRTIO_MMIO_INT_VRING);
}

/* Sets `why` in InterruptStatus and interrupts the guest if that bit was clear. While it is
 * still set the driver has not acknowledged the last interrupt, and its handler (read the
 * status, acknowledge it, then walk the queues) will find what was just used: another edge
 * would only cost it an interrupt with nothing new, and three exits. QEMU's transport, whose
 * line follows InterruptStatus != 0, coalesces the same way. */
static void raise_irq(struct virtio_mmio *t, uint32_t why)
{
	if ((t->isr & why) == why && why == VIRTIO_MMIO_INT_VRING)
		take_acks(t);
	if ((t->isr & why) == why) {
		t->coalesced++;
		return;
	}
	set_isr(t, t->isr | why);
	t->interrupts++;
	int err = t->irq.raise ? t->irq.raise(t->irq.ctx) : 0;
	if (err && log_ratelimit_ok(&t->rl, LOG_INTERVAL_NS))
		log_err("%s: cannot interrupt the guest: %s", t->name, strerror(-err));
}

/* The driver broke the device: stop processing until it resets us (virtio 1.x 2.1.2). */
static void needs_reset(struct virtio_mmio *t, const char *what, int err)
{
	if (log_ratelimit_ok(&t->rl, LOG_INTERVAL_NS))
		log_warn("%s: %s: %s; device needs reset", t->name, what, virtq_strerror(err));
	if (t->status & S_NEEDS_RESET)
		return;
	t->status |= S_NEEDS_RESET;
	regs_store(t, VIRTIO_MMIO_STATUS, t->status);
	if (t->status & S_DRIVER_OK)
		raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

/* A harmless driver mistake: ignored, logged at most once a second. */
__attribute__((format(printf, 2, 3))) static void guest_error(struct virtio_mmio *t,
							      const char *fmt, ...)
{
	if (!log_ratelimit_ok(&t->rl, LOG_INTERVAL_NS))
		return;
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("%s: %s (ignored)", t->name, msg);
}

static bool live(const struct virtio_mmio *t)
{
	return t->activated && !(t->status & S_BROKEN);
}

static void reset(struct virtio_mmio *t)
{
	if (t->ops->reset)
		t->ops->reset(t->dev);
	for (unsigned i = 0; i < t->ops->nr_queues; i++)
		virtq_reset(&t->vq[i]);
	t->status = 0;
	t->dev_features_sel = t->drv_features_sel = t->queue_sel = 0;
	t->driver_features = 0;
	set_isr(t, 0);
	t->activated = false;
}

void virtio_mmio_reset_locked(struct virtio_mmio *t)
{
	reset(t);
	regs_refresh(t);
}

static void activate(struct virtio_mmio *t)
{
	int err = t->ops->activate ? t->ops->activate(t->dev, t->driver_features, t->vq) : 0;
	if (err) {
		needs_reset(t, "activation refused", err);
		return;
	}
	t->activated = true;
}

/* FEATURES_OK is only accepted for a subset of what was offered that includes VERSION_1. */
static bool features_ok(const struct virtio_mmio *t)
{
	uint64_t offered = t->ops->features(t->dev);
	uint64_t f = t->driver_features;
	return (f & (1ULL << VIRTIO_F_VERSION_1)) && !(f & ~offered);
}

/* Status only moves one step forward (virtio 1.x 3.1.1); 0 resets; FAILED sticks. */
static void write_status(struct virtio_mmio *t, uint32_t v)
{
	uint32_t cur = t->status;
	if (v == 0) {
		reset(t);
	} else if (v & S_FAILED) {
		t->status |= S_FAILED;
	} else if ((cur == 0 && v == S_ACK) || (cur == S_ACK && v == (S_ACK | S_DRIVER))) {
		t->status = v;
	} else if (cur == (S_ACK | S_DRIVER) && v == (cur | S_FEATURES_OK)) {
		if (features_ok(t))
			t->status = v;
		else
			guest_error(t, "driver features %#llx: not offered or without VERSION_1",
				    (unsigned long long)t->driver_features);
	} else if (cur == (S_ACK | S_DRIVER | S_FEATURES_OK) && v == (cur | S_DRIVER_OK)) {
		t->status = v;
		activate(t);
	} else {
		guest_error(t, "status %#x -> %#x is not a valid transition", cur, v);
	}
}

static uint32_t read_device_features(const struct virtio_mmio *t)
{
	uint64_t f = t->ops->features(t->dev);
	if (t->dev_features_sel > 1)
		return 0;
	return (uint32_t)(f >> (32 * t->dev_features_sel));
}

static void write_driver_features(struct virtio_mmio *t, uint32_t v)
{
	if ((t->status & (S_DRIVER | S_FEATURES_OK | S_BROKEN)) != S_DRIVER) {
		guest_error(t, "DriverFeatures written in status %#x", t->status);
		return;
	}
	if (t->drv_features_sel > 1)
		return;
	unsigned shift = 32 * t->drv_features_sel;
	t->driver_features &= ~(0xffffffffULL << shift);
	t->driver_features |= (uint64_t)v << shift;
}

static struct virtq *selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->ops->nr_queues ? &t->vq[t->queue_sel] : NULL;
}

/* What a 4-byte read of register `off` returns; *known false for an offset with nothing to
 * read (then 0). */
static uint32_t reg_value(struct virtio_mmio *t, uint64_t off, bool *known)
{
	struct virtq *q = selected_queue(t);
	*known = true;
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return read_device_features(t);
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? q->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->isr;
	case VIRTIO_MMIO_STATUS:
		return t->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_generation;
	default:
		*known = false;
		return 0;
	}
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
	bool known;
	uint32_t v = reg_value(t, off, &known);
	if (!known)
		guest_error(t, "read of unknown register %#x", (unsigned)off);
	return v;
}

/* Rewrites the guest's copy of the window from the registers and the config space, the
 * config first and ConfigGeneration with the registers after it. Past config_size the copy
 * stays as mapped: zero. A driver reading the config while it changes could still see it
 * torn under the same generation, but a config change (PATCH /drives) interrupts the
 * driver only once the copy is complete. */
static void regs_refresh(struct virtio_mmio *t)
{
	if (!t->regs)
		return;
	for (uint32_t off = 0; t->ops->config_read && off < t->ops->config_size; off += 4) {
		uint8_t w[4] = {0};
		for (uint32_t i = 0; i < 4 && off + i < t->ops->config_size; i++)
			t->ops->config_read(t->dev, off + i, &w[i], 1);
		uint32_t v;
		memcpy(&v, w, 4);
		regs_store(t, VIRTIO_MMIO_CONFIG + off, v);
	}
	for (uint64_t off = 0; off < VIRTIO_MMIO_CONFIG; off += 4) {
		bool known;
		regs_store(t, off, reg_value(t, off, &known));
	}
}

void virtio_mmio_set_fast_regs(struct virtio_mmio *t, uint32_t *regs, int ack_fd)
{
	pthread_mutex_lock(&t->lock);
	t->regs = regs;
	t->ack_fd = ack_fd;
	regs_refresh(t);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_sync_regs_locked(struct virtio_mmio *t)
{
	take_acks(t);
	regs_refresh(t);
}

void virtio_mmio_set_requeue(struct virtio_mmio *t, const struct virtio_requeue *r)
{
	pthread_mutex_lock(&t->lock);
	t->requeue = *r;
	pthread_mutex_unlock(&t->lock);
}

/* After a device callback: queues it left at its budget go back to the event loop. */
static void requeue_spent(struct virtio_mmio *t)
{
	for (unsigned q = 0; q < t->ops->nr_queues; q++) {
		if (!t->vq[q].requeue)
			continue;
		t->vq[q].requeue = false;
		t->requeues++;
		if (t->requeue.kick)
			t->requeue.kick(t->requeue.ctx, q);
	}
}

static void process_queue(struct virtio_mmio *t, uint32_t idx)
{
	if (idx < t->ops->nr_queues)
		t->vq[idx].counts.events++;
	if (!live(t) || idx >= t->ops->nr_queues || !t->vq[idx].ready)
		return;
	bool need_irq = false;
	int err = t->ops->queue_notify(t->dev, &t->vq[idx], idx, &need_irq);
	requeue_spent(t);
	/* Requests completed before an error still get their interrupt. */
	if (need_irq)
		raise_irq(t, VIRTIO_MMIO_INT_VRING);
	if (err) {
		char what[32];
		snprintf(what, sizeof(what), "queue %u", idx);
		needs_reset(t, what, err);
	}
}

static void set_ready(struct virtio_mmio *t, struct virtq *q, uint32_t v)
{
	if (v != 1) {
		q->ready = false;
		return;
	}
	if (q->ready)
		return;
	int err = virtq_setup(q, t->gm, t->driver_features);
	if (err) {
		char what[32];
		snprintf(what, sizeof(what), "queue %u", t->queue_sel);
		needs_reset(t, what, err);
	}
}

static void set_low(uint64_t *r, uint32_t v)
{
	*r = (*r & ~0xffffffffULL) | v;
}

static void set_high(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffffULL) | (uint64_t)v << 32;
}

/* Queue registers: only between FEATURES_OK and DRIVER_OK, and (but for QueueReady) only
 * while the selected queue is not ready (virtio 1.x 4.2.2.2). */
static void write_queue_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtq *q = selected_queue(t);
	if ((t->status & (S_FEATURES_OK | S_DRIVER_OK | S_BROKEN)) != S_FEATURES_OK || !q) {
		guest_error(t, "queue register %#x written in status %#x (QueueSel %u)",
			    (unsigned)off, t->status, t->queue_sel);
		return;
	}
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		set_ready(t, q, v);
		return;
	}
	if (q->ready) {
		guest_error(t, "queue register %#x written while queue %u is ready", (unsigned)off,
			    t->queue_sel);
		return;
	}
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		q->num = v;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		set_low(&q->desc_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_high(&q->desc_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		set_low(&q->avail_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		set_high(&q->avail_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
		set_low(&q->used_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		set_high(&q->used_gpa, v);
		break;
	}
}

static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		write_driver_features(t, v);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_features_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		write_queue_reg(t, off, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		process_queue(t, v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		set_isr(t, t->isr & ~v);
		break;
	case VIRTIO_MMIO_STATUS:
		write_status(t, v);
		break;
	default:
		guest_error(t, "write of unknown register %#x (value %#x)", (unsigned)off, v);
	}
}

/* Config space: naturally aligned 1/2/4/8-byte accesses inside config_size. */
static bool config_access_ok(const struct virtio_mmio *t, uint64_t off, uint32_t len)
{
	if (off < VIRTIO_MMIO_CONFIG)
		return false;
	off -= VIRTIO_MMIO_CONFIG;
	bool width_ok = len == 1 || len == 2 || len == 4 || len == 8;
	return width_ok && off % len == 0 && off < t->ops->config_size &&
	       len <= t->ops->config_size - off;
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (off < VIRTIO_MMIO_CONFIG && len == 4 && off % 4 == 0) {
		uint32_t v = read_reg(t, off);
		memcpy(data, &v, 4);
	} else if (config_access_ok(t, off, len) && t->ops->config_read) {
		t->ops->config_read(t->dev, off - VIRTIO_MMIO_CONFIG, data, len);
	} else {
		guest_error(t, "bad read at offset %#x, %u bytes", (unsigned)off, len);
	}
	pthread_mutex_unlock(&t->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	pthread_mutex_lock(&t->lock);
	if (off < VIRTIO_MMIO_CONFIG && len == 4 && off % 4 == 0) {
		uint32_t v;
		memcpy(&v, data, 4);
		write_reg(t, off, v);
	} else if (config_access_ok(t, off, len) && t->ops->config_write &&
		   (t->status & (S_DRIVER | S_BROKEN)) == S_DRIVER) {
		t->ops->config_write(t->dev, off - VIRTIO_MMIO_CONFIG, data, len);
	} else {
		guest_error(t, "bad write at offset %#x, %u bytes", (unsigned)off, len);
	}
	regs_refresh(t);
	pthread_mutex_unlock(&t->lock);
}

const struct bus_dev_ops virtio_mmio_bus_ops = {.read = mmio_read, .write = mmio_write};

void virtio_mmio_notify(struct virtio_mmio *t, unsigned queue)
{
	pthread_mutex_lock(&t->lock);
	process_queue(t, queue);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_run(struct virtio_mmio *t, virtio_work_fn fn, void *arg)
{
	pthread_mutex_lock(&t->lock);
	bool is_live = live(t), need_irq = false;
	int err = fn(t->dev, is_live ? t->vq : NULL, arg, &need_irq);
	if (is_live)
		requeue_spent(t);
	if (is_live && need_irq)
		raise_irq(t, VIRTIO_MMIO_INT_VRING);
	if (is_live && err)
		needs_reset(t, "device work", err);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_interrupt_locked(struct virtio_mmio *t)
{
	if (live(t))
		raise_irq(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	t->config_generation++;
	regs_refresh(t);
	if (t->status & S_DRIVER_OK)
		raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_log_state(struct virtio_mmio *t, enum log_level lvl)
{
	pthread_mutex_lock(&t->lock);
	take_acks(t);
	log_msg(lvl, __FILE__, __LINE__,
		"%s state: status=0x%x interrupt_status=0x%x activated=%d features=0x%llx "
		"interrupts=%llu coalesced=%llu",
		t->name, t->status, t->isr, t->activated, (unsigned long long)t->driver_features,
		(unsigned long long)t->interrupts, (unsigned long long)t->coalesced);
	for (unsigned i = 0; i < t->ops->nr_queues; i++) {
		char line[200];
		if (virtq_format_state(&t->vq[i], line, sizeof(line)) < 0)
			continue; /* cannot happen: the widest line fits */
		log_msg(lvl, __FILE__, __LINE__, "%s queue %u: %s", t->name, i, line);
	}
	pthread_mutex_unlock(&t->lock);
}
