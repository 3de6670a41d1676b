/* virtio-blk (virtio 1.x 5.2): one request queue backed by a host file or block device.
 * Requests move data with preadv/pwritev straight between the file and guest memory. */
#ifndef KILN_VIRTIO_BLK_H
#define KILN_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/mmio.h"
#include "virtio/ratelimit.h"
#include "virtio/virtq.h"
#include "vmm/config.h"
#include "vmm/log.h"

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_CONFIG_BYTES 24 /* capacity, size_max, seg_max, geometry, blk_size */
#define VIRTIO_BLK_ID_LEN 20	   /* VIRTIO_BLK_ID_BYTES */

struct virtio_blk_stats {
	uint64_t reads;
	uint64_t writes;
	uint64_t flushes; /* fdatasync calls that completed */
	uint64_t read_bytes;
	uint64_t write_bytes;
	uint64_t io_errors;   /* requests completed with VIRTIO_BLK_S_IOERR */
	uint64_t unsupported; /* requests completed with VIRTIO_BLK_S_UNSUPP */
};

struct virtio_blk {
	int fd;
	bool read_only;
	bool writeback;	   /* cache_type Writeback: FLUSH offered, fdatasync */
	uint64_t capacity; /* 512-byte sectors */
	char id[VIRTIO_BLK_ID_LEN];
	char name[CONFIG_ID_MAX + 16];
	uint8_t config[VIRTIO_BLK_CONFIG_BYTES];
	struct virtio_blk_stats stats;
	struct ratelimit limiter; /* drives[].rate_limiter: bytes and requests */
	struct log_ratelimit rl;
	struct virtq_seg segs[VIRTQ_MAX_SEGS];
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Opens d->path_on_host (read-only drives O_RDONLY under a shared flock, others O_RDWR
 * under an exclusive one, both non-blocking), sizes it (regular file: st_size, block
 * device: BLKGETSIZE64) and sets up d->rate_limiter (whose timerfd, limiter.timer_fd >= 0
 * when a bucket limits, the caller watches and answers with virtio_blk_resume()). 0, or
 * -errno with one line in err naming the drive and path. */
int virtio_blk_open(struct virtio_blk *b, const struct drive_cfg *d, char *err, size_t errlen);

/* The file part of virtio_blk_open(): opens, locks and sizes d->path_on_host into *fd and
 * *bytes, with the same errors. For a new backing file of a running drive (PATCH). */
int virtio_blk_open_backing(const struct drive_cfg *d, int *fd, uint64_t *bytes, char *err,
			    size_t errlen);

/* Puts fd (from virtio_blk_open_backing) behind b with its size: requests from now on use
 * it, the config space shows the new capacity. Returns the old fd for the caller to close.
 * Call with the transport's lock held (config reads) on the thread that runs the queue,
 * then virtio_mmio_config_changed() so the guest rereads the capacity. */
int virtio_blk_swap_backing(struct virtio_blk *b, int fd, uint64_t bytes);

/* Closes the backing file (dropping the lock); safe on an unopened or closed device. */
void virtio_blk_close(struct virtio_blk *b);

/* The device model for virtio_mmio_init(); `dev` is the struct virtio_blk. */
extern const struct virtio_dev_ops virtio_blk_ops;

/* Drains the request queue: every available request is carried out in ring order and
 * completed (a FLUSH only after fdatasync returned), then notifications are re-enabled.
 * When the rate limiter refuses a request it stays in the ring and processing stops until
 * virtio_blk_resume(). *need_irq is set when the driver wants an interrupt for the batch.
 * 0, or -errno when the driver broke the queue or sent a request without a status byte. */
int virtio_blk_process(struct virtio_blk *b, struct virtq *vq, bool *need_irq);

/* A virtio_work_fn for virtio_mmio_run() when limiter.timer_fd fires: unblocks the limiter
 * and, if the device is live (vq non-NULL), resumes virtio_blk_process() on vq[0]. */
int virtio_blk_resume(void *dev, struct virtq *vq, void *arg, bool *need_irq);

#endif
