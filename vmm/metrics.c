#include "vmm/metrics.h"

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

static void put_blk(char *buf, size_t cap, size_t *len, const char *key,
		    const struct metrics_blk *b)
{
	put(buf, cap, len,
	    ",\"%s\":{\"read_count\":%llu,\"write_count\":%llu,\"flush_count\":%llu,"
	    "\"read_bytes\":%llu,\"write_bytes\":%llu,\"io_errors\":%llu}",
	    key, (unsigned long long)b->read_count, (unsigned long long)b->write_count,
	    (unsigned long long)b->flush_count, (unsigned long long)b->read_bytes,
	    (unsigned long long)b->write_bytes, (unsigned long long)b->io_errors);
}

static void put_net(char *buf, size_t cap, size_t *len, const char *key,
		    const struct metrics_net *n)
{
	put(buf, cap, len,
	    ",\"%s\":{\"rx_bytes_count\":%llu,\"rx_packets_count\":%llu,\"rx_dropped\":%llu,"
	    "\"tx_bytes_count\":%llu,\"tx_packets_count\":%llu,\"tx_dropped\":%llu,"
	    "\"rx_rate_limiter_throttled\":%llu,\"tx_rate_limiter_throttled\":%llu}",
	    key, (unsigned long long)n->rx_bytes, (unsigned long long)n->rx_packets,
	    (unsigned long long)n->rx_drops, (unsigned long long)n->tx_bytes,
	    (unsigned long long)n->tx_packets, (unsigned long long)n->tx_drops,
	    (unsigned long long)n->rx_throttled, (unsigned long long)n->tx_throttled);
}

static void put_vsock(char *buf, size_t cap, size_t *len, const struct vsock_stats *v)
{
	put(buf, cap, len,
	    ",\"vsock\":{\"rx_packets_count\":%llu,\"tx_packets_count\":%llu,"
	    "\"rx_bytes_count\":%llu,\"tx_bytes_count\":%llu,\"conns_added\":%llu,"
	    "\"conns_removed\":%llu,\"conns_refused\":%llu,\"malformed\":%llu}",
	    (unsigned long long)v->rx_packets, (unsigned long long)v->tx_packets,
	    (unsigned long long)v->rx_bytes, (unsigned long long)v->tx_bytes,
	    (unsigned long long)v->conns_added, (unsigned long long)v->conns_removed,
	    (unsigned long long)v->conns_refused, (unsigned long long)v->malformed);
}

int metrics_format(const struct metrics_snapshot *s, char *buf, size_t cap)
{
	size_t len = 0;
	char key[METRICS_ID_MAX + 16];
	put(buf, cap, &len, "{\"utc_timestamp_ms\":%llu", (unsigned long long)s->utc_ms);
	if (s->exit_reason)
		put(buf, cap, &len, ",\"vmm\":{\"exit_reason\":\"%s\"}", s->exit_reason);
	put(buf, cap, &len, ",\"uart\":{\"write_count\":%llu}",
	    (unsigned long long)s->uart_write_count);
	/* Firecracker's shape: an aggregate "block"/"net" plus one object per device. */
	struct metrics_blk blk_sum = {0};
	for (unsigned i = 0; i < s->nr_blk; i++) {
		const struct metrics_blk *b = &s->blk[i];
		blk_sum.read_count += b->read_count;
		blk_sum.write_count += b->write_count;
		blk_sum.flush_count += b->flush_count;
		blk_sum.read_bytes += b->read_bytes;
		blk_sum.write_bytes += b->write_bytes;
		blk_sum.io_errors += b->io_errors;
		snprintf(key, sizeof(key), "block_%s", b->id);
		put_blk(buf, cap, &len, key, b);
	}
	put_blk(buf, cap, &len, "block", &blk_sum);
	struct metrics_net net_sum = {0};
	for (unsigned i = 0; i < s->nr_net; i++) {
		const struct metrics_net *n = &s->net[i];
		net_sum.rx_bytes += n->rx_bytes;
		net_sum.rx_packets += n->rx_packets;
		net_sum.rx_drops += n->rx_drops;
		net_sum.tx_bytes += n->tx_bytes;
		net_sum.tx_packets += n->tx_packets;
		net_sum.tx_drops += n->tx_drops;
		net_sum.rx_throttled += n->rx_throttled;
		net_sum.tx_throttled += n->tx_throttled;
		snprintf(key, sizeof(key), "net_%s", n->id);
		put_net(buf, cap, &len, key, n);
	}
	put_net(buf, cap, &len, "net", &net_sum);
	if (s->has_vsock)
		put_vsock(buf, cap, &len, &s->vsock);
	put(buf, cap, &len, "}\n");
	return len >= cap ? -ENOSPC : (int)len;
}

/* The device id is what follows the first space of the transport's name ("virtio-blk X"). */
static void slot_id(const struct virtio_slot *s, char *id, size_t cap)
{
	const char *sp = strchr(s->mmio.name, ' ');
	snprintf(id, cap, "%s", sp ? sp + 1 : s->mmio.name);
}

static void snapshot_slot(struct metrics_snapshot *snap, struct virtio_slot *s)
{
	pthread_mutex_lock(&s->mmio.lock);
	if (s->blk && snap->nr_blk < VIRTIO_DEVICES_MAX) {
		struct metrics_blk *b = &snap->blk[snap->nr_blk++];
		const struct virtio_blk_stats *st = &s->blk->stats;
		slot_id(s, b->id, sizeof(b->id));
		b->read_count = st->reads;
		b->write_count = st->writes;
		b->flush_count = st->flushes;
		b->read_bytes = st->read_bytes;
		b->write_bytes = st->write_bytes;
		b->io_errors = st->io_errors;
	} else if (s->net && snap->nr_net < VIRTIO_DEVICES_MAX) {
		struct metrics_net *n = &snap->net[snap->nr_net++];
		const struct virtio_net_stats *st = &s->net->stats;
		slot_id(s, n->id, sizeof(n->id));
		n->rx_bytes = st->rx_bytes;
		n->rx_packets = st->rx_frames;
		n->rx_drops = st->rx_drops;
		n->tx_bytes = st->tx_bytes;
		n->tx_packets = st->tx_frames;
		n->tx_drops = st->tx_drops;
		n->rx_throttled = st->rx_throttled;
		n->tx_throttled = st->tx_throttled;
	} else if (s->vsock) {
		snap->has_vsock = 1;
		snap->vsock = s->vsock->mux.stats;
	}
	pthread_mutex_unlock(&s->mmio.lock);
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
}

int metrics_flush(struct metrics *m, const char *exit_reason)
{
	if (m->fd < 0)
		return 0;
	static const size_t cap = 16384;
	struct metrics_snapshot snap;
	char buf[16384];
	metrics_snapshot_take(m, &snap);
	snap.exit_reason = exit_reason;
	int len = metrics_format(&snap, buf, cap);
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
		  struct virtio_set *virtio)
{
	*m = (struct metrics){.fd = fd, .serial = serial, .virtio = virtio, .loop = loop};
	m->timer_src = (struct ev_source){.handle = metrics_on_timer, .ctx = m, .fd = -1};
	if (fd < 0)
		return 0;
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
	m->timer_src.fd = m->fd = -1;
}
