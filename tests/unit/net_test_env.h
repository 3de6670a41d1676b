/* Test-side driver for virtio-net: an RX and a TX ring in one fake guest memory, a
 * virtio_net on one end of a SOCK_DGRAM socketpair (the test holds the other end, `peer`,
 * and plays the host network), and helpers that post buffers and frames the way a guest
 * driver would. Header-only, shared by test_net.c, test_net_tap.c, the fuzzer and
 * bench/net.c; failures abort (no cmocka dependency). */
#ifndef KILN_NET_TEST_ENV_H
#define KILN_NET_TEST_ENV_H

#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/virtio_test_ring.h"
#include "virtio/net.h"

#define NENV_RAM (8ULL << 20)
#define NENV_QSIZE 64
#define NENV_TX_RING_GPA 0x20000ULL
#define NENV_TX_DATA_GPA (4ULL << 20) /* RX buffers below, TX buffers above */
#define NF_BIT(b) (1ULL << (b))
#define NENV_F_BASE                                                                                \
	(NF_BIT(VIRTIO_F_VERSION_1) | NF_BIT(VIRTIO_RING_F_EVENT_IDX) |                            \
	 NF_BIT(VIRTIO_RING_F_INDIRECT_DESC) | NF_BIT(VIRTIO_NET_F_CSUM) |                         \
	 NF_BIT(VIRTIO_NET_F_GUEST_CSUM))
#define NENV_F_MRG (NENV_F_BASE | NF_BIT(VIRTIO_NET_F_MRG_RXBUF))
#define NENV_F_GSO                                                                                 \
	(NENV_F_MRG | NF_BIT(VIRTIO_NET_F_GUEST_TSO4) | NF_BIT(VIRTIO_NET_F_GUEST_TSO6) |          \
	 NF_BIT(VIRTIO_NET_F_HOST_TSO4) | NF_BIT(VIRTIO_NET_F_HOST_TSO6))

struct nenv {
	struct tring rx, tx; /* tx shares rx's guest memory */
	struct virtq vq[2];  /* the device's queues, as the transport would hold them */
	struct virtio_net n;
	int peer;
	uint16_t rx_desc, tx_desc; /* next free descriptor of each ring */
};

/* Queue q's ring programmed on `r` and set up with the features. */
static inline void nenv_queue(struct nenv *e, struct tring *r, unsigned q, uint64_t features)
{
	struct virtq *vq = &e->vq[q];
	virtq_reset(vq);
	vq->max_size = NENV_QSIZE;
	vq->num = r->size;
	vq->desc_gpa = r->desc_gpa;
	vq->avail_gpa = r->avail_gpa;
	vq->used_gpa = r->used_gpa;
	tring_check(virtq_setup(vq, &e->rx.gm, features) == 0, "virtq_setup");
}

/* Rings and a device on a socketpair; nc may be NULL. Activated with `features` unless 0. */
static inline void nenv_init(struct nenv *e, const struct net_cfg *nc, uint64_t features)
{
	memset(e, 0, sizeof(*e));
	tring_layout(&e->rx, NENV_RAM, NENV_QSIZE);
	e->tx = e->rx;
	e->tx.desc_gpa = NENV_TX_RING_GPA;
	e->tx.avail_gpa = e->tx.desc_gpa + 16ULL * NENV_QSIZE;
	e->tx.used_gpa = (e->tx.avail_gpa + 6 + 2ULL * NENV_QSIZE + 3) & ~3ULL;
	e->tx.data_next = NENV_TX_DATA_GPA;
	int sv[2];
	tring_check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	tring_check(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	tring_check(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	e->peer = sv[1];
	tring_check(virtio_net_init_fd(&e->n, sv[0], nc) == 0, "virtio_net_init_fd");
	if (!features)
		return;
	nenv_queue(e, &e->rx, VIRTIO_NET_RXQ, features);
	nenv_queue(e, &e->tx, VIRTIO_NET_TXQ, features);
	tring_check(virtio_net_ops.activate(&e->n, features, e->vq) == 0, "activate");
}

static inline void nenv_free(struct nenv *e)
{
	virtio_net_close(&e->n);
	if (e->peer >= 0)
		close(e->peer);
	e->peer = -1;
	tring_free(&e->rx);
}

/* A device-writable RX chain of nseg descriptors of seglen bytes each; returns its head. */
static inline uint16_t nenv_rx_post(struct nenv *e, unsigned nseg, uint32_t seglen)
{
	uint16_t head = e->rx_desc;
	for (unsigned i = 0; i < nseg; i++) {
		uint16_t d = (uint16_t)((head + i) % NENV_QSIZE);
		uint16_t next = (uint16_t)((d + 1) % NENV_QSIZE);
		uint16_t flags = VRING_DESC_F_WRITE | (i + 1 < nseg ? VRING_DESC_F_NEXT : 0);
		tring_desc(&e->rx, d, tring_alloc(&e->rx, seglen), seglen, flags, next);
	}
	e->rx_desc = (uint16_t)((head + nseg) % NENV_QSIZE);
	tring_publish(&e->rx, head);
	return head;
}

/* Guest address of descriptor d's buffer in ring r. */
static inline uint64_t nenv_desc_addr(struct tring *r, uint16_t d)
{
	uint64_t a;
	memcpy(&a, tring_host(r, r->desc_gpa + 16ULL * d, 8), 8);
	return a;
}

/* A virtio header (flags, gso_type, gso_size, csum_start, csum_offset) in 12 bytes. */
static inline void nenv_hdr(uint8_t *h, uint8_t flags, uint8_t gso, uint16_t gso_size,
			    uint16_t csum_start, uint16_t csum_off)
{
	memset(h, 0, VIRTIO_NET_HDR_BYTES);
	h[0] = flags;
	h[1] = gso;
	memcpy(h + 4, &gso_size, 2);
	memcpy(h + 6, &csum_start, 2);
	memcpy(h + 8, &csum_off, 2);
}

static inline uint8_t nenv_byte(uint32_t i, uint32_t seed)
{
	return (uint8_t)(i * 31 + seed + (i >> 8));
}

/* A TX chain holding header + frame bytes nenv_byte(i, seed) for i < len - 12, split into
 * descriptors of the given sizes (their sum is len); returns the head. */
static inline uint16_t nenv_tx_post(struct nenv *e, const uint8_t *hdr, uint32_t len,
				    const uint32_t *split, unsigned nsplit, uint32_t seed)
{
	uint16_t head = e->tx_desc;
	uint32_t off = 0;
	for (unsigned i = 0; i < nsplit; i++) {
		uint16_t d = (uint16_t)((head + i) % NENV_QSIZE);
		uint64_t gpa = tring_alloc(&e->tx, split[i] ? split[i] : 1);
		uint8_t *p = tring_host(&e->tx, gpa, split[i]);
		for (uint32_t k = 0; k < split[i]; k++, off++)
			p[k] = off < VIRTIO_NET_HDR_BYTES
				   ? hdr[off]
				   : nenv_byte(off - VIRTIO_NET_HDR_BYTES, seed);
		tring_desc(&e->tx, d, gpa, split[i], i + 1 < nsplit ? VRING_DESC_F_NEXT : 0,
			   (uint16_t)((d + 1) % NENV_QSIZE));
	}
	tring_check(off == len, "split does not add up");
	e->tx_desc = (uint16_t)((head + nsplit) % NENV_QSIZE);
	tring_publish(&e->tx, head);
	return head;
}

/* The host sends a datagram: header (zeroed) + len - 12 frame bytes. */
static inline void nenv_peer_send(struct nenv *e, uint32_t len, uint32_t seed)
{
	static uint8_t buf[VIRTIO_NET_MAX_FRAME + 64];
	tring_check(len <= sizeof(buf), "frame too big");
	memset(buf, 0, VIRTIO_NET_HDR_BYTES < len ? VIRTIO_NET_HDR_BYTES : len);
	for (uint32_t i = VIRTIO_NET_HDR_BYTES; i < len; i++)
		buf[i] = nenv_byte(i - VIRTIO_NET_HDR_BYTES, seed);
	tring_check(send(e->peer, buf, len, 0) == (ssize_t)len, "peer send");
}

#endif
