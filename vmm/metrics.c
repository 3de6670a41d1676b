#include "vmm/metrics.h"
#include "vmm/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Appends printf output to buf at *len; remembers overflow in *len = cap. */
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	if (*len >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	*len = (n < 0 || (size_t)n >= cap - *len) ? cap : *len + n;
}

/* The transport's counters as metrics_transport_counts() orders them, queue names first. */
#define INTERRUPT_NAMES "interrupt_count", "interrupt_coalesced_count"
static const char *const blk_names[BLK_NR_METRICS] = {
    "read_count", "write_count",       "flush_count",	   "read_bytes",	 "write_bytes",
    "io_errors",  "queue_event_count", "queue_used_count", "queue_notify_count", INTERRUPT_NAMES};
static const char *const net_names[NET_NR_METRICS] = {"rx_bytes_count",
						      "rx_packets_count",
						      "rx_dropped",
						      "tx_bytes_count",
						      "tx_packets_count",
						      "tx_dropped",
						      "rx_rate_limiter_throttled",
						      "tx_rate_limiter_throttled",
						      "rx_queue_event_count",
						      "tx_queue_event_count",
						      "rx_queue_used_count",
						      "tx_queue_used_count",
						      "rx_queue_notify_count",
						      "tx_queue_notify_count",
						      INTERRUPT_NAMES};
static const char *const vsock_names[VSOCK_NR_METRICS] = {
    "rx_packets_count",	     "tx_packets_count",
    "rx_bytes_count",	     "tx_bytes_count",
    "conns_added",	     "conns_removed",
    "conns_refused",	     "malformed",
    "rx_queue_event_count",  "tx_queue_event_count",
    "ev_queue_event_count",  "rx_queue_used_count",
    "tx_queue_used_count",   "ev_queue_used_count",
    "rx_queue_notify_count", "tx_queue_notify_count",
    "ev_queue_notify_count", INTERRUPT_NAMES};

static const char *const vcpu_names[VCPU_NR_COUNTS] = {
    [VCPU_EXIT_IO_IN] = "exit_io_in",
    [VCPU_EXIT_IO_OUT] = "exit_io_out",
    [VCPU_EXIT_MMIO_READ] = "exit_mmio_read",
    [VCPU_EXIT_MMIO_WRITE] = "exit_mmio_write",
    [VCPU_FAILURES] = "failures",
};

static const char *const latency_names[LAT_NR] = {"full_create_snapshot", "diff_create_snapshot",
						  "load_snapshot", "pause_vm", "resume_vm"};

/* ,"<prefix><id>":{"name":value,...} */
static void put_counters(char *buf, size_t cap, size_t *len, const char *prefix, const char *id,
			 const char *const *names, unsigned n, const uint64_t *c)
{
	put(buf, cap, len, ",\"%s%s\":{", prefix, id);
	for (unsigned i = 0; i < n; i++)
		put(buf, cap, len, "%s\"%s\":%llu", i ? "," : "", names[i],
		    (unsigned long long)c[i]);
	put(buf, cap, len, "}");
}

/* Firecracker's shape: one object per device ("block_<id>") and their sum ("block"). */
static void put_kind(char *buf, size_t cap, size_t *len, const char *kind,
		     const struct metrics_dev *devs, unsigned nr, const char *const *names,
		     unsigned n)
{
	uint64_t sum[METRICS_MAX_COUNTERS] = {0};
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "%s_", kind);
	for (unsigned d = 0; d < nr; d++) {
		for (unsigned i = 0; i < n; i++)
			sum[i] += devs[d].c[i];
		put_counters(buf, cap, len, prefix, devs[d].id, names, n, devs[d].c);
	}
	put_counters(buf, cap, len, kind, "", names, n, sum);
}

/* ,"kvm":{"<KVM's name>":value,...} with the counters this KVM has. */
static void put_kvm(char *buf, size_t cap, size_t *len, const struct metrics_snapshot *s)
{
	const char *sep = "";
	put(buf, cap, len, ",\"kvm\":{");
	for (unsigned i = 0; i < KVM_STAT_NR; i++) {
		if (!(s->kvm_present & (1u << i)))
			continue;
		put(buf, cap, len, "%s\"%s\":%llu", sep, kvm_stat_name(i),
		    (unsigned long long)s->kvm[i]);
		sep = ",";
	}
	put(buf, cap, len, "}");
}

int metrics_format(const struct metrics_snapshot *s, char *buf, size_t cap)
{
	size_t len = 0;
	put(buf, cap, &len, "{\"utc_timestamp_ms\":%llu", (unsigned long long)s->utc_ms);
	if (s->exit_reason)
		put(buf, cap, &len, ",\"vmm\":{\"exit_reason\":\"%s\"}", s->exit_reason);
	put(buf, cap, &len, ",\"uart\":{\"write_count\":%llu}",
	    (unsigned long long)s->uart_write_count);
	put_kind(buf, cap, &len, "block", s->blk, s->nr_blk, blk_names, BLK_NR_METRICS);
	put_kind(buf, cap, &len, "net", s->net, s->nr_net, net_names, NET_NR_METRICS);
	if (s->has_vsock)
		put_counters(buf, cap, &len, "vsock", "", vsock_names, VSOCK_NR_METRICS,
			     s->vsock.c);
	put_counters(buf, cap, &len, "latencies_us", "", latency_names, LAT_NR, s->latency_us);
	put_counters(buf, cap, &len, "vcpu", "", vcpu_names, VCPU_NR_COUNTS, s->vcpu);
	if (s->has_kvm)
		put_kvm(buf, cap, &len, s);
	put(buf, cap, &len, "}\n");
	return len >= cap ? -ENOSPC : (int)len;
}

/* The device id is what follows the first space of the transport's name ("virtio-blk X"). */
static void slot_id(const struct virtio_slot *s, char *id, size_t cap)
{
	const char *sp = strchr(s->mmio.name, ' ');
	snprintf(id, cap, "%s", sp ? sp + 1 : s->mmio.name);
}

void metrics_transport_counts(const struct virtio_mmio *t, uint64_t *c)
{
	unsigned nq = t->ops->nr_queues;
	for (unsigned q = 0; q < nq; q++) {
		c[q] = t->vq[q].counts.events;
		c[nq + q] = t->vq[q].counts.used;
		c[2 * nq + q] = t->vq[q].counts.notifies;
	}
	c[3 * nq] = t->interrupts;
	c[3 * nq + 1] = t->coalesced;
}

static void snapshot_slot(struct metrics_snapshot *snap, struct virtio_slot *s)
{
	struct metrics_dev *d = NULL;
	unsigned own = 0; /* the device's own counters, before its transport's */
	pthread_mutex_lock(&s->mmio.lock);
	if (s->kind->type == VIRTIO_KIND_BLK && snap->nr_blk < VIRTIO_DEVICES_MAX) {
		d = &snap->blk[snap->nr_blk++];
		own = BLK_NR_COUNTERS;
	} else if (s->kind->type == VIRTIO_KIND_NET && snap->nr_net < VIRTIO_DEVICES_MAX) {
		d = &snap->net[snap->nr_net++];
		own = NET_NR_COUNTERS;
	} else if (s->kind->type == VIRTIO_KIND_VSOCK) {
		snap->has_vsock = 1;
		d = &snap->vsock;
		own = VSOCK_NR_COUNTERS;
	}
	if (d) {
		if (d != &snap->vsock)
			slot_id(s, d->id, sizeof(d->id));
		s->kind->counters(s->dev, d->c);
		/* The names assume each kind's queue count (test_metrics checks it); never write
		 * past c[]. */
		if (own + METRICS_TRANSPORT_COUNTERS(s->mmio.ops->nr_queues) <=
		    METRICS_MAX_COUNTERS)
			metrics_transport_counts(&s->mmio, d->c + own);
	}
	pthread_mutex_unlock(&s->mmio.lock);
}

/* Firecracker's vcpu fields, summed over the vCPUs, and KVM's own counts where it has them. */
static void snapshot_vcpus(struct metrics *m, struct metrics_snapshot *snap)
{
	for (unsigned v = 0; m->vm && v < m->vm->nr_vcpus; v++)
		for (unsigned i = 0; i < VCPU_NR_COUNTS; i++)
			snap->vcpu[i] +=
			    atomic_load_explicit(&m->vm->vcpu[v].counts[i], memory_order_relaxed);
	snap->has_kvm = m->kvm_stats.nr > 0 &&
			kvm_stats_read(&m->kvm_stats, snap->kvm, &snap->kvm_present) == 0;
}

void metrics_snapshot_take(struct metrics *m, struct metrics_snapshot *snap)
{
	struct timespec ts;
	memset(snap, 0, sizeof(*snap));
	clock_gettime(CLOCK_REALTIME, &ts);
	snap->utc_ms = (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (m->serial) {
		pthread_mutex_lock(&m->serial->lock);
		snap->uart_write_count = m->serial->tx_bytes;
		pthread_mutex_unlock(&m->serial->lock);
	}
	for (unsigned i = 0; m->virtio && i < m->virtio->nr; i++)
		snapshot_slot(snap, m->virtio->slot[i]);
	for (unsigned i = 0; i < LAT_NR; i++)
		snap->latency_us[i] = atomic_load(&m->latency_us[i]);
	snapshot_vcpus(m, snap);
}

int metrics_flush(struct metrics *m, const char *exit_reason)
{
	if (m->fd < 0)
		return 0;
	struct metrics_snapshot snap;
	char buf[METRICS_LINE_MAX];
	metrics_snapshot_take(m, &snap);
	snap.exit_reason = exit_reason;
	int len = metrics_format(&snap, buf, sizeof(buf));
	if (len < 0)
		return len;
	/* One write per line: a reader of a named pipe sees whole objects. */
	return write(m->fd, buf, len) == len ? 0 : -EIO;
}

static void metrics_on_timer(void *ctx, uint32_t events)
{
	struct metrics *m = ctx;
	uint64_t expirations;
	(void)events;
	if (read(m->timer_src.fd, &expirations, sizeof(expirations)) == sizeof(expirations))
		metrics_flush(m, NULL);
}

int metrics_start(struct metrics *m, int fd, struct evloop *loop, struct serial *serial,
		  struct virtio_set *virtio, struct vm *vm)
{
	*m = (struct metrics){.fd = fd, .serial = serial, .virtio = virtio, .vm = vm, .loop = loop};
	m->timer_src = (struct ev_source){.handle = metrics_on_timer, .ctx = m, .fd = -1};
	if (fd < 0)
		return 0;
	if (vm)
		kvm_stats_open(&m->kvm_stats, vm);
	m->timer_src.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->timer_src.fd < 0)
		return -errno;
	struct itimerspec period = {.it_interval = {METRICS_PERIOD_S, 0},
				    .it_value = {METRICS_PERIOD_S, 0}};
	if (timerfd_settime(m->timer_src.fd, 0, &period, NULL) < 0)
		return -errno;
	return evloop_add(loop, &m->timer_src, EPOLLIN);
}

void metrics_stop(struct metrics *m)
{
	if (m->timer_src.fd >= 0) {
		evloop_del(m->loop, &m->timer_src);
		close(m->timer_src.fd);
	}
	if (m->fd >= 0)
		close(m->fd);
	kvm_stats_close(&m->kvm_stats);
	m->timer_src.fd = m->fd = -1;
}

void metrics_latency(struct metrics *m, unsigned which, uint64_t start_ns)
{
	if (which < LAT_NR)
		atomic_store(&m->latency_us[which], (monotonic_ns() - start_ns) / 1000);
}
