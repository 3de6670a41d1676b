/* libFuzzer harness for the guest-facing virtqueue and virtio-blk request parsing.
 *
 * Input: an 8-byte preamble, then the first bytes of a 64 KiB guest memory (rings,
 * descriptors, indirect tables, headers, data: whatever the fuzzer writes).
 *   [0]    queue size: 1 << (b % 9), or with bit 7 the raw value b & 0x7f (often invalid)
 *   [1]    bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 read-only, bit 3 writeback,
 *          bit 4 run a second round after bumping avail->idx by the byte at [0]
 *   [2..3] descriptor table gpa / 16, [4..5] avail ring gpa / 2, [6..7] used ring gpa / 4
 *   [1] bit 5: the Async (io_uring) engine instead of Sync; bit 6: up to KICKS more kicks
 *          scripted by the input's last bytes, 3 each from the end: after the device has
 *          popped and checked the requests (step 1, under the transport lock) and before
 *          they are carried out (step 2, without it), the "guest" flips a byte of RAM at
 *          (offset, value): headers, descriptors, status bytes, as another vCPU could;
 *          bit 7 of the value also resets the device in that window.
 * The device drains the queue into a 64 KiB memfd image, which must never grow (a request
 * carried out with a sector other than the one checked would) and never change when the
 * drive is read-only; every completion must name a head of the ring and a length a request
 * can have written (__wrap_virtq_push_used). Any crash, sanitizer
 * report or hang is a bug: every guest-controlled value must be checked. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/blk.h"
#include "virtio/virtq.h"
#include "vmm/guest_mem.h"
#include "vmm/log.h"

#define RAM_BYTES (64 * 1024)
#define IMG_BYTES (64 * 1024)
#define PREAMBLE 8
#define KICKS 4

struct fuzz_env {
	struct guest_mem gm;
	struct virtio_blk blk[2]; /* Sync, Async */
	uint8_t image[IMG_BYTES];
};

static struct fuzz_env *env_get(void)
{
	static struct fuzz_env *env;
	if (env)
		return env;
	env = calloc(1, sizeof(*env));
	log_setup(2, LOG_OFF, 0, 0);
	if (!env || guest_mem_init(&env->gm, RAM_BYTES) < 0)
		abort();
	int fd = memfd_create("fuzz-blk", MFD_CLOEXEC);
	for (size_t i = 0; i < IMG_BYTES; i++)
		env->image[i] = (uint8_t)(i * 13 + (i >> 9));
	if (fd < 0 || pwrite(fd, env->image, IMG_BYTES, 0) != IMG_BYTES)
		abort();
	char path[64], err[256];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	for (int i = 0; i < 2; i++) {
		struct drive_cfg d = {.id = "fuzz", .path_on_host = path, .io_engine = i};
		if (virtio_blk_open(&env->blk[i], &d, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
		flock(env->blk[i].fd, LOCK_UN); /* both engines on the one image */
	}
	close(fd);
	return env;
}

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

/* Step 2: claim, carry out, complete, until nothing is in flight; the image keeps its size. */
static void finish(struct virtio_blk *b, struct virtq *q)
{
	bool irq;
	while (virtio_blk_busy(b)) {
		virtio_blk_claim(b, q, NULL, &irq);
		virtio_blk_io(b, true);
		if (virtio_blk_complete(b, q, NULL, &irq) < 0)
			break;
	}
	struct stat st;
	if (fstat(b->fd, &st) < 0 || st.st_size != IMG_BYTES)
		abort();
}

/* Every completion the device reports (linked with --wrap=virtq_push_used): a head of the
 * ring and no more bytes than a request can write, the whole image and the status byte.
 * Checked as reported, not read back from the used ring, which a hostile guest may have
 * placed under its own read buffers. */
int __real_virtq_push_used(struct virtq *q, uint16_t head, uint32_t len);
int __wrap_virtq_push_used(struct virtq *q, uint16_t head, uint32_t len);
int __wrap_virtq_push_used(struct virtq *q, uint16_t head, uint32_t len)
{
	if (q->ready && (head >= q->size || len > IMG_BYTES + 1))
		abort();
	return __real_virtq_push_used(q, head, len);
}

/* One kick. `op` (NULL: none) is the guest's write between steps 1 and 2. */
static int kick(struct fuzz_env *env, struct virtio_blk *b, struct virtq *q, const uint8_t *op)
{
	bool irq;
	int err = virtio_blk_process(b, q, &irq);
	if (op) {
		uint8_t *ram = gm_ptr(&env->gm, 0, RAM_BYTES);
		ram[le16(op) % RAM_BYTES] ^= op[2];
		if (op[2] & 0x80) {
			virtio_blk_ops.reset(b);
			virtq_reset(q);
		}
	}
	finish(b, err < 0 ? NULL : q);
	(void)virtq_should_notify(q);
	return err;
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
	uint8_t flags = data[1];
	struct virtq q = {.max_size = 256};
	q.num = data[0] & 0x80 ? data[0] & 0x7f : 1u << (data[0] % 9);
	q.desc_gpa = (uint64_t)le16(data + 2) * 16;
	q.avail_gpa = (uint64_t)le16(data + 4) * 2;
	q.used_gpa = (uint64_t)le16(data + 6) * 4;
	uint64_t features = (flags & 1 ? 1ULL << VIRTIO_RING_F_EVENT_IDX : 0) |
			    (flags & 2 ? 1ULL << VIRTIO_RING_F_INDIRECT_DESC : 0);
	if (virtq_setup(&q, &env->gm, features) < 0)
		return 0;
	struct virtio_blk *b = &env->blk[(flags >> 5) & 1];
	b->read_only = flags & 4;
	b->writeback = flags & 8;
	bool scripted = flags & 64;
	int err = kick(env, b, &q, scripted && size >= PREAMBLE + 3 ? data + size - 3 : NULL);
	if (!err && (flags & 16)) {
		/* The driver adds more after the first kick (avail->idx moves on). */
		uint8_t *idx = gm_ptr(&env->gm, q.avail_gpa + 2, 2);
		uint16_t v = le16(idx) + data[0];
		memcpy(idx, &v, 2);
		err = kick(env, b, &q, NULL);
	}
	for (unsigned k = 1;
	     scripted && !err && q.ready && k < KICKS && size >= PREAMBLE + 3 * (k + 1); k++)
		err = kick(env, b, &q, data + size - 3 * (k + 1));
	virtio_blk_ops.reset(b); /* nothing carries over to the next input */
	finish(b, NULL);
	/* A read-only drive is never written, whatever the guest asked; otherwise undo what
	 * the guest wrote, so that runs are reproducible (a write a reset discarded may have
	 * reached the image without being counted: compare, not count). */
	static uint8_t now[IMG_BYTES];
	if (pread(b->fd, now, IMG_BYTES, 0) != IMG_BYTES)
		abort();
	if (memcmp(now, env->image, IMG_BYTES)) {
		if (b->read_only)
			abort();
		if (pwrite(b->fd, env->image, IMG_BYTES, 0) != IMG_BYTES)
			abort();
	}
	return 0;
}
