/* libFuzzer harness for virtio-vsock: packet parsing, the CONNECT line parser, and the
 * connection state machine fed by a scripted guest and host.
 *
 * The input is parsed raw first (vsock_pkt_parse_tx() over the whole input cut in three
 * descriptors, vsock_parse_connect() over its first 40 bytes), then run as a script of
 * records against a live device (fake guest memory, real sockets, its own event loop):
 *   [0] tag % 8, then:
 *   0  guest tx packet   [flags][split][len lo][len hi][n][n bytes]  (see tx_packet());
 *                        flags bit 6: no kick yet (a later kick takes a batch), bit 7:
 *                        published split % 4 more times, then a header byte flipped in
 *                        guest memory before the kick, as another vCPU could
 *   1  post rx buffers   [count][size]
 *   2  host client write [client][len][bytes...]  (connects on first use)
 *   3  host client end   [client][how]            (close, shut down writing, read)
 *   4  listener side     [how][len][bytes...]     (accept, write, read, close at <uds>_1000)
 *   5  run the event loop (kiln's host sockets get small send buffers first)
 *   6  time passes       [seconds]                (then the timer runs)
 *   7  resets            [how]                    (see resets())
 * The device and its sockets outlive inputs: each input starts with a driver reset and
 * re-initialization (EVENT_IDX negotiated when its first byte has bit 7 set); after the
 * script every host socket is closed and the driver resets the device, which must leave
 * exactly the sockets open before the input (else abort).
 * Any crash, sanitizer report, hang or leak is a bug. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "tests/unit/vsock_test_env.h"
#include "virtio/vsock_pkt.h"
#include "vmm/log.h"

#define CLIENTS 4
#define PEERS 4
#define LISTEN_PORT 1000

struct fuzz {
	struct vt_env e;
	int client[CLIENTS];
	int peer[PEERS];
	int lfd;
	int fds; /* sockets open between inputs */
	char lpath[128];
	const uint8_t *p, *end;
};

static unsigned take(struct fuzz *f)
{
	return f->p < f->end ? *f->p++ : 0;
}

static void parse_raw(const uint8_t *data, size_t size)
{
	static uint8_t mem[VSOCK_HDR_BYTES + VSOCK_MAX_PAYLOAD + 256];
	size_t n = size < sizeof(mem) ? size : sizeof(mem);
	memcpy(mem, data, n);
	uint32_t a = n ? mem[0] % (n + 1) : 0, b = n > 1 ? mem[1] % (n + 1) : 0;
	uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
	struct virtq_seg segs[3] = {{.host = mem, .len = lo},
				    {.host = mem + lo, .len = hi - lo},
				    {.host = mem + hi, .len = n - hi}};
	struct virtq_chain c = {.nr_segs = 3, .nr_read = 3, .read_len = n};
	struct vsock_hdr h;
	struct vsock_iov iov;
	if (vsock_pkt_parse_tx(segs, &c, VT_CID, &h, &iov) == VSOCK_PKT_OK && iov.len != h.len &&
	    h.op == VIRTIO_VSOCK_OP_RW)
		abort();
	uint32_t port;
	(void)vsock_parse_connect((const char *)data, size < 40 ? size : 40, &port);
}

/* Steers a raw packet towards what the state machine takes seriously. */
static void fix_packet(struct fuzz *f, uint8_t *pkt, uint32_t len, unsigned flags)
{
	struct vsock_hdr h;
	if (len < VSOCK_HDR_BYTES)
		return;
	vsock_hdr_decode(&h, pkt);
	if (flags & 1) {
		h.src_cid = VT_CID;
		h.dst_cid = VSOCK_HOST_CID;
	}
	if (flags & 2)
		h.type = VIRTIO_VSOCK_TYPE_STREAM;
	if (flags & 4) { /* ports of connections that may exist */
		h.dst_port =
		    (h.dst_port & 1) ? LISTEN_PORT : VSOCK_LOCAL_PORT_BASE + (h.dst_port & 3);
		h.src_port = h.src_port & 3;
		for (int i = 0; i < f->e.v.mux.nr_slots && (flags & 8); i++) {
			struct vsock_conn *c = f->e.v.mux.slot[i];
			if (c && c->state > VSOCK_HANDSHAKE) {
				h.dst_port = c->local_port;
				h.src_port = c->peer_port;
				break;
			}
		}
	}
	if (flags & 16)
		h.op = 1 + (uint16_t)(h.op - 1) % 7; /* valid ops stay themselves */
	if (flags & 32)
		h.len = len - VSOCK_HDR_BYTES;
	vsock_hdr_encode(&h, pkt);
}

/* A tx chain of len bytes in two descriptors split at `split`, steered by `flags` (see
 * fix_packet()). */
static void tx_packet(struct fuzz *f)
{
	static uint8_t pkt[VSOCK_HDR_BYTES + VSOCK_MAX_PAYLOAD + 16];
	unsigned flags = take(f), split = take(f);
	uint32_t len = take(f);
	len |= take(f) << 8;
	len %= sizeof(pkt);
	/* The first n bytes come from the input, the rest (a long payload) are a pattern. */
	size_t n = take(f), avail = f->end - f->p;
	n = n < avail ? n : avail;
	n = n < len ? n : len;
	memcpy(pkt, f->p, n);
	f->p += n;
	for (size_t i = n; i < len; i++)
		pkt[i] = (uint8_t)i;
	fix_packet(f, pkt, len, flags);
	if (len == 0)
		len = 1; /* a descriptor of length 0 is fine, a chain of none is not */
	struct vt_queue *q = &f->e.q[VIRTIO_VSOCK_TXQ];
	vt_tx_raw(&f->e, pkt, len, split % (len + 1));
	if (flags & 0x80) {
		uint16_t head = vt_get16(&f->e, q->avail + 4 + 2 * ((q->avail_idx - 1) % VT_QSIZE));
		for (unsigned i = 0; i < split % 4; i++)
			vt_publish(&f->e, q, head);
		uint8_t *b = vt_host(&f->e, vt_slot(q, head), len);
		b[split % len % VSOCK_HDR_BYTES % len] ^= (uint8_t)(len | 1);
	}
	if (!(flags & 0x40))
		vt_notify(&f->e, VIRTIO_VSOCK_TXQ);
}

static void post_rx(struct fuzz *f)
{
	struct vt_queue *q = &f->e.q[VIRTIO_VSOCK_RXQ];
	unsigned n = take(f) % 16 + 1, size = take(f);
	q->used_seen = vt_get16(&f->e, q->used + 2); /* what kiln filled is read, say */
	uint32_t len = size & 0x80 ? (size & 0x7f) : (size + 1) * 64;
	for (unsigned i = 0; i < n && (uint16_t)(q->avail_idx - q->used_seen) < 64; i++) {
		uint16_t head = vt_pair(q);
		uint16_t w = VRING_DESC_F_WRITE;
		if (size & 1) { /* one descriptor, as Linux since 6.2 */
			vt_desc(&f->e, q, head, vt_slot(q, head), len + VSOCK_HDR_BYTES, w, 0);
		} else {
			vt_desc(&f->e, q, head, vt_slot(q, head), VSOCK_HDR_BYTES, w | 1, head + 1);
			vt_desc(&f->e, q, head + 1, vt_slot(q, head + 1), len, w, 0);
		}
		vt_publish(&f->e, q, head);
	}
	vt_notify(&f->e, VIRTIO_VSOCK_RXQ);
}

static int client(struct fuzz *f, unsigned k)
{
	int *fd = &f->client[k % CLIENTS];
	if (*fd >= 0)
		return *fd;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, f->e.path, strlen(f->e.path));
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd >= 0 && connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(*fd);
		*fd = -1;
	}
	return *fd;
}

static void host_write(struct fuzz *f, int fd, unsigned len)
{
	size_t avail = f->end - f->p;
	len = len < avail ? len : avail;
	if (fd >= 0 && len)
		(void)send(fd, f->p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	f->p += len;
}

static void host_end(int *fd, unsigned how)
{
	static uint8_t buf[1 << 16];
	if (*fd < 0)
		return;
	if (how % 3 == 0) {
		close(*fd);
		*fd = -1;
	} else if (how % 3 == 1) {
		shutdown(*fd, SHUT_WR);
	} else {
		while (recv(*fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
}

static void listener_side(struct fuzz *f)
{
	unsigned how = take(f), len = take(f);
	int *fd = &f->peer[how / 4 % PEERS];
	if (how % 4 == 0 && *fd < 0)
		*fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	else if (how % 4 == 1)
		host_write(f, *fd, len * 16);
	else
		host_end(fd, how % 4 == 2 ? 2 : 0);
}

/* Driver-side upheavals: transport reset event (with or without a buffer), a driver reset
 * and re-initialization, a broken tx ring (the device stops until reset), config reads. */
static void resets(struct fuzz *f)
{
	unsigned how = take(f);
	struct vt_queue *q = &f->e.q[how % 4 == 2 ? VIRTIO_VSOCK_TXQ : VIRTIO_VSOCK_EVQ];
	uint8_t cfg[8];
	if (how % 4 == 1) {
		vt_activate(&f->e);
	} else if (how % 4 == 2) {
		vt_put16(&f->e, q->avail + 2, q->avail_idx + 1000);
		vt_notify(&f->e, VIRTIO_VSOCK_TXQ);
	} else if (how % 4 == 3) {
		virtio_mmio_bus_ops.read(&f->e.t, VIRTIO_MMIO_CONFIG + (how >> 2) % 8, cfg,
					 1u << (how >> 5) % 4);
	} else {
		uint16_t head = vt_pair(q);
		vt_desc(&f->e, q, head, vt_slot(q, head), how >> 3, VRING_DESC_F_WRITE, 0);
		if (how & 4)
			vt_publish(&f->e, q, head);
		(void)virtio_vsock_transport_reset(&f->e.v);
	}
}

/* Runs the loop after making kiln's host sockets take little at a time, so that guest data
 * has to wait in kiln's per-connection buffer. */
static void pump(struct fuzz *f)
{
	int small = 4096;
	vt_notify(&f->e, VIRTIO_VSOCK_TXQ); /* takes any batch of unkicked packets */
	for (int i = 0; i < f->e.v.mux.nr_slots; i++) {
		int fd = f->e.v.mux.slot[i]->src.ev.fd;
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	}
	vt_pump(&f->e);
}

static void run(struct fuzz *f)
{
	while (f->p < f->end) {
		unsigned tag = take(f) % 8;
		if (tag == 0)
			tx_packet(f);
		else if (tag == 1)
			post_rx(f);
		else if (tag == 2)
			host_write(f, client(f, take(f)), take(f));
		else if (tag == 3)
			host_end(&f->client[take(f) % CLIENTS], take(f));
		else if (tag == 4)
			listener_side(f);
		else if (tag == 5)
			pump(f);
		else if (tag == 6) {
			f->e.skew += (uint64_t)(take(f) % 8) * 1000000000ULL;
			f->e.v.mux.timer.ev.handle(f->e.v.mux.timer.ev.ctx, EPOLLIN);
		} else {
			resets(f);
		}
	}
	vt_pump(&f->e);
}

/* Open sockets: everything kiln opens per connection is one (libFuzzer and the sanitizers
 * open pipes of their own, to the symbolizer for one, so all fds cannot be counted). */
static int count_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char path[64], link[64];
	int n = 0;
	while (d && (de = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(path, link, sizeof(link) - 1);
		n += len > 7 && !memcmp(link, "socket:", 7);
	}
	if (d)
		closedir(d);
	return n;
}

/* The device, its sockets and guest memory are set up once; every input starts from a
 * driver reset and re-initialization, which drops whatever the last one left. */
static struct fuzz *fuzz_get(void)
{
	static struct fuzz *f;
	if (f)
		return f;
	if (!(f = calloc(1, sizeof(*f))))
		abort();
	log_setup(2, LOG_OFF, 0, 0);
	vt_init(&f->e, 1ULL << VIRTIO_RING_F_EVENT_IDX);
	snprintf(f->lpath, sizeof(f->lpath), "%s_%d", f->e.path, LISTEN_PORT);
	f->lfd = vt_unix_listen(f->lpath);
	for (int i = 0; i < CLIENTS; i++)
		f->client[i] = -1;
	for (int i = 0; i < PEERS; i++)
		f->peer[i] = -1;
	f->fds = count_sockets();
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz *f = fuzz_get();
	parse_raw(data, size);
	f->e.features = 1ULL << VIRTIO_F_VERSION_1;
	if (size && (data[0] & 0x80))
		f->e.features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	f->e.skew = 0;
	vt_activate(&f->e);
	f->p = data;
	f->end = data + size;
	run(f);
	for (int i = 0; i < CLIENTS; i++)
		host_end(&f->client[i], 0);
	for (int i = 0; i < PEERS; i++)
		host_end(&f->peer[i], 0);
	int fd;
	while ((fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	vt_reg_write(&f->e, VIRTIO_MMIO_STATUS, 0); /* kiln closes its side */
	if (count_sockets() != f->fds) {
		fprintf(stderr, "fuzz_vsock_pkt: sockets leaked\n");
		abort();
	}
	return 0;
}
