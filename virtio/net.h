/* virtio-net (virtio 1.x 5.1) on a host TAP device: queue 0 receives, queue 1 transmits,
 * no control queue. Frames move straight between the TAP and guest buffers (readv/writev
 * with IFF_VNET_HDR, so the 12-byte virtio_net_hdr_v1 crosses as is and checksum/TSO
 * offloads work end to end).
 *
 * RX reads a frame only into guest buffers it holds and pauses the TAP in the event loop
 * while the guest has none, so frames wait in the TAP's own queue, never in kiln. Without
 * MRG_RXBUF a frame goes into one chain and is dropped (and counted) if larger. With it,
 * the device pops chains until they cover the largest frame the negotiated offloads allow
 * (or the ring is empty), then reads into all of them; every read ends with a host
 * overflow buffer. A frame that reaches it (the guest had posted too little) waits there,
 * the TAP paused, until the guest adds buffers, and is dropped only if the whole ring
 * cannot hold it: at most one frame is ever held on the host, and nothing is delivered
 * truncated whatever length the kernel reports for a cut-off read. TX writes one chain
 * per frame.
 *
 * Rate limiters (config rx_rate_limiter/tx_rate_limiter) count Ethernet bytes (without the
 * virtio header) and frames. A refused RX frame waits in the guest buffers it was read
 * into, a refused TX chain stays popped; both resume on the limiter's timer. */
#ifndef KILN_VIRTIO_NET_H
#define KILN_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/mmio.h"
#include "virtio/ratelimit.h"
#include "virtio/virtq.h"
#include "vmm/config.h"
#include "vmm/evloop.h"
#include "vmm/log.h"

#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_HDR_BYTES 12 /* struct virtio_net_hdr_v1 */
/* The largest frame with its header: a 64 KiB GSO frame plus Ethernet and virtio headers. */
#define VIRTIO_NET_MAX_FRAME 65562
#define VIRTIO_NET_CONFIG_BYTES 10 /* mac, status, max_virtqueue_pairs */
/* Popped RX chains are held until they cover a frame; their iovecs live here. */
#define VIRTIO_NET_RX_IOVS (2 * VIRTQ_MAX_SEGS)

struct virtio_net_stats {
	uint64_t rx_bytes; /* Ethernet bytes delivered to the guest */
	uint64_t rx_frames;
	uint64_t rx_drops;	/* frames read from the TAP that did not fit or were runts */
	uint64_t rx_bad_chains; /* guest RX chains returned unused: not device-writable */
	uint64_t rx_errors;	/* TAP read errors */
	uint64_t tx_bytes;	/* Ethernet bytes written to the TAP */
	uint64_t tx_frames;
	uint64_t tx_drops;     /* malformed, oversized or bad-header chains, TAP write errors */
	uint64_t rx_throttled; /* frames delayed by the RX limiter */
	uint64_t tx_throttled;
};

/* A popped RX chain the device holds: iovecs rx_iov[first, first + nr_iov). */
struct virtio_net_rx_chain {
	uint16_t head;
	uint32_t cap; /* bytes the chain can take */
	unsigned nr_iov;
};

/* Why the device's work function runs (the arg of virtio_mmio_run()). */
struct virtio_net_event {
	int source; /* VIRTIO_NET_EV_* */
	uint32_t events;
};

enum { VIRTIO_NET_EV_TAP, VIRTIO_NET_EV_RX_TIMER, VIRTIO_NET_EV_TX_TIMER };

/* An event-loop source of the device. */
struct virtio_net_src {
	struct ev_source src;
	struct virtio_net *net;
	int source;
};

struct virtio_net {
	int tap_fd;
	bool tap_is_socket; /* a datagram socket stands in for the TAP (tests, bench) */
	char id[CONFIG_ID_MAX + 1]; /* iface_id */
	char name[CONFIG_ID_MAX + 16];
	uint8_t mac[6];
	uint16_t mtu; /* of the host interface: sizes RX buffers without GSO */
	uint8_t config[VIRTIO_NET_CONFIG_BYTES];
	uint64_t features; /* accepted by the driver, valid while active */
	bool active;
	/* Event loop wiring (virtio_net_attach); loop NULL: only tap_events is tracked. */
	struct evloop *loop;
	struct virtio_mmio *transport;
	struct virtio_net_src tap_src, rx_timer_src, tx_timer_src;
	uint32_t tap_events; /* EPOLLIN/EPOLLOUT the TAP is watched for */
	bool tap_broken;     /* the TAP reported an error and is no longer watched */
	struct ratelimit rx_rl, tx_rl;
	/* RX: held chains, oldest first; chains [0, rx_deferred) hold a frame of
	 * rx_deferred_len bytes that the limiter refused. */
	struct virtio_net_rx_chain rx_chain[VIRTIO_NET_QUEUE_SIZE];
	unsigned rx_nr_chains;
	unsigned rx_nr_iov;
	uint64_t rx_cap;
	unsigned rx_deferred;
	uint32_t rx_deferred_len;
	uint32_t rx_spill_len; /* a frame whose tail is in rx_overflow, 0 if none */
	uint64_t rx_spill_at;  /* where that tail belongs in the frame */
	bool rx_want_tap;      /* RX has buffers and waits for the TAP */
	/* TX: a popped chain not yet written (limiter or TAP full). */
	bool tx_held;
	bool tx_paid;	  /* the limiter already admitted the held chain */
	bool tx_want_tap; /* the TAP was full: wait for EPOLLOUT */
	uint16_t tx_head;
	uint32_t tx_len;
	unsigned tx_nr_iov;
	struct virtio_net_stats stats;
	struct log_ratelimit log_rl;
	struct virtq_seg segs[VIRTQ_MAX_SEGS];
	uint8_t tx_hdr[VIRTIO_NET_HDR_BYTES];	     /* the held chain's header, as checked */
	struct iovec tx_iov[VIRTQ_MAX_SEGS + 1];     /* the header copy, then the frame */
	struct iovec rx_iov[VIRTIO_NET_RX_IOVS + 1]; /* + the overflow buffer */
	uint8_t rx_overflow[VIRTIO_NET_MAX_FRAME];
};

/* Attaches to the TAP nc->host_dev_name (which must exist: kiln never creates one) with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking, and prepares the device: MAC from
 * guest_mac or derived from iface_id and host_dev_name (stable, locally administered),
 * rate limiters from the config. `index` is the entry in network-interfaces, for errors:
 * 0, or -errno with one line in err such as
 * "network-interfaces[0].host_dev_name: tap0: no such network device". */
int virtio_net_open(struct virtio_net *n, const struct net_cfg *nc, unsigned index, char *err,
		    size_t errlen);

/* Prepares the device on an already open fd (a TAP with IFF_VNET_HDR and a 12-byte header,
 * or a datagram socket carrying header + frame per datagram), which it then owns. `nc`
 * supplies MAC and limiters (NULL: none). 0 or -errno. */
int virtio_net_init_fd(struct virtio_net *n, int fd, const struct net_cfg *nc);

/* Registers the TAP (paused) and the limiter timers on `loop`; from then on host events
 * run the device through virtio_mmio_run(t). 0 or -errno. */
int virtio_net_attach(struct virtio_net *n, struct evloop *loop, struct virtio_mmio *t);

/* Unregisters from the loop and closes the TAP and timers; safe after any virtio_net_open()
 * or virtio_net_init_fd(), even a failed one, and twice. */
void virtio_net_close(struct virtio_net *n);

/* The device model for virtio_mmio_init(); `dev` is the struct virtio_net. */
extern const struct virtio_dev_ops virtio_net_ops;

/* RX work, transport lock held: publishes a deferred frame if the limiter admits it now,
 * then reads frames from the TAP into the guest's buffers until the TAP is empty, the
 * guest has no buffers (the TAP is paused until the next RX notification) or the limiter
 * refuses. 0, or -errno when the driver broke the queue. */
int virtio_net_rx(struct virtio_net *n, struct virtq *rxq, bool *need_irq);

/* TX work, transport lock held: writes every available chain to the TAP (dropping and
 * counting malformed ones) until the ring is empty, the limiter refuses or the TAP is full
 * (then EPOLLOUT resumes it). 0, or -errno when the driver broke the queue. */
int virtio_net_tx(struct virtio_net *n, struct virtq *txq, bool *need_irq);

/* Snapshot restore: takes chain c, just re-taken with virtq_retake() into n->segs, as the
 * next held RX chain (after those held already), as RX would have held it: the device
 * active, the chain device-writable and not empty, room for it, one chain at most without
 * MRG_RXBUF. 0 or -EINVAL. */
int virtio_net_hold_rx(struct virtio_net *n, const struct virtq *rxq, const struct virtq_chain *c);

/* The same for the held TX chain (`paid`: the limiter already admitted it): -EINVAL when the
 * device is not active, holds one already, or TX would drop the chain. */
int virtio_net_hold_tx(struct virtio_net *n, const struct virtq_chain *c, bool paid);

/* Watches the TAP for what RX (EPOLLIN: it holds buffers) and TX (EPOLLOUT: the TAP was
 * full) wait for; nothing while the device is not active. */
void virtio_net_watch_tap(struct virtio_net *n);

/* Device-initiated work for virtio_mmio_run(): `arg` is a struct virtio_net_event. */
int virtio_net_work(void *dev, struct virtq *vq, void *arg, bool *need_irq);

/* Checks the header at the start of a TX frame of `len` bytes (header included) against
 * the negotiated `features`: only NEEDS_CSUM in flags (and only with CSUM), a checksum
 * position inside the frame, a GSO type the driver may send with NEEDS_CSUM and a
 * gso_size. Pure. */
bool virtio_net_tx_hdr_ok(const uint8_t hdr[VIRTIO_NET_HDR_BYTES], uint32_t len, uint64_t features);

/* TUNSETOFFLOAD flags for what the driver accepted: the TAP may hand over only frames the
 * guest can take (partial checksums with GUEST_CSUM, TSO4/6, UFO). */
unsigned virtio_net_tap_offloads(uint64_t features);

#endif
