/* The virtio devices in a snapshot (Firecracker's persist pattern): per kind, a
 * pointer-free state struct that follows the transport's (struct virtio_mmio_state) in the
 * device's SNAP_SEC_VIRTIO section, and the callbacks of the kind tables in devices.c.
 * The set-wide entry points are in devices.h. */
#ifndef KILN_VIRTIO_PERSIST_H
#define KILN_VIRTIO_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/net.h"

struct virtio_slot;

/* virtio-blk: what the guest was told (config space and feature bits); the backing file
 * given at restore must still match it. Requests are finished before saving. */
struct virtio_blk_state {
	uint64_t capacity; /* 512-byte sectors */
	uint8_t read_only;
	uint8_t writeback;
	uint8_t pad[6];
};

/* virtio-net: the MAC the guest knows (whatever the TAP is now) and the chains the device
 * held popped: RX chains waiting for a frame (the first rx_deferred of them holding one of
 * rx_deferred_len bytes that the limiter held back) and a TX chain not yet sent. A frame
 * waiting in the host's overflow buffer is not saved (the restored VM loses it). */
struct virtio_net_state {
	uint8_t mac[6];
	uint8_t tx_held;
	uint8_t tx_paid;
	uint16_t tx_head;
	uint16_t rx_nr_chains;
	uint16_t rx_deferred;
	uint16_t pad;
	uint32_t rx_deferred_len;
	uint32_t pad2;
	uint16_t rx_head[VIRTIO_NET_QUEUE_SIZE]; /* oldest first */
};

/* virtio-vsock: the guest's CID. Connections are not saved: after a restore the guest is
 * told VIRTIO_VSOCK_EVENT_TRANSPORT_RESET and drops its side of them. */
struct virtio_vsock_state {
	uint64_t guest_cid;
};

/* The kinds' snapshot callbacks (struct virtio_kind in devices.h). */
int virtio_blk_persist_save(struct virtio_slot *s, void *state);
int virtio_blk_persist_restore(struct virtio_slot *s, const void *state, char *err, size_t errlen);
int virtio_net_persist_save(struct virtio_slot *s, void *state);
int virtio_net_persist_restore(struct virtio_slot *s, const void *state, char *err, size_t errlen);
int virtio_vsock_persist_save(struct virtio_slot *s, void *state);
int virtio_vsock_persist_restore(struct virtio_slot *s, const void *state, char *err,
				 size_t errlen);
void virtio_vsock_persist_after_restore(struct virtio_slot *s);

#endif
