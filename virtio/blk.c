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
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_BYTES 16 /* struct virtio_blk_outhdr: type, ioprio, sector */
#define LOG_INTERVAL_NS 1000000000ULL

/* One request as found in its chain: the header fields and where the status goes. */
struct blk_req {
	uint32_t type;
	uint64_t sector;
	const struct virtq_chain *chain;
};

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
	b->fd = -1;
	b->limiter.timer_fd = -1;
	int fd, ret;
	uint64_t bytes = 0;
	if ((ret = virtio_blk_open_backing(d, &fd, &bytes, err, errlen)) < 0)
		return ret;
	if ((ret = ratelimit_init(&b->limiter, &d->rate_limiter)) < 0) {
		snprintf(err, errlen, "drives[%s].rate_limiter: %s", d->id, strerror(-ret));
		close(fd);
		return ret;
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
	close(b->fd);
	ratelimit_destroy(&b->limiter);
	b->fd = -1;
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

/* Device-readable data: everything readable after the 16 header bytes. */
static unsigned out_iov(struct virtio_blk *b, const struct virtq_chain *c, uint64_t *len)
{
	unsigned n = 0;
	*len = 0;
	for (unsigned i = 0; i < c->nr_read; i++) {
		uint8_t *p = b->segs[i].host;
		uint32_t l = b->segs[i].len;
		if (i == 0) {
			p += HDR_BYTES;
			l -= HDR_BYTES;
		}
		if (l)
			b->iov[n++] = (struct iovec){.iov_base = p, .iov_len = l};
		*len += l;
	}
	return n;
}

/* Device-writable data: everything writable before the final status byte. */
static unsigned in_iov(struct virtio_blk *b, const struct virtq_chain *c, uint64_t *len)
{
	unsigned n = 0;
	*len = 0;
	for (unsigned i = c->nr_read; i < c->nr_segs; i++) {
		uint32_t l = b->segs[i].len - (i == c->nr_segs - 1);
		if (l)
			b->iov[n++] = (struct iovec){.iov_base = b->segs[i].host, .iov_len = l};
		*len += l;
	}
	return n;
}

/* preadv/pwritev until done: short transfers continue, EOF is an error. */
static int transfer(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write)
{
	while (n) {
		ssize_t r = write ? pwritev(fd, iov, n, off) : preadv(fd, iov, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += r;
		for (; n && (size_t)r >= iov->iov_len; iov++, n--)
			r -= iov->iov_len;
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	return 0;
}

static uint8_t do_rw(struct virtio_blk *b, const struct blk_req *r, uint32_t *written)
{
	bool is_write = r->type == VIRTIO_BLK_T_OUT;
	const struct virtq_chain *c = r->chain;
	uint64_t len;
	unsigned n = is_write ? out_iov(b, c, &len) : in_iov(b, c, &len);
	uint64_t wrong_way = is_write ? c->write_len - 1 : c->read_len - HDR_BYTES;
	const char *op = is_write ? "write" : "read";
	if (wrong_way)
		return io_error(b, "%s request with %llu data bytes in the wrong direction", op,
				(unsigned long long)wrong_way);
	if (is_write && b->read_only)
		return io_error(b, "write to a read-only drive");
	uint64_t sectors = len / VIRTIO_BLK_SECTOR;
	if (len % VIRTIO_BLK_SECTOR || r->sector > b->capacity || sectors > b->capacity - r->sector)
		return io_error(b, "%s of %llu bytes at sector %llu: outside the %llu-sector drive",
				op, (unsigned long long)len, (unsigned long long)r->sector,
				(unsigned long long)b->capacity);
	int err = transfer(b->fd, b->iov, n, r->sector * VIRTIO_BLK_SECTOR, is_write);
	if (err)
		return io_error(b, "%s at sector %llu: %s", op, (unsigned long long)r->sector,
				strerror(-err));
	if (is_write) {
		b->stats.writes++;
		b->stats.write_bytes += len;
	} else {
		b->stats.reads++;
		b->stats.read_bytes += len;
		*written = len;
	}
	return VIRTIO_BLK_S_OK;
}

/* Only offered with cache_type Writeback; completes only once the data is on the host's
 * storage, so what the guest flushed survives kiln being killed right after. */
static uint8_t do_flush(struct virtio_blk *b)
{
	if (!b->writeback) {
		b->stats.unsupported++;
		return VIRTIO_BLK_S_UNSUPP;
	}
#ifdef KILN_TEST_HOOKS
	/* The control run of tests/e2e/powercut.sh: a flush that does nothing must lose data. */
	if (getenv("KILN_TEST_NO_FLUSH")) {
		b->stats.flushes++;
		return VIRTIO_BLK_S_OK;
	}
#endif
	while (fdatasync(b->fd) < 0) {
		if (errno != EINTR)
			return io_error(b, "flush: %s", strerror(errno));
	}
	b->stats.flushes++;
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_get_id(struct virtio_blk *b, const struct blk_req *r, uint32_t *written)
{
	uint64_t len;
	unsigned n = in_iov(b, r->chain, &len);
	uint32_t done = 0;
	for (unsigned i = 0; i < n && done < VIRTIO_BLK_ID_LEN; i++) {
		size_t k = b->iov[i].iov_len;
		if (k > VIRTIO_BLK_ID_LEN - done)
			k = VIRTIO_BLK_ID_LEN - done;
		memcpy(b->iov[i].iov_base, b->id + done, k);
		done += k;
	}
	*written = done;
	return VIRTIO_BLK_S_OK;
}

static uint8_t dispatch(struct virtio_blk *b, const struct blk_req *r, uint32_t *written)
{
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return do_rw(b, r, written);
	case VIRTIO_BLK_T_FLUSH:
		return do_flush(b);
	case VIRTIO_BLK_T_GET_ID:
		return do_get_id(b, r, written);
	default:
		b->stats.unsupported++;
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* Carries out one chain: header in its first readable bytes, status in its last writable
 * byte. Without a status byte there is no way to answer: the queue is broken. */
static int handle_chain(struct virtio_blk *b, struct virtq *vq, const struct virtq_chain *c)
{
	if (c->nr_segs == c->nr_read || b->segs[c->nr_segs - 1].len == 0)
		return -EINVAL;
	const struct virtq_seg *last = &b->segs[c->nr_segs - 1];
	uint8_t *status = (uint8_t *)last->host + last->len - 1;
	uint32_t written = 0;
	if (c->nr_read == 0 || b->segs[0].len < HDR_BYTES) {
		*status = io_error(b, "request header missing or shorter than %d bytes", HDR_BYTES);
	} else {
		uint8_t hdr[HDR_BYTES];
		memcpy(hdr, b->segs[0].host, HDR_BYTES); /* read once: the guest may change it */
		struct blk_req r = {.chain = c};
		memcpy(&r.type, hdr, 4);
		memcpy(&r.sector, hdr + 8, 8);
		*status = dispatch(b, &r, &written);
	}
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

int virtio_blk_process(struct virtio_blk *b, struct virtq *vq, bool *need_irq)
{
	struct virtq_chain c;
	int err;
	for (;;) {
		while ((err = virtq_pop(vq, b->segs, VIRTQ_MAX_SEGS, &c)) == 0) {
			if (!admit(b, &c)) {
				virtq_unpop(vq); /* the limiter's timer resumes it */
				goto out;
			}
			if ((err = handle_chain(b, vq, &c)))
				goto out;
		}
		if (err != -EAGAIN)
			goto out;
		err = 0;
		if (!virtq_enable_notify(vq))
			break;
	}
out:
	*need_irq = virtq_should_notify(vq);
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
    .queue_notify = blk_queue_notify,
};
