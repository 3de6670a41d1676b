/* The kinds of virtio device a set holds: for each, the const table through which the set
 * (virtio/devices.c), the metrics and snapshots reach a device without knowing its type. */
#include <stdlib.h>
#include <string.h>

#include "virtio/devices.h"
#include "virtio/persist.h"
#include "vmm/metrics.h"

static bool blk_has_id(const void *dev, const char *id)
{
	const struct virtio_blk *b = dev;
	return !strncmp(b->id, id, sizeof(b->id));
}

static void blk_destroy(void *dev)
{
	virtio_blk_close(dev);
	free(dev);
}

static void blk_counters(const void *dev, uint64_t *c)
{
	const struct virtio_blk_stats *st = &((const struct virtio_blk *)dev)->stats;
	const uint64_t v[BLK_NR_COUNTERS] = {st->reads,	     st->writes,      st->flushes,
					     st->read_bytes, st->write_bytes, st->io_errors};
	memcpy(c, v, sizeof(v));
}

static int blk_update_limiter(void *dev, const struct rate_limiter_cfg lim[2])
{
	return ratelimit_update(&((struct virtio_blk *)dev)->limiter, &lim[0]);
}

static int blk_swap_backing(void *dev, int fd, uint64_t bytes)
{
	return virtio_blk_swap_backing(dev, fd, bytes);
}

const struct virtio_kind virtio_kind_blk = {
    .type = VIRTIO_KIND_BLK,
    .dev_ops = &virtio_blk_ops,
    .has_id = blk_has_id,
    .destroy = blk_destroy,
    .counters = blk_counters,
    .update_limiter = blk_update_limiter,
    .swap_backing = blk_swap_backing,
    .state_size = sizeof(struct virtio_blk_state),
    .save = virtio_blk_persist_save,
    .restore = virtio_blk_persist_restore,
};

static bool net_has_id(const void *dev, const char *id)
{
	return !strcmp(((const struct virtio_net *)dev)->id, id);
}

static void net_destroy(void *dev)
{
	virtio_net_close(dev);
	free(dev);
}

static void net_counters(const void *dev, uint64_t *c)
{
	const struct virtio_net_stats *st = &((const struct virtio_net *)dev)->stats;
	const uint64_t v[NET_NR_COUNTERS] = {st->rx_bytes,     st->rx_frames,	st->rx_drops,
					     st->tx_bytes,     st->tx_frames,	st->tx_drops,
					     st->rx_throttled, st->tx_throttled};
	memcpy(c, v, sizeof(v));
}

static int net_update_limiter(void *dev, const struct rate_limiter_cfg lim[2])
{
	struct virtio_net *n = dev;
	int err = ratelimit_update(&n->rx_rl, &lim[0]);
	return err ? err : ratelimit_update(&n->tx_rl, &lim[1]);
}

const struct virtio_kind virtio_kind_net = {
    .type = VIRTIO_KIND_NET,
    .dev_ops = &virtio_net_ops,
    .has_id = net_has_id,
    .destroy = net_destroy,
    .counters = net_counters,
    .update_limiter = net_update_limiter,
    .state_size = sizeof(struct virtio_net_state),
    .save = virtio_net_persist_save,
    .restore = virtio_net_persist_restore,
};

static void vsock_destroy(void *dev)
{
	virtio_vsock_close(dev);
	free(dev);
}

static void vsock_counters(const void *dev, uint64_t *c)
{
	const struct vsock_stats *st = &((const struct virtio_vsock *)dev)->mux.stats;
	const uint64_t v[VSOCK_NR_COUNTERS] = {
	    st->rx_packets,  st->tx_packets,	st->rx_bytes,	   st->tx_bytes,
	    st->conns_added, st->conns_removed, st->conns_refused, st->malformed};
	memcpy(c, v, sizeof(v));
}

const struct virtio_kind virtio_kind_vsock = {
    .type = VIRTIO_KIND_VSOCK,
    .dev_ops = &virtio_vsock_ops,
    .destroy = vsock_destroy,
    .counters = vsock_counters,
    .state_size = sizeof(struct virtio_vsock_state),
    .save = virtio_vsock_persist_save,
    .restore = virtio_vsock_persist_restore,
    .after_restore = virtio_vsock_persist_after_restore,
};
