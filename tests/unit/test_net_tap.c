/* virtio-net host side: a real TAP (created here when permitted, else skipped), the event
 * loop and transport wiring, and the rate limiters holding their rates. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_mmio.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <cmocka.h>

#include "tests/unit/net_test_env.h"
#include "virtio/devices.h"
#include "vmm/log.h"

#define HDR VIRTIO_NET_HDR_BYTES
#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental */

/* ---- a real TAP ----------------------------------------------------------------------- */

struct tap {
	char name[IFNAMSIZ];
	int pkt; /* AF_PACKET socket on the TAP: the host's side of the wire */
};

static int tap_ctl(const char *name, int persist)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	int err =
	    ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, persist) < 0 ? -errno : 0;
	close(fd);
	return err;
}

static void set_up(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	FILE *f = fopen(path, "w"); /* no router solicitations in the way */
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP | IFF_NOARP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

/* A persistent TAP, down; false when not permitted. */
static bool tap_create(struct tap *t)
{
	static int seq;
	snprintf(t->name, sizeof(t->name), "kilnt%d.%d", (int)(getpid() % 100000), seq++);
	t->pkt = -1;
	return tap_ctl(t->name, 1) == 0;
}

/* Brings the TAP up and opens the host's packet socket on it. Only once a reader is
 * attached: the kernel then starts the TAP's queue right away instead of in its
 * asynchronous link watch (which drops the first frames), and a packet socket bound to a
 * down interface would report ENETDOWN on its first send. */
static void tap_up(struct tap *t)
{
	set_up(t->name);
	t->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	assert_true(t->pkt >= 0);
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)if_nametoindex(t->name)};
	assert_int_equal(bind(t->pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);
}

static void tap_destroy(struct tap *t)
{
	if (t->pkt >= 0)
		close(t->pkt);
	tap_ctl(t->name, 0);
}

/* What a TAP test owns, released by the teardown even when an assertion fails. */
struct tfix {
	struct tap tap[2];
	unsigned nr_taps;
	struct nenv *e;
	struct vm *vm;
	struct virtio_set *set;
	struct evloop loop;
};

static int tfix_setup(void **state)
{
	struct tfix *f = calloc(1, sizeof(*f));
	f->loop.epfd = -1;
	*state = f;
	return 0;
}

static int tfix_teardown(void **state)
{
	struct tfix *f = *state;
	if (f->set) {
		virtio_set_destroy(f->set);
		free(f->set);
	}
	if (f->e) {
		nenv_free(f->e);
		free(f->e);
	}
	evloop_destroy(&f->loop);
	free(f->vm);
	for (unsigned i = 0; i < f->nr_taps; i++)
		tap_destroy(&f->tap[i]);
	free(f);
	return 0;
}

/* The fixture's next TAP; skips the test where TAPs cannot be created (not root). */
static struct tap *fix_tap(struct tfix *f)
{
	struct tap *t = &f->tap[f->nr_taps];
	if (!tap_create(t)) {
		fprintf(stderr, "cannot create a TAP (not root, no /dev/net/tun?): skipped\n");
		skip();
	}
	f->nr_taps++;
	return t;
}

/* An Ethernet frame of len bytes with the test ethertype, sent into the TAP by the host. */
static void host_send(struct tap *t, uint32_t len, uint32_t seed)
{
	static uint8_t f[VIRTIO_NET_MAX_FRAME];
	memset(f, 0xff, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x09", 6);
	f[12] = ETHERTYPE_TEST >> 8;
	f[13] = ETHERTYPE_TEST & 0xff;
	for (uint32_t i = 14; i < len; i++)
		f[i] = nenv_byte(i, seed);
	assert_int_equal(send(t->pkt, f, len, 0), (ssize_t)len);
}

static void test_open_errors(void **state)
{
	struct tfix *f = *state;
	struct tap *t = fix_tap(f);
	f->e = calloc(1, sizeof(*f->e));
	nenv_init(f->e, NULL, 0);
	struct virtio_net *n = &f->e->n, n2;
	virtio_net_close(n);
	struct net_cfg nc = {.id = "eth0", .host_dev_name = "kilnnone0"};
	char err[200];
	assert_int_equal(virtio_net_open(n, &nc, 2, err, sizeof(err)), -ENODEV);
	assert_string_equal(err, "network-interfaces[2].host_dev_name: kilnnone0: no such network "
				 "device (create the TAP first)");
	snprintf(nc.host_dev_name, sizeof(nc.host_dev_name), "lo");
	assert_int_equal(virtio_net_open(n, &nc, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "network-interfaces[0].host_dev_name: lo: not a TAP device"));
	memcpy(nc.host_dev_name, t->name, sizeof(t->name));
	assert_int_equal(virtio_net_open(n, &nc, 0, err, sizeof(err)), 0);
	assert_false(n->tap_is_socket);
	assert_int_equal(n->mtu, 1500);
	assert_true(fcntl(n->tap_fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(n->tap_fd, F_GETFD) & FD_CLOEXEC);
	int hdr = 0;
	assert_int_equal(ioctl(n->tap_fd, TUNGETVNETHDRSZ, &hdr), 0);
	assert_int_equal(hdr, HDR);
	/* A second VM on the same TAP. */
	assert_int_equal(virtio_net_open(&n2, &nc, 1, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "network-interfaces[1].host_dev_name: "));
	assert_non_null(strstr(err, "already in use"));
	virtio_net_close(&n2);
}

/* The fixture's device on a new TAP instead of the socketpair, activated with features. */
static struct tap *env_on_tap(struct tfix *f, uint64_t features)
{
	struct tap *t = fix_tap(f);
	struct nenv *e = f->e = calloc(1, sizeof(*f->e));
	nenv_init(e, NULL, 0);
	virtio_net_close(&e->n);
	struct net_cfg nc = {.id = "eth0"};
	memcpy(nc.host_dev_name, t->name, sizeof(t->name));
	char err[200];
	assert_int_equal(virtio_net_open(&e->n, &nc, 0, err, sizeof(err)), 0);
	nenv_queue(e, &e->rx, VIRTIO_NET_RXQ, features);
	nenv_queue(e, &e->tx, VIRTIO_NET_TXQ, features);
	assert_int_equal(virtio_net_ops.activate(&e->n, features, e->vq), 0);
	tap_up(t);
	return t;
}

/* Runs RX until a frame of the test ethertype arrives; returns its used length. */
static uint32_t rx_test_frame(struct nenv *e, uint16_t *head)
{
	for (int tries = 0; tries < 200; tries++) {
		uint16_t before = tring_used_idx(&e->rx);
		bool irq;
		assert_int_equal(virtio_net_rx(&e->n, &e->vq[0], &irq), 0);
		for (uint16_t i = before; i != tring_used_idx(&e->rx); i++) {
			uint32_t id, len;
			tring_used_elem(&e->rx, i, &id, &len);
			const uint8_t *p = tring_host(&e->rx, nenv_desc_addr(&e->rx, id), len);
			if (len >= HDR + 14 && p[HDR + 12] == ETHERTYPE_TEST >> 8) {
				*head = (uint16_t)id;
				return len;
			}
		}
		usleep(5000);
	}
	fail_msg("no test frame arrived");
	return 0;
}

static void test_tap_rx_and_truncation(void **state)
{
	struct tfix *f = *state;
	struct tap *t = env_on_tap(f, NENV_F_BASE);
	struct nenv *e = f->e;
	for (int i = 0; i < 8; i++)
		nenv_rx_post(e, 1, 1600);
	host_send(t, 1000, 1);
	uint16_t head;
	assert_int_equal(rx_test_frame(e, &head), HDR + 1000);
	const uint8_t *p = tring_host(&e->rx, nenv_desc_addr(&e->rx, head), HDR + 1000);
	for (uint32_t i = 14; i < 1000; i++)
		assert_int_equal(p[HDR + i], nenv_byte(i, 1));
	/* A frame larger than the 1600-byte buffers is dropped whole. */
	uint64_t drops = e->n.stats.rx_drops;
	int mtu_s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {.ifr_mtu = 9000};
	memcpy(ifr.ifr_name, t->name, sizeof(t->name));
	assert_int_equal(ioctl(mtu_s, SIOCSIFMTU, &ifr), 0);
	close(mtu_s);
	host_send(t, 3000, 2);
	host_send(t, 500, 3);
	assert_int_equal(rx_test_frame(e, &head), HDR + 500);
	assert_int_equal(e->n.stats.rx_drops, drops + 1);
}

static void test_tap_tx_gso_frame(void **state)
{
	struct tfix *f = *state;
	struct tap *t = env_on_tap(f, NENV_F_GSO);
	struct nenv *e = f->e;
	/* Ethernet + IPv4 + TCP headers and 3000 bytes: one TSO frame the TAP takes whole. */
	enum { PAY = 3000, L = 14 + 20 + 20 + PAY };
	uint8_t fr[HDR + L];
	memset(fr, 0, sizeof(fr));
	nenv_hdr(fr, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16);
	fr[2] = 54; /* hdr_len */
	uint8_t *eth = fr + HDR, *ip = eth + 14, *tcp = ip + 20;
	memcpy(eth, "\x02\x00\x00\x00\x00\x09\x02\x00\x00\x00\x00\x01\x08\x00", 14);
	uint16_t tot = htons(20 + 20 + PAY);
	ip[0] = 0x45;
	memcpy(ip + 2, &tot, 2);
	ip[8] = 64;
	ip[9] = 6; /* TCP */
	memcpy(ip + 12, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8);
	tcp[12] = 5 << 4;
	tcp[13] = 0x18; /* PSH ACK */
	for (int i = 0; i < PAY; i++)
		tcp[20 + i] = nenv_byte((uint32_t)i, 5);
	uint16_t d = e->tx_desc;
	uint64_t gpa = tring_alloc(&e->tx, sizeof(fr));
	memcpy(tring_host(&e->tx, gpa, sizeof(fr)), fr, sizeof(fr));
	tring_desc(&e->tx, d, gpa, sizeof(fr), 0, 0);
	tring_publish(&e->tx, d);
	bool irq;
	assert_int_equal(virtio_net_tx(&e->n, &e->vq[1], &irq), 0);
	assert_int_equal(e->n.stats.tx_drops, 0);
	assert_int_equal(e->n.stats.tx_frames, 1);
	/* The host sees it arrive on the TAP unsplit. */
	static uint8_t got[70000];
	struct pollfd pf = {.fd = t->pkt, .events = POLLIN};
	ssize_t n = 0;
	for (int i = 0; i < 50 && n != L; i++) {
		if (poll(&pf, 1, 100) == 1)
			n = recv(t->pkt, got, sizeof(got), MSG_DONTWAIT);
	}
	assert_int_equal(n, L);
	assert_memory_equal(got + 54, fr + HDR + 54, PAY);
}

static int fake_ioeventfd(void *ctx, int efd, uint64_t gpa, uint32_t datamatch)
{
	(void)ctx, (void)efd, (void)gpa, (void)datamatch;
	return 0;
}

static int fake_irqfd(void *ctx, int efd, uint32_t gsi)
{
	(void)efd;
	((uint32_t *)ctx)[gsi % 32]++;
	return 0;
}

static void test_devices_add_two_interfaces(void **state)
{
	struct tfix *f = *state;
	struct tap *t0 = fix_tap(f), *t1 = fix_tap(f);
	f->vm = calloc(1, sizeof(*f->vm));
	f->e = calloc(1, sizeof(*f->e));
	nenv_init(f->e, NULL, 0);
	f->vm->mem = f->e->rx.gm;
	assert_int_equal(evloop_init(&f->loop), 0);
	uint32_t irqs[32] = {0};
	struct virtio_kvm_ops ops = {fake_ioeventfd, fake_irqfd, irqs, NULL};
	f->set = calloc(1, sizeof(*f->set));
	virtio_set_init(f->set, &ops);
	struct net_cfg nets[3] = {{.id = "eth0"}, {.id = "eth1"}, {.id = "eth2"}};
	memcpy(nets[0].host_dev_name, t0->name, sizeof(t0->name));
	memcpy(nets[1].host_dev_name, t1->name, sizeof(t1->name));
	snprintf(nets[2].host_dev_name, sizeof(nets[2].host_dev_name), "kilnnone1");
	char err[200] = "";
	struct virtio_set *set = f->set;
	assert_int_equal(virtio_net_add_all(set, f->vm, &f->loop, nets, 2, err, sizeof(err)), 0);
	assert_int_equal(set->nr, 2);
	assert_int_equal(set->nr_net, 2);
	assert_true(set->acpi[0].base != set->acpi[1].base);
	assert_true(set->acpi[0].gsi != set->acpi[1].gsi);
	assert_int_equal(irqs[set->acpi[1].gsi % 32], 1);
	assert_non_null(virtio_slot_net(set->slot[1]));
	assert_ptr_equal(set->slot[1]->mmio.dev, virtio_slot_net(set->slot[1]));
	/* Both windows answer as virtio-net devices on the MMIO bus. */
	uint8_t id[4];
	uint64_t reg = set->acpi[1].base + VIRTIO_MMIO_DEVICE_ID;
	assert_int_equal(bus_read(&f->vm->mmio, reg, id, 4), 0);
	assert_int_equal(id[0], 1);
	/* A third interface on a missing TAP: refused, nothing added. */
	assert_int_equal(virtio_net_add(set, f->vm, &f->loop, &nets[2], 2, err, sizeof(err)),
			 -ENODEV);
	assert_non_null(strstr(err, "network-interfaces[2].host_dev_name: kilnnone1: "));
	assert_int_equal(set->nr, 2);
	virtio_set_destroy(set);
	assert_int_equal(set->nr, 0);
	/* The TAPs are free again (on a fresh bus: the old one keeps its ranges). */
	memset(&f->vm->mmio, 0, sizeof(f->vm->mmio));
	assert_int_equal(virtio_net_add(set, f->vm, &f->loop, &nets[0], 0, err, sizeof(err)), 0);
}

/* ---- transport and event loop ----------------------------------------------------------- */

struct tenv {
	struct nenv e;
	struct virtio_mmio t;
	struct evloop loop;
	int irqs;
	uint16_t used_at_irq; /* RX used index when the last interrupt was raised */
};

static int count_irq(void *ctx)
{
	struct tenv *te = ctx;
	te->irqs++;
	te->used_at_irq = tring_used_idx(&te->e.rx);
	return 0;
}

static void wr(struct tenv *te, uint64_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(&te->t, off, (const uint8_t *)&v, 4);
}

static uint32_t rd(struct tenv *te, uint64_t off)
{
	uint32_t v;
	virtio_mmio_bus_ops.read(&te->t, off, (uint8_t *)&v, 4);
	return v;
}

static void program_queue(struct tenv *te, uint32_t q, const struct tring *r)
{
	wr(te, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(te, VIRTIO_MMIO_QUEUE_NUM, r->size);
	wr(te, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)r->desc_gpa);
	wr(te, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)r->avail_gpa);
	wr(te, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)r->used_gpa);
	wr(te, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* A device with nc's limiters behind a real transport and event loop, brought up the way
 * the guest driver does it. */
static struct tenv *tenv_up(const struct net_cfg *nc, uint64_t features)
{
	struct tenv *te = calloc(1, sizeof(*te));
	nenv_init(&te->e, nc, 0);
	struct virtio_irq irq = {.raise = count_irq, .ctx = te};
	assert_int_equal(virtio_mmio_init(&te->t, &virtio_net_ops, &te->e.n, &te->e.rx.gm, &irq,
					  "virtio-net test"),
			 0);
	assert_int_equal(evloop_init(&te->loop), 0);
	assert_int_equal(virtio_net_attach(&te->e.n, &te->loop, &te->t), 0);
	const uint32_t s[] = {1, 3, 11, 15}; /* ACK, DRIVER, FEATURES_OK, DRIVER_OK */
	wr(te, VIRTIO_MMIO_STATUS, s[0]);
	wr(te, VIRTIO_MMIO_STATUS, s[1]);
	wr(te, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(te, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(te, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(te, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(te, VIRTIO_MMIO_STATUS, s[2]);
	program_queue(te, VIRTIO_NET_RXQ, &te->e.rx);
	program_queue(te, VIRTIO_NET_TXQ, &te->e.tx);
	wr(te, VIRTIO_MMIO_STATUS, s[3]);
	assert_int_equal(rd(te, VIRTIO_MMIO_STATUS), s[3]);
	assert_true(te->e.n.active);
	return te;
}

static void tenv_free(struct tenv *te)
{
	virtio_net_close(&te->e.n);
	evloop_destroy(&te->loop);
	virtio_mmio_destroy(&te->t);
	nenv_free(&te->e);
	free(te);
}

static void test_event_loop_rx_and_reset(void **state)
{
	(void)state;
	struct tenv *te = tenv_up(NULL, NENV_F_MRG);
	struct nenv *e = &te->e;
	assert_int_equal(e->n.tap_events, EPOLLIN);
	nenv_peer_send(e, 700, 1);
	/* TAP readable, no buffers: RX pauses the TAP, nothing spins. */
	assert_int_equal(evloop_run_once(&te->loop, 1000), 1);
	assert_int_equal(e->n.tap_events, 0);
	assert_int_equal(evloop_run_once(&te->loop, 0), 0);
	uint16_t head = nenv_rx_post(e, 1, 2048);
	wr(te, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
	assert_int_equal(tring_used_idx(&e->rx), 1);
	uint32_t id, len;
	tring_used_elem(&e->rx, 0, &id, &len);
	assert_int_equal(id, head);
	assert_int_equal(len, 700);
	assert_int_equal(te->irqs, 1);
	wr(te, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	nenv_rx_post(e, 1, 2048);
	wr(te, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
	assert_int_equal(e->n.tap_events, EPOLLIN);
	tring_set_used_event(&e->rx, 1); /* the driver saw used entry 0 */
	nenv_peer_send(e, 800, 2);
	assert_int_equal(evloop_run_once(&te->loop, 1000), 1);
	assert_int_equal(tring_used_idx(&e->rx), 2);
	assert_int_equal(te->irqs, 2);
	assert_int_equal(e->n.stats.rx_bytes, 700 + 800 - 2 * HDR);
	wr(te, VIRTIO_MMIO_STATUS, 0);
	assert_false(e->n.active);
	assert_int_equal(e->n.tap_events, 0);
	nenv_peer_send(e, 900, 3);
	assert_int_equal(evloop_run_once(&te->loop, 0), 0);
	tenv_free(te);
}

/* Three frames waiting on the TAP, read in one wake-up: the guest is interrupted after the
 * first, not when the batch is done, and only once while it has not acknowledged. */
static void test_rx_interrupts_at_first_frame(void **state)
{
	(void)state;
	struct tenv *te = tenv_up(NULL, NENV_F_MRG);
	struct nenv *e = &te->e;
	for (uint16_t i = 0; i < 3; i++) {
		nenv_rx_post(e, 1, 2048);
		nenv_peer_send(e, 600 + i, (uint8_t)i);
	}
	assert_int_equal(evloop_run_once(&te->loop, 1000), 1);
	assert_int_equal(tring_used_idx(&e->rx), 3);
	assert_int_equal(te->irqs, 1);
	assert_int_equal(te->used_at_irq, 1);
	assert_int_equal(te->t.coalesced, 0); /* used_event 0: the later frames need no edge */
	tenv_free(te);
}

static void test_rx_rate_limit_defers_in_guest_buffers(void **state)
{
	(void)state;
	struct net_cfg nc = {.id = "eth0", .host_dev_name = "x"};
	nc.rx_rate_limiter = (struct rate_limiter_cfg){
	    .present = true, .ops = {.present = true, .size = 1, .refill_time_ms = 50}};
	struct tenv *te = tenv_up(&nc, NENV_F_BASE);
	struct nenv *e = &te->e;
	nenv_rx_post(e, 1, 2048);
	nenv_rx_post(e, 1, 2048);
	nenv_peer_send(e, 100, 1);
	nenv_peer_send(e, 200, 2);
	uint64_t t0 = monotonic_ns();
	assert_int_equal(evloop_run_once(&te->loop, 1000), 1);
	assert_int_equal(tring_used_idx(&e->rx), 1);
	tring_set_used_event(&e->rx, 1);
	wr(te, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	/* The second frame waits in its guest buffer; the TAP is not read meanwhile. */
	assert_int_equal(e->n.rx_deferred, 1);
	assert_true(e->n.rx_rl.blocked);
	assert_int_equal(e->n.tap_events, 0);
	assert_int_equal(e->n.stats.rx_throttled, 1);
	while (tring_used_idx(&e->rx) < 2)
		assert_true(evloop_run_once(&te->loop, 1000) > 0);
	uint64_t waited = monotonic_ns() - t0;
	assert_true(waited >= 40000000ULL && waited < 1000000000ULL);
	uint32_t id, len;
	tring_used_elem(&e->rx, 1, &id, &len);
	assert_int_equal(len, 200);
	assert_int_equal(e->n.rx_deferred, 0);
	assert_int_equal(te->irqs, 2);
	tenv_free(te);
}

/* The host end: counts what arrives (frames are HDR + Ethernet bytes). */
static uint64_t drain_peer(struct nenv *e)
{
	static uint8_t buf[VIRTIO_NET_MAX_FRAME];
	uint64_t bytes = 0;
	ssize_t n;
	while ((n = recv(e->peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		bytes += (uint64_t)n - HDR;
	return bytes;
}

static void test_tx_bandwidth_cap_holds(void **state)
{
	(void)state;
	/* 10 MB/s: a 1 MB bucket refilled every 100 ms; 20 MB of 65000-byte frames. */
	const uint64_t rate = 10000000, size = 1000000, total = 20000000;
	const uint32_t eth = 65000, nbuf = 32;
	struct net_cfg nc = {.id = "eth0", .host_dev_name = "x"};
	nc.tx_rate_limiter = (struct rate_limiter_cfg){
	    .present = true, .bandwidth = {.present = true, .size = size, .refill_time_ms = 100}};
	struct tenv *te = tenv_up(&nc, NENV_F_BASE);
	struct nenv *e = &te->e;
	uint8_t hdr[HDR];
	nenv_hdr(hdr, 0, 0, 0, 0, 0);
	uint32_t split[] = {HDR + eth};
	uint16_t heads[32];
	for (uint32_t i = 0; i < nbuf; i++)
		heads[i] = nenv_tx_post(e, hdr, HDR + eth, split, 1, i);
	(void)heads;
	uint64_t t0 = monotonic_ns(), got = 0, posted = nbuf * (uint64_t)eth;
	uint16_t seen_used = 0;
	wr(te, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
	for (;;) {
		got += drain_peer(e); /* first: a full socket waits for exactly this */
		if (got >= total)
			break;
		assert_true(evloop_run_once(&te->loop, 100) >= 0);
		/* Repost completed buffers as they come back, like a guest sending a stream. */
		bool kick = false;
		for (; seen_used != tring_used_idx(&e->tx) && posted < total; seen_used++) {
			uint32_t id, len;
			tring_used_elem(&e->tx, seen_used, &id, &len);
			tring_publish(&e->tx, (uint16_t)id);
			posted += eth;
			kick = true;
		}
		if (kick)
			wr(te, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
		assert_true(monotonic_ns() - t0 < 5000000000ULL);
	}
	double secs = (double)(monotonic_ns() - t0) / 1e9;
	/* The first `size` bytes ride on the full bucket; the rest flow at `rate`. */
	double measured = (double)(got - size) / secs;
	print_message("tx: %llu bytes in %.3f s: %.2f MB/s (limit %.2f MB/s)\n",
		      (unsigned long long)got, secs, measured / 1e6, rate / 1e6);
	assert_true(measured <= rate * 1.10 && measured >= rate * 0.90);
	assert_int_equal(e->n.stats.tx_drops, 0);
	assert_true(e->n.stats.tx_throttled > 0);
	tenv_free(te);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_errors, tfix_setup, tfix_teardown),
	    cmocka_unit_test_setup_teardown(test_tap_rx_and_truncation, tfix_setup, tfix_teardown),
	    cmocka_unit_test_setup_teardown(test_tap_tx_gso_frame, tfix_setup, tfix_teardown),
	    cmocka_unit_test_setup_teardown(test_devices_add_two_interfaces, tfix_setup,
					    tfix_teardown),
	    cmocka_unit_test(test_event_loop_rx_and_reset),
	    cmocka_unit_test(test_rx_interrupts_at_first_frame),
	    cmocka_unit_test(test_rx_rate_limit_defers_in_guest_buffers),
	    cmocka_unit_test(test_tx_bandwidth_cap_holds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
