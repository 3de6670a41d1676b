/* vsock data streams through the device with a fake guest that plays by the credit rules
 * like Linux does: megabytes each way, both at once, intact and never buffered beyond the
 * advertised 64 KiB; and connections opened and closed in a loop leave nothing behind. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <cmocka.h>

#include "tests/unit/vsock_test_env.h"
#include "vmm/log.h"

#define GUEST_PORT 2000
#define GUEST_BUF (128 * 1024) /* the guest's buf_alloc */
#define TOTAL (6u << 20)

static struct vt_pkt pkt;

/* One stream's state on the fake guest's side. */
struct guest_stream {
	uint32_t local_port;
	uint32_t rx_got, fwd_cnt;      /* host -> guest bytes received / consumed */
	uint32_t tx_sent;	       /* guest -> host bytes sent */
	uint32_t kiln_alloc, kiln_fwd; /* kiln's credit, from its last packet */
	size_t host_sent, host_got;    /* on the host socket */
};

static uint8_t pattern(uint32_t off, uint8_t seed)
{
	return (uint8_t)(off * 31 + (off >> 11) + seed);
}

static int setup(void **state)
{
	struct vt_env *e = calloc(1, sizeof(*e));
	log_setup(2, LOG_OFF, 0, 0);
	vt_init(e, 1ULL << VIRTIO_RING_F_EVENT_IDX | 1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct vt_env *e = *state;
	int ret = vt_fini(e);
	free(e);
	return ret;
}

static struct vsock_hdr guest_hdr(const struct guest_stream *g, uint16_t op)
{
	struct vsock_hdr h = vt_hdr(op, GUEST_PORT, g->local_port);
	h.buf_alloc = GUEST_BUF;
	h.fwd_cnt = g->fwd_cnt;
	return h;
}

/* Keeps 16 to 48 rx buffers posted, as a driver does. */
static void refill_rx(struct vt_env *e)
{
	struct vt_queue *q = &e->q[VIRTIO_VSOCK_RXQ];
	if ((uint16_t)(q->avail_idx - q->used_seen) < 16)
		vt_post_rx(e, 32);
}

static int open_stream(struct vt_env *e, struct guest_stream *g)
{
	memset(g, 0, sizeof(*g));
	refill_rx(e);
	int fd = vt_unix_connect(e->path);
	vt_write(fd, "CONNECT 2000\n", 13);
	vt_pump(e);
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, VIRTIO_VSOCK_OP_REQUEST);
	g->local_port = pkt.h.src_port;
	struct vsock_hdr h = guest_hdr(g, VIRTIO_VSOCK_OP_RESPONSE);
	vt_send(e, &h, NULL);
	char ok[32];
	assert_true(vt_read(fd, ok, sizeof(ok)) > 0);
	assert_int_equal(ok[0], 'O');
	return fd;
}

/* Takes what kiln sent the guest: checks data, tracks kiln's credit, consumes and (like
 * Linux) tells kiln when a good part of the guest buffer is free again. */
static void guest_take_rx(struct vt_env *e, struct guest_stream *g)
{
	bool asked = false;
	while (vt_recv(e, &pkt)) {
		g->kiln_alloc = pkt.h.buf_alloc;
		g->kiln_fwd = pkt.h.fwd_cnt;
		if (pkt.h.op == VIRTIO_VSOCK_OP_RW) {
			assert_true(g->rx_got + pkt.h.len - g->fwd_cnt <= GUEST_BUF);
			for (uint32_t i = 0; i < pkt.h.len; i++)
				assert_int_equal(pkt.data[i], pattern(g->rx_got + i, 1));
			g->rx_got += pkt.h.len;
		} else {
			asked |= pkt.h.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST;
			assert_true(asked || pkt.h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE ||
				    pkt.h.op == VIRTIO_VSOCK_OP_SHUTDOWN);
		}
	}
	if (g->rx_got - g->fwd_cnt >= GUEST_BUF / 4 || asked) {
		g->fwd_cnt = g->rx_got;
		struct vsock_hdr h = guest_hdr(g, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		vt_send(e, &h, NULL);
	}
	refill_rx(e);
}

/* Sends guest data within kiln's credit, in packets of up to 4 KiB. */
static void guest_send(struct vt_env *e, struct guest_stream *g, uint32_t total)
{
	static uint8_t data[4096];
	for (int n = 0; n < 8 && g->tx_sent < total; n++) {
		uint32_t credit = g->kiln_alloc - (g->tx_sent - g->kiln_fwd);
		uint32_t len = total - g->tx_sent;
		len = len < sizeof(data) ? len : sizeof(data);
		len = len < credit ? len : credit;
		if (!len)
			return;
		for (uint32_t i = 0; i < len; i++)
			data[i] = pattern(g->tx_sent + i, 2);
		struct vsock_hdr h = guest_hdr(g, VIRTIO_VSOCK_OP_RW);
		h.len = len;
		vt_send(e, &h, data);
		g->tx_sent += len;
	}
}

/* The host side: writes its share when the socket takes it, reads and checks the rest. */
static void host_io(int fd, struct guest_stream *g, size_t send_total)
{
	static uint8_t buf[16384];
	if (g->host_sent < send_total) {
		size_t len = send_total - g->host_sent;
		len = len < sizeof(buf) ? len : sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = pattern(g->host_sent + i, 1);
		ssize_t r = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0)
			g->host_sent += r;
	}
	ssize_t r = vt_read(fd, buf, 3000); /* small reads: a slow host */
	for (ssize_t i = 0; i < r; i++)
		assert_int_equal(buf[i], pattern(g->host_got + i, 2));
	if (r > 0)
		g->host_got += r;
}

static void run_stream(struct vt_env *e, uint32_t to_guest, uint32_t to_host)
{
	struct guest_stream g;
	int fd = open_stream(e, &g);
	struct vsock_conn *c = e->v.mux.slot[0];
	g.kiln_alloc = VSOCK_CONN_BUF_SIZE;
	for (int i = 0; i < 1000000 && (g.rx_got < to_guest || g.host_got < to_host); i++) {
		host_io(fd, &g, to_guest);
		vt_pump(e);
		guest_take_rx(e, &g);
		guest_send(e, &g, to_host);
		assert_true(c->buf_len <= VSOCK_CONN_BUF_SIZE);
	}
	assert_int_equal(g.rx_got, to_guest);
	assert_int_equal(g.host_got, to_host);
	assert_int_equal(e->v.mux.stats.credit_lies, 0);
	assert_int_equal(e->v.mux.stats.rx_bytes, to_guest);
	assert_int_equal(e->v.mux.stats.tx_bytes, to_host);
	close(fd);
}

static void test_stream_to_guest(void **state)
{
	run_stream(*state, TOTAL, 0);
}

static void test_stream_to_host(void **state)
{
	run_stream(*state, 0, TOTAL);
}

static void test_stream_both_ways(void **state)
{
	run_stream(*state, TOTAL, TOTAL);
}

/* 50 connections opened and closed, host side first and guest side first: no connection,
 * slot, buffer or descriptor stays behind (the fd count is checked by the teardown). */
static void test_connect_close_loop(void **state)
{
	struct vt_env *e = *state;
	struct guest_stream g;
	char buf[8];
	for (int i = 0; i < 50; i++) {
		int fd = open_stream(e, &g);
		uint8_t data[4] = {pattern(0, 1), pattern(1, 1), pattern(2, 1), pattern(3, 1)};
		vt_write(fd, data, 4);
		vt_pump(e);
		guest_take_rx(e, &g);
		if (i % 2) {
			close(fd); /* host first: SHUTDOWN to the guest, which answers RST */
			vt_pump(e);
			guest_take_rx(e, &g);
			struct vsock_hdr h = guest_hdr(&g, VIRTIO_VSOCK_OP_RST);
			vt_send(e, &h, NULL);
		} else {
			struct vsock_hdr h = guest_hdr(&g, VIRTIO_VSOCK_OP_SHUTDOWN);
			h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
			vt_send(e, &h, NULL);
			assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0);
			close(fd);
		}
		while (vt_recv(e, &pkt))
			;
		assert_int_equal(e->v.mux.nr_used, 0);
	}
	unsigned slots = 0;
	for (int i = 0; i < VSOCK_MAX_CONNS; i++)
		slots += e->v.mux.slot[i] != NULL;
	assert_int_equal(slots, 1); /* the one slot was reused every time */
	assert_int_equal(e->v.mux.stats.conns_added, 50);
	assert_int_equal(e->v.mux.stats.conns_removed, 50);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_stream_to_guest),
	    T(test_stream_to_host),
	    T(test_stream_both_ways),
	    T(test_connect_close_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
