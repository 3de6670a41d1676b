/* Snapshots of the virtio devices: a set driven by a guest through its MMIO windows is
 * saved into a real state file; a "new process" (another bus, loop and set over the same
 * guest memory, put back to the snapshot's RAM) restores it and must then answer the next
 * request exactly as the original did. Mismatched devices and corrupt states are refused
 * with one line naming the device, and leave it reset. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tests/unit/vset_test_env.h"
#include "virtio/persist.h"
#include "vmm/log.h"

#define F_V1 (1ULL << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ULL << VIRTIO_RING_F_EVENT_IDX)
#define F_MRG (1ULL << VIRTIO_NET_F_MRG_RXBUF)
#define S_ALL                                                                                      \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |      \
	 VIRTIO_CONFIG_S_DRIVER_OK)
#define IMG_BYTES 65536
#define NEXT VRING_DESC_F_NEXT
#define WRITE VRING_DESC_F_WRITE

struct penv {
	struct guest_mem gm;
	struct vs_guest g;
	struct vs_proc *p;
	char dir[64], img[96], sock[96];
	struct drive_cfg d;
	struct vsock_cfg vc;
	struct net_cfg nc;
	int peer;
	uint8_t *snap;
	size_t snap_len;
	struct snap_reader r;
	char err[256];
};

static uint8_t img_byte(uint64_t off)
{
	return (uint8_t)(off * 13 + (off >> 9));
}

static int setup(void **state)
{
	struct penv *e = calloc(1, sizeof(*e));
	assert_int_equal(guest_mem_init(&e->gm, VS_RAM), 0);
	snprintf(e->dir, sizeof(e->dir), "/tmp/kiln-persist-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->img, sizeof(e->img), "%s/disk.img", e->dir);
	snprintf(e->sock, sizeof(e->sock), "%s/v.sock", e->dir);
	static uint8_t img[IMG_BYTES];
	for (unsigned i = 0; i < IMG_BYTES; i++)
		img[i] = img_byte(i);
	int fd = open(e->img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_int_equal(pwrite(fd, img, IMG_BYTES, 0), IMG_BYTES);
	close(fd);
	snprintf(e->d.id, sizeof(e->d.id), "disk0");
	e->d.path_on_host = e->img;
	e->vc = (struct vsock_cfg){.present = true, .guest_cid = 52, .uds_path = e->sock};
	snprintf(e->nc.id, sizeof(e->nc.id), "eth0");
	snprintf(e->nc.host_dev_name, sizeof(e->nc.host_dev_name), "tap0");
	e->peer = -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct penv *e = *state;
	vs_proc_free(e->p);
	if (e->peer >= 0)
		close(e->peer);
	unlink(e->img);
	rmdir(e->dir);
	guest_mem_free(&e->gm);
	free(e->snap);
	free(e);
	return 0;
}

/* The old process exits; a new one starts with no devices yet. */
static struct vs_proc *new_process(struct penv *e)
{
	vs_proc_free(e->p);
	return e->p = vs_proc_new(&e->gm);
}

static int add_blk(struct penv *e)
{
	return virtio_blk_add(&e->p->set, &e->p->vm, &e->p->loop, &e->d, e->err, sizeof(e->err));
}

static void add_vsock(struct penv *e)
{
	assert_int_equal(
	    virtio_vsock_add(&e->p->set, &e->p->vm, &e->p->loop, &e->vc, e->err, sizeof(e->err)),
	    0);
}

/* A net device on a datagram socketpair; e->peer is the host's end. */
static void add_net(struct penv *e)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	if (e->peer >= 0)
		close(e->peer);
	e->peer = sv[1];
	assert_int_equal(virtio_net_add_fd(&e->p->set, &e->p->vm, &e->p->loop, &e->nc, sv[0],
					   e->err, sizeof(e->err)),
			 0);
}

static void take_snapshot(struct penv *e)
{
	free(e->snap);
	vs_save(e->p, &e->snap, &e->snap_len);
	assert_int_equal(snap_parse(&e->r, e->snap, e->snap_len, e->err, sizeof(e->err)), 0);
}

static uint8_t *ram_copy(struct penv *e)
{
	uint8_t *c = malloc(VS_RAM);
	memcpy(c, vs_host(&e->gm, 0, VS_RAM), VS_RAM);
	return c;
}

/* ---- virtio-blk ------------------------------------------------------------------------ */

/* A request on drive 0's queue: header, len data bytes (device-writable unless a write),
 * status byte. Returns the data buffer's address. */
static uint64_t blk_req(struct penv *e, uint32_t type, uint64_t sector, uint32_t len)
{
	struct vs_queue *q = &e->g.q[0][0];
	uint64_t hdr = vs_alloc(&e->gm, &e->g, 16), data = vs_alloc(&e->gm, &e->g, len);
	uint64_t st = vs_alloc(&e->gm, &e->g, 1);
	memcpy(vs_host(&e->gm, hdr, 4), &type, 4);
	memcpy(vs_host(&e->gm, hdr + 8, 8), &sector, 8);
	*(uint8_t *)vs_host(&e->gm, st, 1) = 0xee;
	uint16_t head = vs_desc(&e->gm, q, hdr, 16, NEXT);
	vs_desc(&e->gm, q, data, len, NEXT | (type == VIRTIO_BLK_T_OUT ? 0 : WRITE));
	vs_desc(&e->gm, q, st, 1, WRITE);
	vs_publish(&e->gm, q, head);
	return data;
}

static void check_sectors(struct penv *e, uint64_t gpa, uint64_t sector, uint32_t len)
{
	const uint8_t *p = vs_host(&e->gm, gpa, len);
	for (uint32_t i = 0; i < len; i++)
		assert_int_equal(p[i], img_byte(sector * 512 + i));
}

/* Driven to DRIVER_OK, one request answered and one queued for the engine when the VM is
 * paused: saving finishes it. The original then serves one more read; the restored device,
 * given the same read, must leave guest memory byte for byte the same. */
static void blk_round_trip(struct penv *e, enum io_engine engine)
{
	struct vs_queue *q = &e->g.q[0][0];
	struct vs_proc *p = new_process(e);
	e->d.io_engine = engine;
	if (add_blk(e) && engine == IO_ENGINE_ASYNC)
		skip(); /* no io_uring on this host */
	vs_up(p, &e->g, 0, F_V1 | F_EVENT_IDX, 1);
	blk_req(e, VIRTIO_BLK_T_GET_ID, 0, 20);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(vs_used_idx(&e->gm, q), 1);
	uint64_t rd1 = blk_req(e, VIRTIO_BLK_T_IN, 1, 512);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* queued; the paused loop does not run */
	assert_int_equal(virtio_blk_busy(virtio_slot_blk(p->set.slot[0])), 1);
	take_snapshot(e);
	assert_int_equal(virtio_blk_busy(virtio_slot_blk(p->set.slot[0])), 0);
	assert_int_equal(vs_used_idx(&e->gm, q), 2);
	check_sectors(e, rd1, 1, 512);
	uint8_t *ram = ram_copy(e);
	struct vs_guest g = e->g;
	uint64_t rd2 = blk_req(e, VIRTIO_BLK_T_IN, 3, 1024);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	vs_run_until(p, q, 3);
	assert_int_equal(vs_used_idx(&e->gm, q), 3);
	check_sectors(e, rd2, 3, 1024);
	uint8_t *want = ram_copy(e);

	p = new_process(e);
	memcpy(vs_host(&e->gm, 0, VS_RAM), ram, VS_RAM);
	e->g = g;
	assert_int_equal(add_blk(e), 0);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), 0);
	assert_int_equal(vs_irqs(p, 0), 0); /* restore itself interrupts nobody */
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_STATUS), S_ALL);
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	assert_true(vs_regs_match(p, 0));
	virtio_set_after_restore(&p->set);
	assert_int_equal(vs_irqs(p, 0), 1); /* not acknowledged yet: raised again */
	blk_req(e, VIRTIO_BLK_T_IN, 3, 1024);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	vs_run_until(p, q, 3);
	assert_memory_equal(vs_host(&e->gm, 0, VS_RAM), want, VS_RAM);
	free(ram);
	free(want);
}

static void test_blk_round_trip_sync(void **state)
{
	blk_round_trip(*state, IO_ENGINE_SYNC);
}

static void test_blk_round_trip_async(void **state)
{
	blk_round_trip(*state, IO_ENGINE_ASYNC);
}

/* Snapshots e->p, then restores it into a new process with the same guest RAM. */
static struct vs_proc *snapshot_to_new_blk_process(struct penv *e)
{
	take_snapshot(e);
	uint8_t *ram = ram_copy(e);
	struct vs_proc *p = new_process(e);
	memcpy(vs_host(&e->gm, 0, VS_RAM), ram, VS_RAM);
	free(ram);
	assert_int_equal(add_blk(e), 0);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), 0);
	return p;
}

/* A device the guest broke (NEEDS_RESET) comes back broken, its interrupt raised again,
 * and recovers the way a driver recovers it: reset and bring-up. */
static void test_blk_broken_round_trip(void **state)
{
	struct penv *e = *state;
	struct vs_queue *q = &e->g.q[0][0];
	struct vs_proc *p = new_process(e);
	assert_int_equal(add_blk(e), 0);
	vs_up(p, &e->g, 0, F_V1, 1);
	vs_publish(&e->gm, q, VS_QSIZE + 3); /* a head beyond the ring */
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_STATUS), S_ALL | VIRTIO_CONFIG_S_NEEDS_RESET);
	p = snapshot_to_new_blk_process(e);
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_STATUS), S_ALL | VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	virtio_set_after_restore(&p->set);
	assert_int_equal(vs_irqs(p, 0), 1);
	vs_wr(p, 0, VIRTIO_MMIO_STATUS, 0);
	e->g = (struct vs_guest){0};
	vs_up(p, &e->g, 0, F_V1, 1);
	blk_req(e, VIRTIO_BLK_T_IN, 2, 512);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	vs_run_until(p, q, 1);
	assert_int_equal(vs_used_idx(&e->gm, q), 1);
}

/* A new process with a block device at DRIVER_OK that answered one GET_ID request. */
static struct vs_proc *blk_answered_one(struct penv *e)
{
	struct vs_proc *p = new_process(e);
	assert_int_equal(add_blk(e), 0);
	vs_up(p, &e->g, 0, F_V1 | F_EVENT_IDX, 1);
	blk_req(e, VIRTIO_BLK_T_GET_ID, 0, 20);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	return p;
}

/* An interrupt the driver acknowledged through KVM's eventfd is not pending in the
 * snapshot: the restored device would otherwise coalesce every later one into it. */
static void test_save_applies_eventfd_acks(void **state)
{
	struct penv *e = *state;
	struct vs_proc *p = blk_answered_one(e);
	assert_int_equal(vs_used_idx(&e->gm, &e->g.q[0][0]), 1);
	assert_int_equal(vs_irqs(p, 0), 1);
	uint64_t one = 1;
	assert_int_equal(write(p->kvm.io_efd[1], &one, 8), 8); /* InterruptACK of VRING */
	p = snapshot_to_new_blk_process(e);
	assert_true(vs_regs_match(p, 0));
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	virtio_set_after_restore(&p->set);
	assert_int_equal(vs_irqs(p, 0), 0);
}

/* The section of another device, or a count that differs, is refused by name. */
static void test_restore_refuses_other_devices(void **state)
{
	struct penv *e = *state;
	struct vs_proc *p = new_process(e);
	assert_int_equal(add_blk(e), 0);
	vs_up(p, &e->g, 0, F_V1, 1);
	take_snapshot(e);
	p = new_process(e);
	add_vsock(e);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), -EINVAL);
	assert_string_equal(e->err, "virtio device 0 (virtio-vsock): the snapshot has "
				    "\"virtio-blk disk0\" in this slot");
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_STATUS), 0);
	p = new_process(e);
	assert_int_equal(add_blk(e), 0);
	add_vsock(e);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), -EINVAL);
	assert_string_equal(e->err, "the snapshot has 1 virtio devices, this VM 2");
	/* A drive of another size is not the one the guest knows. */
	p = new_process(e);
	assert_int_equal(truncate(e->img, IMG_BYTES / 2), 0);
	assert_int_equal(add_blk(e), 0);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), -EINVAL);
	assert_string_equal(e->err, "virtio device 0 (virtio-blk disk0): the drive has 64 "
				    "sectors, the snapshot's had 128");
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_STATUS), 0);
}

struct blk_section {
	struct virtio_mmio_state m;
	struct virtio_blk_state b;
};

/* One corrupt section: refused with `want` in the message, the device left reset and a
 * kick harmless. */
static void refuse(struct penv *e, const struct blk_section *s, size_t len, const char *want)
{
	struct vs_proc *p = e->p;
	e->err[0] = '\0';
	int ret = virtio_set_restore_device(&p->set, 0, s, len, e->err, sizeof(e->err));
	if (ret >= 0 || !strstr(e->err, want))
		fail_msg("want \"%s\", got %d \"%s\"", want, ret, e->err);
	assert_non_null(strstr(e->err, "virtio device 0 (virtio-blk disk0): "));
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_STATUS), 0);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

#define REFUSE(change, want)                                                                       \
	do {                                                                                       \
		struct blk_section s = good;                                                       \
		change;                                                                            \
		refuse(e, &s, sizeof(s), want);                                                    \
	} while (0)

static void test_restore_refuses_corrupt_state(void **state)
{
	struct penv *e = *state;
	struct vs_proc *p = blk_answered_one(e);
	take_snapshot(e);
	struct blk_section good;
	size_t len;
	const void *data = snap_find(&e->r, SNAP_SEC_VIRTIO, 0, &len);
	assert_int_equal(len, sizeof(good));
	memcpy(&good, data, len);
	p = new_process(e);
	assert_int_equal(add_blk(e), 0);
	REFUSE(s.m.vq[0].num = 3, "queue 0: size not a power of two up to QueueNumMax");
	REFUSE(s.m.vq[0].num = 512, "queue 0: size not a power of two up to QueueNumMax");
	REFUSE(s.m.vq[0].desc_gpa = VS_RAM - 16, "queue 0: descriptor table outside guest RAM");
	REFUSE(s.m.vq[0].used_gpa = 1ULL << 40, "queue 0: used ring outside guest RAM");
	REFUSE(s.m.vq[0].avail_gpa += 1, "queue 0: available ring misaligned");
	REFUSE(s.m.vq[0].event_idx = 0, "queue 0: EVENT_IDX or INDIRECT_DESC not as negotiated");
	REFUSE(s.m.vq[0].ready = 0, "queue 0: not ready but has ring indices");
	REFUSE(s.m.vq[0].last_avail++, "queue 0: 1 chains popped and not used, the device holds 0");
	REFUSE(s.m.vq[0].used_idx -= 20, "queue 0: more chains in flight than the queue holds");
	REFUSE(s.m.vq[1].num = 16, "queue 1: programmed in status 0xf");
	REFUSE(s.m.status |= 0x10, "status not reachable by a driver");
	REFUSE(s.m.status &= ~VIRTIO_CONFIG_S_FEATURES_OK, "status not reachable by a driver");
	REFUSE(s.m.activated = 0, "DRIVER_OK but never activated");
	REFUSE(s.m.activated = 2, "activated without DRIVER_OK");
	REFUSE(s.m.driver_features |= 1ULL << 40, "driver features not offered by the device");
	REFUSE(s.m.queue_sel = 1, "QueueSel out of range");
	REFUSE(s.m.isr = 4, "unknown InterruptStatus bits");
	REFUSE(s.m.device_id = 1, "the snapshot has device id 1 with 1 queues here, not 2 with 1");
	REFUSE(s.m.name[0] = 'X', "the snapshot has \"Xirtio-blk disk0\" in this slot");
	REFUSE(memset(s.m.name, 'a', sizeof(s.m.name)), "in this slot");
	REFUSE(s.b.capacity++, "the drive has 128 sectors, the snapshot's had 129");
	REFUSE(s.b.read_only = 1, "is_read_only or cache_type differ from the snapshot's");
	REFUSE(s.b.pad[0] = 1, "malformed block device state");
	refuse(e, &good, sizeof(good) - 1, "state of 463 bytes, 464 expected");
	/* None of that left the device unusable: the good state still goes in. */
	assert_int_equal(
	    virtio_set_restore_device(&p->set, 0, &good, sizeof(good), e->err, sizeof(e->err)), 0);
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_STATUS), S_ALL);
}

/* ---- virtio-vsock ---------------------------------------------------------------------- */

/* Connections are not saved: an activated vsock tells the guest with a transport reset
 * event in a buffer of its event queue, and interrupts it, once restored. */
static void test_vsock_transport_reset_after_restore(void **state)
{
	struct penv *e = *state;
	struct vs_queue *evq = &e->g.q[0][VIRTIO_VSOCK_EVQ];
	struct vs_proc *p = new_process(e);
	add_vsock(e);
	vs_up(p, &e->g, 0, F_V1, 3);
	uint64_t ev = vs_alloc(&e->gm, &e->g, 8);
	memset(vs_host(&e->gm, ev, 8), 0xff, 8);
	vs_publish(&e->gm, evq, vs_desc(&e->gm, evq, ev, 8, WRITE));
	take_snapshot(e);
	uint8_t *ram = ram_copy(e);
	p = new_process(e); /* the old one unlinks uds_path */
	memcpy(vs_host(&e->gm, 0, VS_RAM), ram, VS_RAM);
	free(ram);
	add_vsock(e);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), 0);
	assert_int_equal(vs_used_idx(&e->gm, evq), 0);
	assert_int_equal(vs_irqs(p, 0), 0);
	virtio_set_after_restore(&p->set);
	assert_int_equal(vs_used_idx(&e->gm, evq), 1);
	uint32_t id, len, event;
	vs_used_elem(&e->gm, evq, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 4);
	memcpy(&event, vs_host(&e->gm, ev, 4), 4);
	assert_int_equal(event, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	assert_int_equal(vs_irqs(p, 0), 1);
	/* Another CID is another guest. */
	p = new_process(e);
	e->vc.guest_cid = 53;
	add_vsock(e);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), -EINVAL);
	assert_string_equal(e->err, "virtio device 0 (virtio-vsock): guest CID 53, the "
				    "snapshot's was 52");
}

/* ---- virtio-net ------------------------------------------------------------------------ */

/* A TX frame of 12 header bytes and len - 12 bytes of `seed`. */
static void net_tx(struct penv *e, uint32_t len, uint8_t seed)
{
	struct vs_queue *q = &e->g.q[0][VIRTIO_NET_TXQ];
	uint64_t buf = vs_alloc(&e->gm, &e->g, len);
	memset(vs_host(&e->gm, buf + VIRTIO_NET_HDR_BYTES, len - VIRTIO_NET_HDR_BYTES), seed,
	       len - VIRTIO_NET_HDR_BYTES);
	vs_publish(&e->gm, q, vs_desc(&e->gm, q, buf, len, 0));
}

static uint64_t net_rx_buf(struct penv *e, uint32_t len)
{
	struct vs_queue *q = &e->g.q[0][VIRTIO_NET_RXQ];
	uint64_t buf = vs_alloc(&e->gm, &e->g, len);
	vs_publish(&e->gm, q, vs_desc(&e->gm, q, buf, len, WRITE));
	return buf;
}

static void peer_send(struct penv *e, uint32_t len, uint8_t seed)
{
	uint8_t f[2048] = {0};
	memset(f + VIRTIO_NET_HDR_BYTES, seed, len - VIRTIO_NET_HDR_BYTES);
	assert_int_equal(send(e->peer, f, len, 0), len);
}

static void peer_expect(struct penv *e, uint32_t len, uint8_t seed)
{
	uint8_t f[2048];
	assert_int_equal(recv(e->peer, f, sizeof(f), MSG_DONTWAIT), len);
	for (uint32_t i = VIRTIO_NET_HDR_BYTES; i < len; i++)
		assert_int_equal(f[i], seed);
}

/* Chains the device held popped come back: an RX chain waiting for a frame, a TX chain
 * the limiter held. The MAC stays the one the guest knows though the TAP changed. */
static void test_net_held_chains(void **state)
{
	struct penv *e = *state;
	struct vs_queue *rxq = &e->g.q[0][VIRTIO_NET_RXQ], *txq = &e->g.q[0][VIRTIO_NET_TXQ];
	e->nc.tx_rate_limiter = (struct rate_limiter_cfg){
	    .present = true, .ops = {.present = true, .size = 1, .refill_time_ms = 1000000}};
	struct vs_proc *p = new_process(e);
	add_net(e);
	vs_up(p, &e->g, 0, F_V1 | F_MRG, 2);
	uint64_t rx0 = net_rx_buf(e, 2048);
	net_rx_buf(e, 2048);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ); /* one chain is enough: held */
	net_tx(e, 72, 0xa1);
	net_tx(e, 80, 0xb2);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ); /* the second waits for tokens */
	peer_expect(e, 72, 0xa1);
	assert_int_equal(vs_used_idx(&e->gm, txq), 1);
	uint32_t mac[2] = {vs_rd(p, 0, VIRTIO_MMIO_CONFIG), vs_rd(p, 0, VIRTIO_MMIO_CONFIG + 4)};
	take_snapshot(e);
	uint8_t *ram = ram_copy(e);
	struct vs_guest g = e->g;
	peer_send(e, 112, 0xc3);
	vs_run_until(p, rxq, 1);
	uint8_t want[2048];
	memcpy(want, vs_host(&e->gm, rx0, sizeof(want)), sizeof(want));

	p = new_process(e);
	memcpy(vs_host(&e->gm, 0, VS_RAM), ram, VS_RAM);
	free(ram);
	e->g = g;
	snprintf(e->nc.host_dev_name, sizeof(e->nc.host_dev_name), "tap1"); /* another MAC */
	add_net(e);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), 0);
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_CONFIG), mac[0]);
	assert_int_equal(vs_rd(p, 0, VIRTIO_MMIO_CONFIG + 4) & 0xffff, mac[1] & 0xffff);
	assert_true(vs_regs_match(p, 0));  /* what the guest reads without an exit too */
	virtio_set_after_restore(&p->set); /* the new limiter has a token: the held chain goes */
	vs_run_until(p, txq, 2);
	peer_expect(e, 80, 0xb2);
	peer_send(e, 112, 0xc3);
	vs_run_until(p, rxq, 1);
	uint32_t id, len;
	vs_used_elem(&e->gm, rxq, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 112);
	assert_memory_equal(vs_host(&e->gm, rx0, sizeof(want)), want, sizeof(want));
}

/* A frame the RX limiter held back in guest buffers is delivered by the restored device. */
static void test_net_deferred_frame(void **state)
{
	struct penv *e = *state;
	struct vs_queue *rxq = &e->g.q[0][VIRTIO_NET_RXQ];
	e->nc.rx_rate_limiter = (struct rate_limiter_cfg){
	    .present = true, .ops = {.present = true, .size = 1, .refill_time_ms = 1000000}};
	struct vs_proc *p = new_process(e);
	add_net(e);
	vs_up(p, &e->g, 0, F_V1 | F_MRG, 2);
	net_rx_buf(e, 2048);
	uint64_t rx1 = net_rx_buf(e, 2048);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ);
	peer_send(e, 100, 0x11);
	vs_run_until(p, rxq, 1);
	peer_send(e, 200, 0x22); /* read into the second chain, then held back */
	for (int i = 0; i < 5; i++)
		evloop_run_once(&p->loop, 10);
	assert_int_equal(vs_used_idx(&e->gm, rxq), 1);
	/* A diff snapshot carries the frame though it was written after the last one. */
	assert_int_equal(gm_track_dirty(&p->vm.mem), 0); /* the devices' view of RAM */
	uint64_t dirty[VS_RAM / 4096 / 64] = {0};
	take_snapshot(e);
	gm_take_dirty(&p->vm.mem, dirty);
	assert_true(dirty[rx1 / 4096 / 64] >> (rx1 / 4096 % 64) & 1);
	free((void *)p->vm.mem.dirty);
	p->vm.mem.dirty = NULL;
	uint8_t *ram = ram_copy(e);
	p = new_process(e);
	memcpy(vs_host(&e->gm, 0, VS_RAM), ram, VS_RAM);
	free(ram);
	add_net(e);
	assert_int_equal(virtio_set_restore(&p->set, &e->r, e->err, sizeof(e->err)), 0);
	virtio_set_after_restore(&p->set);
	vs_run_until(p, rxq, 2);
	uint32_t id, len;
	vs_used_elem(&e->gm, rxq, 1, &id, &len);
	assert_int_equal(id, 1);
	assert_int_equal(len, 200);
	const uint8_t *f = vs_host(&e->gm, rx1, 200);
	assert_int_equal(f[10], 1); /* num_buffers */
	for (int i = VIRTIO_NET_HDR_BYTES; i < 200; i++)
		assert_int_equal(f[i], 0x22);
	/* The frame must fit the chains that hold it. */
	size_t slen;
	const uint8_t *sec = snap_find(&e->r, SNAP_SEC_VIRTIO, 0, &slen);
	uint8_t bad[sizeof(struct virtio_mmio_state) + sizeof(struct virtio_net_state)];
	assert_int_equal(slen, sizeof(bad));
	memcpy(bad, sec, slen);
	struct virtio_net_state *ns = (void *)(bad + sizeof(struct virtio_mmio_state));
	assert_int_equal(ns->rx_deferred, 1);
	ns->rx_deferred_len = 4000;
	assert_int_equal(virtio_set_restore_device(&p->set, 0, bad, slen, e->err, sizeof(e->err)),
			 -EINVAL);
	assert_string_equal(e->err, "virtio device 0 (virtio-net eth0): the frame held back does "
				    "not fit its RX chains");
}

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_blk_round_trip_sync),
	    T(test_blk_round_trip_async),
	    T(test_blk_broken_round_trip),
	    T(test_save_applies_eventfd_acks),
	    T(test_restore_refuses_other_devices),
	    T(test_restore_refuses_corrupt_state),
	    T(test_vsock_transport_reset_after_restore),
	    T(test_net_held_chains),
	    T(test_net_deferred_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
