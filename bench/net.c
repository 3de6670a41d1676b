/* Frames through the virtio-net device model against raw I/O on the same kind of fd, in
 * process (no KVM). The device runs on one end of an AF_UNIX datagram socketpair (what a
 * TAP is to it: one frame per read or write); a thread on the other end plays the host
 * network. TX: the guest's chains (in a split virtqueue in fake guest memory, recycled as
 * they come back) go out through the queue handler, as the event loop would run it after a
 * kick; raw: writev of the same buffers. RX: the thread sends frames that the device reads
 * into posted guest buffers; raw: readv into the same buffers. Prints Gbit/s of Ethernet
 * bytes for both and the device/raw ratio, for MTU-sized and 64 KiB (TSO-sized) frames. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/net_test_env.h"
#include "vmm/log.h"

#define HDR VIRTIO_NET_HDR_BYTES
#define NBUF 32 /* chains in flight each way */
#define REPEATS 3

struct peer_job {
	int fd;
	uint64_t frames;
	uint32_t len; /* with header */
	bool send;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die_if(int bad, const char *what)
{
	if (bad) {
		perror(what);
		exit(1);
	}
}

/* The host end: receives (TX) or sends (RX) `frames` datagrams, blocking. */
static void *peer_run(void *arg)
{
	struct peer_job *j = arg;
	static uint8_t buf[VIRTIO_NET_MAX_FRAME + 1];
	memset(buf, 0x5a, sizeof(buf));
	memset(buf, 0, HDR);
	for (uint64_t i = 0; i < j->frames;) {
		ssize_t n =
		    j->send ? send(j->fd, buf, j->len, 0) : recv(j->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		die_if(n != (ssize_t)j->len, j->send ? "peer send" : "peer recv");
		i++;
	}
	return NULL;
}

static void wait_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	die_if(poll(&p, 1, 1000) < 0, "poll");
}

/* Republishes the chains the device gave back, while more frames are to go. */
static void recycle(struct tring *r, uint16_t *seen, uint64_t *posted, uint64_t total)
{
	for (; *seen != tring_used_idx(r); (*seen)++) {
		uint32_t id, len;
		tring_used_elem(r, *seen, &id, &len);
		if (*posted < total) {
			tring_publish(r, (uint16_t)id);
			(*posted)++;
		}
	}
}

static double device_tx(struct nenv *e, uint32_t len, uint64_t frames)
{
	uint8_t hdr[HDR] = {0};
	uint32_t split[] = {len};
	for (int i = 0; i < NBUF; i++)
		nenv_tx_post(e, hdr, len, split, 1, (uint32_t)i);
	uint64_t posted = NBUF, start_frames = e->n.stats.tx_frames;
	uint16_t seen = tring_used_idx(&e->tx);
	struct peer_job j = {.fd = e->peer, .frames = frames, .len = len};
	pthread_t th;
	double t0 = now();
	die_if(pthread_create(&th, NULL, peer_run, &j) != 0, "pthread_create");
	while (e->n.stats.tx_frames - start_frames < frames) {
		bool irq;
		die_if(virtio_net_tx(&e->n, &e->vq[VIRTIO_NET_TXQ], &irq) != 0, "virtio_net_tx");
		recycle(&e->tx, &seen, &posted, frames);
		if (e->n.tx_held)
			wait_fd(e->n.tap_fd, POLLOUT);
	}
	pthread_join(th, NULL);
	return now() - t0;
}

static double raw_tx(struct nenv *e, uint32_t len, uint64_t frames)
{
	static uint8_t bufs[NBUF][VIRTIO_NET_MAX_FRAME];
	struct peer_job j = {.fd = e->peer, .frames = frames, .len = len};
	pthread_t th;
	double t0 = now();
	die_if(pthread_create(&th, NULL, peer_run, &j) != 0, "pthread_create");
	for (uint64_t i = 0; i < frames;) {
		struct iovec iov = {bufs[i % NBUF], len};
		ssize_t n = writev(e->n.tap_fd, &iov, 1);
		if (n < 0 && errno == EAGAIN) {
			wait_fd(e->n.tap_fd, POLLOUT);
			continue;
		}
		die_if(n != (ssize_t)len, "writev");
		i++;
	}
	pthread_join(th, NULL);
	return now() - t0;
}

static double device_rx(struct nenv *e, uint32_t len, uint64_t frames)
{
	for (int i = 0; i < NBUF; i++)
		nenv_rx_post(e, 1, len);
	uint64_t posted = NBUF, start_frames = e->n.stats.rx_frames;
	uint16_t seen = tring_used_idx(&e->rx);
	struct peer_job j = {.fd = e->peer, .frames = frames, .len = len, .send = true};
	pthread_t th;
	double t0 = now();
	die_if(pthread_create(&th, NULL, peer_run, &j) != 0, "pthread_create");
	while (e->n.stats.rx_frames - start_frames < frames) {
		bool irq;
		uint64_t before = e->n.stats.rx_frames;
		die_if(virtio_net_rx(&e->n, &e->vq[VIRTIO_NET_RXQ], &irq) != 0, "virtio_net_rx");
		recycle(&e->rx, &seen, &posted, frames);
		if (e->n.stats.rx_frames == before)
			wait_fd(e->n.tap_fd, POLLIN);
	}
	pthread_join(th, NULL);
	die_if(e->n.stats.rx_drops != 0, "unexpected RX drops");
	return now() - t0;
}

static double raw_rx(struct nenv *e, uint32_t len, uint64_t frames)
{
	static uint8_t bufs[NBUF][VIRTIO_NET_MAX_FRAME];
	struct peer_job j = {.fd = e->peer, .frames = frames, .len = len, .send = true};
	pthread_t th;
	double t0 = now();
	die_if(pthread_create(&th, NULL, peer_run, &j) != 0, "pthread_create");
	for (uint64_t i = 0; i < frames;) {
		struct iovec iov = {bufs[i % NBUF], len};
		ssize_t n = readv(e->n.tap_fd, &iov, 1);
		if (n < 0 && errno == EAGAIN) {
			wait_fd(e->n.tap_fd, POLLIN);
			continue;
		}
		die_if(n != (ssize_t)len, "readv");
		i++;
	}
	pthread_join(th, NULL);
	return now() - t0;
}

typedef double (*bench_fn)(struct nenv *, uint32_t, uint64_t);

/* Best of REPEATS, each on a fresh device and rings; Gbit/s of Ethernet bytes. */
static double best_gbps(bench_fn fn, uint64_t features, uint32_t len, uint64_t frames)
{
	double best = 0;
	for (int r = 0; r < REPEATS; r++) {
		struct nenv *e = calloc(1, sizeof(*e));
		die_if(!e, "calloc");
		nenv_init(e, NULL, features);
		die_if(fcntl(e->peer, F_SETFL, 0) < 0, "fcntl"); /* the host end blocks */
		double secs = fn(e, len, frames);
		double gbps = (double)frames * (len - HDR) * 8 / secs / 1e9;
		best = gbps > best ? gbps : best;
		nenv_free(e);
		free(e);
	}
	return best;
}

static void row(const char *what, bench_fn dev, bench_fn raw, uint64_t features, uint32_t len,
		uint64_t frames)
{
	double d = best_gbps(dev, features, len, frames), r = best_gbps(raw, features, len, frames);
	printf("net %-3s %5u-byte frames: device %6.2f Gbit/s, raw %6.2f Gbit/s, ratio %.2f\n",
	       what, len - HDR, d, r, d / r);
}

int main(void)
{
	log_setup(2, LOG_WARN, 0, 0);
	const uint32_t mtu = HDR + 1514, big = HDR + 65536;
	row("tx", device_tx, raw_tx, NENV_F_BASE, mtu, 200000);
	row("tx", device_tx, raw_tx, NENV_F_GSO, big, 20000);
	row("rx", device_rx, raw_rx, NENV_F_BASE, mtu, 200000);
	row("rx", device_rx, raw_rx, NENV_F_GSO, big, 20000);
	return 0;
}
