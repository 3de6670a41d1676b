/* The snapshot state file container (snapshot_file.h): writer, reader, CRC. */
#include "vmm/snapshot_file.h"
#include "vmm/pwrite_all.h"

#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_TRAILER_BYTES 8

static const char *const tag_names[SNAP_SEC_MAX + 1] = {
    [SNAP_SEC_META] = "meta",  [SNAP_SEC_CONFIG] = "config", [SNAP_SEC_VM] = "vm",
    [SNAP_SEC_VCPU] = "vcpu",  [SNAP_SEC_SERIAL] = "serial", [SNAP_SEC_I8042] = "i8042",
    [SNAP_SEC_PM] = "acpi-pm", [SNAP_SEC_VIRTIO] = "virtio",
};

const char *snap_tag_name(uint32_t tag)
{
	return tag <= SNAP_SEC_MAX && tag_names[tag] ? tag_names[tag] : "unknown";
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->len = SNAP_HEADER_BYTES; /* filled in by snap_writer_finish() */
}

/* Makes room for `more` bytes past w->len, within SNAP_MAX_BYTES. */
static int writer_reserve(struct snap_writer *w, size_t more)
{
	if (more > SNAP_MAX_BYTES - SNAP_TRAILER_BYTES - w->len)
		return -E2BIG;
	if (w->len + more <= w->cap)
		return 0;
	size_t cap = w->cap ? w->cap : 4096;
	while (cap < w->len + more)
		cap *= 2;
	uint8_t *buf = realloc(w->buf, cap);
	if (!buf)
		return -ENOMEM;
	memset(buf + w->cap, 0, cap - w->cap);
	w->buf = buf;
	w->cap = cap;
	return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

int snap_put(struct snap_writer *w, uint32_t tag, uint32_t index, const void *data, size_t len)
{
	if (w->err)
		return w->err;
	if (w->nr >= SNAP_MAX_SECTIONS || len > SNAP_MAX_BYTES)
		return w->err = -E2BIG;
	int err = writer_reserve(w, SNAP_SECTION_HEADER_BYTES + pad8(len));
	if (err)
		return w->err = err;
	uint8_t *p = w->buf + w->len;
	put_u32(p, tag);
	put_u32(p + 4, index);
	put_u64(p + 8, len);
	if (len)
		memcpy(p + SNAP_SECTION_HEADER_BYTES, data, len);
	w->len += SNAP_SECTION_HEADER_BYTES + pad8(len);
	w->nr++;
	return 0;
}

int snap_writer_finish(struct snap_writer *w, int fd)
{
	if (w->err)
		return w->err;
	int err = writer_reserve(w, SNAP_TRAILER_BYTES);
	if (err)
		return w->err = err;
	uint8_t *h = w->buf;
	uint16_t ver[2] = {SNAP_VERSION_MAJOR, SNAP_VERSION_MINOR};
	memcpy(h, SNAP_MAGIC, 8);
	memcpy(h + 8, ver, sizeof(ver));
	put_u32(h + 12, w->nr);
	put_u64(h + 16, w->len - SNAP_HEADER_BYTES);
	put_u64(w->buf + w->len, lzma_crc64(w->buf, w->len, 0));
	if ((err = pwrite_all(fd, w->buf, w->len + SNAP_TRAILER_BYTES, 0)))
		return err;
	if (ftruncate(fd, (off_t)(w->len + SNAP_TRAILER_BYTES)) || fdatasync(fd))
		return -errno;
	return 0;
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int snap_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* The section headers after the file header, all inside the body, none twice. */
static int parse_sections(struct snap_reader *r, uint32_t nr, char *err, size_t errlen)
{
	size_t off = SNAP_HEADER_BYTES, end = r->len - SNAP_TRAILER_BYTES;
	for (uint32_t i = 0; i < nr; i++) {
		if (end - off < SNAP_SECTION_HEADER_BYTES)
			return snap_fail(err, errlen, -EINVAL,
					 "section %u: header past the end of the file", i);
		uint32_t tag, index;
		uint64_t len;
		memcpy(&tag, r->buf + off, 4);
		memcpy(&index, r->buf + off + 4, 4);
		memcpy(&len, r->buf + off + 8, 8);
		off += SNAP_SECTION_HEADER_BYTES;
		if (len > end - off || pad8((size_t)len) > end - off)
			return snap_fail(err, errlen, -EINVAL,
					 "section %u (%s %u): %llu bytes past the end of the file",
					 i, snap_tag_name(tag), index, (unsigned long long)len);
		for (unsigned j = 0; j < r->nr; j++)
			if (r->sec[j].tag == tag && r->sec[j].index == index)
				return snap_fail(err, errlen, -EINVAL,
						 "section %s %u appears twice", snap_tag_name(tag),
						 index);
		r->sec[r->nr++] = (struct snap_section_ref){tag, index, off, (size_t)len};
		off += pad8((size_t)len);
	}
	if (off != end)
		return snap_fail(err, errlen, -EINVAL, "%zu bytes after the last section",
				 end - off);
	return 0;
}

int snap_parse(struct snap_reader *r, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
	if (len < SNAP_HEADER_BYTES + SNAP_TRAILER_BYTES || memcmp(buf, SNAP_MAGIC, 8))
		return snap_fail(err, errlen, -EINVAL, "not a kiln snapshot (bad magic)");
	if (len > SNAP_MAX_BYTES)
		return snap_fail(err, errlen, -EINVAL,
				 "%zu bytes, more than a snapshot may have (%u)", len,
				 SNAP_MAX_BYTES);
	uint64_t crc;
	memcpy(&crc, buf + len - SNAP_TRAILER_BYTES, 8);
	if (lzma_crc64(buf, len - SNAP_TRAILER_BYTES, 0) != crc)
		return snap_fail(err, errlen, -EINVAL, "checksum mismatch (corrupt or truncated)");
	uint32_t nr;
	uint64_t body;
	memcpy(&r->major, buf + 8, 2);
	memcpy(&r->minor, buf + 10, 2);
	memcpy(&nr, buf + 12, 4);
	memcpy(&body, buf + 16, 8);
	if (r->major != SNAP_VERSION_MAJOR)
		return snap_fail(err, errlen, -EINVAL, "version %u.%u, this kiln reads %u.x",
				 r->major, r->minor, SNAP_VERSION_MAJOR);
	if (body != len - SNAP_HEADER_BYTES - SNAP_TRAILER_BYTES)
		return snap_fail(
		    err, errlen, -EINVAL, "header says %llu bytes of sections, the file has %zu",
		    (unsigned long long)body, len - SNAP_HEADER_BYTES - SNAP_TRAILER_BYTES);
	if (nr > SNAP_MAX_SECTIONS)
		return snap_fail(err, errlen, -EINVAL, "%u sections, at most %u", nr,
				 SNAP_MAX_SECTIONS);
	return parse_sections(r, nr, err, errlen);
}

int snap_read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	int e, fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *p = NULL;
	if (fd < 0 || fstat(fd, &st))
		goto fail_errno;
	if (!S_ISREG(st.st_mode) || st.st_size > SNAP_MAX_BYTES) {
		snprintf(err, errlen, "%s: %s", path,
			 S_ISREG(st.st_mode) ? "larger than a snapshot may be"
					     : "not a regular file");
		close(fd);
		return -EINVAL;
	}
	size_t n = (size_t)st.st_size, got = 0;
	if (!(p = malloc(n ? n : 1)))
		goto fail_errno;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO; /* truncated while we read it */
			goto fail_errno;
		}
		got += (size_t)r;
	}
	close(fd);
	*buf = p;
	*len = n;
	return 0;
fail_errno:
	e = errno;
	snprintf(err, errlen, "%s: %s", path, strerror(e));
	free(p);
	if (fd >= 0)
		close(fd);
	return -e;
}

const void *snap_find(const struct snap_reader *r, uint32_t tag, uint32_t index, size_t *len)
{
	for (unsigned i = 0; i < r->nr; i++)
		if (r->sec[i].tag == tag && r->sec[i].index == index) {
			*len = r->sec[i].len;
			return r->buf + r->sec[i].off;
		}
	return NULL;
}

int snap_get(const struct snap_reader *r, uint32_t tag, uint32_t index, void *out, size_t len)
{
	size_t have;
	const void *p = snap_find(r, tag, index, &have);
	if (!p)
		return -ENOENT;
	if (have != len)
		return -EINVAL;
	memcpy(out, p, len);
	return 0;
}

unsigned snap_count(const struct snap_reader *r, uint32_t tag)
{
	unsigned n = 0;
	for (unsigned i = 0; i < r->nr; i++)
		n += r->sec[i].tag == tag;
	return n;
}
