#include "virtio/vsock.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <string.h>

#define LOG_INTERVAL_NS 1000000000ULL

/* A host event on its way into the device: which source, what epoll said. */
struct host_event {
	struct vsock_src *src;
	uint32_t events;
};

/* Fills rx buffers with what the muxer has for the guest until either runs out. When the
 * buffers run out first, the driver is asked to notify on the next one it adds. */
static int process_rx(struct virtio_vsock *v, struct virtq *vq, bool *need_irq)
{
	struct virtq *q = &vq[VIRTIO_VSOCK_RXQ];
	struct vsock_rx_job job;
	struct virtq_chain c;
	int err = 0;
	for (unsigned done = 0; q->ready; done++) {
		/* Before taking a job: vsock_uds_next_rx() hands it over (credit updates, RSTs). */
		if (done == VIRTQ_BUDGET) {
			virtq_requeue(q);
			break;
		}
		if (vsock_uds_next_rx(&v->mux, &job) != 0)
			break;
		err = virtq_pop(q, v->segs, VIRTQ_MAX_SEGS, &c);
		if (err == -EAGAIN && virtq_enable_notify(q))
			continue;
		if (err)
			break;
		int64_t room = vsock_pkt_rx_room(v->segs, &c);
		if (room < 0) {
			/* Not a buffer a header fits in: handed back empty, the packet waits. */
			v->mux.stats.rx_bad_chains++;
			if ((err = virtq_push_used(q, c.head, 0)))
				break;
			continue;
		}
		uint32_t limit = vsock_uds_rx_limit(&v->mux, &job);
		struct vsock_hdr h;
		uint8_t raw[VSOCK_HDR_BYTES];
		vsock_sg_slice(v->segs, c.nr_segs, VSOCK_HDR_BYTES,
			       limit < (uint64_t)room ? limit : (uint32_t)room, &v->iov);
		vsock_uds_fill_rx(&v->mux, &job, &h, &v->iov);
		vsock_hdr_encode(&h, raw);
		vsock_sg_write(v->segs, c.nr_segs, 0, raw, VSOCK_HDR_BYTES);
		if ((err = virtq_push_used(q, c.head, VSOCK_HDR_BYTES + h.len)))
			break;
	}
	*need_irq |= virtq_should_notify(q);
	return err == -EAGAIN ? 0 : err;
}

static const char *verdict_name(enum vsock_verdict v)
{
	switch (v) {
	case VSOCK_PKT_DROP_SHORT:
		return "shorter than its header";
	case VSOCK_PKT_DROP_CID:
		return "wrong source or destination CID";
	case VSOCK_PKT_RST_LEN:
		return "bad length";
	case VSOCK_PKT_RST_TYPE:
		return "not a stream";
	case VSOCK_PKT_RST_OP:
		return "unknown op";
	default:
		return "ok";
	}
}

/* Hands every available tx packet to the muxer; tx buffers are always returned at once. */
static int process_tx(struct virtio_vsock *v, struct virtq *vq, bool *need_irq)
{
	struct virtq *q = &vq[VIRTIO_VSOCK_TXQ];
	struct virtq_chain c;
	int err;
	unsigned done = 0;
	for (;;) {
		while ((err = virtq_pop(q, v->segs, VIRTQ_MAX_SEGS, &c)) == 0) {
			struct vsock_hdr h;
			enum vsock_verdict verdict =
			    vsock_pkt_parse_tx(v->segs, &c, v->guest_cid, &h, &v->iov);
			if (verdict != VSOCK_PKT_OK && log_ratelimit_ok(&v->rl, LOG_INTERVAL_NS))
				log_warn("vsock %s: guest packet dropped: %s (op %s, len %u)",
					 v->mux.path, verdict_name(verdict), vsock_op_name(h.op),
					 h.len);
			vsock_uds_send(&v->mux, verdict, &h, &v->iov);
			if ((err = virtq_push_used(q, c.head, 0)))
				goto out;
			if (++done == VIRTQ_BUDGET) {
				virtq_requeue(q);
				goto out;
			}
		}
		if (err != -EAGAIN)
			goto out;
		err = 0;
		if (!virtq_enable_notify(q))
			break;
	}
out:
	*need_irq |= virtq_should_notify(q);
	return err;
}

static int vsock_queue_notify(void *dev, struct virtq *q, unsigned idx, bool *need_irq)
{
	struct virtio_vsock *v = dev;
	struct virtq *vq = q - idx; /* q is &vq[idx] of the transport's queue array */
	int err = 0;
	if (idx == VIRTIO_VSOCK_TXQ)
		err = process_tx(v, vq, need_irq);
	/* New rx buffers, or answers to what the guest just sent. */
	if (!err && idx != VIRTIO_VSOCK_EVQ)
		err = process_rx(v, vq, need_irq);
	return err;
}

static int host_work(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	struct virtio_vsock *v = dev;
	struct host_event *e = arg;
	if (!vq) {
		vsock_uds_quiesce(&v->mux, e->src);
		return 0;
	}
	/* A writable host socket takes buffered guest data (tx), a readable one gives rx. */
	vsock_uds_on_event(&v->mux, e->src, e->events);
	return process_rx(v, vq, need_irq);
}

/* The event-loop handler of every host socket and the timer (ctx: its struct vsock_src). */
static void on_host_event(void *ctx, uint32_t events)
{
	struct host_event e = {.src = ctx, .events = events};
	struct vsock_uds *mux = e.src->mux;
	struct virtio_vsock *v =
	    (struct virtio_vsock *)((char *)mux - offsetof(struct virtio_vsock, mux));
	virtio_mmio_run(v->transport, host_work, &e);
}

int virtio_vsock_open(struct virtio_vsock *v, const struct vsock_cfg *cfg, struct evloop *loop,
		      char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->guest_cid = cfg->guest_cid;
	for (unsigned i = 0; i < VIRTIO_VSOCK_CONFIG_BYTES; i++)
		v->config[i] = v->guest_cid >> (8 * i);
	return vsock_uds_open(&v->mux, cfg->uds_path, cfg->guest_cid, loop, on_host_event, err,
			      errlen);
}

void virtio_vsock_close(struct virtio_vsock *v)
{
	vsock_uds_close(&v->mux);
}

struct reset_event {
	int result;
};

static int transport_reset_work(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	struct virtio_vsock *v = dev;
	struct reset_event *r = arg;
	struct virtq_chain c;
	if (!vq) {
		r->result = -ENODEV;
		return 0;
	}
	vsock_uds_drop_conns(&v->mux);
	struct virtq *q = &vq[VIRTIO_VSOCK_EVQ];
	int err = q->ready ? virtq_pop(q, v->segs, VIRTQ_MAX_SEGS, &c) : -EAGAIN;
	if (err) {
		r->result = err == -EAGAIN ? -ENOSPC : err;
		return err == -EAGAIN ? 0 : err;
	}
	uint8_t id[4] = {VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0};
	uint32_t len = c.nr_read == 0 && c.write_len >= sizeof(id) ? sizeof(id) : 0;
	if (len)
		vsock_sg_write(v->segs, c.nr_segs, 0, id, len);
	r->result = len ? 0 : -EINVAL;
	err = virtq_push_used(q, c.head, len);
	*need_irq |= virtq_should_notify(q);
	return err;
}

int virtio_vsock_transport_reset(struct virtio_vsock *v)
{
	struct reset_event r = {.result = 0};
	virtio_mmio_run(v->transport, transport_reset_work, &r);
	return r.result;
}

static uint64_t vsock_features(const void *dev)
{
	(void)dev;
	return 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_RING_F_EVENT_IDX |
	       1ULL << VIRTIO_RING_F_INDIRECT_DESC;
}

static void vsock_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_vsock *v = dev;
	memcpy(data, v->config + off, len);
}

static int vsock_activate(void *dev, uint64_t features, struct virtq *vq)
{
	struct virtio_vsock *v = dev;
	(void)features;
	if (!vq[VIRTIO_VSOCK_RXQ].ready || !vq[VIRTIO_VSOCK_TXQ].ready)
		return -EINVAL;
	vsock_uds_activate(&v->mux);
	return 0;
}

static void vsock_reset(void *dev)
{
	struct virtio_vsock *v = dev;
	vsock_uds_reset(&v->mux);
}

const struct virtio_dev_ops virtio_vsock_ops = {
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .nr_queues = 3,
    .queue_max_size = VIRTIO_VSOCK_QUEUE_SIZE,
    .config_size = VIRTIO_VSOCK_CONFIG_BYTES,
    .features = vsock_features,
    .config_read = vsock_config_read,
    .activate = vsock_activate,
    .reset = vsock_reset,
    .queue_notify = vsock_queue_notify,
};
