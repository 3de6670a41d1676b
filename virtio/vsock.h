/* virtio-vsock (virtio 1.x 5.10): the device model. Queues rx (0), tx (1) and event (2);
 * the config space is the guest's CID. Guest packets are checked (vsock_pkt.c) and handed
 * to the host-side muxer (vsock_uds.c), which answers through the rx queue. Work the host
 * side starts (a socket became readable, a timer fired) runs under the transport lock via
 * virtio_mmio_run(), so every callback and handler here is serialized. */
#ifndef KILN_VIRTIO_VSOCK_H
#define KILN_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/mmio.h"
#include "virtio/virtq.h"
#include "virtio/vsock_pkt.h"
#include "virtio/vsock_uds.h"
#include "vmm/config.h"
#include "vmm/evloop.h"
#include "vmm/log.h"

#define VIRTIO_VSOCK_QUEUE_SIZE 256
#define VIRTIO_VSOCK_CONFIG_BYTES 8 /* le64 guest_cid */
enum { VIRTIO_VSOCK_RXQ = 0, VIRTIO_VSOCK_TXQ = 1, VIRTIO_VSOCK_EVQ = 2 };

struct virtio_vsock {
	struct virtio_mmio *transport; /* set by the caller before the device can go live */
	uint64_t guest_cid;
	uint8_t config[VIRTIO_VSOCK_CONFIG_BYTES];
	struct vsock_uds mux;
	struct log_ratelimit rl;
	struct virtq_seg segs[VIRTQ_MAX_SEGS];
	struct vsock_iov iov;
};

/* Binds cfg->uds_path (see vsock_uds_open(): an existing path is an error) for the guest
 * cfg->guest_cid; host sockets are watched by `loop`. v->transport must be set before the
 * loop runs. 0, or -errno with one line in err naming the key and path. */
int virtio_vsock_open(struct virtio_vsock *v, const struct vsock_cfg *cfg, struct evloop *loop,
		      char *err, size_t errlen);

/* Closes every host socket and unlinks uds_path; safe on a failed or closed device. */
void virtio_vsock_close(struct virtio_vsock *v);

/* The device model for virtio_mmio_init(); `dev` is the struct virtio_vsock. */
extern const struct virtio_dev_ops virtio_vsock_ops;

/* Sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (after a snapshot restore, say): every
 * connection is dropped (the guest resets its sockets and rereads its CID) and the event
 * goes into the next event-queue buffer, with an interrupt. 0; -ENODEV when the device is
 * not live; -ENOSPC when the driver left no event buffer (connections are dropped anyway). */
int virtio_vsock_transport_reset(struct virtio_vsock *v);

#endif
