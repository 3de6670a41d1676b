#include "virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_BYTES 16 /* struct virtio_blk_outhdr: type, ioprio, sector */
#define LOG_INTERVAL_NS 1000000000ULL

static int open_error(char *err, size_t errlen, const struct drive_cfg *d, const char *why, int ret)
{
	snprintf(err, errlen, "drives[%s].path_on_host: %s: %s", d->id, d->path_on_host, why);
	return ret;
}

static int drive_bytes(int fd, uint64_t *bytes)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*bytes = st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
	return -ENOTBLK;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

/* struct virtio_blk_config up to blk_size: capacity, size_max (not offered), seg_max,
 * geometry (not offered), blk_size. */
static void build_config(struct virtio_blk *b)
{
	memset(b->config, 0, sizeof(b->config));
	put_le(b->config + 0, b->capacity, 8);
	put_le(b->config + 12, VIRTIO_BLK_QUEUE_SIZE - 2, 4); /* room for header and status */
	put_le(b->config + 20, VIRTIO_BLK_SECTOR, 4);
}

/* io_efd, and for io_engine Async the ring that signals it. */
static int open_engine(struct virtio_blk *b, const struct drive_cfg *d, char *err, size_t errlen)
{
	b->io_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->io_efd < 0) {
		snprintf(err, errlen, "drives[%s]: eventfd: %s", d->id, strerror(errno));
		return -errno;
	}
	b->async = d->io_engine == IO_ENGINE_ASYNC;
	int ret = b->async ? blk_uring_init(&b->ring, 2 * VIRTIO_BLK_SLOTS, b->io_efd) : 0;
	if (ret < 0) {
		snprintf(err, errlen, "drives[%s].io_engine: Async: no usable io_uring here: %s",
			 d->id, strerror(-ret));
		close(b->io_efd);
		b->io_efd = -1;
	}
	return ret;
}

int virtio_blk_open_backing(const struct drive_cfg *d, int *fd_out, uint64_t *bytes, char *err,
			    size_t errlen)
{
	int fd = open(d->path_on_host, (d->is_read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return open_error(err, errlen, d, strerror(errno), -errno);
	int ret;
	if (flock(fd, (d->is_read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		const char *why =
		    ret == -EBUSY ? "locked by another process (is another VM using this drive?)"
				  : strerror(-ret);
		open_error(err, errlen, d, why, ret);
		goto fail;
	}
	if ((ret = drive_bytes(fd, bytes)) < 0) {
		open_error(err, errlen, d,
			   ret == -ENOTBLK ? "not a regular file or block device" : strerror(-ret),
			   ret);
		goto fail;
	}
	if (*bytes % VIRTIO_BLK_SECTOR)
		log_warn("drive %s: %s: size is not a multiple of 512; the last %u bytes are "
			 "not visible to the guest",
			 d->id, d->path_on_host, (unsigned)(*bytes % VIRTIO_BLK_SECTOR));
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return ret;
}

int virtio_blk_open(struct virtio_blk *b, const struct drive_cfg *d, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	b->fd = b->io_efd = -1;
	b->ring.fd = -1;
	b->limiter.timer_fd = -1;
	int fd, ret;
	uint64_t bytes = 0;
	if ((ret = virtio_blk_open_backing(d, &fd, &bytes, err, errlen)) < 0)
		return ret;
	if ((ret = ratelimit_init(&b->limiter, &d->rate_limiter)) < 0) {
		snprintf(err, errlen, "drives[%s].rate_limiter: %s", d->id, strerror(-ret));
		goto fail;
	}
	if ((ret = open_engine(b, d, err, errlen)) < 0) {
		ratelimit_destroy(&b->limiter);
		goto fail;
	}
	b->fd = fd;
	b->read_only = d->is_read_only;
	b->writeback = d->cache_type == CACHE_WRITEBACK;
	b->capacity = bytes / VIRTIO_BLK_SECTOR;
	/* The serial the guest sees: NUL-padded, unterminated when it fills all 20 bytes. */
	size_t id_len = strnlen(d->id, sizeof(b->id));
	memcpy(b->id, d->id, id_len);
	snprintf(b->name, sizeof(b->name), "drive %s", d->id);
	build_config(b);
	return 0;
fail:
	close(fd);
	return ret;
}

int virtio_blk_swap_backing(struct virtio_blk *b, int fd, uint64_t bytes)
{
	int old = b->fd;
	b->fd = fd;
	b->capacity = bytes / VIRTIO_BLK_SECTOR;
	build_config(b);
	return old;
}

void virtio_blk_close(struct virtio_blk *b)
{
	if (b->fd < 0)
		return;
	/* The ring first: closing it waits for what is in flight to finish or be cancelled. */
	blk_uring_close(&b->ring);
	close(b->fd);
	close(b->io_efd);
	ratelimit_destroy(&b->limiter);
	b->fd = b->io_efd = -1;
}

/* A request the guest got wrong (or the host could not serve): logged at most once a
 * second, completed with IOERR. */
__attribute__((format(printf, 2, 3))) static uint8_t io_error(struct virtio_blk *b, const char *fmt,
							      ...)
{
	b->stats.io_errors++;
	if (!log_ratelimit_ok(&b->rl, LOG_INTERVAL_NS))
		return VIRTIO_BLK_S_IOERR;
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("%s: %s", b->name, msg);
	return VIRTIO_BLK_S_IOERR;
}

/* Data segments into the slot's iovecs: readable ones after the 16 header bytes (a write)
 * or writable ones before the status byte (a read). -E2BIG beyond VIRTIO_BLK_SEG_MAX. */
static int gather(struct virtio_blk *b, const struct virtq_chain *c, bool is_write,
		  struct blk_slot *s)
{
	unsigned from = is_write ? 0 : c->nr_read, to = is_write ? c->nr_read : c->nr_segs;
	s->nr_iov = 0;
	s->len = 0;
	for (unsigned i = from; i < to; i++) {
		uint8_t *p = b->segs[i].host;
		uint32_t l = b->segs[i].len;
		if (is_write && i == 0) {
			p += HDR_BYTES;
			l -= HDR_BYTES;
		}
		if (!is_write && i == c->nr_segs - 1)
			l--; /* the status byte */
		if (!l)
			continue;
		if (s->nr_iov == VIRTIO_BLK_SEG_MAX)
			return -E2BIG;
		s->iov[s->nr_iov++] = (struct iovec){.iov_base = p, .iov_len = l};
		s->len += l;
	}
	return 0;
}

/* A read or write: checked here, carried out by the engine. VIRTIO_BLK_S_OK means queued. */
static uint8_t prepare_rw(struct virtio_blk *b, const struct virtq_chain *c, struct blk_slot *s)
{
	bool is_write = s->type == VIRTIO_BLK_T_OUT;
	uint64_t wrong_way = is_write ? c->write_len - 1 : c->read_len - HDR_BYTES;
	const char *op = is_write ? "write" : "read";
	if (wrong_way)
		return io_error(b, "%s request with %llu data bytes in the wrong direction", op,
				(unsigned long long)wrong_way);
	if (is_write && b->read_only)
		return io_error(b, "write to a read-only drive");
	if (gather(b, c, is_write, s))
		return io_error(b, "%s request with more than %d segments", op, VIRTIO_BLK_SEG_MAX);
	uint64_t sectors = s->len / VIRTIO_BLK_SECTOR;
	if (s->len % VIRTIO_BLK_SECTOR || s->sector > b->capacity ||
	    sectors > b->capacity - s->sector)
		return io_error(b, "%s of %llu bytes at sector %llu: outside the %llu-sector drive",
				op, (unsigned long long)s->len, (unsigned long long)s->sector,
				(unsigned long long)b->capacity);
	return VIRTIO_BLK_S_OK;
}

static uint32_t do_get_id(struct virtio_blk *b, const struct virtq_chain *c)
{
	uint32_t done = 0;
	for (unsigned i = c->nr_read; i < c->nr_segs && done < VIRTIO_BLK_ID_LEN; i++) {
		size_t k = b->segs[i].len - (i == c->nr_segs - 1);
		if (k > VIRTIO_BLK_ID_LEN - done)
			k = VIRTIO_BLK_ID_LEN - done;
		memcpy(b->segs[i].host, b->id + done, k);
		done += k;
	}
	return done;
}

static struct blk_slot *free_slot(struct virtio_blk *b)
{
	for (unsigned i = 0; i < VIRTIO_BLK_SLOTS; i++)
		if (blk_state(&b->slot[i]) == BLK_FREE)
			return &b->slot[i];
	return NULL;
}

/* Sorts one chain: header in its first readable bytes, status in its last writable byte.
 * Reads, writes and flushes go to slot s (*queued set); everything else is answered now.
 * Without a status byte there is no way to answer: the queue is broken. */
static int handle_chain(struct virtio_blk *b, struct virtq *vq, const struct virtq_chain *c,
			struct blk_slot *s, bool *queued)
{
	if (c->nr_segs == c->nr_read || b->segs[c->nr_segs - 1].len == 0)
		return -EINVAL;
	const struct virtq_seg *last = &b->segs[c->nr_segs - 1];
	uint8_t *status = (uint8_t *)last->host + last->len - 1, st = VIRTIO_BLK_S_OK;
	uint32_t written = 0;
	*queued = false;
	if (c->nr_read == 0 || b->segs[0].len < HDR_BYTES) {
		st = io_error(b, "request header missing or shorter than %d bytes", HDR_BYTES);
	} else {
		uint8_t hdr[HDR_BYTES];
		memcpy(hdr, b->segs[0].host, HDR_BYTES); /* read once: the guest may change it */
		*s = (struct blk_slot){.head = c->head, .status = status, .gen = b->gen};
		memcpy(&s->type, hdr, 4);
		memcpy(&s->sector, hdr + 8, 8);
		if (s->type == VIRTIO_BLK_T_IN || s->type == VIRTIO_BLK_T_OUT)
			st = prepare_rw(b, c, s);
		else if (s->type == VIRTIO_BLK_T_GET_ID)
			written = do_get_id(b, c);
		else if (s->type != VIRTIO_BLK_T_FLUSH || !b->writeback)
			st = (b->stats.unsupported++, VIRTIO_BLK_S_UNSUPP);
		/* Nothing for the engine: GET_ID, and reads or writes of no data. */
		*queued = st == VIRTIO_BLK_S_OK && s->type != VIRTIO_BLK_T_GET_ID &&
			  (s->type == VIRTIO_BLK_T_FLUSH || s->len);
	}
	if (*queued) {
		blk_set_state(s, BLK_QUEUED);
		b->nr_active++;
		return 0;
	}
	*status = st;
	return virtq_push_used(vq, c->head, written + 1);
}

/* Rate limiting, as Firecracker: one op per request, its data bytes (all but header and
 * status) against the bandwidth bucket. */
static bool admit(struct virtio_blk *b, const struct virtq_chain *c)
{
	uint64_t total = (uint64_t)c->read_len + c->write_len;
	uint64_t bytes = total > HDR_BYTES + 1 ? total - HDR_BYTES - 1 : 0;
	return ratelimit_consume(&b->limiter, bytes, 1);
}

static void signal_io(struct virtio_blk *b)
{
	uint64_t one = 1;
	ssize_t rc = write(b->io_efd, &one, sizeof(one));
	(void)rc; /* EAGAIN: the counter is full, the loop comes anyway */
}

/* Pops until the ring is empty, the budget is spent, the limiter refuses or no slot is
 * free. 0 or -errno (broken queue); *queued counts requests handed to the engine. */
static int pop_requests(struct virtio_blk *b, struct virtq *vq, unsigned *queued)
{
	struct virtq_chain c;
	int err;
	unsigned done = 0;
	for (;;) {
		struct blk_slot *s;
		while ((s = free_slot(b)) &&
		       (err = virtq_pop(vq, b->segs, VIRTQ_MAX_SEGS, &c)) == 0) {
			bool q;
			if (!admit(b, &c)) {
				virtq_unpop(vq); /* the limiter's timer resumes it */
				return 0;
			}
			if ((err = handle_chain(b, vq, &c, s, &q)))
				return err;
			*queued += q;
			if (++done == VIRTQ_BUDGET) {
				virtq_requeue(vq);
				return 0;
			}
		}
		b->slots_full = !s;
		if (!s)
			return 0; /* a completion frees a slot and pops again */
		if (err != -EAGAIN)
			return err;
		if (!virtq_enable_notify(vq))
			return 0;
	}
}

int virtio_blk_process(struct virtio_blk *b, struct virtq *vq, bool *need_irq)
{
	unsigned queued = 0;
	int err = pop_requests(b, vq, &queued);
	if (queued)
		signal_io(b);
	*need_irq = virtq_should_notify(vq);
	return err;
}

int virtio_blk_claim(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	struct virtio_blk *b = dev;
	(void)vq;
	(void)arg;
	(void)need_irq;
	for (unsigned i = 0; i < VIRTIO_BLK_SLOTS; i++) {
		if (blk_state(&b->slot[i]) == BLK_QUEUED) {
			blk_set_state(&b->slot[i], BLK_RUNNING);
			b->claimed |= 1ULL << i;
		}
	}
	return 0;
}

/* A finished request's status byte, with what it did counted. */
static uint8_t finish(struct virtio_blk *b, const struct blk_slot *s, uint32_t *written)
{
	const char *op = s->type == VIRTIO_BLK_T_OUT ? "write" : "read";
	if (s->type == VIRTIO_BLK_T_FLUSH && s->result < 0)
		return io_error(b, "flush: %s", strerror(-s->result));
	if (s->type == VIRTIO_BLK_T_FLUSH) {
		b->stats.flushes++;
		return VIRTIO_BLK_S_OK;
	}
	if (s->result < 0)
		return io_error(b, "%s at sector %llu: %s", op, (unsigned long long)s->sector,
				strerror(-s->result));
	if (s->type == VIRTIO_BLK_T_OUT) {
		b->stats.writes++;
		b->stats.write_bytes += s->len;
	} else {
		b->stats.reads++;
		b->stats.read_bytes += s->len;
		*written = (uint32_t)s->len;
	}
	return VIRTIO_BLK_S_OK;
}

int virtio_blk_complete(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	struct virtio_blk *b = dev;
	int err = 0;
	(void)arg;
	for (unsigned i = 0; i < VIRTIO_BLK_SLOTS && !err; i++) {
		struct blk_slot *s = &b->slot[i];
		if (!(b->claimed & 1ULL << i) || blk_state(s) != BLK_DONE)
			continue;
		b->claimed &= ~(1ULL << i);
		/* A reset since the pop: the ring it belongs to is gone. */
		if (vq && s->gen == b->gen) {
			uint32_t written = 0;
			*s->status = finish(b, s, &written);
			err = virtq_push_used(&vq[0], s->head, written + 1);
		}
		blk_set_state(s, BLK_FREE);
		b->nr_active--;
	}
	if (!err && vq && b->slots_full)
		return virtio_blk_process(b, &vq[0], need_irq);
	if (vq)
		*need_irq = virtq_should_notify(&vq[0]);
	return err;
}

int virtio_blk_resume(void *dev, struct virtq *vq, void *arg, bool *need_irq)
{
	struct virtio_blk *b = dev;
	(void)arg;
	ratelimit_timer_fired(&b->limiter);
	return vq ? virtio_blk_process(b, &vq[0], need_irq) : 0;
}

static uint64_t blk_features(const void *dev)
{
	const struct virtio_blk *b = dev;
	uint64_t f = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_RING_F_EVENT_IDX |
		     1ULL << VIRTIO_RING_F_INDIRECT_DESC | 1ULL << VIRTIO_BLK_F_SEG_MAX |
		     1ULL << VIRTIO_BLK_F_BLK_SIZE;
	if (b->read_only)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	if (b->writeback)
		f |= 1ULL << VIRTIO_BLK_F_FLUSH;
	return f;
}

static void blk_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = dev;
	memcpy(data, b->config + off, len);
}

static int blk_activate(void *dev, uint64_t features, struct virtq *vq)
{
	(void)dev;
	(void)features;
	return vq[0].ready ? 0 : -EINVAL;
}

/* Requests not yet started belong to the old rings: dropped. Running ones finish and are
 * then discarded (their generation is stale). */
static void blk_reset(void *dev)
{
	struct virtio_blk *b = dev;
	b->gen++;
	b->slots_full = false;
	for (unsigned i = 0; i < VIRTIO_BLK_SLOTS; i++) {
		if (blk_state(&b->slot[i]) == BLK_QUEUED) {
			blk_set_state(&b->slot[i], BLK_FREE);
			b->nr_active--;
		}
	}
}

static int blk_queue_notify(void *dev, struct virtq *vq, unsigned idx, bool *need_irq)
{
	(void)idx;
	return virtio_blk_process(dev, vq, need_irq);
}

const struct virtio_dev_ops virtio_blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .nr_queues = 1,
    .queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
    .config_size = VIRTIO_BLK_CONFIG_BYTES,
    .features = blk_features,
    .config_read = blk_config_read,
    .activate = blk_activate,
    .reset = blk_reset,
    .queue_notify = blk_queue_notify,
};
