/* libFuzzer harness for the guest-facing virtqueue and virtio-blk request parsing.
 *
 * Input: an 8-byte preamble, then the first bytes of a 64 KiB guest memory (rings,
 * descriptors, indirect tables, headers, data: whatever the fuzzer writes).
 *   [0]    queue size: 1 << (b % 9), or with bit 7 the raw value b & 0x7f (often invalid)
 *   [1]    bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 read-only, bit 3 writeback,
 *          bit 4 run a second round after bumping avail->idx by the byte at [0]
 *   [2..3] descriptor table gpa / 16, [4..5] avail ring gpa / 2, [6..7] used ring gpa / 4
 * The device drains the queue into a 64 KiB memfd image. Any crash, sanitizer report or
 * hang is a bug: every guest-controlled value must be checked. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "virtio/blk.h"
#include "virtio/virtq.h"
#include "vmm/guest_mem.h"
#include "vmm/log.h"

#define RAM_BYTES (64 * 1024)
#define IMG_BYTES (64 * 1024)
#define PREAMBLE 8

struct fuzz_env {
	struct guest_mem gm;
	struct virtio_blk blk;
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
	struct drive_cfg d = {.id = "fuzz", .path_on_host = path};
	if (virtio_blk_open(&env->blk, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	close(fd);
	return env;
}

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static void drain(struct fuzz_env *env, struct virtq *q)
{
	bool irq;
	if (virtio_blk_process(&env->blk, q, &irq) < 0)
		return;
	(void)virtq_should_notify(q);
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
	env->blk.read_only = flags & 4;
	env->blk.writeback = flags & 8;
	uint64_t writes = env->blk.stats.writes;
	drain(env, &q);
	if (flags & 16) {
		/* The driver adds more after the first kick (avail->idx moves on). */
		uint8_t *idx = gm_ptr(&env->gm, q.avail_gpa + 2, 2);
		uint16_t v = le16(idx) + data[0];
		memcpy(idx, &v, 2);
		drain(env, &q);
	}
	/* Keep runs reproducible: undo what the guest wrote to the image. */
	if (env->blk.stats.writes != writes &&
	    pwrite(env->blk.fd, env->image, IMG_BYTES, 0) != IMG_BYTES)
		abort();
	return 0;
}
