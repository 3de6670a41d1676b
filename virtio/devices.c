#include "virtio/devices.h"

#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_mmio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "virtio/persist.h"
#include "vmm/metrics.h"

static int kvm_ioeventfd(void *ctx, int efd, uint64_t gpa, uint32_t datamatch)
{
	struct vm *vm = ctx;
	struct kvm_ioeventfd io = {.datamatch = datamatch,
				   .addr = gpa,
				   .len = 4,
				   .fd = efd,
				   .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int kvm_irqfd(void *ctx, int efd, uint32_t gsi)
{
	struct vm *vm = ctx;
	struct kvm_irqfd irq = {.fd = efd, .gsi = gsi};
	return ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

static int kvm_map_readonly(void *ctx, uint64_t gpa, void *host, uint64_t size)
{
	return vm_map_readonly(ctx, gpa, host, size);
}

void virtio_set_init(struct virtio_set *set, const struct virtio_kvm_ops *kvm)
{
	memset(set, 0, sizeof(*set));
	set->root_blk = -1;
	set->real_kvm = !kvm;
	if (kvm)
		set->kvm = *kvm;
	else
		set->kvm = (struct virtio_kvm_ops){.ioeventfd = kvm_ioeventfd,
						   .irqfd = kvm_irqfd,
						   .map_readonly = kvm_map_readonly};
}

static int raise_irqfd(void *ctx)
{
	struct virtio_slot *s = ctx;
	uint64_t one = 1;
	/* EAGAIN only if the counter is saturated: an interrupt is pending anyway. */
	if (write(s->irq_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

static void on_kick(void *ctx, uint32_t events)
{
	struct virtio_kick *k = ctx;
	uint64_t cnt;
	(void)events;
	ssize_t rc = read(k->src.fd, &cnt, sizeof(cnt)); /* EAGAIN: someone drained it */
	(void)rc;
	virtio_mmio_notify(k->transport, k->queue);
}

/* A block device's disk I/O: claimed under the transport lock, carried out (Sync) or
 * submitted and reaped (Async) without it, completed under it again. */
static void on_blk_io(void *ctx, uint32_t events)
{
	struct virtio_slot *s = ctx;
	uint64_t cnt;
	(void)events;
	ssize_t rc = read(virtio_slot_blk(s)->io_efd, &cnt, sizeof(cnt));
	(void)rc;
	virtio_mmio_run(&s->mmio, virtio_blk_claim, NULL);
	virtio_blk_io(s->dev, false);
	virtio_mmio_run(&s->mmio, virtio_blk_complete, NULL);
}

static void on_limiter_timer(void *ctx, uint32_t events)
{
	struct virtio_slot *s = ctx;
	(void)events;
	virtio_mmio_run(&s->mmio, virtio_blk_resume, NULL);
}

/* ---- the set ---------------------------------------------------------------------------- */

static void slot_free(struct virtio_slot *s, struct evloop *loop)
{
	if (s->limiter_watched)
		evloop_del(loop, &s->limiter_src);
	if (s->io_watched)
		evloop_del(loop, &s->io_src);
	for (unsigned i = 0; i < s->nr_kicks; i++)
		evloop_del(loop, &s->kick[i].src);
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		if (s->kick[i].src.fd >= 0)
			close(s->kick[i].src.fd);
	if (s->irq_efd >= 0)
		close(s->irq_efd);
	if (s->ack_efd >= 0)
		close(s->ack_efd);
	if (s->regs)
		munmap(s->regs, VIRTIO_MMIO_WINDOW);
	virtio_mmio_destroy(&s->mmio);
	if (s->dev)
		s->kind->destroy(s->dev);
	free(s);
}

/* A queue the device left at its budget: the same eventfd the guest's kick signals. */
static void requeue_kick(void *ctx, unsigned queue)
{
	struct virtio_slot *s = ctx;
	uint64_t one = 1;
	if (queue < s->nr_kicks) {
		ssize_t rc = write(s->kick[queue].src.fd, &one, sizeof(one));
		(void)rc; /* EAGAIN: the counter is full, so the loop comes back anyway */
	}
}

/* One eventfd per queue, signalled by KVM on a QueueNotify write of that queue's index. */
static int wire_kicks(struct virtio_set *set, struct virtio_slot *s, uint64_t base)
{
	for (unsigned q = 0; q < s->mmio.ops->nr_queues; q++) {
		struct virtio_kick *k = &s->kick[q];
		*k = (struct virtio_kick){.src = {.handle = on_kick, .ctx = k, .fd = -1},
					  .transport = &s->mmio,
					  .queue = q};
		k->src.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (k->src.fd < 0)
			return -errno;
		int err =
		    set->kvm.ioeventfd(set->kvm.ctx, k->src.fd, base + VIRTIO_MMIO_QUEUE_NOTIFY, q);
		if (!err)
			err = evloop_add(set->loop, &k->src, EPOLLIN);
		if (err)
			return err;
		s->nr_kicks++;
	}
	return 0;
}

_Static_assert(LAYOUT_VIRTIO_MMIO_SIZE == VIRTIO_MMIO_WINDOW && VIRTIO_MMIO_WINDOW % 4096 == 0,
	       "a device's window is whole pages, mapped as its register copy");

/* The guest's interrupt handler without exits to kiln: it reads InterruptStatus (and
 * every other register) from a page KVM maps read-only over the window, and its
 * acknowledgement of VRING signals an eventfd in KVM. Each read or acknowledgement that
 * reached kiln cost a full exit and waited for the transport's lock, which the event loop
 * holds while it fills or drains a queue. Writes still exit to the bus. */
static int wire_fast_regs(struct virtio_set *set, struct virtio_slot *s, uint64_t base)
{
	s->ack_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ack_efd < 0)
		return -errno;
	int err = set->kvm.ioeventfd(set->kvm.ctx, s->ack_efd, base + VIRTIO_MMIO_INTERRUPT_ACK,
				     VIRTIO_MMIO_INT_VRING);
	if (err)
		return err;
	if (set->kvm.map_readonly) {
		void *p = mmap(NULL, VIRTIO_MMIO_WINDOW, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		s->regs = p;
		err = set->kvm.map_readonly(set->kvm.ctx, base, p, VIRTIO_MMIO_WINDOW);
		if (err == -ENOTSUP) {
			munmap(p, VIRTIO_MMIO_WINDOW);
			s->regs = NULL;
		} else if (err) {
			return err;
		}
	}
	virtio_mmio_set_fast_regs(&s->mmio, s->regs, s->ack_efd);
	return 0;
}

/* Everything but the device model itself: window, GSI, eventfds, transport, bus. */
static int add_device(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		      struct virtio_slot *s, const char *name)
{
	if (set->real_kvm)
		set->kvm.ctx = vm;
	set->loop = loop;
	unsigned i = set->nr;
	uint64_t base = LAYOUT_VIRTIO_MMIO_BASE + i * LAYOUT_VIRTIO_MMIO_SIZE;
	uint32_t gsi = LAYOUT_VIRTIO_IRQ_BASE + i;
	if (i >= VIRTIO_DEVICES_MAX || i >= LAYOUT_VIRTIO_MMIO_MAX)
		return -ENOSPC;
	s->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->irq_efd < 0)
		return -errno;
	struct virtio_irq irq = {.raise = raise_irqfd, .ctx = s};
	int err = virtio_mmio_init(&s->mmio, s->kind->dev_ops, s->dev, &vm->mem, &irq, name);
	if (!err)
		err = wire_kicks(set, s, base);
	if (!err)
		err = wire_fast_regs(set, s, base);
	if (!err)
		virtio_mmio_set_requeue(&s->mmio,
					&(struct virtio_requeue){.kick = requeue_kick, .ctx = s});
	if (!err)
		err = set->kvm.irqfd(set->kvm.ctx, s->irq_efd, gsi);
	/* Last, since the bus cannot take a range back. */
	if (!err)
		err = bus_add(&vm->mmio, base, LAYOUT_VIRTIO_MMIO_SIZE, &virtio_mmio_bus_ops,
			      &s->mmio);
	if (err)
		return err;
	set->slot[i] = s;
	set->acpi[i] =
	    (struct acpi_mmio_dev){.base = base, .size = LAYOUT_VIRTIO_MMIO_SIZE, .gsi = gsi};
	set->nr++;
	return 0;
}

/* A partuuid goes on the kernel command line: no spaces or quotes may sneak in. */
static bool partuuid_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > VIRTIO_PARTUUID_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '/' || *s == '='))
			return false;
	return true;
}

static int record_root(struct virtio_set *set, const struct drive_cfg *d, char *err, size_t errlen)
{
	if (d->partuuid && !partuuid_ok(d->partuuid)) {
		snprintf(err, errlen, "drives[%s].partuuid: \"%s\" is not a partition UUID", d->id,
			 d->partuuid);
		return -EINVAL;
	}
	set->root_blk = set->nr_blk;
	set->root_read_only = d->is_read_only;
	snprintf(set->root_partuuid, sizeof(set->root_partuuid), "%s",
		 d->partuuid ? d->partuuid : "");
	return 0;
}

/* A slot for a new device of `kind` (zeroed, not opened): NULL without memory. */
static struct virtio_slot *slot_new(const struct virtio_kind *kind, size_t dev_size)
{
	struct virtio_slot *s = calloc(1, sizeof(*s));
	if (!s || !(s->dev = calloc(1, dev_size))) {
		free(s);
		return NULL;
	}
	s->kind = kind;
	s->irq_efd = s->ack_efd = -1;
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		s->kick[i].src.fd = -1;
	return s;
}

/* A block device resumes its queue when its limiter's timer fires. Every limiter has a
 * timer, limiting or not, since PATCH /drives may make it limit later. */
static int watch_limiter(struct evloop *loop, struct virtio_slot *s)
{
	const struct virtio_blk *b = s->dev;
	if (b->limiter.timer_fd < 0)
		return 0;
	s->limiter_src =
	    (struct ev_source){.handle = on_limiter_timer, .ctx = s, .fd = b->limiter.timer_fd};
	int err = evloop_add(loop, &s->limiter_src, EPOLLIN);
	s->limiter_watched = !err;
	return err;
}

static int watch_io(struct evloop *loop, struct virtio_slot *s)
{
	const struct virtio_blk *b = s->dev;
	s->io_src = (struct ev_source){.handle = on_blk_io, .ctx = s, .fd = b->io_efd};
	int err = evloop_add(loop, &s->io_src, EPOLLIN);
	s->io_watched = !err;
	return err;
}

int virtio_blk_add(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		   const struct drive_cfg *d, char *err, size_t errlen)
{
	if (set->nr >= VIRTIO_DEVICES_MAX) {
		snprintf(err, errlen, "drives[%s]: more than %d virtio devices", d->id,
			 VIRTIO_DEVICES_MAX);
		return -ENOSPC;
	}
	if (d->is_root_device && set->root_blk >= 0) {
		snprintf(err, errlen, "drives[%s]: more than one root device", d->id);
		return -EINVAL;
	}
	struct virtio_slot *s = slot_new(&virtio_kind_blk, sizeof(struct virtio_blk));
	if (!s) {
		snprintf(err, errlen, "drives[%s]: out of memory", d->id);
		return -ENOMEM;
	}
	int ret = virtio_blk_open(s->dev, d, err, errlen);
	if (ret)
		goto fail;
	char name[CONFIG_ID_MAX + 16];
	snprintf(name, sizeof(name), "virtio-blk %s", d->id);
	if (d->is_root_device && (ret = record_root(set, d, err, errlen)))
		goto fail;
	if ((ret = watch_limiter(loop, s)) || (ret = watch_io(loop, s)) ||
	    (ret = add_device(set, vm, loop, s, name))) {
		snprintf(err, errlen, "drives[%s]: cannot add the virtio-blk device: %s", d->id,
			 strerror(-ret));
		if (d->is_root_device)
			set->root_blk = -1;
		goto fail;
	}
	set->nr_blk++;
	return 0;
fail:
	slot_free(s, loop);
	return ret;
}

int virtio_blk_add_all(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		       const struct drive_cfg *drives, unsigned nr, char *err, size_t errlen)
{
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < nr; i++) {
			if (drives[i].is_root_device != (pass == 0))
				continue;
			int ret = virtio_blk_add(set, vm, loop, &drives[i], err, errlen);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* virtio_net_add(), on nc's TAP (fd < 0) or on fd (virtio_net_add_fd()), which it owns. */
static int net_add(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		   const struct net_cfg *nc, unsigned index, int fd, char *err, size_t errlen)
{
	struct virtio_slot *s = NULL;
	int ret = -ENOSPC;
	if (set->nr >= VIRTIO_DEVICES_MAX) {
		snprintf(err, errlen, "network-interfaces[%u]: more than %d virtio devices", index,
			 VIRTIO_DEVICES_MAX);
		goto fail_fd;
	}
	if (!(s = slot_new(&virtio_kind_net, sizeof(struct virtio_net)))) {
		snprintf(err, errlen, "network-interfaces[%u]: out of memory", index);
		ret = -ENOMEM;
		goto fail_fd;
	}
	ret = fd < 0 ? virtio_net_open(s->dev, nc, index, err, errlen)
		     : virtio_net_init_fd(s->dev, fd, nc);
	if (ret && fd >= 0)
		snprintf(err, errlen, "network-interfaces[%u]: %s", index, strerror(-ret));
	if (ret)
		goto fail;
	char name[CONFIG_ID_MAX + 16];
	snprintf(name, sizeof(name), "virtio-net %s", nc->id);
	/* Attach first (it only records the transport): add_device() cannot be undone. */
	if ((ret = virtio_net_attach(s->dev, loop, &s->mmio)) ||
	    (ret = add_device(set, vm, loop, s, name))) {
		snprintf(err, errlen,
			 "network-interfaces[%u]: cannot add the virtio-net device: %s", index,
			 strerror(-ret));
		goto fail;
	}
	set->nr_net++;
	return 0;
fail_fd:
	if (fd >= 0)
		close(fd);
	return ret;
fail:
	slot_free(s, loop);
	return ret;
}

int virtio_net_add(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		   const struct net_cfg *nc, unsigned index, char *err, size_t errlen)
{
	return net_add(set, vm, loop, nc, index, -1, err, errlen);
}

int virtio_net_add_fd(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		      const struct net_cfg *nc, int fd, char *err, size_t errlen)
{
	return net_add(set, vm, loop, nc, set->nr_net, fd, err, errlen);
}

int virtio_net_add_all(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		       const struct net_cfg *nets, unsigned nr, char *err, size_t errlen)
{
	for (unsigned i = 0; i < nr; i++) {
		int ret = virtio_net_add(set, vm, loop, &nets[i], i, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

int virtio_vsock_add(struct virtio_set *set, struct vm *vm, struct evloop *loop,
		     const struct vsock_cfg *vc, char *err, size_t errlen)
{
	if (set->nr >= VIRTIO_DEVICES_MAX || set->vsock) {
		snprintf(err, errlen, "vsock: %s",
			 set->vsock ? "more than one vsock device" : "too many virtio devices");
		return set->vsock ? -EEXIST : -ENOSPC;
	}
	struct virtio_slot *s = slot_new(&virtio_kind_vsock, sizeof(struct virtio_vsock));
	if (!s) {
		snprintf(err, errlen, "vsock: out of memory");
		return -ENOMEM;
	}
	struct virtio_vsock *v = s->dev;
	int ret = virtio_vsock_open(v, vc, loop, err, errlen);
	if (ret) {
		free(v);
		s->dev = NULL; /* nothing left open to close */
		goto fail;
	}
	v->transport = &s->mmio;
	if ((ret = add_device(set, vm, loop, s, "virtio-vsock"))) {
		snprintf(err, errlen, "vsock: cannot add the virtio-vsock device: %s",
			 strerror(-ret));
		goto fail;
	}
	set->vsock = v;
	return 0;
fail:
	slot_free(s, loop);
	return ret;
}

static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = *len < cap ? vsnprintf(buf + *len, cap - *len, fmt, ap) : -1;
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return -ENOSPC;
	*len += n;
	return 0;
}

int virtio_set_cmdline(const struct virtio_set *set, bool mmio_devices, char *buf, size_t cap)
{
	size_t start = strnlen(buf, cap), len = start;
	int err = start < cap ? 0 : -ENOSPC;
	for (unsigned i = 0; mmio_devices && !err && i < set->nr; i++)
		err = append(buf, cap, &len, " virtio_mmio.device=%uK@0x%llx:%u",
			     set->acpi[i].size >> 10, (unsigned long long)set->acpi[i].base,
			     set->acpi[i].gsi);
	if (!err && set->root_blk >= 0) {
		if (set->root_partuuid[0])
			err = append(buf, cap, &len, " root=PARTUUID=%s", set->root_partuuid);
		else
			err = append(buf, cap, &len, " root=/dev/vd%c", 'a' + set->root_blk);
		if (!err)
			err = append(buf, cap, &len, " %s", set->root_read_only ? "ro" : "rw");
	}
	if (err && start < cap)
		buf[start] = '\0';
	return err;
}

void virtio_set_log_state(struct virtio_set *set)
{
	for (unsigned i = 0; i < set->nr; i++)
		virtio_mmio_log_state(&set->slot[i]->mmio, LOG_WARN);
}

void virtio_set_destroy(struct virtio_set *set)
{
	for (unsigned i = 0; i < set->nr; i++)
		slot_free(set->slot[i], set->loop);
	struct virtio_kvm_ops kvm = set->kvm;
	bool real = set->real_kvm;
	virtio_set_init(set, real ? NULL : &kvm);
}

int virtio_set_blk_swap(struct virtio_set *set, const char *drive_id, int fd, uint64_t bytes)
{
	for (unsigned i = 0; i < set->nr; i++) {
		struct virtio_slot *s = set->slot[i];
		if (!s->kind->swap_backing || !s->kind->has_id(s->dev, drive_id))
			continue;
		pthread_mutex_lock(&s->mmio.lock);
		int old = s->kind->swap_backing(s->dev, fd, bytes);
		pthread_mutex_unlock(&s->mmio.lock);
		close(old);
		virtio_mmio_config_changed(&s->mmio);
		log_info("drive %s: new backing file, %llu sectors", drive_id,
			 (unsigned long long)(bytes / VIRTIO_BLK_SECTOR));
		return 0;
	}
	return -ENOENT;
}

int virtio_set_update_limiter(struct virtio_set *set, const char *id, bool is_net,
			      const struct rate_limiter_cfg lim[2])
{
	enum virtio_kind_type type = is_net ? VIRTIO_KIND_NET : VIRTIO_KIND_BLK;
	for (unsigned i = 0; i < set->nr; i++) {
		struct virtio_slot *s = set->slot[i];
		if (s->kind->type != type || !s->kind->update_limiter ||
		    !s->kind->has_id(s->dev, id))
			continue;
		pthread_mutex_lock(&s->mmio.lock);
		int err = s->kind->update_limiter(s->dev, lim);
		pthread_mutex_unlock(&s->mmio.lock);
		if (!err)
			log_info("%s %s: new rate limiter", is_net ? "interface" : "drive", id);
		return err;
	}
	return -ENOENT;
}
