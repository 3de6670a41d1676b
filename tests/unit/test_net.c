#include <errno.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <cmocka.h>

#include "tests/unit/net_test_env.h"

#define HDR VIRTIO_NET_HDR_BYTES

static int setup_base(void **state)
{
	struct nenv *e = calloc(1, sizeof(*e));
	nenv_init(e, NULL, NENV_F_BASE);
	*state = e;
	return 0;
}

static int setup_mrg(void **state)
{
	struct nenv *e = calloc(1, sizeof(*e));
	nenv_init(e, NULL, NENV_F_MRG);
	*state = e;
	return 0;
}

static int setup_gso(void **state)
{
	struct nenv *e = calloc(1, sizeof(*e));
	nenv_init(e, NULL, NENV_F_GSO);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct nenv *e = *state;
	nenv_free(e);
	free(e);
	return 0;
}

static int rx(struct nenv *e, bool *irq)
{
	bool dummy;
	return virtio_net_rx(&e->n, &e->vq[VIRTIO_NET_RXQ], irq ? irq : &dummy);
}

static int tx(struct nenv *e, bool *irq)
{
	bool dummy;
	return virtio_net_tx(&e->n, &e->vq[VIRTIO_NET_TXQ], irq ? irq : &dummy);
}

/* Used element i of ring r must be (head, len). */
static void expect_used(struct tring *r, uint16_t i, uint16_t head, uint32_t len)
{
	uint32_t id, l;
	tring_used_elem(r, i, &id, &l);
	assert_int_equal(id, head);
	assert_int_equal(l, len);
}

/* The frame bytes in a one-descriptor RX chain match what the peer sent. */
static void expect_frame(struct nenv *e, uint16_t desc, uint32_t len, uint32_t seed,
			 uint16_t num_buffers)
{
	const uint8_t *p = tring_host(&e->rx, nenv_desc_addr(&e->rx, desc), len);
	uint16_t nb;
	memcpy(&nb, p + 10, 2);
	assert_int_equal(nb, num_buffers);
	for (uint32_t i = HDR; i < len; i++)
		assert_int_equal(p[i], nenv_byte(i - HDR, seed));
}

static void test_features_and_config(void **state)
{
	struct nenv *e = *state;
	uint64_t f = virtio_net_ops.features(&e->n);
	uint64_t want = NENV_F_GSO | NF_BIT(VIRTIO_NET_F_MAC) | NF_BIT(VIRTIO_NET_F_STATUS) |
			NF_BIT(VIRTIO_NET_F_HOST_UFO) | NF_BIT(VIRTIO_NET_F_GUEST_UFO);
	assert_int_equal(f & want, want);
	assert_false(f & NF_BIT(VIRTIO_NET_F_CTRL_VQ));
	assert_false(f & NF_BIT(VIRTIO_NET_F_GUEST_ECN));
	uint8_t cfg[VIRTIO_NET_CONFIG_BYTES];
	for (uint32_t i = 0; i < sizeof(cfg); i++)
		virtio_net_ops.config_read(&e->n, i, cfg + i, 1);
	assert_true(cfg[0] & 2);     /* locally administered */
	assert_false(cfg[0] & 1);    /* unicast */
	assert_int_equal(cfg[6], 1); /* VIRTIO_NET_S_LINK_UP */
	assert_int_equal(cfg[8], 1); /* one queue pair */
	assert_int_equal(virtio_net_ops.nr_queues, 2);

	/* guest_mac wins; without it the MAC is derived from the names, stably. */
	struct net_cfg nc = {.id = "eth0", .host_dev_name = "tap0"};
	struct virtio_net *a = calloc(2, sizeof(*a));
	assert_int_equal(virtio_net_init_fd(&a[0], dup(e->peer), &nc), 0);
	assert_int_equal(virtio_net_init_fd(&a[1], dup(e->peer), &nc), 0);
	assert_memory_equal(a[0].mac, a[1].mac, 6);
	virtio_net_close(&a[1]);
	snprintf(nc.host_dev_name, sizeof(nc.host_dev_name), "tap1");
	assert_int_equal(virtio_net_init_fd(&a[1], dup(e->peer), &nc), 0);
	assert_memory_not_equal(a[0].mac, a[1].mac, 6);
	virtio_net_close(&a[1]);
	nc.has_guest_mac = true;
	memcpy(nc.guest_mac, "\x06\x00\xac\x10\x00\x02", 6);
	assert_int_equal(virtio_net_init_fd(&a[1], dup(e->peer), &nc), 0);
	assert_memory_equal(a[1].config, "\x06\x00\xac\x10\x00\x02", 6);
	virtio_net_close(&a[0]);
	virtio_net_close(&a[1]);
	virtio_net_close(&a[1]); /* twice is fine */
	free(a);
}

static void test_offloads(void **state)
{
	(void)state;
	assert_int_equal(virtio_net_tap_offloads(0), 0);
	/* TSO without GUEST_CSUM means nothing: the TAP would hand over partial sums. */
	assert_int_equal(virtio_net_tap_offloads(NF_BIT(VIRTIO_NET_F_GUEST_TSO4)), 0);
	assert_int_equal(virtio_net_tap_offloads(NENV_F_BASE), TUN_F_CSUM);
	assert_int_equal(virtio_net_tap_offloads(NENV_F_GSO), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
	assert_int_equal(virtio_net_tap_offloads(NENV_F_GSO | NF_BIT(VIRTIO_NET_F_GUEST_UFO)),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO);
}

static void test_rx_one_frame(void **state)
{
	struct nenv *e = *state;
	uint16_t head = nenv_rx_post(e, 1, 2048);
	nenv_peer_send(e, 100, 1);
	bool irq = false;
	assert_int_equal(rx(e, &irq), 0);
	assert_true(irq);
	assert_int_equal(tring_used_idx(&e->rx), 1);
	expect_used(&e->rx, 0, head, 100);
	expect_frame(e, head, 100, 1, 1);
	assert_int_equal(e->n.stats.rx_frames, 1);
	assert_int_equal(e->n.stats.rx_bytes, 100 - HDR);
	/* The TAP is empty: RX still holds no buffer, so it waits for the guest. */
	assert_int_equal(e->n.tap_events, 0);
}

static void test_rx_eagain_keeps_buffers(void **state)
{
	struct nenv *e = *state;
	uint16_t head = nenv_rx_post(e, 2, 1024);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(tring_used_idx(&e->rx), 0);
	assert_int_equal(e->n.rx_nr_chains, 1);
	assert_int_equal(e->n.rx_cap, 2048);
	assert_int_equal(e->n.tap_events, EPOLLIN); /* waits for the TAP */
	nenv_peer_send(e, 1500, 2);
	assert_int_equal(rx(e, NULL), 0);
	expect_used(&e->rx, 0, head, 1500);
	assert_int_equal(e->n.rx_nr_chains, 0);
	assert_int_equal(e->n.tap_events, 0);
}

static void test_rx_too_small_buffer_drops(void **state)
{
	struct nenv *e = *state;
	uint16_t head = nenv_rx_post(e, 1, 64);
	nenv_peer_send(e, 200, 3);	/* larger than the only chain, no MRG_RXBUF */
	nenv_peer_send(e, 64, 4);	/* fits exactly */
	nenv_peer_send(e, HDR + 13, 5); /* a runt: no Ethernet header */
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(e->n.stats.rx_drops, 1);
	assert_int_equal(tring_used_idx(&e->rx), 1);
	expect_used(&e->rx, 0, head, 64);
	expect_frame(e, head, 64, 4, 1);
	/* Guard: nothing beyond the 64-byte buffer was touched. */
	const uint8_t *after = tring_host(&e->rx, nenv_desc_addr(&e->rx, head) + 64, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(after[i], 0);
	nenv_rx_post(e, 1, 64);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(e->n.stats.rx_drops, 2);
	assert_int_equal(tring_used_idx(&e->rx), 1);
}

static void test_rx_mrg_spans_buffers(void **state)
{
	struct nenv *e = *state;
	uint16_t h[40];
	for (int i = 0; i < 40; i++)
		h[i] = nenv_rx_post(e, 1, 2048);
	nenv_peer_send(e, 5000, 6);
	nenv_peer_send(e, 60, 7);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(tring_used_idx(&e->rx), 4);
	expect_used(&e->rx, 0, h[0], 2048);
	expect_used(&e->rx, 1, h[1], 2048);
	expect_used(&e->rx, 2, h[2], 5000 - 4096);
	expect_used(&e->rx, 3, h[3], 60);
	uint16_t nb;
	memcpy(&nb, tring_host(&e->rx, nenv_desc_addr(&e->rx, h[0]) + 10, 2), 2);
	assert_int_equal(nb, 3);
	const uint8_t *p = tring_host(&e->rx, nenv_desc_addr(&e->rx, h[2]), 5000 - 4096);
	for (uint32_t i = 4096; i < 5000; i++)
		assert_int_equal(p[i - 4096], nenv_byte(i - HDR, 6));
	expect_frame(e, h[3], 60, 7, 1);
	/* With GSO negotiated RX keeps enough buffers for a 64 KiB frame: 33 of 2048. */
	assert_int_equal(e->n.rx_nr_chains, 33);
	assert_int_equal(e->n.stats.rx_frames, 2);
}

static void test_rx_mrg_large_frame_and_header_split(void **state)
{
	struct nenv *e = *state;
	/* The header itself spans chains of 4, 4 and 4096 bytes. */
	uint16_t a = nenv_rx_post(e, 1, 4), b = nenv_rx_post(e, 1, 4);
	for (int i = 0; i < 20; i++)
		nenv_rx_post(e, 2, 2048);
	nenv_peer_send(e, VIRTIO_NET_MAX_FRAME, 8);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(tring_used_idx(&e->rx), 19);
	expect_used(&e->rx, 0, a, 4);
	expect_used(&e->rx, 1, b, 4);
	uint16_t nb;
	memcpy(&nb, tring_host(&e->rx, nenv_desc_addr(&e->rx, (uint16_t)(b + 1)) + 2, 2), 2);
	assert_int_equal(nb, 19); /* bytes 10-11 of the frame: in the third chain */
	assert_int_equal(e->n.stats.rx_bytes, VIRTIO_NET_MAX_FRAME - HDR);
}

static void test_rx_mrg_runs_out_of_buffers(void **state)
{
	struct nenv *e = *state;
	/* 8 KiB of buffers for a 9500-byte frame: its tail waits on the host, TAP paused. */
	uint16_t h[5];
	for (int i = 0; i < 4; i++)
		h[i] = nenv_rx_post(e, 1, 2048);
	nenv_peer_send(e, 9500, 9);
	nenv_peer_send(e, 100, 10);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(tring_used_idx(&e->rx), 0);
	assert_int_equal(e->n.rx_spill_len, 9500);
	assert_int_equal(e->n.tap_events, 0);
	assert_int_equal(tring_avail_event(&e->rx), 4); /* kick me when you add a buffer */
	h[4] = nenv_rx_post(e, 1, 2048);
	assert_int_equal(virtio_net_ops.queue_notify(&e->n, &e->vq[0], 0, &(bool){0}), 0);
	assert_int_equal(tring_used_idx(&e->rx), 5);
	for (int i = 0; i < 4; i++)
		expect_used(&e->rx, (uint16_t)i, h[i], 2048);
	expect_used(&e->rx, 4, h[4], 9500 - 4 * 2048);
	const uint8_t *p = tring_host(&e->rx, nenv_desc_addr(&e->rx, h[4]), 9500 - 8192);
	for (uint32_t i = 8192; i < 9500; i++)
		assert_int_equal(p[i - 8192], nenv_byte(i - HDR, 9));
	assert_int_equal(e->n.stats.rx_drops, 0);
	/* The ring has no buffer left for the 100-byte frame. */
	assert_int_equal(e->n.stats.rx_frames, 1);
	/* Another big frame, and the whole ring (3 * 2048 + 61 * 16 bytes) cannot hold it. */
	nenv_rx_post(e, 1, 2048);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(e->n.stats.rx_frames, 2);
	nenv_peer_send(e, 9000, 11);
	for (int i = 0; i < 3; i++)
		nenv_rx_post(e, 1, 2048);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(e->n.rx_spill_len, 9000);
	for (int i = 0; i < NENV_QSIZE - 3; i++)
		nenv_rx_post(e, 1, 16);
	nenv_peer_send(e, 60, 12);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(e->n.stats.rx_drops, 1);
	assert_int_equal(e->n.rx_spill_len, 0);
	assert_int_equal(e->n.stats.rx_frames, 3); /* the 60-byte one */
}

static void test_rx_pause_and_resume_on_notify(void **state)
{
	struct nenv *e = *state;
	nenv_peer_send(e, 300, 11);
	nenv_peer_send(e, 400, 12);
	bool irq = true;
	assert_int_equal(rx(e, &irq), 0);
	assert_false(irq);
	assert_int_equal(e->n.tap_events, 0); /* paused: no guest buffers */
	assert_int_equal(tring_avail_event(&e->rx), 0);
	uint16_t h0 = nenv_rx_post(e, 1, 1600);
	assert_int_equal(virtio_net_ops.queue_notify(&e->n, &e->vq[0], 0, &irq), 0);
	assert_true(irq);
	expect_used(&e->rx, 0, h0, 300);
	assert_int_equal(e->n.tap_events, 0); /* paused again: one frame left */
	uint16_t h1 = nenv_rx_post(e, 1, 1600);
	assert_int_equal(virtio_net_ops.queue_notify(&e->n, &e->vq[0], 0, &irq), 0);
	expect_used(&e->rx, 1, h1, 400);
	expect_frame(e, h1, 400, 12, 1);
}

static void test_rx_bad_chains(void **state)
{
	struct nenv *e = *state;
	/* A device-readable RX chain goes back unused. */
	uint64_t buf = tring_alloc(&e->rx, 256);
	tring_desc(&e->rx, 0, buf, 256, 0, 0);
	tring_publish(&e->rx, 0);
	/* A chain of zero-length buffers too. */
	tring_desc(&e->rx, 1, buf, 0, VRING_DESC_F_WRITE, 0);
	tring_publish(&e->rx, 1);
	e->rx_desc = 2;
	uint16_t good = nenv_rx_post(e, 1, 256);
	nenv_peer_send(e, 100, 13);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(e->n.stats.rx_bad_chains, 2);
	expect_used(&e->rx, 0, 0, 0);
	expect_used(&e->rx, 1, 1, 0);
	expect_used(&e->rx, 2, good, 100);
	/* A buffer outside guest memory breaks the queue. */
	tring_desc(&e->rx, 5, NENV_RAM - 8, 16, VRING_DESC_F_WRITE, 0);
	tring_publish(&e->rx, 5);
	assert_int_equal(rx(e, NULL), -EFAULT);
}

static void test_tx_gathers_chain(void **state)
{
	struct nenv *e = *state;
	uint8_t hdr[HDR];
	nenv_hdr(hdr, 0, 0, 0, 0, 0);
	uint32_t split[] = {5, 7, 0, 100, 888};
	uint16_t head = nenv_tx_post(e, hdr, 1000, split, 5, 20);
	bool irq = false;
	assert_int_equal(tx(e, &irq), 0);
	assert_true(irq);
	expect_used(&e->tx, 0, head, 0);
	uint8_t got[2000];
	assert_int_equal(recv(e->peer, got, sizeof(got), MSG_DONTWAIT), 1000);
	for (uint32_t i = HDR; i < 1000; i++)
		assert_int_equal(got[i], nenv_byte(i - HDR, 20));
	assert_int_equal(e->n.stats.tx_frames, 1);
	assert_int_equal(e->n.stats.tx_bytes, 1000 - HDR);
	assert_false(e->n.tap_events & EPOLLOUT); /* nothing to wait for */
}

static void test_tx_drops_malformed(void **state)
{
	struct nenv *e = *state;
	uint8_t ok[HDR], h[HDR];
	nenv_hdr(ok, 0, 0, 0, 0, 0);
	uint32_t small[] = {HDR + 13}, big[] = {VIRTIO_NET_MAX_FRAME + 1}, one[] = {200};
	nenv_tx_post(e, ok, HDR + 13, small, 1, 0);		  /* runt */
	nenv_tx_post(e, ok, VIRTIO_NET_MAX_FRAME + 1, big, 1, 0); /* oversized */
	/* A writable descriptor in a TX chain. */
	uint16_t d = e->tx_desc;
	tring_desc(&e->tx, d, tring_alloc(&e->tx, 200), 200, VRING_DESC_F_NEXT, d + 1);
	tring_desc(&e->tx, d + 1, tring_alloc(&e->tx, 200), 200, VRING_DESC_F_WRITE, 0);
	tring_publish(&e->tx, d);
	e->tx_desc += 2;
	nenv_hdr(h, 2, 0, 0, 0, 0); /* DATA_VALID from the driver */
	nenv_tx_post(e, h, 200, one, 1, 0);
	nenv_hdr(h, 1, 0, 0, 180, 16); /* checksum beyond the frame */
	nenv_tx_post(e, h, 200, one, 1, 0);
	nenv_hdr(h, 1, VIRTIO_NET_HDR_GSO_UDP, 1400, 34, 6); /* HOST_UFO not negotiated */
	nenv_tx_post(e, h, 200, one, 1, 0);
	nenv_hdr(h, 0, VIRTIO_NET_HDR_GSO_TCPV4, 1400, 0, 0); /* GSO without NEEDS_CSUM */
	nenv_tx_post(e, h, 200, one, 1, 0);
	nenv_hdr(h, 1, VIRTIO_NET_HDR_GSO_TCPV4, 1400, 34, 16); /* fine with HOST_TSO4 */
	nenv_tx_post(e, h, 200, one, 1, 0);
	assert_int_equal(tx(e, NULL), 0);
	assert_int_equal(tring_used_idx(&e->tx), 8);
	assert_int_equal(e->n.stats.tx_drops, 7);
	assert_int_equal(e->n.stats.tx_frames, 1);
	uint8_t got[300];
	assert_int_equal(recv(e->peer, got, sizeof(got), MSG_DONTWAIT), 200);
	assert_int_equal(recv(e->peer, got, sizeof(got), MSG_DONTWAIT), -1);
}

static void test_tx_hdr_rules(void **state)
{
	(void)state;
	uint8_t h[HDR];
	uint64_t none = NF_BIT(VIRTIO_F_VERSION_1);
	nenv_hdr(h, 0, 0, 0, 0, 0);
	assert_true(virtio_net_tx_hdr_ok(h, 60, none));
	nenv_hdr(h, 1, 0, 0, 14, 20);
	assert_false(virtio_net_tx_hdr_ok(h, 60, none)); /* NEEDS_CSUM needs CSUM */
	assert_true(virtio_net_tx_hdr_ok(h, HDR + 36, NENV_F_BASE));
	assert_false(virtio_net_tx_hdr_ok(h, HDR + 35, NENV_F_BASE));
	nenv_hdr(h, 1, 0, 0, 0xffff, 0xffff); /* no 16-bit wrap */
	assert_false(virtio_net_tx_hdr_ok(h, VIRTIO_NET_MAX_FRAME, NENV_F_BASE));
	nenv_hdr(h, 1, VIRTIO_NET_HDR_GSO_TCPV6, 1400, 54, 16);
	assert_false(virtio_net_tx_hdr_ok(h, 9000, NENV_F_BASE));
	assert_true(virtio_net_tx_hdr_ok(h, 9000, NENV_F_GSO));
	nenv_hdr(h, 1, VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN, 1400, 54, 16);
	assert_false(virtio_net_tx_hdr_ok(h, 9000, NENV_F_GSO));
	nenv_hdr(h, 1, VIRTIO_NET_HDR_GSO_TCPV4, 0, 34, 16); /* no MSS */
	assert_false(virtio_net_tx_hdr_ok(h, 9000, NENV_F_GSO));
	nenv_hdr(h, 1, 2, 1400, 34, 16); /* unknown GSO type */
	assert_false(virtio_net_tx_hdr_ok(h, 9000, NENV_F_GSO));
}

static void test_tx_eagain_holds_then_resumes(void **state)
{
	struct nenv *e = *state;
	int small = 4096;
	assert_int_equal(setsockopt(e->n.tap_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	uint8_t hdr[HDR];
	nenv_hdr(hdr, 0, 0, 0, 0, 0);
	uint32_t split[] = {1500};
	for (int i = 0; i < 40; i++)
		nenv_tx_post(e, hdr, 1500, split, 1, (uint32_t)i);
	assert_int_equal(tx(e, NULL), 0);
	uint64_t sent = e->n.stats.tx_frames;
	assert_true(sent > 0 && sent < 40);
	assert_true(e->n.tx_held);
	assert_true(e->n.tap_events & EPOLLOUT);
	assert_int_equal(tring_used_idx(&e->tx), sent);
	/* The host drains; the TAP's EPOLLOUT brings TX back until the ring is empty. */
	uint8_t got[2000];
	uint32_t seen = 0;
	for (int round = 0; round < 100 && seen < 40; round++) {
		while (recv(e->peer, got, sizeof(got), MSG_DONTWAIT) == 1500) {
			assert_int_equal(got[HDR], nenv_byte(0, seen));
			seen++;
		}
		struct virtio_net_event ev = {.source = VIRTIO_NET_EV_TAP, .events = EPOLLOUT};
		bool irq;
		assert_int_equal(virtio_net_work(&e->n, e->vq, &ev, &irq), 0);
	}
	assert_int_equal(seen, 40);
	assert_int_equal(e->n.stats.tx_frames, 40);
	assert_int_equal(e->n.stats.tx_drops, 0);
	assert_false(e->n.tx_held);
	assert_false(e->n.tap_events & EPOLLOUT);
}

/* The guest rewrites the header of a chain kiln has checked and holds (TAP full): what
 * reaches the TAP is the header as checked, not the guest's new bytes. */
static void test_tx_sends_checked_header(void **state)
{
	struct nenv *e = *state;
	int small = 4096;
	assert_int_equal(setsockopt(e->n.tap_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	uint8_t hdr[HDR], evil[HDR];
	nenv_hdr(hdr, 0, 0, 0, 0, 0);
	nenv_hdr(evil, 0xff, VIRTIO_NET_HDR_GSO_TCPV4, 1, 0xffff, 0xffff);
	uint32_t split[] = {6, 1494}; /* the header spans two descriptors */
	for (int i = 0; i < 30; i++)  /* 2 descriptors each: 60 of 64 */
		nenv_tx_post(e, hdr, 1500, split, 2, (uint32_t)i);
	assert_int_equal(tx(e, NULL), 0);
	assert_true(e->n.tx_held);
	uint16_t held = (uint16_t)(2 * e->n.stats.tx_frames % NENV_QSIZE);
	assert_int_equal(e->n.tx_head, held);
	memcpy(tring_host(&e->tx, nenv_desc_addr(&e->tx, held), 6), evil, 6);
	memcpy(tring_host(&e->tx, nenv_desc_addr(&e->tx, held + 1), 6), evil + 6, 6);
	uint8_t got[2000];
	uint32_t seen = 0;
	for (int round = 0; round < 100 && seen < 30; round++) {
		while (recv(e->peer, got, sizeof(got), MSG_DONTWAIT) == 1500) {
			assert_memory_equal(got, hdr, HDR);
			assert_int_equal(got[HDR], nenv_byte(0, seen));
			assert_int_equal(got[1499], nenv_byte(1499 - HDR, seen));
			seen++;
		}
		struct virtio_net_event ev = {.source = VIRTIO_NET_EV_TAP, .events = EPOLLOUT};
		bool irq;
		assert_int_equal(virtio_net_work(&e->n, e->vq, &ev, &irq), 0);
	}
	assert_int_equal(seen, 30);
}

/* A "guest" vCPU re-publishing one TX chain (descriptor 0) as fast as it is completed. */
struct republisher {
	struct nenv *e;
	unsigned total;
};

static void *republish(void *arg)
{
	struct republisher *p = arg;
	struct tring *r = &p->e->tx;
	uint8_t *avail = tring_host(r, r->avail_gpa, 4 + 2 * NENV_QSIZE);
	uint8_t *used = tring_host(r, r->used_gpa, 4);
	for (uint16_t idx = 0; idx < p->total;) {
		uint16_t done = __atomic_load_n((uint16_t *)(used + 2), __ATOMIC_ACQUIRE);
		if ((uint16_t)(idx - done) >= NENV_QSIZE)
			continue;
		__atomic_store_n((uint16_t *)(avail + 4 + 2 * (idx % NENV_QSIZE)), 0,
				 __ATOMIC_RELAXED);
		idx++;
		__atomic_store_n((uint16_t *)(avail + 2), idx, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* However fast the guest re-publishes, one TX call sends at most VIRTQ_BUDGET frames and
 * leaves the queue marked for the transport to run again. */
static void test_tx_budget_against_republishing_guest(void **state)
{
	struct nenv *e = *state;
	uint8_t hdr[HDR], got[256];
	nenv_hdr(hdr, 0, 0, 0, 0, 0);
	tring_desc(&e->tx, 0, tring_alloc(&e->tx, 100), 100, 0, 0);
	memcpy(tring_host(&e->tx, nenv_desc_addr(&e->tx, 0), HDR), hdr, HDR);
	struct republisher p = {.e = e, .total = 3000};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, republish, &p), 0);
	unsigned done = 0, spent = 0;
	while (done < p.total) {
		uint16_t before = tring_used_idx(&e->tx);
		assert_int_equal(tx(e, NULL), 0);
		uint16_t n = (uint16_t)(tring_used_idx(&e->tx) - before);
		assert_true(n <= VIRTQ_BUDGET);
		if (n == VIRTQ_BUDGET)
			assert_true(e->vq[VIRTIO_NET_TXQ].requeue);
		spent += e->vq[VIRTIO_NET_TXQ].requeue;
		e->vq[VIRTIO_NET_TXQ].requeue = false; /* what the transport does */
		done += n;
		while (recv(e->peer, got, sizeof(got), MSG_DONTWAIT) > 0)
			;
	}
	pthread_join(t, NULL);
	assert_int_equal(e->n.stats.tx_frames, p.total);
	print_message("%u left at the budget\n", spent);
}

static void test_tx_broken_queue(void **state)
{
	struct nenv *e = *state;
	tring_desc(&e->tx, 0, 0x1000, 64, VRING_DESC_F_NEXT, 0); /* loops onto itself */
	tring_publish(&e->tx, 0);
	assert_int_equal(tx(e, NULL), -ELOOP);
}

static void test_reset_forgets_and_pauses(void **state)
{
	struct nenv *e = *state;
	nenv_rx_post(e, 1, 2048);
	assert_int_equal(rx(e, NULL), 0);
	assert_int_equal(e->n.rx_nr_chains, 1);
	assert_int_equal(e->n.tap_events, EPOLLIN);
	virtio_net_ops.reset(&e->n);
	assert_false(e->n.active);
	assert_int_equal(e->n.rx_nr_chains, 0);
	assert_int_equal(e->n.tap_events, 0);
	/* Work arriving while the device is down only keeps the TAP paused. */
	struct virtio_net_event ev = {.source = VIRTIO_NET_EV_TAP, .events = EPOLLIN};
	bool irq = false;
	assert_int_equal(virtio_net_work(&e->n, NULL, &ev, &irq), 0);
	assert_false(irq);
	assert_int_equal(e->n.tap_events, 0);
	/* Activation refuses a device whose queues are not both ready. */
	e->vq[1].ready = false;
	assert_int_equal(virtio_net_ops.activate(&e->n, NENV_F_BASE, e->vq), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_features_and_config, setup_base, teardown),
	    cmocka_unit_test(test_offloads),
	    cmocka_unit_test_setup_teardown(test_rx_one_frame, setup_base, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_eagain_keeps_buffers, setup_base, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_too_small_buffer_drops, setup_base, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_mrg_spans_buffers, setup_gso, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_mrg_large_frame_and_header_split, setup_gso,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_rx_mrg_runs_out_of_buffers, setup_gso, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_pause_and_resume_on_notify, setup_mrg,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_rx_bad_chains, setup_base, teardown),
	    cmocka_unit_test_setup_teardown(test_tx_gathers_chain, setup_base, teardown),
	    cmocka_unit_test_setup_teardown(test_tx_drops_malformed, setup_gso, teardown),
	    cmocka_unit_test(test_tx_hdr_rules),
	    cmocka_unit_test_setup_teardown(test_tx_eagain_holds_then_resumes, setup_base,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tx_sends_checked_header, setup_base, teardown),
	    cmocka_unit_test_setup_teardown(test_tx_budget_against_republishing_guest, setup_base,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tx_broken_queue, setup_base, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_forgets_and_pauses, setup_base, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
