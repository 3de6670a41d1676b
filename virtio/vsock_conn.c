#include "virtio/vsock_conn.h"

#include <errno.h>
#include <linux/virtio_vsock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define SHUTDOWN_BOTH (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)

void vsock_conn_start_local(struct vsock_conn *c, uint32_t local_port, uint32_t peer_port,
			    uint64_t now)
{
	c->state = VSOCK_LOCAL_INIT;
	c->local_port = local_port;
	c->peer_port = peer_port;
	c->pending = VSOCK_RX_REQUEST;
	c->expiry_ns = now + VSOCK_REQUEST_TIMEOUT_NS;
}

void vsock_conn_start_peer(struct vsock_conn *c, const struct vsock_hdr *req)
{
	c->state = VSOCK_PEER_INIT;
	c->local_port = req->dst_port;
	c->peer_port = req->src_port;
	c->pending = VSOCK_RX_RESPONSE;
	c->peer_buf_alloc = req->buf_alloc;
	c->peer_fwd_cnt = req->fwd_cnt;
	c->expiry_ns = 0;
}

void vsock_conn_release(struct vsock_conn *c)
{
	free(c->buf);
	c->buf = NULL;
	c->buf_head = c->buf_len = 0;
}

void vsock_conn_kill(struct vsock_conn *c)
{
	c->state = VSOCK_KILLED;
	c->pending = VSOCK_RX_RST;
	c->expiry_ns = 0;
	vsock_conn_release(c);
}

uint32_t vsock_conn_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Whether the guest's idea of kiln's free buffer space is getting too small: it last heard
 * fwd_cnt_told, and could have filled the whole buffer since. */
static bool guest_needs_credit(const struct vsock_conn *c)
{
	uint32_t freed_since = c->fwd_cnt - c->fwd_cnt_told;
	return freed_since > VSOCK_CONN_BUF_SIZE - VSOCK_CREDIT_UPDATE_THRESHOLD;
}

static bool can_send_to_guest(const struct vsock_conn *c)
{
	switch (c->state) {
	case VSOCK_PEER_INIT:
	case VSOCK_ESTABLISHED:
		return true;
	case VSOCK_PEER_CLOSED:
		return !c->peer_no_recv;
	default:
		return false;
	}
}

static bool can_recv_from_guest(const struct vsock_conn *c)
{
	return c->state == VSOCK_ESTABLISHED || (c->state == VSOCK_PEER_CLOSED && !c->peer_no_send);
}

uint32_t vsock_conn_events(const struct vsock_conn *c)
{
	if (c->src.ev.fd < 0 || c->state == VSOCK_KILLED)
		return 0;
	if (c->state == VSOCK_HANDSHAKE)
		return EPOLLIN;
	uint32_t ev = c->buf_len ? EPOLLOUT : 0;
	if (can_send_to_guest(c) && !(c->pending & VSOCK_RX_RW) && vsock_conn_peer_credit(c))
		ev |= EPOLLIN;
	return ev;
}

/* Every packet carries the guest's credit. A fwd_cnt acknowledging bytes never sent is a
 * lie the connection does not survive; one older than the last (Linux can queue packets
 * built concurrently out of order) is stale and ignored. */
static bool take_peer_credit(struct vsock_conn *c, const struct vsock_hdr *h)
{
	uint32_t acked = h->fwd_cnt - c->peer_fwd_cnt, unacked = c->rx_cnt - c->peer_fwd_cnt;
	if ((int32_t)acked < 0)
		return true;
	if (acked > unacked)
		return false;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (vsock_conn_peer_credit(c))
		c->credit_requested = false;
	return true;
}

static ssize_t send_iov(int fd, struct iovec *iov, unsigned n)
{
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
	ssize_t r;
	do {
		r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return r < 0 ? -errno : r;
}

/* Appends payload bytes [skip, len) to the ring buffer (room was checked by the caller). */
static int buffer_payload(struct vsock_conn *c, const struct vsock_iov *p, uint32_t skip)
{
	if (!c->buf && !(c->buf = malloc(VSOCK_CONN_BUF_SIZE)))
		return -ENOMEM;
	for (unsigned i = 0; i < p->n; i++) {
		const uint8_t *src = p->iov[i].iov_base;
		uint32_t len = p->iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		src += skip;
		len -= skip;
		skip = 0;
		while (len) {
			uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_CONN_BUF_SIZE;
			uint32_t k = VSOCK_CONN_BUF_SIZE - tail;
			k = k < len ? k : len;
			memcpy(c->buf + tail, src, k);
			c->buf_len += k;
			src += k;
			len -= k;
		}
	}
	return 0;
}

/* Writes buffered data to the host socket as far as it takes it. */
static void flush_buffer(struct vsock_conn *c, struct vsock_stats *st)
{
	while (c->buf_len) {
		uint32_t first = VSOCK_CONN_BUF_SIZE - c->buf_head;
		first = first < c->buf_len ? first : c->buf_len;
		struct iovec iov[2] = {{c->buf + c->buf_head, first}, {c->buf, c->buf_len - first}};
		ssize_t n = send_iov(c->src.ev.fd, iov, iov[1].iov_len ? 2 : 1);
		if (n < 0) {
			st->host_errors++;
			vsock_conn_kill(c);
			return;
		}
		if (n == 0)
			return;
		c->buf_head = (c->buf_head + n) % VSOCK_CONN_BUF_SIZE;
		c->buf_len -= n;
		c->fwd_cnt += n;
		st->tx_bytes += n;
	}
	vsock_conn_release(c);
	/* A guest that shut down both ways only waited for this buffer to drain. */
	if (c->state == VSOCK_PEER_CLOSED && c->peer_no_recv && c->peer_no_send)
		vsock_conn_kill(c);
	else if (guest_needs_credit(c))
		c->pending |= VSOCK_RX_CREDIT_UPDATE;
}

/* An RW packet: straight to the host socket unless data is already waiting (order). */
static void recv_data(struct vsock_conn *c, const struct vsock_hdr *h,
		      const struct vsock_iov *payload, struct vsock_stats *st)
{
	if (h->len > VSOCK_CONN_BUF_SIZE - c->buf_len) {
		st->credit_lies++;
		vsock_conn_kill(c);
		return;
	}
	c->recv_cnt += h->len;
	ssize_t n = 0;
	if (c->buf_len == 0) {
		struct iovec iov[VSOCK_MAX_IOV];
		memcpy(iov, payload->iov, payload->n * sizeof(iov[0]));
		n = send_iov(c->src.ev.fd, iov, payload->n);
	}
	if (n < 0 || (n < h->len && buffer_payload(c, payload, n) < 0)) {
		st->host_errors++;
		vsock_conn_kill(c);
		return;
	}
	c->fwd_cnt += n;
	st->tx_bytes += n;
	if (guest_needs_credit(c))
		c->pending |= VSOCK_RX_CREDIT_UPDATE;
}

/* The guest accepted a host-initiated connection: tell the host client which local port it
 * got, as Firecracker does. The socket is fresh, so anything short of the whole line is an
 * error. */
static void established(struct vsock_conn *c, struct vsock_stats *st)
{
	char msg[24];
	int len = snprintf(msg, sizeof(msg), "OK %u\n", c->local_port);
	struct iovec iov = {msg, len};
	c->state = VSOCK_ESTABLISHED;
	c->expiry_ns = 0;
	if (send_iov(c->src.ev.fd, &iov, 1) != len) {
		st->host_errors++;
		vsock_conn_kill(c);
	}
}

static void recv_shutdown(struct vsock_conn *c, uint32_t flags, uint64_t now)
{
	c->state = VSOCK_PEER_CLOSED;
	c->peer_no_recv |= flags & VIRTIO_VSOCK_SHUTDOWN_RCV;
	c->peer_no_send |= flags & VIRTIO_VSOCK_SHUTDOWN_SEND;
	if (!c->peer_no_recv || !c->peer_no_send)
		return;
	c->pending &= ~VSOCK_RX_RW;
	if (c->buf_len == 0)
		vsock_conn_kill(c);
	else if (!c->expiry_ns)
		c->expiry_ns = now + VSOCK_SHUTDOWN_TIMEOUT_NS;
}

void vsock_conn_recv(struct vsock_conn *c, const struct vsock_hdr *h,
		     const struct vsock_iov *payload, uint64_t now, struct vsock_stats *st)
{
	/* After kiln's SHUTDOWN or RST the guest may still have had anything in flight. */
	if (c->state == VSOCK_KILLED || c->state == VSOCK_LOCAL_CLOSED)
		return;
	if (!take_peer_credit(c, h)) {
		st->credit_lies++;
		vsock_conn_kill(c);
		return;
	}
	bool open = c->state == VSOCK_ESTABLISHED || c->state == VSOCK_PEER_CLOSED;
	if (h->op == VIRTIO_VSOCK_OP_RW && can_recv_from_guest(c)) {
		if (h->len)
			recv_data(c, h, payload, st);
	} else if (h->op == VIRTIO_VSOCK_OP_RESPONSE && c->state == VSOCK_LOCAL_INIT &&
		   !(c->pending & VSOCK_RX_REQUEST)) {
		established(c, st);
	} else if (h->op == VIRTIO_VSOCK_OP_SHUTDOWN && open) {
		recv_shutdown(c, h->flags, now);
	} else if (h->op == VIRTIO_VSOCK_OP_CREDIT_UPDATE &&
		   (open || c->state == VSOCK_PEER_INIT)) {
		/* The credit is all it carries. */
	} else if (h->op == VIRTIO_VSOCK_OP_CREDIT_REQUEST &&
		   (c->state == VSOCK_PEER_INIT || can_recv_from_guest(c))) {
		c->pending |= VSOCK_RX_CREDIT_UPDATE;
	} else {
		st->unexpected++;
	}
}

void vsock_conn_on_event(struct vsock_conn *c, uint32_t events, struct vsock_stats *st)
{
	if (c->src.ev.fd < 0 || c->state == VSOCK_KILLED)
		return;
	if ((c->src.armed & EPOLLIN) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		c->pending |= VSOCK_RX_RW;
	if (c->buf_len && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
		flush_buffer(c, st);
}

/* RW is pending: is there data (RW), EOF (SHUTDOWN), nothing (0), or an error (RST)? */
static uint16_t peek_host(struct vsock_conn *c, struct vsock_stats *st)
{
	if (!can_send_to_guest(c)) {
		c->pending &= ~VSOCK_RX_RW;
		return 0;
	}
	if (!vsock_conn_peer_credit(c)) {
		c->pending &= ~VSOCK_RX_RW;
		if (!c->credit_requested)
			c->pending |= VSOCK_RX_CREDIT_REQUEST;
		return 0;
	}
	uint8_t b;
	ssize_t r;
	do {
		r = recv(c->src.ev.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	} while (r < 0 && errno == EINTR);
	if (r > 0)
		return VIRTIO_VSOCK_OP_RW;
	if (r == 0)
		return VIRTIO_VSOCK_OP_SHUTDOWN;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->pending &= ~VSOCK_RX_RW;
		return 0;
	}
	st->host_errors++;
	vsock_conn_kill(c);
	return VIRTIO_VSOCK_OP_RST;
}

int vsock_conn_read_line(struct vsock_conn *c, uint32_t *port)
{
	char tmp[VSOCK_CONNECT_LINE_MAX];
	size_t room = VSOCK_CONNECT_LINE_MAX - c->line_len;
	ssize_t r = recv(c->src.ev.fd, tmp, room, MSG_PEEK | MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return -EAGAIN;
	if (r <= 0)
		return r < 0 ? -errno : -EPIPE;
	char *nl = memchr(tmp, '\n', r);
	size_t take = nl ? (size_t)(nl - tmp + 1) : (size_t)r;
	if (recv(c->src.ev.fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take)
		return -EIO;
	c->line_len += take;
	if (!nl)
		return c->line_len == VSOCK_CONNECT_LINE_MAX ? -EINVAL : -EAGAIN;
	return vsock_parse_connect(c->line, c->line_len, port);
}

uint16_t vsock_conn_next_op(struct vsock_conn *c, struct vsock_stats *st)
{
	if (c->pending & VSOCK_RX_RST)
		return VIRTIO_VSOCK_OP_RST;
	if (c->pending & VSOCK_RX_RESPONSE)
		return VIRTIO_VSOCK_OP_RESPONSE;
	if (c->pending & VSOCK_RX_REQUEST)
		return VIRTIO_VSOCK_OP_REQUEST;
	if (c->pending & VSOCK_RX_RW) {
		uint16_t op = peek_host(c, st);
		if (op)
			return op;
	}
	if (c->pending & VSOCK_RX_CREDIT_REQUEST)
		return VIRTIO_VSOCK_OP_CREDIT_REQUEST;
	if (c->pending & VSOCK_RX_CREDIT_UPDATE)
		return VIRTIO_VSOCK_OP_CREDIT_UPDATE;
	return 0;
}

/* Reads the payload of an RW packet; returns the op the packet turned out to be. */
static uint16_t read_host(struct vsock_conn *c, struct vsock_hdr *h, const struct vsock_iov *room,
			  struct vsock_stats *st)
{
	struct iovec iov[VSOCK_MAX_IOV];
	memcpy(iov, room->iov, room->n * sizeof(iov[0]));
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = room->n};
	ssize_t r;
	do {
		r = recvmsg(c->src.ev.fd, &m, MSG_DONTWAIT);
	} while (r < 0 && errno == EINTR);
	if (r > 0) {
		h->len = r;
		c->rx_cnt += r;
		st->rx_bytes += r;
		return VIRTIO_VSOCK_OP_RW;
	}
	if (r == 0 && room->len)
		return VIRTIO_VSOCK_OP_SHUTDOWN;
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		st->host_errors++;
	/* Readable a moment ago: an error, or an rx buffer with no room. */
	vsock_conn_kill(c);
	return VIRTIO_VSOCK_OP_RST;
}

void vsock_conn_fill(struct vsock_conn *c, uint16_t op, uint64_t guest_cid, struct vsock_hdr *h,
		     const struct vsock_iov *room, uint64_t now, struct vsock_stats *st)
{
	*h = (struct vsock_hdr){.src_cid = VSOCK_HOST_CID,
				.dst_cid = guest_cid,
				.src_port = c->local_port,
				.dst_port = c->peer_port,
				.type = VIRTIO_VSOCK_TYPE_STREAM};
	if (op == VIRTIO_VSOCK_OP_RW) {
		c->pending &= ~VSOCK_RX_RW;
		op = read_host(c, h, room, st);
		/* More may be waiting: peek again next time rather than wait for EPOLLIN. */
		if (op == VIRTIO_VSOCK_OP_RW)
			c->pending |= VSOCK_RX_RW;
	}
	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		c->state = VSOCK_ESTABLISHED;
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		c->pending &= ~VSOCK_RX_RW;
		c->state = VSOCK_LOCAL_CLOSED;
		c->expiry_ns = now + VSOCK_SHUTDOWN_TIMEOUT_NS;
		h->flags = SHUTDOWN_BOTH;
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->credit_requested = true;
		break;
	}
	c->pending &= ~(op == VIRTIO_VSOCK_OP_RST	       ? VSOCK_RX_RST
			: op == VIRTIO_VSOCK_OP_RESPONSE       ? VSOCK_RX_RESPONSE
			: op == VIRTIO_VSOCK_OP_REQUEST	       ? VSOCK_RX_REQUEST
			: op == VIRTIO_VSOCK_OP_CREDIT_REQUEST ? VSOCK_RX_CREDIT_REQUEST
							       : 0);
	/* Every packet tells the guest kiln's credit; a separate update is then moot. */
	c->pending &= ~VSOCK_RX_CREDIT_UPDATE;
	h->op = op;
	h->buf_alloc = op == VIRTIO_VSOCK_OP_RST ? 0 : VSOCK_CONN_BUF_SIZE;
	h->fwd_cnt = c->fwd_cnt;
	c->fwd_cnt_told = c->fwd_cnt;
	st->rx_packets++;
}
