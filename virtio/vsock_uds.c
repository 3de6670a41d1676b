#include "virtio/vsock_uds.h"

#include <errno.h>
#include <linux/virtio_vsock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/log.h"

#define ACCEPT_BATCH 32		     /* host clients accepted per listener event */
#define ACCEPT_RETRY_NS 100000000ULL /* after accept failed for want of resources */

static uint64_t uds_clock(void *ctx)
{
	(void)ctx;
	return monotonic_ns();
}

/* ---- event-loop registration ------------------------------------------------------- */

/* Registers exactly `want`; an empty mask leaves the loop, since epoll reports EPOLLHUP
 * even for a source that asks for nothing. */
static int watch(struct vsock_uds *m, struct vsock_src *s, uint32_t want)
{
	int err = 0;
	if (s->ev.fd < 0)
		want = 0;
	if (!want && s->in_loop)
		err = evloop_del(m->loop, &s->ev);
	else if (want && !s->in_loop)
		err = evloop_add(m->loop, &s->ev, want);
	else if (want && want != s->armed)
		err = evloop_mod(m->loop, &s->ev, want);
	if (err)
		return err;
	s->in_loop = want != 0;
	s->armed = want;
	return 0;
}

/* The timer fired (or is to be forgotten): it is disarmed until timer_arm(). */
static void drain_timer(struct vsock_uds *m)
{
	uint64_t cnt;
	m->timer_at = 0;
	if (read(m->timer.ev.fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_debug("vsock %s: timer: %s", m->path, strerror(errno));
}

static void timer_arm(struct vsock_uds *m, uint64_t deadline)
{
	if (m->timer_at && m->timer_at <= deadline)
		return;
	struct itimerspec its = {
	    .it_value = {.tv_sec = deadline / 1000000000ULL, .tv_nsec = deadline % 1000000000ULL}};
	if (timerfd_settime(m->timer.ev.fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		m->timer_at = deadline;
}

/* ---- connection table -------------------------------------------------------------- */

static unsigned bucket(uint32_t local_port, uint32_t peer_port)
{
	uint32_t h = local_port * 0x9e3779b1u ^ peer_port * 0x85ebca6bu;
	return (h ^ h >> 16) % VSOCK_HASH_BUCKETS;
}

static struct vsock_conn *lookup(const struct vsock_uds *m, uint32_t local_port, uint32_t peer_port)
{
	for (int i = m->hash[bucket(local_port, peer_port)]; i >= 0; i = m->slot[i]->hash_next) {
		struct vsock_conn *c = m->slot[i];
		if (c->local_port == local_port && c->peer_port == peer_port)
			return c;
	}
	return NULL;
}

static void hash_insert(struct vsock_uds *m, struct vsock_conn *c)
{
	unsigned b = bucket(c->local_port, c->peer_port);
	c->hash_next = m->hash[b];
	m->hash[b] = c->src.id;
}

static void hash_remove(struct vsock_uds *m, struct vsock_conn *c)
{
	int *link = &m->hash[bucket(c->local_port, c->peer_port)];
	while (*link >= 0 && *link != c->src.id)
		link = &m->slot[*link]->hash_next;
	if (*link == c->src.id)
		*link = c->hash_next;
}

static void rxq_remove(struct vsock_uds *m, struct vsock_conn *c)
{
	if (!c->in_rxq)
		return;
	if (c->rx_prev >= 0)
		m->slot[c->rx_prev]->rx_next = c->rx_next;
	else
		m->rxq_head = c->rx_next;
	if (c->rx_next >= 0)
		m->slot[c->rx_next]->rx_prev = c->rx_prev;
	else
		m->rxq_tail = c->rx_prev;
	c->in_rxq = false;
}

static void rxq_append(struct vsock_uds *m, struct vsock_conn *c)
{
	if (c->in_rxq)
		return;
	c->rx_prev = m->rxq_tail;
	c->rx_next = -1;
	if (m->rxq_tail >= 0)
		m->slot[m->rxq_tail]->rx_next = c->src.id;
	else
		m->rxq_head = c->src.id;
	m->rxq_tail = c->src.id;
	c->in_rxq = true;
}

static void close_socket(struct vsock_uds *m, struct vsock_conn *c)
{
	if (c->src.ev.fd < 0)
		return;
	watch(m, &c->src, 0);
	close(c->src.ev.fd);
	c->src.ev.fd = -1;
}

static void src_init(struct vsock_src *s, struct vsock_uds *m, int id, int fd,
		     void (*handler)(void *ctx, uint32_t events))
{
	*s = (struct vsock_src){.ev = {.handle = handler, .ctx = s, .fd = fd}, .mux = m, .id = id};
}

/* A free slot with `fd` as its host socket, or NULL when the table is full. */
static struct vsock_conn *conn_alloc(struct vsock_uds *m, int fd,
				     void (*handler)(void *ctx, uint32_t events))
{
	if (m->nr_used >= VSOCK_MAX_CONNS)
		return NULL;
	for (int i = 0; i < VSOCK_MAX_CONNS; i++) {
		if (i < m->nr_slots && m->slot[i]->state != VSOCK_FREE)
			continue;
		if (i == m->nr_slots) {
			if (!(m->slot[i] = malloc(sizeof(*m->slot[i]))))
				return NULL;
			m->nr_slots++;
		}
		struct vsock_conn *c = m->slot[i];
		memset(c, 0, sizeof(*c));
		src_init(&c->src, m, i, fd, handler);
		c->rx_prev = c->rx_next = c->hash_next = -1;
		c->state = VSOCK_HANDSHAKE;
		m->nr_used++;
		return c;
	}
	return NULL;
}

/* Forgets a connection or handshake entirely; its host socket is closed. */
static void conn_free(struct vsock_uds *m, struct vsock_conn *c)
{
	if (c->state == VSOCK_FREE)
		return;
	close_socket(m, c);
	rxq_remove(m, c);
	if (c->state != VSOCK_HANDSHAKE) {
		hash_remove(m, c);
		m->stats.conns_removed++;
	}
	vsock_conn_release(c);
	c->state = VSOCK_FREE;
	c->pending = 0;
	m->nr_used--;
}

/* After anything that may have changed a connection: close a killed one's socket, queue
 * what it has for the guest, poll what it wants, and time what it waits for. */
static void conn_sync(struct vsock_uds *m, struct vsock_conn *c)
{
	if (c->state == VSOCK_KILLED)
		close_socket(m, c);
	if (c->pending)
		rxq_append(m, c);
	if (watch(m, &c->src, vsock_conn_events(c)) < 0 && c->state != VSOCK_HANDSHAKE) {
		vsock_conn_kill(c);
		close_socket(m, c);
		rxq_append(m, c);
	}
	if (c->expiry_ns)
		timer_arm(m, c->expiry_ns);
}

unsigned vsock_uds_nr_conns(const struct vsock_uds *m)
{
	unsigned n = 0;
	for (int i = 0; i < m->nr_slots; i++)
		n += m->slot[i]->state > VSOCK_HANDSHAKE;
	return n;
}

/* ---- setup and teardown ------------------------------------------------------------ */

static int open_error(char *err, size_t errlen, const char *path, int ret)
{
	snprintf(err, errlen, "vsock.uds_path: %s: %s", path, strerror(-ret));
	return ret;
}

static int bind_listener(struct vsock_uds *m, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) > VSOCK_PATH_MAX) {
		snprintf(err, errlen, "vsock.uds_path: %s: longer than %zu bytes", path,
			 VSOCK_PATH_MAX);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return open_error(err, errlen, path, -errno);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int ret = -errno;
		close(fd);
		return open_error(err, errlen, path, ret);
	}
	m->listener.ev.fd = fd;
	m->bound = true;
	if (listen(fd, 128) < 0)
		return open_error(err, errlen, path, -errno);
	return 0;
}

int vsock_uds_open(struct vsock_uds *m, const char *uds_path, uint64_t guest_cid,
		   struct evloop *loop, void (*handler)(void *ctx, uint32_t events), char *err,
		   size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->loop = loop;
	m->guest_cid = guest_cid;
	m->clock = uds_clock;
	m->rxq_head = m->rxq_tail = -1;
	m->local_port_last = VSOCK_LOCAL_PORT_BASE - 1;
	memset(m->hash, 0xff, sizeof(m->hash));
	src_init(&m->listener, m, VSOCK_SRC_LISTENER, -1, handler);
	src_init(&m->timer, m, VSOCK_SRC_TIMER, -1, handler);
	snprintf(m->path, sizeof(m->path), "%s", uds_path);
	int ret = bind_listener(m, uds_path, err, errlen);
	if (ret)
		goto fail;
	m->timer.ev.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (m->timer.ev.fd < 0) {
		ret = open_error(err, errlen, uds_path, -errno);
		goto fail;
	}
	if ((ret = watch(m, &m->timer, EPOLLIN))) {
		open_error(err, errlen, uds_path, ret);
		goto fail;
	}
	return 0;
fail:
	vsock_uds_close(m);
	return ret;
}

static void drop_all(struct vsock_uds *m, bool handshakes)
{
	for (int i = 0; i < m->nr_slots; i++) {
		struct vsock_conn *c = m->slot[i];
		if (handshakes || c->state != VSOCK_HANDSHAKE)
			conn_free(m, c);
	}
	m->rst_len = 0;
}

void vsock_uds_close(struct vsock_uds *m)
{
	drop_all(m, true);
	for (int i = 0; i < m->nr_slots; i++) {
		free(m->slot[i]);
		m->slot[i] = NULL;
	}
	m->nr_slots = 0;
	struct vsock_src *srcs[] = {&m->listener, &m->timer};
	for (unsigned i = 0; i < 2; i++) {
		if (srcs[i]->ev.fd < 0)
			continue;
		watch(m, srcs[i], 0);
		close(srcs[i]->ev.fd);
		srcs[i]->ev.fd = -1;
	}
	if (m->bound)
		unlink(m->path);
	m->bound = false;
}

void vsock_uds_activate(struct vsock_uds *m)
{
	m->active = true;
	if (watch(m, &m->listener, EPOLLIN) < 0)
		log_err("vsock %s: cannot poll the listening socket", m->path);
}

void vsock_uds_reset(struct vsock_uds *m)
{
	m->active = false;
	m->accept_paused = false;
	watch(m, &m->listener, 0);
	drop_all(m, true);
}

void vsock_uds_drop_conns(struct vsock_uds *m)
{
	drop_all(m, false);
}

/* ---- host-initiated connections ---------------------------------------------------- */

/* A local port no connection uses, round robin over [2^30, 2^31) as Firecracker does. */
static uint32_t alloc_local_port(struct vsock_uds *m)
{
	for (;;) {
		uint32_t p = ((m->local_port_last + 1) & ~(1u << 31)) | VSOCK_LOCAL_PORT_BASE;
		bool used = false;
		m->local_port_last = p;
		for (int i = 0; i < m->nr_slots && !used; i++)
			used = m->slot[i]->state > VSOCK_HANDSHAKE && m->slot[i]->local_port == p;
		if (!used)
			return p;
	}
}

static void bad_handshake(struct vsock_uds *m, struct vsock_conn *c)
{
	m->stats.bad_handshakes++;
	conn_free(m, c);
}

/* A host client's CONNECT line: once complete, a host-initiated connection. */
static void read_connect_line(struct vsock_uds *m, struct vsock_conn *c)
{
	uint32_t port;
	int err = vsock_conn_read_line(c, &port);
	if (err == -EAGAIN)
		return;
	if (err)
		return bad_handshake(m, c);
	vsock_conn_start_local(c, alloc_local_port(m), port, m->clock(m->clock_ctx));
	hash_insert(m, c);
	m->stats.conns_added++;
	conn_sync(m, c);
}

static void accept_clients(struct vsock_uds *m)
{
	for (int n = 0; n < ACCEPT_BATCH; n++) {
		int fd = accept4(m->listener.ev.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (fd < 0 && errno != EINTR && errno != ECONNABORTED) {
			/* Out of descriptors, say: a listener left readable would spin the loop, so
			 * it rests until the timer. */
			log_warn("vsock %s: accept: %s", m->path, strerror(errno));
			watch(m, &m->listener, 0);
			m->accept_paused = true;
			timer_arm(m, m->clock(m->clock_ctx) + ACCEPT_RETRY_NS);
			return;
		}
		if (fd < 0)
			continue;
		struct vsock_conn *c = conn_alloc(m, fd, m->listener.ev.handle);
		if (!c) {
			/* Like Firecracker at its limit: accept, then hang up. */
			m->stats.conns_over_limit++;
			close(fd);
			continue;
		}
		c->expiry_ns = m->clock(m->clock_ctx) + VSOCK_HANDSHAKE_TIMEOUT_NS;
		conn_sync(m, c);
	}
}

/* ---- guest packets ----------------------------------------------------------------- */

static void queue_rst(struct vsock_uds *m, uint32_t local_port, uint32_t peer_port)
{
	if (m->rst_len == VSOCK_RST_QUEUE) {
		m->stats.rst_dropped++;
		return;
	}
	m->rst[(m->rst_head + m->rst_len++) % VSOCK_RST_QUEUE] =
	    (struct vsock_rst){.local_port = local_port, .peer_port = peer_port};
}

static int connect_host(const struct vsock_uds *m, uint32_t port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", m->path, port);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Non-blocking: a listener with a full backlog refuses (EAGAIN) instead of stalling
	 * the device thread. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* A guest REQUEST for a connection kiln does not have: connect to <uds_path>_<port>. */
static void guest_connect(struct vsock_uds *m, const struct vsock_hdr *h)
{
	if (m->nr_used >= VSOCK_MAX_CONNS) {
		m->stats.conns_over_limit++;
		return queue_rst(m, h->dst_port, h->src_port);
	}
	int fd = connect_host(m, h->dst_port);
	struct vsock_conn *c = fd >= 0 ? conn_alloc(m, fd, m->listener.ev.handle) : NULL;
	if (!c) {
		if (fd >= 0)
			close(fd);
		m->stats.conns_refused++;
		return queue_rst(m, h->dst_port, h->src_port);
	}
	vsock_conn_start_peer(c, h);
	hash_insert(m, c);
	m->stats.conns_added++;
	conn_sync(m, c);
}

/* A packet kiln refuses: the connection it belongs to (if any) ends with an RST. */
static void refuse(struct vsock_uds *m, const struct vsock_hdr *h)
{
	struct vsock_conn *c = lookup(m, h->dst_port, h->src_port);
	if (c) {
		vsock_conn_kill(c);
		conn_sync(m, c);
	} else if (h->op != VIRTIO_VSOCK_OP_RST) {
		queue_rst(m, h->dst_port, h->src_port);
	}
}

void vsock_uds_send(struct vsock_uds *m, enum vsock_verdict v, const struct vsock_hdr *h,
		    const struct vsock_iov *payload)
{
	m->stats.tx_packets++;
	switch (v) {
	case VSOCK_PKT_OK:
		break;
	case VSOCK_PKT_DROP_SHORT:
	case VSOCK_PKT_DROP_CID:
		m->stats.malformed++;
		return;
	case VSOCK_PKT_RST_LEN:
		m->stats.bad_len++;
		return refuse(m, h);
	case VSOCK_PKT_RST_TYPE:
		m->stats.bad_type++;
		return refuse(m, h);
	case VSOCK_PKT_RST_OP:
		m->stats.bad_op++;
		return refuse(m, h);
	}
	struct vsock_conn *c = lookup(m, h->dst_port, h->src_port);
	if (!c) {
		if (h->op == VIRTIO_VSOCK_OP_REQUEST)
			return guest_connect(m, h);
		if (h->op != VIRTIO_VSOCK_OP_RST) {
			m->stats.unexpected++;
			queue_rst(m, h->dst_port, h->src_port);
		}
		return;
	}
	if (h->op == VIRTIO_VSOCK_OP_RST)
		return conn_free(m, c);
	vsock_conn_recv(c, h, payload, m->clock(m->clock_ctx), &m->stats);
	conn_sync(m, c);
}

/* ---- host events ------------------------------------------------------------------- */

/* Timed-out handshakes are dropped, timed-out connections reset; the timer is re-armed
 * for the earliest deadline left. */
static void expire(struct vsock_uds *m)
{
	uint64_t now = m->clock(m->clock_ctx), next = 0;
	drain_timer(m);
	if (m->accept_paused && m->active && watch(m, &m->listener, EPOLLIN) == 0)
		m->accept_paused = false;
	for (int i = 0; i < m->nr_slots; i++) {
		struct vsock_conn *c = m->slot[i];
		if (c->state == VSOCK_FREE || !c->expiry_ns)
			continue;
		if (c->expiry_ns > now) {
			next = next && next < c->expiry_ns ? next : c->expiry_ns;
		} else if (c->state == VSOCK_HANDSHAKE) {
			bad_handshake(m, c);
		} else {
			m->stats.timeouts++;
			vsock_conn_kill(c);
			conn_sync(m, c);
		}
	}
	if (next)
		timer_arm(m, next);
}

void vsock_uds_on_event(struct vsock_uds *m, struct vsock_src *src, uint32_t events)
{
	if (src->id == VSOCK_SRC_TIMER)
		return expire(m);
	if (src->id == VSOCK_SRC_LISTENER)
		return accept_clients(m);
	struct vsock_conn *c = m->slot[src->id];
	if (c->state == VSOCK_FREE)
		return;
	if (c->state == VSOCK_HANDSHAKE)
		return read_connect_line(m, c);
	vsock_conn_on_event(c, events, &m->stats);
	conn_sync(m, c);
}

void vsock_uds_quiesce(struct vsock_uds *m, struct vsock_src *src)
{
	if (src->id == VSOCK_SRC_TIMER)
		drain_timer(m);
	else
		watch(m, src, 0);
}

/* ---- packets for the guest --------------------------------------------------------- */

int vsock_uds_next_rx(struct vsock_uds *m, struct vsock_rx_job *job)
{
	if (m->rst_len) {
		const struct vsock_rst *r = &m->rst[m->rst_head];
		*job = (struct vsock_rx_job){.slot = -1,
					     .op = VIRTIO_VSOCK_OP_RST,
					     .local_port = r->local_port,
					     .peer_port = r->peer_port};
		return 0;
	}
	while (m->rxq_head >= 0) {
		struct vsock_conn *c = m->slot[m->rxq_head];
		uint16_t op = vsock_conn_next_op(c, &m->stats);
		if (op) {
			*job = (struct vsock_rx_job){.slot = c->src.id, .op = op};
			if (c->state == VSOCK_KILLED)
				close_socket(m, c);
			return 0;
		}
		rxq_remove(m, c);
		conn_sync(m, c);
	}
	return -EAGAIN;
}

uint32_t vsock_uds_rx_limit(const struct vsock_uds *m, const struct vsock_rx_job *job)
{
	if (job->slot < 0 || job->op != VIRTIO_VSOCK_OP_RW)
		return 0;
	return vsock_conn_peer_credit(m->slot[job->slot]);
}

void vsock_uds_fill_rx(struct vsock_uds *m, const struct vsock_rx_job *job, struct vsock_hdr *h,
		       const struct vsock_iov *room)
{
	if (job->slot < 0) {
		vsock_hdr_rst(h, m->guest_cid, job->local_port, job->peer_port);
		m->rst_head = (m->rst_head + 1) % VSOCK_RST_QUEUE;
		m->rst_len--;
		m->stats.rx_packets++;
		return;
	}
	struct vsock_conn *c = m->slot[job->slot];
	vsock_conn_fill(c, job->op, m->guest_cid, h, room, m->clock(m->clock_ctx), &m->stats);
	if (h->op == VIRTIO_VSOCK_OP_RST)
		return conn_free(m, c);
	/* Round robin: a connection with more to say goes to the back of the line. */
	rxq_remove(m, c);
	conn_sync(m, c);
}
