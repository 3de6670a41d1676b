/* virtio-net: the host side. Attaching to the TAP, the event-loop wiring and the work the
 * device starts itself (TAP readable or writable again, a rate limiter's timer). */
#include "virtio/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MTU 1500

/* A locally administered unicast MAC that stays the same for the same interface. */
static void derive_mac(uint8_t mac[6], const struct net_cfg *nc)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	const char *parts[2] = {nc->id, nc->host_dev_name};
	for (unsigned p = 0; p < 2; p++)
		for (const char *s = parts[p];; s++) {
			h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
			if (!*s)
				break;
		}
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (mac[0] & 0xfe) | 0x02;
}

/* struct virtio_net_config: mac, status (link up), max_virtqueue_pairs (1). */
static void build_config(struct virtio_net *n)
{
	memcpy(n->config, n->mac, 6);
	n->config[6] = VIRTIO_NET_S_LINK_UP;
	n->config[7] = 0;
	n->config[8] = 1;
	n->config[9] = 0;
}

static void net_zero(struct virtio_net *n)
{
	memset(n, 0, sizeof(*n));
	n->tap_fd = -1;
	n->rx_rl.timer_fd = n->tx_rl.timer_fd = -1;
	n->tap_src.src.fd = n->rx_timer_src.src.fd = n->tx_timer_src.src.fd = -1;
}

static int net_setup(struct virtio_net *n, int fd, const struct net_cfg *nc)
{
	struct stat st;
	n->tap_fd = fd;
	n->tap_is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	if (!n->mtu)
		n->mtu = DEFAULT_MTU;
	snprintf(n->id, sizeof(n->id), "%s", nc ? nc->id : "");
	snprintf(n->name, sizeof(n->name), "net %s", n->id);
	if (nc && nc->has_guest_mac)
		memcpy(n->mac, nc->guest_mac, 6);
	else if (nc)
		derive_mac(n->mac, nc);
	else
		memcpy(n->mac, "\x02\x00\x00\x00\x00\x01", 6);
	build_config(n);
	int err = ratelimit_init(&n->rx_rl, nc ? &nc->rx_rate_limiter : NULL);
	if (!err)
		err = ratelimit_init(&n->tx_rl, nc ? &nc->tx_rate_limiter : NULL);
	return err;
}

int virtio_net_init_fd(struct virtio_net *n, int fd, const struct net_cfg *nc)
{
	net_zero(n);
	int err = net_setup(n, fd, nc);
	if (err)
		virtio_net_close(n);
	return err;
}

static const char *tunsetiff_error(int err)
{
	switch (err) {
	case EBUSY:
		return "the TAP is already in use (is another VM attached to it?)";
	case EINVAL:
		return "not a TAP device (or a multi-queue TAP)";
	case EPERM:
		return "permission denied (TAP owned by another user or group)";
	default:
		return strerror(err);
	}
}

static int host_mtu(const char *ifname)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return DEFAULT_MTU;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	int mtu = ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0 ? ifr.ifr_mtu : DEFAULT_MTU;
	close(s);
	return mtu;
}

/* Attaches fd to the existing TAP: 0 or -errno with *why set. */
static int tap_attach(int fd, const char *ifname, const char **why)
{
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		*why = tunsetiff_error(errno);
		return -errno;
	}
	int hdr = VIRTIO_NET_HDR_BYTES;
	/* No offloads until the driver accepts some: a TAP keeps them across users. */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		*why = strerror(errno);
		return -errno;
	}
	return 0;
}

int virtio_net_open(struct virtio_net *n, const struct net_cfg *nc, unsigned index, char *err,
		    size_t errlen)
{
	net_zero(n);
	const char *why = NULL;
	int ret, fd = -1;
	/* TUNSETIFF would create a missing TAP: kiln only uses one the host set up. */
	if (!if_nametoindex(nc->host_dev_name)) {
		ret = -ENODEV;
		why = "no such network device (create the TAP first)";
	} else if ((fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		ret = -errno;
		why = errno == ENOENT ? "/dev/net/tun missing (is the tun module loaded?)"
				      : "cannot open /dev/net/tun";
	} else {
		ret = tap_attach(fd, nc->host_dev_name, &why);
	}
	if (ret) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "network-interfaces[%u].host_dev_name: %s: %s", index,
			 nc->host_dev_name, why);
		return ret;
	}
	int mtu = host_mtu(nc->host_dev_name);
	n->mtu = (uint16_t)(mtu > UINT16_MAX ? UINT16_MAX : mtu);
	if ((ret = net_setup(n, fd, nc))) {
		snprintf(err, errlen, "network-interfaces[%u]: rate limiter timer: %s", index,
			 strerror(-ret));
		virtio_net_close(n);
	}
	return ret;
}

static void on_event(void *ctx, uint32_t events)
{
	struct virtio_net_src *s = ctx;
	struct virtio_net_event ev = {.source = s->source, .events = events};
	virtio_mmio_run(s->net->transport, virtio_net_work, &ev);
}

static int watch(struct virtio_net *n, struct virtio_net_src *s, int fd, int source,
		 uint32_t events)
{
	if (fd < 0)
		return 0;
	*s = (struct virtio_net_src){
	    .src = {.handle = on_event, .ctx = s, .fd = fd}, .net = n, .source = source};
	int err = evloop_add(n->loop, &s->src, events);
	if (err)
		s->src.fd = -1;
	return err;
}

int virtio_net_attach(struct virtio_net *n, struct evloop *loop, struct virtio_mmio *t)
{
	n->loop = loop;
	n->transport = t;
	n->tap_events = 0;
	int err = watch(n, &n->tap_src, n->tap_fd, VIRTIO_NET_EV_TAP, 0);
	if (!err)
		err =
		    watch(n, &n->rx_timer_src, n->rx_rl.timer_fd, VIRTIO_NET_EV_RX_TIMER, EPOLLIN);
	if (!err)
		err =
		    watch(n, &n->tx_timer_src, n->tx_rl.timer_fd, VIRTIO_NET_EV_TX_TIMER, EPOLLIN);
	return err;
}

static void unwatch(struct virtio_net *n, struct virtio_net_src *s)
{
	if (n->loop && s->src.fd >= 0)
		evloop_del(n->loop, &s->src);
	s->src.fd = -1;
}

void virtio_net_close(struct virtio_net *n)
{
	unwatch(n, &n->tap_src);
	unwatch(n, &n->rx_timer_src);
	unwatch(n, &n->tx_timer_src);
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	n->tap_fd = -1;
	ratelimit_destroy(&n->rx_rl);
	ratelimit_destroy(&n->tx_rl);
}

void virtio_net_watch_tap(struct virtio_net *n)
{
	uint32_t want = 0;
	if (n->active && !n->tap_broken)
		want = (n->rx_want_tap ? EPOLLIN : 0) | (n->tx_want_tap ? EPOLLOUT : 0);
	if (want == n->tap_events)
		return;
	n->tap_events = want;
	if (n->loop && n->tap_src.src.fd >= 0) {
		int err = evloop_mod(n->loop, &n->tap_src.src, want);
		if (err)
			log_err("%s: cannot watch the TAP: %s", n->name, strerror(-err));
	}
}

/* The TAP went away under us (EPOLLERR/EPOLLHUP even with nothing asked for): stop
 * watching it for good rather than spin; the guest just sees a dead link. */
static void tap_broke(struct virtio_net *n)
{
	log_err("%s: the TAP reported an error or hang-up; the interface stops", n->name);
	n->tap_broken = true;
	unwatch(n, &n->tap_src);
	n->tap_events = 0;
}

int virtio_net_work(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	struct virtio_net *n = dev;
	const struct virtio_net_event *ev = arg;
	bool tap = ev->source == VIRTIO_NET_EV_TAP;
	/* Drain the timer even when idle, or the level-triggered loop would spin on it. */
	if (ev->source == VIRTIO_NET_EV_RX_TIMER)
		ratelimit_timer_fired(&n->rx_rl);
	if (ev->source == VIRTIO_NET_EV_TX_TIMER)
		ratelimit_timer_fired(&n->tx_rl);
	if (tap && (ev->events & (EPOLLERR | EPOLLHUP)))
		tap_broke(n);
	if (!vq || !n->active || n->tap_broken) {
		n->rx_want_tap = n->tx_want_tap = false;
		virtio_net_watch_tap(n);
		return 0;
	}
	bool irq_tx = false, irq_rx = false;
	int err = 0;
	if (ev->source == VIRTIO_NET_EV_TX_TIMER || (tap && (ev->events & EPOLLOUT)))
		err = virtio_net_tx(n, &vq[VIRTIO_NET_TXQ], &irq_tx);
	if (!err && (ev->source == VIRTIO_NET_EV_RX_TIMER || (tap && (ev->events & EPOLLIN))))
		err = virtio_net_rx(n, &vq[VIRTIO_NET_RXQ], &irq_rx);
	*need_irq = irq_tx || irq_rx;
	return err;
}
