/* Snapshot save and restore of the virtio devices: one SNAP_SEC_VIRTIO section per device,
 * index = its slot, holding the transport's state then its kind's. A restore builds on a
 * set the new process added from the same config, checks every section against the device
 * in its slot and every value as guest input, and leaves a failed device reset. */
#include "virtio/persist.h"

#include <errno.h>
#include <linux/if_ether.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "virtio/devices.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define BLK_DRAIN_TIMEOUT_NS (10 * 1000000000ULL)

/* A section: the transport, then the kind's state right after it. */
struct slot_state {
	struct virtio_mmio_state mmio;
	union {
		struct virtio_blk_state blk;
		struct virtio_net_state net;
		struct virtio_vsock_state vsock;
	} dev;
};

_Static_assert(offsetof(struct slot_state, dev) == sizeof(struct virtio_mmio_state),
	       "the kind's state follows the transport's");
_Static_assert(sizeof(struct virtio_blk_state) == 16, "virtio_blk_state layout");
_Static_assert(sizeof(struct virtio_net_state) == 24 + 2 * VIRTIO_NET_QUEUE_SIZE,
	       "virtio_net_state layout");
_Static_assert(sizeof(struct virtio_vsock_state) == 8, "virtio_vsock_state layout");

/* ---- virtio-blk ------------------------------------------------------------------------ */

/* Whether io_uring holds a request of b that will complete: waiting for it cannot hang
 * (a request queued in the ring but not submitted would never complete). */
static bool blk_in_kernel(const struct virtio_blk *b)
{
	if (!b->async || b->ring.pending)
		return false;
	for (unsigned i = 0; i < VIRTIO_BLK_SLOTS; i++)
		if ((b->claimed & 1ULL << i) && b->slot[i].in_ring)
			return true;
	return false;
}

/* Finishes every request the device popped (queued for the engine, running, in io_uring),
 * as the event loop would have, so the used ring says what is done and nothing is in
 * flight. Paused, the loop does not serve io_efd: even the Sync engine may hold queued
 * requests. Async waits in io_uring_enter, a call the VMM thread's seccomp filter allows
 * (poll() is not). -ETIMEDOUT when the disk does not answer. */
static int blk_drain(struct virtio_slot *s)
{
	struct virtio_blk *b = s->dev;
	uint64_t deadline = monotonic_ns() + BLK_DRAIN_TIMEOUT_NS;
	for (;;) {
		virtio_mmio_run(&s->mmio, virtio_blk_claim, NULL);
		virtio_blk_io(b, blk_in_kernel(b));
		virtio_mmio_run(&s->mmio, virtio_blk_complete, NULL);
		if (!virtio_blk_busy(b))
			return 0;
		if (monotonic_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

int virtio_blk_persist_save(struct virtio_slot *s, void *state)
{
	struct virtio_blk_state *st = state;
	const struct virtio_blk *b = s->dev;
	int err = blk_drain(s);
	if (err) {
		log_err("%s: %u requests not finished: %s", s->mmio.name, virtio_blk_busy(b),
			strerror(-err));
		return err;
	}
	pthread_mutex_lock(&s->mmio.lock);
	*st = (struct virtio_blk_state){
	    .capacity = b->capacity, .read_only = b->read_only, .writeback = b->writeback};
	pthread_mutex_unlock(&s->mmio.lock);
	return 0;
}

int virtio_blk_persist_restore(struct virtio_slot *s, const void *state, char *err, size_t errlen)
{
	const struct virtio_blk_state *st = state;
	const struct virtio_blk *b = s->dev;
	if (st->read_only > 1 || st->writeback > 1 ||
	    !virtio_state_all_zero(st->pad, sizeof(st->pad))) {
		snprintf(err, errlen, "malformed block device state");
		return -EINVAL;
	}
	if (st->capacity != b->capacity) {
		snprintf(err, errlen, "the drive has %llu sectors, the snapshot's had %llu",
			 (unsigned long long)b->capacity, (unsigned long long)st->capacity);
		return -EINVAL;
	}
	if (st->read_only != b->read_only || st->writeback != b->writeback) {
		snprintf(err, errlen, "is_read_only or cache_type differ from the snapshot's");
		return -EINVAL;
	}
	return 0;
}

/* ---- virtio-net ------------------------------------------------------------------------ */

int virtio_net_persist_save(struct virtio_slot *s, void *state)
{
	struct virtio_net_state *st = state;
	const struct virtio_net *n = s->dev;
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->mmio.lock);
	memcpy(st->mac, n->mac, sizeof(st->mac));
	st->rx_nr_chains = (uint16_t)n->rx_nr_chains;
	for (unsigned i = 0; i < n->rx_nr_chains; i++) {
		st->rx_head[i] = n->rx_chain[i].head;
		/* A frame held back lies in them, maybe written after the last diff snapshot. */
		virtq_mark_chain_dirty(&s->mmio.vq[VIRTIO_NET_RXQ], st->rx_head[i]);
	}
	st->rx_deferred = (uint16_t)n->rx_deferred;
	st->rx_deferred_len = n->rx_deferred ? n->rx_deferred_len : 0;
	st->tx_held = n->tx_held;
	st->tx_paid = n->tx_held && n->tx_paid;
	st->tx_head = n->tx_held ? n->tx_head : 0;
	pthread_mutex_unlock(&s->mmio.lock);
	return 0;
}

/* The fields of a net state that need no device to check: NULL, or what is wrong. */
static const char *check_net_state(const struct virtio_net_state *st)
{
	if (st->tx_held > 1 || st->tx_paid > 1 || st->pad || st->pad2 ||
	    (!st->tx_held && (st->tx_paid || st->tx_head)))
		return "malformed network device state";
	if (st->mac[0] & 1)
		return "multicast MAC address";
	if (st->rx_nr_chains > VIRTIO_NET_QUEUE_SIZE || st->rx_deferred > st->rx_nr_chains ||
	    !virtio_state_all_zero(st->rx_head + st->rx_nr_chains,
				   sizeof(st->rx_head[0]) *
				       (VIRTIO_NET_QUEUE_SIZE - st->rx_nr_chains)))
		return "bad count of held RX chains";
	if (st->rx_deferred ? st->rx_deferred_len < VIRTIO_NET_HDR_BYTES + ETH_HLEN ||
				  st->rx_deferred_len > VIRTIO_NET_MAX_FRAME
			    : st->rx_deferred_len != 0)
		return "bad length of the frame held back";
	return NULL;
}

/* Takes the held RX chains back, oldest first, then the frame the first of them hold. */
static int net_hold_rx(struct virtio_net *n, struct virtq *rxq, const struct virtio_net_state *st,
		       char *err, size_t errlen)
{
	uint64_t seen[VIRTIO_NET_QUEUE_SIZE / 64] = {0};
	for (unsigned i = 0; i < st->rx_nr_chains; i++) {
		uint16_t head = st->rx_head[i];
		struct virtq_chain c;
		int ret = head < VIRTIO_NET_QUEUE_SIZE && !(seen[head / 64] >> (head % 64) & 1)
			      ? virtq_retake(rxq, head, n->segs, VIRTQ_MAX_SEGS, &c)
			      : -EINVAL;
		if (!ret)
			ret = virtio_net_hold_rx(n, rxq, &c);
		if (ret) {
			snprintf(err, errlen, "held RX chain %u (head %u): %s", i, head,
				 ret == -EINVAL ? "not one the device could hold"
						: virtq_strerror(ret));
			return ret;
		}
		seen[head / 64] |= 1ULL << (head % 64);
	}
	/* The frame fills its chains as rx_deliver() counted them: all, the last one needed. */
	uint64_t before_last = 0, len = st->rx_deferred_len;
	for (unsigned i = 0; i + 1 < st->rx_deferred; i++)
		before_last += n->rx_chain[i].cap;
	if (st->rx_deferred &&
	    (before_last >= len || before_last + n->rx_chain[st->rx_deferred - 1].cap < len)) {
		snprintf(err, errlen, "the frame held back does not fit its RX chains");
		return -EINVAL;
	}
	n->rx_deferred = st->rx_deferred;
	n->rx_deferred_len = st->rx_deferred_len;
	return 0;
}

static int net_hold_tx(struct virtio_net *n, struct virtq *txq, const struct virtio_net_state *st,
		       char *err, size_t errlen)
{
	struct virtq_chain c;
	if (!st->tx_held)
		return 0;
	int ret = virtq_retake(txq, st->tx_head, n->segs, VIRTQ_MAX_SEGS, &c);
	if (!ret)
		ret = virtio_net_hold_tx(n, &c, st->tx_paid);
	if (ret)
		snprintf(err, errlen, "held TX chain (head %u): %s", st->tx_head,
			 ret == -EINVAL ? "not one the device could hold" : virtq_strerror(ret));
	return ret;
}

int virtio_net_persist_restore(struct virtio_slot *s, const void *state, char *err, size_t errlen)
{
	const struct virtio_net_state *st = state;
	struct virtio_net *n = s->dev;
	struct virtq *vq = s->mmio.vq;
	const char *why = check_net_state(st);
	if (why) {
		snprintf(err, errlen, "%s", why);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->mmio.lock);
	memcpy(n->mac, st->mac, sizeof(n->mac));
	memcpy(n->config, st->mac, sizeof(st->mac)); /* the guest knows this MAC */
	int ret = net_hold_rx(n, &vq[VIRTIO_NET_RXQ], st, err, errlen);
	if (!ret)
		ret = net_hold_tx(n, &vq[VIRTIO_NET_TXQ], st, err, errlen);
	pthread_mutex_unlock(&s->mmio.lock);
	return ret;
}

/* ---- virtio-vsock ---------------------------------------------------------------------- */

int virtio_vsock_persist_save(struct virtio_slot *s, void *state)
{
	const struct virtio_vsock *v = s->dev;
	*(struct virtio_vsock_state *)state =
	    (struct virtio_vsock_state){.guest_cid = v->guest_cid};
	return 0;
}

int virtio_vsock_persist_restore(struct virtio_slot *s, const void *state, char *err, size_t errlen)
{
	const struct virtio_vsock_state *st = state;
	const struct virtio_vsock *v = s->dev;
	if (st->guest_cid != v->guest_cid) {
		snprintf(err, errlen, "guest CID %llu, the snapshot's was %llu",
			 (unsigned long long)v->guest_cid, (unsigned long long)st->guest_cid);
		return -EINVAL;
	}
	return 0;
}

void virtio_vsock_persist_after_restore(struct virtio_slot *s)
{
	/* The host ends of every connection are gone: the guest must drop its ends too. */
	int err = virtio_vsock_transport_reset(s->dev);
	if (err && err != -ENODEV)
		log_warn("%s: cannot post the transport reset event: %s", s->mmio.name,
			 err == -ENOSPC ? "no event buffer" : strerror(-err));
}

/* ---- the set --------------------------------------------------------------------------- */

int virtio_set_save(struct virtio_set *set, struct snap_writer *w)
{
	for (unsigned i = 0; i < set->nr; i++) {
		struct virtio_slot *s = set->slot[i];
		struct slot_state ss;
		memset(&ss, 0, sizeof(ss));
		/* The device first: finishing its requests moves the transport's queues. */
		int err = s->kind->save(s, &ss.dev);
		if (err)
			return err;
		virtio_mmio_save(&s->mmio, &ss.mmio);
		err = snap_put(w, SNAP_SEC_VIRTIO, i, &ss, sizeof(ss.mmio) + s->kind->state_size);
		if (err)
			return err;
	}
	return 0;
}

/* Every chain counted in flight by the ring indices is one the device took back. */
static int check_inflight(const struct virtio_mmio *t, char *err, size_t errlen)
{
	for (unsigned i = 0; i < t->ops->nr_queues; i++) {
		const struct virtq *q = &t->vq[i];
		uint16_t popped = (uint16_t)(q->last_avail - q->used_idx);
		if (q->ready && q->inflight != popped) {
			snprintf(err, errlen,
				 "queue %u: %u chains popped and not used, the device "
				 "holds %u",
				 i, popped, q->inflight);
			return -EINVAL;
		}
	}
	return 0;
}

int virtio_set_restore_device(struct virtio_set *set, unsigned index, const void *data, size_t len,
			      char *err, size_t errlen)
{
	if (index >= set->nr) {
		snprintf(err, errlen, "virtio device %u: this VM has %u", index, set->nr);
		return -EINVAL;
	}
	struct virtio_slot *s = set->slot[index];
	size_t want = sizeof(struct virtio_mmio_state) + s->kind->state_size;
	char why[256] = "";
	struct slot_state ss;
	int ret = -EINVAL;
	/* Another device's section is best named by what it says it is, whatever its size. */
	if (len >= sizeof(ss.mmio)) {
		memcpy(&ss.mmio, data, sizeof(ss.mmio));
		if (virtio_mmio_check_state(&s->mmio, &ss.mmio, why, sizeof(why)))
			goto out;
	}
	if (want > sizeof(ss) || len != want) {
		snprintf(why, sizeof(why), "state of %zu bytes, %zu expected", len, want);
		goto out;
	}
	memcpy(&ss, data, len);
	ret = virtio_mmio_restore(&s->mmio, &ss.mmio, why, sizeof(why));
	if (ret)
		goto out;
	ret = s->kind->restore(s, &ss.dev, why, sizeof(why));
	if (!ret)
		ret = check_inflight(&s->mmio, why, sizeof(why));
out:
	pthread_mutex_lock(&s->mmio.lock);
	if (ret)
		virtio_mmio_reset_locked(&s->mmio);
	else /* the device's state may change its config space (net: the saved MAC) */
		virtio_mmio_sync_regs_locked(&s->mmio);
	pthread_mutex_unlock(&s->mmio.lock);
	if (!ret)
		return 0;
	snprintf(err, errlen, "virtio device %u (%s): %s", index, s->mmio.name, why);
	return ret;
}

int virtio_set_restore(struct virtio_set *set, const struct snap_reader *r, char *err,
		       size_t errlen)
{
	unsigned nr = snap_count(r, SNAP_SEC_VIRTIO);
	int ret = 0;
	if (nr != set->nr) {
		snprintf(err, errlen, "the snapshot has %u virtio devices, this VM %u", nr,
			 set->nr);
		return -EINVAL;
	}
	unsigned i;
	for (i = 0; i < set->nr && !ret; i++) {
		size_t len;
		const void *data = snap_find(r, SNAP_SEC_VIRTIO, i, &len);
		if (!data) {
			snprintf(err, errlen, "virtio device %u (%s): missing from the snapshot", i,
				 set->slot[i]->mmio.name);
			ret = -EINVAL;
			break;
		}
		ret = virtio_set_restore_device(set, i, data, len, err, errlen);
	}
	/* All or nothing: the devices restored before the failure go back to reset too. */
	for (unsigned k = 0; ret && k < i; k++) {
		pthread_mutex_lock(&set->slot[k]->mmio.lock);
		virtio_mmio_reset_locked(&set->slot[k]->mmio);
		pthread_mutex_unlock(&set->slot[k]->mmio.lock);
	}
	return ret;
}

void virtio_set_after_restore(struct virtio_set *set)
{
	for (unsigned i = 0; i < set->nr; i++) {
		struct virtio_slot *s = set->slot[i];
		virtio_mmio_after_restore(&s->mmio);
		if (s->kind->after_restore)
			s->kind->after_restore(s);
	}
}
