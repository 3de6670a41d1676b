/* The vsock muxer against hostile peers: malformed CONNECT lines, floods from the host and
 * from the guest, and guest packets that lie or make no sense. */
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

#define OP_REQ VIRTIO_VSOCK_OP_REQUEST
#define OP_RESP VIRTIO_VSOCK_OP_RESPONSE
#define OP_RST VIRTIO_VSOCK_OP_RST
#define OP_RW VIRTIO_VSOCK_OP_RW

static struct vt_pkt pkt;

static int setup(void **state)
{
	struct vt_env *e = calloc(1, sizeof(*e));
	log_setup(2, LOG_OFF, 0, 0);
	vt_init(e, 1ULL << VIRTIO_RING_F_EVENT_IDX);
	vt_post_rx(e, 64);
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

/* Whether kiln hung up on the host client at fd (after running the loop): EOF, or a reset
 * when kiln closed with bytes of the client's unread. */
static bool host_hung_up(struct vt_env *e, int fd)
{
	char buf[8];
	vt_pump(e);
	ssize_t r = vt_read(fd, buf, sizeof(buf));
	return r == 0 || r == -ECONNRESET;
}

static void test_malformed_connect_lines(void **state)
{
	struct vt_env *e = *state;
	const char *bad[] = {"FOO 12\n", "CONNECT abc\n", "CONNECT 99999999999\n", "CONNECT\n",
			     "\n",	 "CONNECT -5\n",  "OK CONNECT 5\n"};
	unsigned n = sizeof(bad) / sizeof(bad[0]);
	for (unsigned i = 0; i < n; i++) {
		int fd = vt_unix_connect(e->path);
		vt_write(fd, bad[i], strlen(bad[i]));
		assert_true(host_hung_up(e, fd));
		close(fd);
	}
	/* No newline within VSOCK_CONNECT_LINE_MAX bytes. */
	int fd = vt_unix_connect(e->path);
	vt_write(fd, "CONNECT 1                                     ", 40);
	assert_true(host_hung_up(e, fd));
	close(fd);
	/* EOF in the middle of the line. */
	fd = vt_unix_connect(e->path);
	vt_write(fd, "CONNE", 5);
	shutdown(fd, SHUT_WR);
	assert_true(host_hung_up(e, fd));
	close(fd);
	assert_int_equal(e->v.mux.stats.bad_handshakes, n + 2);
	assert_int_equal(e->v.mux.nr_used, 0);
	assert_int_equal(vt_recv(e, &pkt), 0); /* the guest heard of none of it */
}

static void test_connect_line_in_pieces(void **state)
{
	struct vt_env *e = *state;
	int fd = vt_unix_connect(e->path);
	const char *parts[] = {"CON", "NECT ", "42", "\n"};
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(vt_recv(e, &pkt), 0);
		vt_write(fd, parts[i], strlen(parts[i]));
		vt_pump(e);
	}
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, OP_REQ);
	assert_int_equal(pkt.h.dst_port, 42);
	close(fd);
}

/* A client that connects and says nothing is dropped after the handshake timeout. */
static void test_silent_client_times_out(void **state)
{
	struct vt_env *e = *state;
	int fd = vt_unix_connect(e->path);
	vt_write(fd, "CONN", 4);
	assert_false(host_hung_up(e, fd));
	e->skew = VSOCK_HANDSHAKE_TIMEOUT_NS - 1000000;
	e->v.mux.timer.ev.handle(e->v.mux.timer.ev.ctx, EPOLLIN);
	assert_false(host_hung_up(e, fd));
	e->skew = VSOCK_HANDSHAKE_TIMEOUT_NS + 1;
	e->v.mux.timer.ev.handle(e->v.mux.timer.ev.ctx, EPOLLIN);
	assert_true(host_hung_up(e, fd));
	assert_int_equal(e->v.mux.stats.bad_handshakes, 1);
	close(fd);
}

/* More host clients than VSOCK_MAX_CONNS: the rest are accepted and hung up on. */
static void test_host_flood(void **state)
{
	struct vt_env *e = *state;
	enum { N = VSOCK_MAX_CONNS + 6 };
	static int fds[N];
	for (int i = 0; i < N; i++) {
		fds[i] = vt_unix_connect(e->path);
		if (i % 64 == 0)
			vt_pump(e);
	}
	vt_pump(e);
	assert_int_equal(e->v.mux.nr_used, VSOCK_MAX_CONNS);
	assert_int_equal(e->v.mux.stats.conns_over_limit, 6);
	int hung_up = 0;
	for (int i = 0; i < N; i++)
		hung_up += host_hung_up(e, fds[i]);
	assert_int_equal(hung_up, 6);
	/* Freed slots take new clients again. */
	for (int i = 0; i < N; i++)
		close(fds[i]);
	vt_pump(e);
	assert_int_equal(e->v.mux.nr_used, 0);
	int fd = vt_unix_connect(e->path);
	vt_write(fd, "CONNECT 1\n", 10);
	vt_pump(e);
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, OP_REQ);
	close(fd);
}

/* More guest connects than VSOCK_MAX_CONNS: the rest get an RST. */
static void test_guest_flood(void **state)
{
	struct vt_env *e = *state;
	enum { N = VSOCK_MAX_CONNS + 76 };
	char path[128];
	snprintf(path, sizeof(path), "%s_6000", e->path);
	int lfd = vt_unix_listen(path);
	unsigned responses = 0, rsts = 0;
	for (int i = 0; i < N; i++) {
		struct vsock_hdr h = vt_hdr(OP_REQ, 10000 + i, 6000);
		vt_send(e, &h, NULL);
		while (vt_recv(e, &pkt)) {
			responses += pkt.h.op == OP_RESP;
			rsts += pkt.h.op == OP_RST;
		}
		if (i % 32 == 31)
			vt_post_rx(e, 32);
	}
	vt_post_rx(e, 64);
	while (vt_recv(e, &pkt)) {
		responses += pkt.h.op == OP_RESP;
		rsts += pkt.h.op == OP_RST;
	}
	assert_int_equal(responses, VSOCK_MAX_CONNS);
	assert_int_equal(rsts, 76);
	assert_int_equal(e->v.mux.stats.conns_over_limit, 76);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), VSOCK_MAX_CONNS);
	for (int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_hdr h = vt_hdr(OP_RST, 10000 + i, 6000);
		vt_send(e, &h, NULL);
	}
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
	int fd, accepted = 0;
	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		accepted++;
		close(fd);
	}
	assert_int_equal(accepted, VSOCK_MAX_CONNS);
	close(lfd);
	unlink(path);
}

/* Sends raw bytes as one tx packet. */
static void send_raw(struct vt_env *e, const struct vsock_hdr *h, uint32_t chain_len)
{
	static uint8_t buf[VSOCK_HDR_BYTES + VSOCK_MAX_PAYLOAD];
	vsock_hdr_encode(h, buf);
	vt_tx_raw(e, buf, chain_len, 0);
	vt_notify(e, VIRTIO_VSOCK_TXQ);
}

static void expect_rst(struct vt_env *e, uint32_t src_port, uint32_t dst_port)
{
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, OP_RST);
	assert_int_equal(pkt.h.src_port, src_port);
	assert_int_equal(pkt.h.dst_port, dst_port);
	assert_int_equal(pkt.h.dst_cid, VT_CID);
}

static void test_hostile_headers(void **state)
{
	struct vt_env *e = *state;
	struct vsock_hdr h = vt_hdr(OP_REQ, 1, 2);
	send_raw(e, &h, 30); /* shorter than a header */
	h.src_cid = 4;
	send_raw(e, &h, VSOCK_HDR_BYTES);
	h.src_cid = VT_CID;
	h.dst_cid = 7;
	send_raw(e, &h, VSOCK_HDR_BYTES);
	assert_int_equal(vt_recv(e, &pkt), 0); /* dropped without a word */
	assert_int_equal(e->v.mux.stats.malformed, 3);
	h = vt_hdr(OP_RW, 1, 2);
	h.len = VSOCK_MAX_PAYLOAD + 1;
	send_raw(e, &h, VSOCK_HDR_BYTES + VSOCK_MAX_PAYLOAD);
	expect_rst(e, 2, 1);
	h.len = 500;
	send_raw(e, &h, VSOCK_HDR_BYTES + 499); /* beyond the chain */
	expect_rst(e, 2, 1);
	h = vt_hdr(OP_REQ, 1, 2);
	h.type = 2;
	send_raw(e, &h, VSOCK_HDR_BYTES);
	expect_rst(e, 2, 1);
	h.type = VIRTIO_VSOCK_TYPE_STREAM;
	h.op = 99;
	send_raw(e, &h, VSOCK_HDR_BYTES);
	expect_rst(e, 2, 1);
	h.op = OP_RW; /* data for a connection that does not exist */
	h.len = 0;
	send_raw(e, &h, VSOCK_HDR_BYTES);
	expect_rst(e, 2, 1);
	h.op = OP_RST; /* an RST is never answered */
	send_raw(e, &h, VSOCK_HDR_BYTES);
	h.op = 0;
	send_raw(e, &h, VSOCK_HDR_BYTES);
	expect_rst(e, 2, 1);
	assert_int_equal(vt_recv(e, &pkt), 0);
	const struct vsock_stats *st = &e->v.mux.stats;
	assert_int_equal(st->bad_len, 2);
	assert_int_equal(st->bad_type, 1);
	assert_int_equal(st->bad_op, 2);
	assert_int_equal(st->unexpected, 1);
	assert_int_equal(st->tx_packets, 10);
}

/* A guest-initiated connection to <uds>_7000 and its host end. */
static int open_guest_conn(struct vt_env *e, int *lfd, char *path, size_t len)
{
	snprintf(path, len, "%s_7000", e->path);
	*lfd = vt_unix_listen(path);
	struct vsock_hdr h = vt_hdr(OP_REQ, 500, 7000);
	vt_send(e, &h, NULL);
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, OP_RESP);
	int fd = accept(*lfd, NULL, NULL);
	assert_true(fd >= 0);
	return fd;
}

static void test_credit_lies_and_nonsense(void **state)
{
	struct vt_env *e = *state;
	char path[128], buf[16];
	int lfd, fd = open_guest_conn(e, &lfd, path, sizeof(path));
	struct vsock_hdr h = vt_hdr(OP_REQ, 500, 7000);
	vt_send(e, &h, NULL); /* a second REQUEST, a RESPONSE: ignored */
	h.op = OP_RESP;
	vt_send(e, &h, NULL);
	assert_int_equal(vt_recv(e, &pkt), 0);
	assert_int_equal(e->v.mux.stats.unexpected, 2);
	vt_write(fd, "0123456789", 10);
	vt_pump(e);
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.len, 10);
	/* A stale (older) fwd_cnt is ignored; the connection lives on. */
	h = vt_hdr(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 500, 7000);
	h.fwd_cnt = 10;
	vt_send(e, &h, NULL);
	h.fwd_cnt = 4;
	vt_send(e, &h, NULL);
	assert_int_equal(vt_recv(e, &pkt), 0);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 1);
	/* Acknowledging bytes kiln never sent is a lie. */
	h.fwd_cnt = 11;
	vt_send(e, &h, NULL);
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, OP_RST);
	assert_int_equal(e->v.mux.stats.credit_lies, 1);
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
	close(fd);
	close(lfd);
	unlink(path);
}

/* rx buffers kiln cannot use are handed back empty; the packet goes in the next one. */
static void test_bad_rx_buffers(void **state)
{
	struct vt_env *e = *state;
	struct vt_queue *q = &e->q[VIRTIO_VSOCK_RXQ];
	/* Drain the good buffers first with RSTs for unknown connections. */
	struct vsock_hdr h = vt_hdr(OP_RW, 1, 2);
	for (int i = 0; i < 64; i++)
		send_raw(e, &h, VSOCK_HDR_BYTES);
	while (vt_recv(e, &pkt))
		;
	uint16_t a = vt_pair(q), b = vt_pair(q);
	vt_desc(e, q, a, vt_slot(q, a), VSOCK_HDR_BYTES - 1, VRING_DESC_F_WRITE, 0);
	vt_publish(e, q, a);
	vt_desc(e, q, b, vt_slot(q, b), 100, 0, 0); /* device-readable */
	vt_publish(e, q, b);
	vt_post_rx(e, 1);
	send_raw(e, &h, VSOCK_HDR_BYTES);
	assert_int_equal(e->v.mux.stats.rx_bad_chains, 2);
	uint32_t used = vt_get16(e, q->used + 2);
	assert_int_equal(used - q->used_seen, 3);
	q->used_seen += 2; /* the two refused buffers */
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, OP_RST);
}

/* Without rx buffers, RSTs for unknown connections queue up to a bound, then are lost. */
static void test_rst_queue_bounded(void **state)
{
	struct vt_env *e = *state;
	struct vsock_hdr h = vt_hdr(OP_RW, 1, 2);
	for (int i = 0; i < 64 + VSOCK_RST_QUEUE + 10; i++)
		send_raw(e, &h, VSOCK_HDR_BYTES);
	assert_int_equal(e->v.mux.rst_len, VSOCK_RST_QUEUE);
	assert_int_equal(e->v.mux.stats.rst_dropped, 10);
	unsigned got = 0;
	while (vt_recv(e, &pkt))
		got++;
	for (int i = 0; i < 4; i++) {
		vt_post_rx(e, 64);
		while (vt_recv(e, &pkt))
			got++;
	}
	assert_int_equal(got, 64 + VSOCK_RST_QUEUE);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_malformed_connect_lines),
	    T(test_connect_line_in_pieces),
	    T(test_silent_client_times_out),
	    T(test_host_flood),
	    T(test_guest_flood),
	    T(test_hostile_headers),
	    T(test_credit_lies_and_nonsense),
	    T(test_bad_rx_buffers),
	    T(test_rst_queue_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
