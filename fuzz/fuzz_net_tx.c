/* libFuzzer harness for virtio-net's guest-facing parsing: TX chains and their virtio-net
 * headers, and RX buffer chains filled with frames (MRG_RXBUF spanning, too small, runts).
 *
 * Input: a 19-byte preamble, then the first bytes of a 128 KiB guest memory (rings,
 * descriptors, indirect tables, headers, frames: whatever the fuzzer writes).
 *   [0]      RX queue size 1 << (b % 9); [1] TX queue size likewise
 *   [2]      bit 0 EVENT_IDX, 1 INDIRECT_DESC, 2 MRG_RXBUF, 3 CSUM, 4 GUEST_CSUM + TSO4/6,
 *            5 HOST_TSO4/6 + UFO, 6 tiny rate limiters, 7 a second round after the driver
 *            adds more (avail->idx bumped)
 *   [3..8]   RX desc/16, avail/2, used/4 (16-bit each, modulo RAM)
 *   [9..14]  TX desc/16, avail/2, used/4
 *   [15..18] lengths of two frames the host sends to the guest (16-bit each); when [18]
 *            is odd both are 27 bytes longer, so they reach VIRTIO_NET_MAX_FRAME
 * With bit 7 of [2], the last bytes of the input script up to KICKS more kicks, 3 bytes
 * each from the end: between kicks the "guest" flips a byte of RAM (offset, value) and of
 * the header of the chain the device holds, as another vCPU could while the limiter or a
 * full TAP keeps it, and the limiters are lifted so held chains go out.
 * The device runs on one end of a datagram socketpair. Every frame it sends must carry a
 * header virtio_net_tx_hdr_ok() accepts: the one it checked, whatever the guest rewrote.
 * Any crash, sanitizer report, hang or bad header on the wire is a bug. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "virtio/net.h"
#include "virtio/virtq.h"
#include "vmm/guest_mem.h"
#include "vmm/log.h"

#define RAM_BYTES (128 * 1024)
#define PREAMBLE 19
#define KICKS 4
#define BIT(b) (1ULL << (b))

struct fuzz_env {
	struct guest_mem gm;
	struct virtio_net net;
	int peer;
	struct virtq vq[2];
	uint8_t frame[VIRTIO_NET_MAX_FRAME];
	uint8_t sink[VIRTIO_NET_MAX_FRAME + 1];
};

static struct fuzz_env *env_get(void)
{
	static struct fuzz_env *env;
	if (env)
		return env;
	env = calloc(1, sizeof(*env));
	log_setup(2, LOG_OFF, 0, 0);
	int sv[2];
	if (!env || guest_mem_init(&env->gm, RAM_BYTES) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (virtio_net_init_fd(&env->net, sv[0], NULL) < 0)
		abort();
	env->peer = sv[1];
	for (size_t i = 0; i < sizeof(env->frame); i++)
		env->frame[i] = (uint8_t)(i * 7 + (i >> 8));
	return env;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t features_of(uint8_t f)
{
	uint64_t r = BIT(VIRTIO_F_VERSION_1);
	r |= f & 1 ? BIT(VIRTIO_RING_F_EVENT_IDX) : 0;
	r |= f & 2 ? BIT(VIRTIO_RING_F_INDIRECT_DESC) : 0;
	r |= f & 4 ? BIT(VIRTIO_NET_F_MRG_RXBUF) : 0;
	r |= f & 8 ? BIT(VIRTIO_NET_F_CSUM) : 0;
	r |= f & 16 ? BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_GUEST_TSO4) |
			  BIT(VIRTIO_NET_F_GUEST_TSO6)
		    : 0;
	r |= f & 32 ? BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) |
			  BIT(VIRTIO_NET_F_HOST_UFO)
		    : 0;
	return r;
}

static int setup_queue(struct fuzz_env *env, struct virtq *q, const uint8_t *p, uint8_t size,
		       uint64_t features)
{
	virtq_reset(q);
	q->max_size = VIRTIO_NET_QUEUE_SIZE;
	q->num = 1u << (size % 9);
	q->desc_gpa = (uint64_t)le16(p) * 16 % RAM_BYTES;
	q->avail_gpa = (uint64_t)le16(p + 2) * 2 % RAM_BYTES;
	q->used_gpa = (uint64_t)le16(p + 4) * 4 % RAM_BYTES;
	return virtq_setup(q, &env->gm, features);
}

/* Both limiters with one-frame buckets: the second frame each way waits (deferred). */
static void set_limiters(struct fuzz_env *env, bool on)
{
	struct rate_limiter_cfg rl = {.present = on,
				      .ops = {.present = on, .size = 1, .refill_time_ms = 1000}};
	ratelimit_destroy(&env->net.rx_rl);
	ratelimit_destroy(&env->net.tx_rl);
	if (ratelimit_init(&env->net.rx_rl, &rl) < 0 || ratelimit_init(&env->net.tx_rl, &rl) < 0)
		abort();
}

static void drain_sockets(struct fuzz_env *env)
{
	while (recv(env->peer, env->sink, sizeof(env->sink), MSG_DONTWAIT) > 0)
		;
	while (recv(env->net.tap_fd, env->sink, sizeof(env->sink), MSG_DONTWAIT) > 0)
		;
}

static void host_sends(struct fuzz_env *env, const uint8_t *p, bool longer)
{
	for (int i = 0; i < 2; i++) {
		size_t len = le16(p + 2 * i) + (longer ? 27 : 0);
		if (send(env->peer, env->frame, len, MSG_DONTWAIT) < 0 && errno != EAGAIN)
			abort();
	}
}

/* What reached the "TAP" since the device's counters read frames/bytes: every header is
 * one the device checked, and the frames are exactly those it counted as sent from the
 * chains it read (their number and their lengths: a frame cut short, sent twice or sent
 * from another chain's length shows). */
static void check_sent(struct fuzz_env *env, uint64_t features, uint64_t frames, uint64_t bytes)
{
	ssize_t n;
	while ((n = recv(env->peer, env->sink, sizeof(env->sink), MSG_DONTWAIT)) > 0) {
		if (n < VIRTIO_NET_HDR_BYTES ||
		    !virtio_net_tx_hdr_ok(env->sink, (uint32_t)n, features))
			abort();
		frames++;
		bytes += (uint64_t)n - VIRTIO_NET_HDR_BYTES;
	}
	if (frames != env->net.stats.tx_frames || bytes != env->net.stats.tx_bytes)
		abort();
}

/* TX then RX, as the queue notifications would run them; an error means the driver broke
 * the queue, which the transport turns into DEVICE_NEEDS_RESET: stop. */
static int round_trip(struct fuzz_env *env)
{
	bool irq;
	uint64_t frames = env->net.stats.tx_frames, bytes = env->net.stats.tx_bytes;
	int err = virtio_net_tx(&env->net, &env->vq[VIRTIO_NET_TXQ], &irq);
	check_sent(env, env->net.features, frames, bytes);
	if (!err)
		err = virtio_net_rx(&env->net, &env->vq[VIRTIO_NET_RXQ], &irq);
	return err;
}

static void bump_avail(struct fuzz_env *env, struct virtq *q, uint8_t by)
{
	uint8_t *idx = gm_ptr(&env->gm, q->avail_gpa + 2, 2);
	uint16_t v = (uint16_t)(le16(idx) + by);
	memcpy(idx, &v, 2);
}

/* The guest rewrites memory between kicks: a byte anywhere, and one of the header of the
 * chain the device holds (checked, not yet written). Then the limiters let it go. */
static void more_kicks(struct fuzz_env *env, const uint8_t *data, size_t size)
{
	uint8_t *ram = gm_ptr(&env->gm, 0, RAM_BYTES);
	for (unsigned k = 0; k < KICKS && size >= PREAMBLE + 3 * (k + 1); k++) {
		const uint8_t *op = data + size - 3 * (k + 1);
		ram[le16(op) % RAM_BYTES] ^= op[2];
		struct virtq_seg *held = &env->net.segs[0];
		if (env->net.tx_held && held->len)
			((uint8_t *)held->host)[op[2] % held->len % VIRTIO_NET_HDR_BYTES] ^= 0xff;
		if (k == 1)
			set_limiters(env, false);
		if (round_trip(env) != 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_env *env = env_get();
	if (size < PREAMBLE)
		return 0;
	uint8_t *ram = gm_ptr(&env->gm, 0, RAM_BYTES);
	size_t n = size - PREAMBLE < RAM_BYTES ? size - PREAMBLE : RAM_BYTES;
	memset(ram, 0, RAM_BYTES);
	memcpy(ram, data + PREAMBLE, n);
	uint8_t flags = data[2];
	uint64_t features = features_of(flags);
	virtio_net_ops.reset(&env->net);
	drain_sockets(env);
	if (setup_queue(env, &env->vq[VIRTIO_NET_RXQ], data + 3, data[0], features) < 0 ||
	    setup_queue(env, &env->vq[VIRTIO_NET_TXQ], data + 9, data[1], features) < 0)
		return 0;
	set_limiters(env, flags & 64);
	if (virtio_net_ops.activate(&env->net, features, env->vq) < 0)
		abort();
	host_sends(env, data + 15, data[18] & 1);
	if (round_trip(env) == 0 && (flags & 128)) {
		bump_avail(env, &env->vq[VIRTIO_NET_TXQ], data[1]);
		bump_avail(env, &env->vq[VIRTIO_NET_RXQ], data[0]);
		if (round_trip(env) == 0)
			more_kicks(env, data, size);
	}
	(void)virtq_should_notify(&env->vq[VIRTIO_NET_RXQ]);
	return 0;
}
