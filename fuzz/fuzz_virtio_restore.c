/* libFuzzer harness for restoring virtio devices from a hostile snapshot state file.
 *
 * Built once: a set of three devices wired to fake KVM ops over 1 MiB of guest memory
 * (slot 0 virtio-blk on a memfd image with the Sync engine, slot 1 virtio-net on a
 * datagram socketpair, slot 2 virtio-vsock on a socket in a temp dir), which a scripted
 * guest drives to DRIVER_OK and gives work: block requests (some answered, some only
 * published), RX buffers (one held by the device), a TX frame, vsock buffers and a packet.
 * Guest memory then is the baseline every input starts from.
 * Input:
 *   [0]  bits 0-5: slot % 3; bit 6: the section is one byte short; bit 7:
 * virtio_set_after_restore() [1]  number of memory patch records after the section then the slot's
 * section (struct virtio_mmio_state, then the kind's state; zero-padded when the input ends first),
 * then records [gpa / 16: u16][len: u8][len bytes] written over the baseline (rings, descriptors,
 * buffers: whatever the guest could have left). The section goes through
 * virtio_set_restore_device(); a refusal must say why. A restored device must count in flight
 * exactly the chains its ring indices say, and is then kicked on every queue (the block engine run,
 * a frame offered to the net device) before being reset. Any crash, sanitizer report, hang or
 * leaked fd is a bug. KILN_FUZZ_SEEDS=<dir>: writes the scripted guest's saved sections there as
 * seeds, exits. KILN_FUZZ_VERBOSE=1: prints each input's restore result. */
#include <dirent.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "tests/unit/vset_test_env.h"
#include "virtio/persist.h"
#include "virtio/vsock_pkt.h"
#include "vmm/log.h"

#define RAM_BYTES (1ULL << 20)
#define IMG_BYTES (64 * 1024)
#define NR_SLOTS 3
#define NF(b) (1ULL << (b))

struct fuzz {
	bool verbose;
	struct guest_mem gm;
	struct vs_guest g;
	struct vs_proc *p;
	int peer;
	int fds; /* counted by count_fds() between inputs */
	char dir[64], sock[96];
	uint8_t *baseline;
};

/* Sockets, eventfds and timerfds: what kiln's devices open. Not every fd: libFuzzer opens
 * pipes of its own (to the symbolizer). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char path[300], link[64];
	int n = 0;
	while (d && (de = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(path, link, sizeof(link) - 1);
		n += len > 7 && (!memcmp(link, "socket:", 7) || !memcmp(link, "anon_inode:", 11));
	}
	if (!d)
		abort();
	closedir(d);
	return n;
}

static void *host(struct fuzz *f, uint64_t gpa, uint64_t len)
{
	return vs_host(&f->gm, gpa, len);
}

static void blk_request(struct fuzz *f, uint32_t type, uint64_t sector, uint32_t len)
{
	struct vs_queue *q = &f->g.q[0][0];
	uint64_t hdr = vs_alloc(&f->gm, &f->g, 16), data = vs_alloc(&f->gm, &f->g, len);
	uint64_t st = vs_alloc(&f->gm, &f->g, 1);
	memcpy(host(f, hdr, 4), &type, 4);
	memcpy(host(f, hdr + 8, 8), &sector, 8);
	uint16_t head = vs_desc(&f->gm, q, hdr, 16, VRING_DESC_F_NEXT);
	vs_desc(&f->gm, q, data, len,
		VRING_DESC_F_NEXT | (type == VIRTIO_BLK_T_OUT ? 0 : VRING_DESC_F_WRITE));
	vs_desc(&f->gm, q, st, 1, VRING_DESC_F_WRITE);
	vs_publish(&f->gm, q, head);
}

static void buffer(struct fuzz *f, unsigned slot, unsigned queue, uint32_t len, uint16_t flags)
{
	struct vs_queue *q = &f->g.q[slot][queue];
	uint64_t b = vs_alloc(&f->gm, &f->g, len);
	memset(host(f, b, len), 0x5a, len);
	vs_publish(&f->gm, q, vs_desc(&f->gm, q, b, len, flags));
}

/* The block engine, as the event loop would run it, until nothing is left or it stalls. */
static void blk_run(struct virtio_slot *s)
{
	for (int i = 0; i < 8 && virtio_blk_busy(s->dev); i++) {
		virtio_mmio_run(&s->mmio, virtio_blk_claim, NULL);
		virtio_blk_io(s->dev, false);
		virtio_mmio_run(&s->mmio, virtio_blk_complete, NULL);
	}
}

/* The scripted guest: every device live, with work done, held and waiting. */
static void drive(struct fuzz *f)
{
	struct vs_proc *p = f->p;
	uint64_t ring =
	    NF(VIRTIO_F_VERSION_1) | NF(VIRTIO_RING_F_EVENT_IDX) | NF(VIRTIO_RING_F_INDIRECT_DESC);
	vs_up(p, &f->g, 0, ring, 1);
	blk_request(f, VIRTIO_BLK_T_GET_ID, 0, 20);
	blk_request(f, VIRTIO_BLK_T_IN, 1, 1024);
	blk_request(f, VIRTIO_BLK_T_OUT, 5, 512);
	vs_wr(p, 0, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	blk_run(p->set.slot[0]);
	blk_request(f, VIRTIO_BLK_T_IN, 7, 512); /* published, not kicked */
	vs_up(p, &f->g, 1,
	      ring | NF(VIRTIO_NET_F_MRG_RXBUF) | NF(VIRTIO_NET_F_CSUM) |
		  NF(VIRTIO_NET_F_GUEST_CSUM),
	      2);
	for (int i = 0; i < 3; i++)
		buffer(f, 1, VIRTIO_NET_RXQ, 2048, VRING_DESC_F_WRITE);
	vs_wr(p, 1, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RXQ); /* holds one */
	buffer(f, 1, VIRTIO_NET_TXQ, 74, 0);
	vs_up(p, &f->g, 2, ring, 3);
	buffer(f, 2, VIRTIO_VSOCK_RXQ, 4096, VRING_DESC_F_WRITE);
	buffer(f, 2, VIRTIO_VSOCK_RXQ, 64, VRING_DESC_F_WRITE);
	buffer(f, 2, VIRTIO_VSOCK_EVQ, 8, VRING_DESC_F_WRITE);
	struct vsock_hdr h = {.src_cid = 52,
			      .dst_cid = 2,
			      .src_port = 1234,
			      .dst_port = 1000,
			      .type = 1,
			      .op = 1,
			      .buf_alloc = 65536};
	struct vs_queue *txq = &f->g.q[2][VIRTIO_VSOCK_TXQ];
	uint64_t pkt = vs_alloc(&f->gm, &f->g, VSOCK_HDR_BYTES);
	vsock_hdr_encode(&h, host(f, pkt, VSOCK_HDR_BYTES));
	vs_publish(&f->gm, txq, vs_desc(&f->gm, txq, pkt, VSOCK_HDR_BYTES, 0));
}

static void add_devices(struct fuzz *f)
{
	char err[256], img[64];
	int fd = memfd_create("fuzz-restore", MFD_CLOEXEC), sv[2];
	vs_check(fd >= 0 && ftruncate(fd, IMG_BYTES) == 0, "image");
	snprintf(img, sizeof(img), "/proc/self/fd/%d", fd);
	struct drive_cfg d = {.id = "disk0", .path_on_host = img};
	struct net_cfg nc = {.id = "eth0", .host_dev_name = "tap0"};
	struct vsock_cfg vc = {.present = true, .guest_cid = 52, .uds_path = f->sock};
	vs_check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "sp");
	f->peer = sv[1];
	if (virtio_blk_add(&f->p->set, &f->p->vm, &f->p->loop, &d, err, sizeof(err)) ||
	    virtio_net_add_fd(&f->p->set, &f->p->vm, &f->p->loop, &nc, sv[0], err, sizeof(err)) ||
	    virtio_vsock_add(&f->p->set, &f->p->vm, &f->p->loop, &vc, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	close(fd);
}

/* Writes one seed per device: its saved section, alone and with after_restore. */
static void write_seeds(struct fuzz *f, const char *dir)
{
	uint8_t *buf;
	size_t len;
	struct snap_reader *r = calloc(1, sizeof(*r));
	char err[256], path[512];
	vs_save(f->p, &buf, &len);
	vs_check(snap_parse(r, buf, len, err, sizeof(err)) == 0, "snap_parse");
	for (unsigned i = 0; i < 2 * NR_SLOTS; i++) {
		size_t slen;
		const void *sec = snap_find(r, SNAP_SEC_VIRTIO, i % NR_SLOTS, &slen);
		uint8_t head[2] = {(uint8_t)(i % NR_SLOTS | (i >= NR_SLOTS ? 0x80 : 0)), 0};
		snprintf(path, sizeof(path), "%s/slot%u%s", dir, i % NR_SLOTS,
			 i >= NR_SLOTS ? "_after" : "");
		FILE *out = fopen(path, "wb");
		vs_check(out && fwrite(head, 1, 2, out) == 2 && fwrite(sec, 1, slen, out) == slen &&
			     fclose(out) == 0,
			 path);
	}
	free(r);
	free(buf);
}

static struct fuzz *the_fuzz;

/* The socket file and its directory go when the fuzzer exits. */
static void cleanup(void)
{
	struct fuzz *f = the_fuzz;
	vs_proc_free(f->p);
	rmdir(f->dir);
}

static struct fuzz *fuzz_get(void)
{
	struct fuzz *f = the_fuzz;
	if (f)
		return f;
	log_setup(2, LOG_OFF, 0, 0);
	the_fuzz = f = calloc(1, sizeof(*f));
	vs_check(f && guest_mem_init(&f->gm, RAM_BYTES) == 0, "guest_mem_init");
	f->verbose = getenv("KILN_FUZZ_VERBOSE") != NULL;
	snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-fuzz-restore-XXXXXX");
	vs_check(mkdtemp(f->dir) != NULL, "mkdtemp");
	snprintf(f->sock, sizeof(f->sock), "%s/v.sock", f->dir);
	f->p = vs_proc_new(&f->gm);
	atexit(cleanup);
	add_devices(f);
	drive(f);
	const char *seeds = getenv("KILN_FUZZ_SEEDS");
	if (seeds) {
		write_seeds(f, seeds);
		exit(0);
	}
	f->baseline = malloc(RAM_BYTES);
	memcpy(f->baseline, host(f, 0, RAM_BYTES), RAM_BYTES);
	/* Each input then has one live device, whatever came before it. */
	for (unsigned i = 0; i < NR_SLOTS; i++) {
		pthread_mutex_lock(&f->p->set.slot[i]->mmio.lock);
		virtio_mmio_reset_locked(&f->p->set.slot[i]->mmio);
		pthread_mutex_unlock(&f->p->set.slot[i]->mmio.lock);
	}
	f->fds = count_fds();
	return f;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_get();
	return 0;
}

static const uint8_t *patch_memory(struct fuzz *f, const uint8_t *p, const uint8_t *end, unsigned n)
{
	for (; n && end - p >= 3; n--) {
		uint64_t gpa = (uint64_t)(p[0] | p[1] << 8) * 16;
		size_t len = p[2];
		p += 3;
		if (len > (size_t)(end - p))
			len = end - p;
		if (gpa + len <= RAM_BYTES)
			memcpy(host(f, gpa, len), p, len);
		p += len;
	}
	return p;
}

/* A restored device: its counts must agree with its rings; then every queue is kicked. */
static void exercise(struct fuzz *f, unsigned slot, bool after)
{
	struct virtio_slot *s = f->p->set.slot[slot];
	if (!vs_regs_match(f->p, slot)) /* the guest reads the restored registers */
		abort();
	for (unsigned q = 0; q < s->mmio.ops->nr_queues; q++) {
		const struct virtq *vq = &s->mmio.vq[q];
		if (vq->ready && vq->inflight != (uint16_t)(vq->last_avail - vq->used_idx))
			abort();
	}
	if (after)
		virtio_set_after_restore(&f->p->set);
	if (slot == 1) {
		static const uint8_t frame[60 + VIRTIO_NET_HDR_BYTES] = {0};
		ssize_t rc = send(f->peer, frame, sizeof(frame), MSG_DONTWAIT);
		(void)rc;
		struct virtio_net_event ev = {.source = VIRTIO_NET_EV_TAP, .events = EPOLLIN};
		virtio_mmio_run(&s->mmio, virtio_net_work, &ev);
	}
	for (unsigned q = 0; q < s->mmio.ops->nr_queues; q++)
		virtio_mmio_notify(&s->mmio, q);
	if (slot == 0)
		blk_run(s);
	if (!vs_regs_match(f->p, slot))
		abort();
}

/* Back to the state between inputs: the device reset, the host sockets drained. */
static void settle(struct fuzz *f, unsigned slot)
{
	struct virtio_slot *s = f->p->set.slot[slot];
	uint8_t sink[2048];
	if (slot == 0)
		blk_run(s);
	pthread_mutex_lock(&s->mmio.lock);
	virtio_mmio_reset_locked(&s->mmio);
	pthread_mutex_unlock(&s->mmio.lock);
	while (recv(f->peer, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	while (recv(virtio_slot_net(f->p->set.slot[1])->tap_fd, sink, sizeof(sink), MSG_DONTWAIT) >
	       0)
		;
	if (count_fds() != f->fds)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz *f = fuzz_get();
	if (size < 2)
		return 0;
	unsigned slot = (data[0] & 0x3f) % NR_SLOTS, patches = data[1];
	struct virtio_slot *s = f->p->set.slot[slot];
	size_t want = sizeof(struct virtio_mmio_state) + s->kind->state_size;
	uint8_t sec[sizeof(struct virtio_mmio_state) + sizeof(struct virtio_net_state)] = {0};
	const uint8_t *p = data + 2, *end = data + size;
	size_t n = (size_t)(end - p) < want ? (size_t)(end - p) : want;
	memcpy(sec, p, n);
	memcpy(host(f, 0, RAM_BYTES), f->baseline, RAM_BYTES);
	patch_memory(f, p + n, end, patches);
	char err[256] = "";
	size_t len = data[0] & 0x40 ? want - 1 : want;
	int ret = virtio_set_restore_device(&f->p->set, slot, sec, len, err, sizeof(err));
	if (f->verbose)
		fprintf(stderr, "slot %u: %d %s\n", slot, ret, err);
	if (ret == 0)
		exercise(f, slot, data[0] & 0x80);
	else if (!strstr(err, "virtio device "))
		abort();
	settle(f, slot);
	return 0;
}
