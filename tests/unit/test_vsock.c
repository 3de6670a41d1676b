/* virtio-vsock with a fake guest: handshakes both ways, data, credit, teardown, resets. */
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

#define GUEST_PORT 1234
#define OP_REQ VIRTIO_VSOCK_OP_REQUEST
#define OP_RESP VIRTIO_VSOCK_OP_RESPONSE
#define OP_RST VIRTIO_VSOCK_OP_RST
#define OP_SHUT VIRTIO_VSOCK_OP_SHUTDOWN
#define OP_RW VIRTIO_VSOCK_OP_RW
#define OP_CUPD VIRTIO_VSOCK_OP_CREDIT_UPDATE
#define OP_CREQ VIRTIO_VSOCK_OP_CREDIT_REQUEST

static struct vt_pkt pkt;

static int setup(void **state)
{
	struct vt_env *e = calloc(1, sizeof(*e));
	log_setup(2, LOG_OFF, 0, 0);
	vt_init(e, 0);
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

static void expect_pkt(struct vt_env *e, uint16_t op, uint32_t src_port, uint32_t dst_port)
{
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, op);
	assert_int_equal(pkt.h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(pkt.h.dst_cid, VT_CID);
	assert_int_equal(pkt.h.type, VIRTIO_VSOCK_TYPE_STREAM);
	assert_int_equal(pkt.h.src_port, src_port);
	assert_int_equal(pkt.h.dst_port, dst_port);
}

static void expect_no_pkt(struct vt_env *e)
{
	assert_int_equal(vt_recv(e, &pkt), 0);
}

/* A host client connects through uds_path and the guest port GUEST_PORT accepts. */
static int host_initiated(struct vt_env *e, uint32_t *local_port)
{
	char line[64];
	int fd = vt_unix_connect(e->path);
	vt_write(fd, "CONNECT 1234\n", 13);
	vt_pump(e);
	assert_int_equal(vt_recv(e, &pkt), 1);
	assert_int_equal(pkt.h.op, OP_REQ);
	assert_int_equal(pkt.h.dst_port, GUEST_PORT);
	assert_int_equal(pkt.h.buf_alloc, VSOCK_CONN_BUF_SIZE);
	*local_port = pkt.h.src_port;
	assert_true(*local_port >= VSOCK_LOCAL_PORT_BASE && *local_port < (1u << 31));
	struct vsock_hdr h = vt_hdr(OP_RESP, GUEST_PORT, *local_port);
	vt_send(e, &h, NULL);
	int n = snprintf(line, sizeof(line), "OK %u\n", *local_port);
	char got[64] = {0};
	assert_int_equal(vt_read(fd, got, sizeof(got)), n);
	assert_string_equal(got, line);
	return fd;
}

static void test_config_and_features(void **state)
{
	struct vt_env *e = *state;
	uint64_t cid = 0;
	virtio_mmio_bus_ops.read(&e->t, VIRTIO_MMIO_CONFIG, (uint8_t *)&cid, 8);
	assert_int_equal(cid, VT_CID);
	assert_int_equal(vt_reg_read(e, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	vt_reg_write(e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(vt_reg_read(e, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 */
	vt_reg_write(e, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(vt_reg_read(e, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_VSOCK_QUEUE_SIZE);
}

static void test_host_initiated_data_both_ways(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	int fd = host_initiated(e, &lp);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 1);
	vt_write(fd, "hello guest", 11);
	vt_pump(e);
	expect_pkt(e, OP_RW, lp, GUEST_PORT);
	assert_int_equal(pkt.h.len, 11);
	assert_memory_equal(pkt.data, "hello guest", 11);
	struct vsock_hdr h = vt_hdr(OP_RW, GUEST_PORT, lp);
	h.len = 10;
	vt_send(e, &h, "hello host");
	char buf[32];
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 10);
	assert_memory_equal(buf, "hello host", 10);
	/* A second connection gets the next local port. */
	uint32_t lp2;
	int fd2 = host_initiated(e, &lp2);
	assert_int_equal(lp2, lp + 1);
	assert_true(e->irqs > 0);
	close(fd);
	close(fd2);
	vt_pump(e);
	expect_pkt(e, OP_SHUT, lp, GUEST_PORT);
	assert_int_equal(pkt.h.flags, 3);
	expect_pkt(e, OP_SHUT, lp2, GUEST_PORT);
	h = vt_hdr(OP_RST, GUEST_PORT, lp);
	vt_send(e, &h, NULL);
	h = vt_hdr(OP_RST, GUEST_PORT, lp2);
	vt_send(e, &h, NULL);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
}

/* Data the host sent right behind its CONNECT line is not lost in the handshake. */
static void test_host_data_behind_connect_line(void **state)
{
	struct vt_env *e = *state;
	int fd = vt_unix_connect(e->path);
	vt_write(fd, "connect +1234\nearly", 19);
	vt_pump(e);
	expect_pkt(e, OP_REQ, VSOCK_LOCAL_PORT_BASE, GUEST_PORT);
	expect_no_pkt(e);
	struct vsock_hdr h = vt_hdr(OP_RESP, GUEST_PORT, VSOCK_LOCAL_PORT_BASE);
	vt_send(e, &h, NULL);
	vt_pump(e);
	expect_pkt(e, OP_RW, VSOCK_LOCAL_PORT_BASE, GUEST_PORT);
	assert_memory_equal(pkt.data, "early", 5);
	close(fd);
}

static void test_guest_refuses_host_connect(void **state)
{
	struct vt_env *e = *state;
	char buf[8];
	int fd = vt_unix_connect(e->path);
	vt_write(fd, "CONNECT 77\n", 11);
	vt_pump(e);
	expect_pkt(e, OP_REQ, VSOCK_LOCAL_PORT_BASE, 77);
	struct vsock_hdr h = vt_hdr(OP_RST, 77, VSOCK_LOCAL_PORT_BASE);
	vt_send(e, &h, NULL);
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0); /* closed, no OK */
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
	close(fd);
}

/* A guest that never answers the REQUEST: after the timeout, RST and the host is closed. */
static void test_host_connect_times_out(void **state)
{
	struct vt_env *e = *state;
	char buf[8];
	int fd = vt_unix_connect(e->path);
	vt_write(fd, "CONNECT 78\n", 11);
	vt_pump(e);
	expect_pkt(e, OP_REQ, VSOCK_LOCAL_PORT_BASE, 78);
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), -EAGAIN);
	e->skew = VSOCK_REQUEST_TIMEOUT_NS + 1;
	e->v.mux.timer.ev.handle(e->v.mux.timer.ev.ctx, EPOLLIN);
	expect_pkt(e, OP_RST, VSOCK_LOCAL_PORT_BASE, 78);
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(e->v.mux.stats.timeouts, 1);
	close(fd);
}

static void test_guest_initiated_listening(void **state)
{
	struct vt_env *e = *state;
	char path[128], buf[32];
	snprintf(path, sizeof(path), "%s_5000", e->path);
	int lfd = vt_unix_listen(path);
	struct vsock_hdr h = vt_hdr(OP_REQ, 40000, 5000);
	vt_send(e, &h, NULL);
	expect_pkt(e, OP_RESP, 5000, 40000);
	assert_int_equal(pkt.h.buf_alloc, VSOCK_CONN_BUF_SIZE);
	int fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	h = vt_hdr(OP_RW, 40000, 5000);
	h.len = 4;
	vt_send(e, &h, "ping");
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	vt_write(fd, "pong", 4);
	vt_pump(e);
	expect_pkt(e, OP_RW, 5000, 40000);
	assert_memory_equal(pkt.data, "pong", 4);
	/* The guest closes: SHUTDOWN both ways with nothing buffered ends in an RST. */
	h = vt_hdr(OP_SHUT, 40000, 5000);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	vt_send(e, &h, NULL);
	expect_pkt(e, OP_RST, 5000, 40000);
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
	close(fd);
	close(lfd);
	unlink(path);
}

static void test_guest_initiated_nobody_listening(void **state)
{
	struct vt_env *e = *state;
	struct vsock_hdr h = vt_hdr(OP_REQ, 40001, 5001);
	vt_send(e, &h, NULL);
	expect_pkt(e, OP_RST, 5001, 40001);
	assert_int_equal(pkt.h.len, 0);
	assert_int_equal(e->v.mux.stats.conns_refused, 1);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
}

/* The guest advertises 8 KiB: kiln never sends more before a credit update. */
static void test_credit_host_to_guest(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	int fd = host_initiated(e, &lp);
	static uint8_t data[20000];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = i * 13;
	struct vsock_hdr h = vt_hdr(OP_CUPD, GUEST_PORT, lp);
	h.buf_alloc = 8192;
	vt_send(e, &h, NULL);
	vt_write(fd, data, sizeof(data));
	uint32_t got = 0, fwd = 0;
	for (int round = 0; round < 3; round++) {
		vt_pump(e);
		uint32_t in_round = 0;
		while (vt_recv(e, &pkt) && pkt.h.op == OP_RW) {
			assert_memory_equal(pkt.data, data + got, pkt.h.len);
			got += pkt.h.len;
			in_round += pkt.h.len;
		}
		vt_post_rx(e, 8);
		if (got < sizeof(data)) {
			/* Out of credit: asked for more, and nothing else came. */
			assert_int_equal(pkt.h.op, OP_CREQ);
			assert_int_equal(in_round, 8192);
			expect_no_pkt(e);
		}
		fwd = got;
		h.fwd_cnt = fwd;
		vt_send(e, &h, NULL);
	}
	assert_int_equal(got, sizeof(data));
	close(fd);
}

/* A host that does not read: kiln buffers up to its advertised 64 KiB, no more. */
static void test_credit_guest_to_host(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	int fd = host_initiated(e, &lp);
	struct vsock_conn *c = e->v.mux.slot[0];
	int small = 4096;
	assert_int_equal(setsockopt(c->src.ev.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	static uint8_t data[VSOCK_CONN_BUF_SIZE + 1], got[2 * VSOCK_CONN_BUF_SIZE];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = i * 7 + 1;
	struct vsock_hdr h = vt_hdr(OP_RW, GUEST_PORT, lp);
	h.len = 4096;
	for (uint32_t off = 0; off < VSOCK_CONN_BUF_SIZE; off += 4096)
		vt_send(e, &h, data + off);
	assert_true(c->buf_len > 0); /* the socket did not take it all */
	assert_int_equal(c->state, VSOCK_ESTABLISHED);
	/* The host reads everything: buffered data flows, the guest hears of the space. */
	size_t total = 0;
	for (int i = 0; i < 200 && total < VSOCK_CONN_BUF_SIZE; i++) {
		ssize_t r = vt_read(fd, got + total, sizeof(got) - total);
		if (r > 0)
			total += r;
		vt_pump(e);
	}
	assert_int_equal(total, VSOCK_CONN_BUF_SIZE);
	assert_memory_equal(got, data, VSOCK_CONN_BUF_SIZE);
	expect_pkt(e, OP_CUPD, lp, GUEST_PORT);
	assert_int_equal(pkt.h.fwd_cnt, VSOCK_CONN_BUF_SIZE);
	assert_int_equal(pkt.h.buf_alloc, VSOCK_CONN_BUF_SIZE);
	assert_int_equal(e->v.mux.stats.credit_lies, 0);
	close(fd);
}

/* More than the advertised buffer while the host is not reading: the guest lied. */
static void test_credit_lie_guest_to_host(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	int fd = host_initiated(e, &lp);
	struct vsock_conn *c = e->v.mux.slot[0];
	int small = 4096;
	setsockopt(c->src.ev.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	static uint8_t data[VSOCK_MAX_PAYLOAD];
	struct vsock_hdr h = vt_hdr(OP_RW, GUEST_PORT, lp);
	h.len = VSOCK_MAX_PAYLOAD;
	vt_send(e, &h, data);
	vt_send(e, &h, data);
	vt_send(e, &h, data);
	expect_pkt(e, OP_RST, lp, GUEST_PORT);
	assert_int_equal(e->v.mux.stats.credit_lies, 1);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
	close(fd);
}

/* Without rx buffers nothing moves and nothing piles up; new buffers resume the flow. */
static void test_rx_pauses_without_buffers(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	int fd = host_initiated(e, &lp);
	/* Use up the posted buffers (one went to the REQUEST) with data, then stop posting. */
	static uint8_t data[VT_RX_BUF];
	unsigned used = 1;
	while (used < 64) {
		vt_write(fd, data, sizeof(data));
		vt_pump(e);
		while (vt_recv(e, &pkt))
			used++;
	}
	struct vsock_conn *c = e->v.mux.slot[0];
	vt_write(fd, "tail", 4);
	vt_pump(e);
	for (int i = 0; i < 3; i++) {
		vt_write(fd, "tail", 4);
		vt_pump(e);
	}
	expect_no_pkt(e);
	assert_false(c->src.armed & EPOLLIN); /* socket paused, not spinning */
	vt_post_rx(e, 4);
	expect_pkt(e, OP_RW, lp, GUEST_PORT);
	assert_int_equal(pkt.h.len, 16);
	close(fd);
}

static void test_host_closes_then_timeout(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	int fd = host_initiated(e, &lp);
	close(fd);
	vt_pump(e);
	expect_pkt(e, OP_SHUT, lp, GUEST_PORT);
	assert_int_equal(pkt.h.flags, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	/* Whatever the guest still sends is ignored; no RST from it: kiln resets. */
	struct vsock_hdr h = vt_hdr(OP_RW, GUEST_PORT, lp);
	h.len = 3;
	vt_send(e, &h, "abc");
	expect_no_pkt(e);
	e->skew = VSOCK_SHUTDOWN_TIMEOUT_NS + 1;
	e->v.mux.timer.ev.handle(e->v.mux.timer.ev.ctx, EPOLLIN);
	expect_pkt(e, OP_RST, lp, GUEST_PORT);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
}

static void test_guest_half_shutdown(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	char buf[8];
	int fd = host_initiated(e, &lp);
	struct vsock_hdr h = vt_hdr(OP_SHUT, GUEST_PORT, lp);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	vt_send(e, &h, NULL);
	expect_no_pkt(e);
	vt_write(fd, "still", 5); /* the guest still receives */
	vt_pump(e);
	expect_pkt(e, OP_RW, lp, GUEST_PORT);
	h.op = OP_RW;
	h.len = 3;
	vt_send(e, &h, "bad"); /* but promised not to send */
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), -EAGAIN);
	h.op = OP_SHUT;
	h.len = 0;
	h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV;
	vt_send(e, &h, NULL);
	expect_pkt(e, OP_RST, lp, GUEST_PORT);
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0);
	close(fd);
}

static void test_credit_request_answered(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	int fd = host_initiated(e, &lp);
	struct vsock_hdr h = vt_hdr(OP_CREQ, GUEST_PORT, lp);
	vt_send(e, &h, NULL);
	expect_pkt(e, OP_CUPD, lp, GUEST_PORT);
	assert_int_equal(pkt.h.buf_alloc, VSOCK_CONN_BUF_SIZE);
	assert_int_equal(pkt.h.fwd_cnt, 0);
	close(fd);
}

static void test_transport_reset_event(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	char buf[8];
	int fd = host_initiated(e, &lp);
	assert_int_equal(virtio_vsock_transport_reset(&e->v), -ENOSPC); /* no event buffer */
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0);
	close(fd);
	fd = host_initiated(e, &lp);
	struct vt_queue *q = &e->q[VIRTIO_VSOCK_EVQ];
	uint16_t head = vt_pair(q);
	memset(vt_host(e, vt_slot(q, head), 4), 0xff, 4);
	vt_desc(e, q, head, vt_slot(q, head), 4, VRING_DESC_F_WRITE, 0);
	vt_publish(e, q, head);
	int irqs = e->irqs;
	assert_int_equal(virtio_vsock_transport_reset(&e->v), 0);
	assert_int_equal(e->irqs, irqs + 1);
	assert_int_equal(vt_get16(e, q->used + 2), 1);
	uint32_t id;
	memcpy(&id, vt_host(e, vt_slot(q, head), 4), 4);
	assert_int_equal(id, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vsock_uds_nr_conns(&e->v.mux), 0);
	close(fd);
	/* Not live: refused. */
	vt_reg_write(e, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(virtio_vsock_transport_reset(&e->v), -ENODEV);
}

/* A driver reset closes everything; host clients wait in the backlog until activation. */
static void test_device_reset(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	char buf[8];
	int fd = host_initiated(e, &lp);
	int pending = vt_unix_connect(e->path);
	vt_pump(e);
	vt_reg_write(e, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(vt_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vt_read(pending, buf, sizeof(buf)), 0); /* its handshake was open */
	int waiting = vt_unix_connect(e->path);
	vt_write(waiting, "CONNECT 9\n", 10);
	vt_pump(e);
	assert_int_equal(e->v.mux.nr_used, 0);
	vt_activate(e);
	vt_post_rx(e, 4);
	vt_pump(e);
	expect_pkt(e, OP_REQ, lp + 1, 9);
	close(fd);
	close(pending);
	close(waiting);
}

/* The transport stops the device (a broken queue): host sources go quiet, no spinning. */
/* 200 cheap tx packets (shorter than a header, dropped) queued at once: one kick handles
 * VIRTQ_BUDGET, the transport is asked to run the queue again, which handles the rest. */
static void test_tx_budget(void **state)
{
	struct vt_env *e = *state;
	struct vt_queue *q = &e->q[VIRTIO_VSOCK_TXQ];
	uint8_t runt[8] = {0};
	vt_tx_raw(e, runt, sizeof(runt), 0);
	uint16_t head = (uint16_t)(q->avail_idx - 1) % VT_QSIZE;
	head = vt_get16(e, q->avail + 4 + 2 * head);
	for (int i = 1; i < 200; i++)
		vt_publish(e, q, head);
	uint16_t used = vt_get16(e, q->used + 2);
	vt_notify(e, VIRTIO_VSOCK_TXQ);
	assert_int_equal((uint16_t)(vt_get16(e, q->used + 2) - used), VIRTQ_BUDGET);
	assert_int_equal(e->t.requeues, 1);
	vt_notify(e, VIRTIO_VSOCK_TXQ);
	assert_int_equal((uint16_t)(vt_get16(e, q->used + 2) - used), 200);
	assert_int_equal(e->t.requeues, 1);
	assert_false(vt_reg_read(e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_broken_device_quiesces(void **state)
{
	struct vt_env *e = *state;
	uint32_t lp;
	int fd = host_initiated(e, &lp);
	/* Break the tx ring: an avail index far ahead of what the ring can hold. */
	vt_put16(e, e->q[VIRTIO_VSOCK_TXQ].avail + 2, e->q[VIRTIO_VSOCK_TXQ].avail_idx + 1000);
	vt_notify(e, VIRTIO_VSOCK_TXQ);
	assert_true(vt_reg_read(e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	vt_write(fd, "x", 1);
	vt_pump(e);
	assert_false(e->v.mux.slot[0]->src.in_loop);
	assert_int_equal(evloop_run_once(&e->loop, 0), 0);
	close(fd);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_config_and_features),
	    T(test_host_initiated_data_both_ways),
	    T(test_host_data_behind_connect_line),
	    T(test_guest_refuses_host_connect),
	    T(test_host_connect_times_out),
	    T(test_guest_initiated_listening),
	    T(test_guest_initiated_nobody_listening),
	    T(test_credit_host_to_guest),
	    T(test_credit_guest_to_host),
	    T(test_credit_lie_guest_to_host),
	    T(test_rx_pauses_without_buffers),
	    T(test_host_closes_then_timeout),
	    T(test_guest_half_shutdown),
	    T(test_credit_request_answered),
	    T(test_transport_reset_event),
	    T(test_tx_budget),
	    T(test_device_reset),
	    T(test_broken_device_quiesces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
