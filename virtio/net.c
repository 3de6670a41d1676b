#include "virtio/net.h"

#include <errno.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR VIRTIO_NET_HDR_BYTES
#define NUM_BUFFERS_OFF 10 /* of virtio_net_hdr_v1 */
#define VLAN_HLEN 4
#define LOG_INTERVAL_NS 1000000000ULL

#define NF(bit) (1ULL << (bit))
#define GUEST_GSO                                                                                  \
	(NF(VIRTIO_NET_F_GUEST_TSO4) | NF(VIRTIO_NET_F_GUEST_TSO6) | NF(VIRTIO_NET_F_GUEST_UFO))

/* What one step of RX or TX ended with (negative: -errno, the queue is broken). */
enum { STEP_NEXT = 1, STEP_WAIT_TAP, STEP_WAIT_GUEST, STEP_WAIT_TIMER };

static void net_log(struct virtio_net *n, const char *what, int err)
{
	if (log_ratelimit_ok(&n->log_rl, LOG_INTERVAL_NS))
		log_warn("%s: %s: %s", n->name, what, strerror(-err));
}

/* ---- RX ------------------------------------------------------------------------------- */

static bool rx_mrg(const struct virtio_net *n)
{
	return n->features & NF(VIRTIO_NET_F_MRG_RXBUF);
}

/* The largest frame (with header) the TAP can hand over with the negotiated offloads. */
static uint64_t rx_need(const struct virtio_net *n)
{
	if (n->features & GUEST_GSO)
		return VIRTIO_NET_MAX_FRAME;
	uint64_t plain = (uint64_t)HDR + ETH_HLEN + VLAN_HLEN + n->mtu;
	return plain < VIRTIO_NET_MAX_FRAME ? plain : VIRTIO_NET_MAX_FRAME;
}

static bool rx_can_hold_more(const struct virtio_net *n, const struct virtq *rxq)
{
	return n->rx_nr_chains < rxq->size && n->rx_nr_chains < VIRTIO_NET_QUEUE_SIZE &&
	       n->rx_nr_iov < VIRTQ_MAX_SEGS;
}

/* Whether to pop another chain before reading: one chain without MRG_RXBUF; with it,
 * enough for the largest frame (or for the frame waiting in the overflow buffer). */
static bool rx_want_more(const struct virtio_net *n, const struct virtq *rxq)
{
	if (!rx_can_hold_more(n, rxq))
		return false;
	if (!n->rx_nr_chains)
		return true;
	if (!rx_mrg(n))
		return false;
	return n->rx_cap < (n->rx_spill_len ? n->rx_spill_len : rx_need(n));
}

static int rx_hold(struct virtio_net *n, const struct virtq_chain *c)
{
	struct virtio_net_rx_chain *h = &n->rx_chain[n->rx_nr_chains++];
	*h = (struct virtio_net_rx_chain){.head = c->head, .cap = c->write_len};
	for (unsigned i = 0; i < c->nr_segs; i++) {
		if (!n->segs[i].len)
			continue;
		n->rx_iov[n->rx_nr_iov++] =
		    (struct iovec){.iov_base = n->segs[i].host, .iov_len = n->segs[i].len};
		h->nr_iov++;
	}
	n->rx_cap += c->write_len;
	return 0;
}

/* Pops chains while rx_want_more() and the ring has some. A chain the device cannot write
 * to goes straight back, unused. */
static int rx_fill(struct virtio_net *n, struct virtq *rxq)
{
	while (rx_want_more(n, rxq)) {
		struct virtq_chain c;
		int err = virtq_pop(rxq, n->segs, VIRTQ_MAX_SEGS, &c);
		if (err)
			return err == -EAGAIN ? 0 : err;
		if (c.nr_read == 0 && c.write_len > 0) {
			rx_hold(n, &c);
			continue;
		}
		n->stats.rx_bad_chains++;
		if ((err = virtq_push_used(rxq, c.head, 0)))
			return err;
	}
	return 0;
}

/* The leading held chains one read fills: one without MRG_RXBUF, else as many as fit in
 * IOV_MAX - 1 iovecs (of a first chain with more segments, only that many are used). */
static uint64_t rx_read_set(const struct virtio_net *n, unsigned *nr_iov)
{
	unsigned max = rx_mrg(n) ? n->rx_nr_chains : 1, iovs = 0;
	uint64_t cap = 0;
	for (unsigned k = 0; k < max && iovs + n->rx_chain[k].nr_iov < IOV_MAX; k++) {
		iovs += n->rx_chain[k].nr_iov;
		cap += n->rx_chain[k].cap;
	}
	if (iovs == 0) {
		for (; iovs < IOV_MAX - 1; iovs++)
			cap += n->rx_iov[iovs].iov_len;
	}
	*nr_iov = iovs;
	return cap;
}

/* One frame from the TAP into the first nr_iov iovecs and then the overflow buffer: its
 * length, more than the guest buffers hold when it did not fit, or -errno. The iovec after
 * the read set is borrowed for the overflow buffer and put back. */
static ssize_t tap_read(struct virtio_net *n, unsigned nr_iov)
{
	struct iovec saved = n->rx_iov[nr_iov];
	n->rx_iov[nr_iov] = (struct iovec){n->rx_overflow, sizeof(n->rx_overflow)};
	ssize_t r;
	do {
		if (n->tap_is_socket) {
			struct msghdr m = {.msg_iov = n->rx_iov, .msg_iovlen = nr_iov + 1};
			r = recvmsg(n->tap_fd, &m, MSG_TRUNC | MSG_DONTWAIT);
		} else {
			r = readv(n->tap_fd, n->rx_iov, (int)nr_iov + 1);
		}
	} while (r < 0 && errno == EINTR);
	int err = errno;
	n->rx_iov[nr_iov] = saved;
	return r < 0 ? -err : r;
}

/* Forgets the first k held chains (their buffers were returned to the guest). */
static void rx_drop_front(struct virtio_net *n, unsigned k)
{
	unsigned iovs = 0;
	for (unsigned i = 0; i < k; i++) {
		iovs += n->rx_chain[i].nr_iov;
		n->rx_cap -= n->rx_chain[i].cap;
	}
	memmove(n->rx_chain, n->rx_chain + k, (n->rx_nr_chains - k) * sizeof(n->rx_chain[0]));
	memmove(n->rx_iov, n->rx_iov + iovs, (n->rx_nr_iov - iovs) * sizeof(n->rx_iov[0]));
	n->rx_nr_chains -= k;
	n->rx_nr_iov -= iovs;
}

/* After a frame went to the guest: interrupts it now if its used_event asks, so
 * it takes the first frames while the rest of the batch is read (without this the guest
 * idled until the whole batch, often every buffer it had posted, was filled). */
static void rx_interrupt_early(struct virtio_net *n, struct virtq *rxq)
{
	if (n->transport && virtq_should_notify(rxq))
		virtio_mmio_interrupt_locked(n->transport);
}

/* Returns the chains holding the deferred frame to the guest once the limiter admits it. */
static int rx_publish(struct virtio_net *n, struct virtq *rxq)
{
	uint32_t len = n->rx_deferred_len, left = len;
	if (!ratelimit_consume(&n->rx_rl, len - HDR, 1))
		return STEP_WAIT_TIMER;
	for (unsigned i = 0; i < n->rx_deferred; i++) {
		uint32_t l = left < n->rx_chain[i].cap ? left : n->rx_chain[i].cap;
		int err = virtq_push_used(rxq, n->rx_chain[i].head, l);
		if (err)
			return err;
		left -= l;
	}
	rx_drop_front(n, n->rx_deferred);
	n->rx_deferred = 0;
	n->stats.rx_frames++;
	n->stats.rx_bytes += len - HDR;
	rx_interrupt_early(n, rxq);
	return STEP_NEXT;
}

/* Writes `len` bytes at byte `off` of the iovec stream (which must be long enough). */
static void iov_put(const struct iovec *iov, size_t off, const uint8_t *src, size_t len)
{
	for (; len; iov++) {
		if (off >= iov->iov_len) {
			off -= iov->iov_len;
			continue;
		}
		size_t k = iov->iov_len - off < len ? iov->iov_len - off : len;
		memcpy((uint8_t *)iov->iov_base + off, src, k);
		src += k;
		len -= k;
		off = 0;
	}
}

/* A frame of len bytes sits in the leading chains: sets num_buffers, then publishes. */
static int rx_deliver(struct virtio_net *n, struct virtq *rxq, uint32_t len)
{
	unsigned used = 0;
	for (uint64_t covered = 0; covered < len; used++)
		covered += n->rx_chain[used].cap;
	uint8_t nb[2] = {(uint8_t)used, (uint8_t)(used >> 8)};
	iov_put(n->rx_iov, NUM_BUFFERS_OFF, nb, sizeof(nb));
	n->rx_deferred = used;
	n->rx_deferred_len = len;
	int r = rx_publish(n, rxq);
	if (r == STEP_WAIT_TIMER)
		n->stats.rx_throttled++;
	return r;
}

/* A frame that outgrew the buffers held when it was read: its tail waits in the overflow
 * buffer until the guest adds buffers, then goes after its head. Dropped only when even
 * all the device can hold is too small. */
static int rx_unspill(struct virtio_net *n, struct virtq *rxq)
{
	uint32_t len = n->rx_spill_len;
	if (n->rx_cap < len) {
		if (rx_can_hold_more(n, rxq))
			return virtq_enable_notify(rxq) ? STEP_NEXT : STEP_WAIT_GUEST;
		n->rx_spill_len = 0;
		n->stats.rx_drops++;
		return STEP_NEXT;
	}
	iov_put(n->rx_iov, n->rx_spill_at, n->rx_overflow, len - n->rx_spill_at);
	n->rx_spill_len = 0;
	return rx_deliver(n, rxq, len);
}

/* Reads one frame into the held chains (and the overflow buffer) and delivers it. */
static int rx_read(struct virtio_net *n, struct virtq *rxq)
{
	unsigned nr_iov;
	uint64_t cap = rx_read_set(n, &nr_iov);
	ssize_t len = tap_read(n, nr_iov);
	if (len == -EAGAIN || len == -EWOULDBLOCK)
		return STEP_WAIT_TAP;
	if (len < 0) {
		n->stats.rx_errors++;
		net_log(n, "TAP read", (int)len);
		return STEP_WAIT_TAP;
	}
	if ((uint64_t)len <= cap && len >= HDR + ETH_HLEN)
		return rx_deliver(n, rxq, (uint32_t)len);
	/* A runt, a frame one chain cannot hold without MRG_RXBUF, or one cut off even in the
	 * overflow buffer. */
	if (len < HDR + ETH_HLEN || !rx_mrg(n) || (uint64_t)len > cap + sizeof(n->rx_overflow) ||
	    len > VIRTIO_NET_MAX_FRAME) {
		n->stats.rx_drops++;
		return STEP_NEXT;
	}
	n->rx_spill_len = (uint32_t)len;
	n->rx_spill_at = cap;
	return rx_unspill(n, rxq);
}

static int rx_step(struct virtio_net *n, struct virtq *rxq)
{
	if (n->rx_deferred)
		return rx_publish(n, rxq);
	int err = rx_fill(n, rxq);
	if (err)
		return err;
	if (n->rx_spill_len)
		return rx_unspill(n, rxq);
	if (!n->rx_nr_chains)
		return virtq_enable_notify(rxq) ? STEP_NEXT : STEP_WAIT_GUEST;
	return rx_read(n, rxq);
}

int virtio_net_rx(struct virtio_net *n, struct virtq *rxq, bool *need_irq)
{
	int r = STEP_NEXT;
	/* Frames per call, as for chains on every queue: then the loop serves other sources. */
	for (unsigned i = 0; i < VIRTQ_BUDGET && r == STEP_NEXT; i++)
		r = rx_step(n, rxq);
	/* Out of budget with work left: stay on the TAP so the loop comes back. */
	n->rx_want_tap = r == STEP_NEXT || r == STEP_WAIT_TAP;
	virtio_net_watch_tap(n);
	*need_irq = virtq_should_notify(rxq);
	return r < 0 ? r : 0;
}

/* ---- TX ------------------------------------------------------------------------------- */

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

bool virtio_net_tx_hdr_ok(const uint8_t hdr[VIRTIO_NET_HDR_BYTES], uint32_t len, uint64_t features)
{
	uint8_t flags = hdr[0], gso = hdr[1];
	uint32_t payload = len > HDR ? len - HDR : 0;
	if (flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false;
	if (flags && !(features & NF(VIRTIO_NET_F_CSUM)))
		return false;
	if (flags) {
		uint32_t start = get_le16(hdr + 6), off = get_le16(hdr + 8);
		if (start + off + 2 > payload)
			return false;
	}
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	uint64_t need;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		need = NF(VIRTIO_NET_F_HOST_TSO4);
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		need = NF(VIRTIO_NET_F_HOST_TSO6);
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		need = NF(VIRTIO_NET_F_HOST_UFO);
		break;
	default: /* unknown, or ECN, which is not offered */
		return false;
	}
	/* A GSO frame needs the negotiated offload, NEEDS_CSUM and an MSS. */
	return (features & need) && flags && get_le16(hdr + 4) != 0;
}

/* Checks a popped TX chain and gathers it into tx_iov: false when it must be dropped. The
 * header goes out from the copy that was checked, never from guest memory, which another
 * vCPU may rewrite between the check and the write. */
static bool tx_prepare(struct virtio_net *n, const struct virtq_chain *c)
{
	if (c->nr_read != c->nr_segs || c->read_len < HDR + ETH_HLEN ||
	    c->read_len > VIRTIO_NET_MAX_FRAME)
		return false;
	unsigned got = 0;
	n->tx_iov[0] = (struct iovec){.iov_base = n->tx_hdr, .iov_len = HDR};
	n->tx_nr_iov = 1;
	for (unsigned i = 0; i < c->nr_segs; i++) {
		const struct virtq_seg *s = &n->segs[i];
		unsigned k = s->len < HDR - got ? s->len : HDR - got;
		memcpy(n->tx_hdr + got, s->host, k);
		got += k;
		if (s->len == k)
			continue;
		/* One iovec more than segments at most; writev takes no more than IOV_MAX. */
		if (n->tx_nr_iov == IOV_MAX)
			return false;
		n->tx_iov[n->tx_nr_iov++] =
		    (struct iovec){.iov_base = (uint8_t *)s->host + k, .iov_len = s->len - k};
	}
	if (!virtio_net_tx_hdr_ok(n->tx_hdr, c->read_len, n->features))
		return false;
	n->tx_head = c->head;
	n->tx_len = c->read_len;
	return true;
}

static int tap_write(struct virtio_net *n)
{
	ssize_t r;
	do {
		if (n->tap_is_socket) {
			struct msghdr m = {.msg_iov = n->tx_iov, .msg_iovlen = n->tx_nr_iov};
			r = sendmsg(n->tap_fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		} else {
			r = writev(n->tap_fd, n->tx_iov, (int)n->tx_nr_iov);
		}
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* Takes the next chain (or keeps the held one) and sends it if the limiter admits it. */
static int tx_step(struct virtio_net *n, struct virtq *txq)
{
	if (!n->tx_held) {
		struct virtq_chain c;
		int err = virtq_pop(txq, n->segs, VIRTQ_MAX_SEGS, &c);
		if (err == -EAGAIN)
			return virtq_enable_notify(txq) ? STEP_NEXT : STEP_WAIT_GUEST;
		if (err)
			return err;
		if (!tx_prepare(n, &c)) {
			n->stats.tx_drops++;
			err = virtq_push_used(txq, c.head, 0);
			return err ? err : STEP_NEXT;
		}
		n->tx_held = true;
		n->tx_paid = false;
	}
	if (!n->tx_paid && !ratelimit_consume(&n->tx_rl, n->tx_len - HDR, 1)) {
		n->stats.tx_throttled++;
		return STEP_WAIT_TIMER;
	}
	n->tx_paid = true;
	int err = tap_write(n);
	if (err == -EAGAIN || err == -EWOULDBLOCK || err == -ENOBUFS)
		return STEP_WAIT_TAP;
	if (err) {
		n->stats.tx_drops++;
		net_log(n, "TAP write", err);
	} else {
		n->stats.tx_frames++;
		n->stats.tx_bytes += n->tx_len - HDR;
	}
	n->tx_held = false;
	err = virtq_push_used(txq, n->tx_head, 0);
	return err ? err : STEP_NEXT;
}

int virtio_net_tx(struct virtio_net *n, struct virtq *txq, bool *need_irq)
{
	int r = STEP_NEXT;
	for (unsigned i = 0; i < VIRTQ_BUDGET && r == STEP_NEXT; i++)
		r = tx_step(n, txq);
	if (r == STEP_NEXT)
		virtq_requeue(txq);
	/* A full TAP: EPOLLOUT brings TX back. */
	n->tx_want_tap = r == STEP_WAIT_TAP;
	virtio_net_watch_tap(n);
	*need_irq = virtq_should_notify(txq);
	return r < 0 ? r : 0;
}

/* ---- snapshot restore ----------------------------------------------------------------- */

int virtio_net_hold_rx(struct virtio_net *n, const struct virtq *rxq, const struct virtq_chain *c)
{
	/* What rx_fill() would have held: a device-writable chain, room for it, and one
	 * chain at most without MRG_RXBUF. */
	if (!n->active || c->nr_read != 0 || c->write_len == 0 || !rx_can_hold_more(n, rxq) ||
	    (!rx_mrg(n) && n->rx_nr_chains))
		return -EINVAL;
	return rx_hold(n, c);
}

int virtio_net_hold_tx(struct virtio_net *n, const struct virtq_chain *c, bool paid)
{
	if (!n->active || n->tx_held || !tx_prepare(n, c))
		return -EINVAL;
	n->tx_held = true;
	n->tx_paid = paid;
	return 0;
}

/* ---- device model --------------------------------------------------------------------- */

unsigned virtio_net_tap_offloads(uint64_t features)
{
	if (!(features & NF(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	unsigned o = TUN_F_CSUM;
	if (features & NF(VIRTIO_NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (features & NF(VIRTIO_NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if (features & NF(VIRTIO_NET_F_GUEST_UFO))
		o |= TUN_F_UFO;
	return o;
}

static uint64_t net_features(const void *dev)
{
	(void)dev;
	return NF(VIRTIO_F_VERSION_1) | NF(VIRTIO_RING_F_EVENT_IDX) |
	       NF(VIRTIO_RING_F_INDIRECT_DESC) | NF(VIRTIO_NET_F_MAC) | NF(VIRTIO_NET_F_STATUS) |
	       NF(VIRTIO_NET_F_MRG_RXBUF) | NF(VIRTIO_NET_F_CSUM) | NF(VIRTIO_NET_F_GUEST_CSUM) |
	       GUEST_GSO | NF(VIRTIO_NET_F_HOST_TSO4) | NF(VIRTIO_NET_F_HOST_TSO6) |
	       NF(VIRTIO_NET_F_HOST_UFO);
}

static void net_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	const struct virtio_net *n = dev;
	memcpy(data, n->config + off, len);
}

static int net_activate(void *dev, uint64_t features, struct virtq *vq)
{
	struct virtio_net *n = dev;
	if (!vq[VIRTIO_NET_RXQ].ready || !vq[VIRTIO_NET_TXQ].ready)
		return -EINVAL;
	/* The TAP may only hand over what the guest accepted (TSO frames, partial sums). */
	unsigned offloads = virtio_net_tap_offloads(features);
	if (!n->tap_is_socket && ioctl(n->tap_fd, TUNSETOFFLOAD, offloads) < 0) {
		int err = -errno;
		log_err("%s: TUNSETOFFLOAD %#x: %s", n->name, offloads, strerror(errno));
		return err;
	}
	n->features = features;
	n->active = true;
	n->rx_want_tap = true;
	n->tx_want_tap = false;
	virtio_net_watch_tap(n);
	return 0;
}

/* Held chains and a held TX chain belong to the old rings: forget them. */
static void net_reset(void *dev)
{
	struct virtio_net *n = dev;
	n->active = false;
	n->features = 0;
	n->rx_nr_chains = n->rx_nr_iov = n->rx_deferred = n->rx_spill_len = 0;
	n->rx_cap = 0;
	n->tx_held = n->tx_paid = false;
	n->rx_want_tap = n->tx_want_tap = false;
	virtio_net_watch_tap(n);
	if (!n->tap_is_socket && ioctl(n->tap_fd, TUNSETOFFLOAD, 0) < 0)
		net_log(n, "TUNSETOFFLOAD 0", -errno);
}

static int net_queue_notify(void *dev, struct virtq *vq, unsigned idx, bool *need_irq)
{
	if (idx == VIRTIO_NET_RXQ)
		return virtio_net_rx(dev, vq, need_irq);
	return virtio_net_tx(dev, vq, need_irq);
}

const struct virtio_dev_ops virtio_net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .nr_queues = 2,
    .queue_max_size = VIRTIO_NET_QUEUE_SIZE,
    .config_size = VIRTIO_NET_CONFIG_BYTES,
    .features = net_features,
    .config_read = net_config_read,
    .activate = net_activate,
    .reset = net_reset,
    .queue_notify = net_queue_notify,
};
