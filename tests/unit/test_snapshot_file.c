/* The snapshot state file container: round trip, and every way a file can be wrong refused
 * with its one line (magic, CRC, version, lengths, duplicates, counts). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <lzma.h>

#include "vmm/snapshot_file.h"

struct file {
	uint8_t *buf;
	size_t len;
};

/* Writes a file with a META of 16 bytes, two VCPU sections and an empty CONFIG. */
static struct file make_file(void)
{
	struct snap_writer w;
	uint8_t meta[16] = {1, 2, 3};
	uint64_t v0 = 0x1111, v1 = 0x2222;
	snap_writer_init(&w);
	assert_int_equal(snap_put(&w, SNAP_SEC_META, 0, meta, sizeof(meta)), 0);
	assert_int_equal(snap_put(&w, SNAP_SEC_VCPU, 0, &v0, sizeof(v0)), 0);
	assert_int_equal(snap_put(&w, SNAP_SEC_VCPU, 1, &v1, 5), 0); /* padded to 8 */
	assert_int_equal(snap_put(&w, SNAP_SEC_CONFIG, 0, "", 0), 0);
	int fd = memfd_create("snap", 0);
	assert_true(fd >= 0);
	assert_int_equal(snap_writer_finish(&w, fd), 0);
	snap_writer_free(&w);
	struct file f;
	f.len = (size_t)lseek(fd, 0, SEEK_END);
	f.buf = malloc(f.len);
	assert_int_equal(pread(fd, f.buf, f.len, 0), (ssize_t)f.len);
	close(fd);
	return f;
}

/* Rewrites the trailer so a deliberately edited file passes the CRC. */
static void fix_crc(struct file *f)
{
	uint64_t crc = lzma_crc64(f->buf, f->len - 8, 0);
	memcpy(f->buf + f->len - 8, &crc, 8);
}

static int parse(const struct file *f, char *err)
{
	static struct snap_reader r;
	return snap_parse(&r, f->buf, f->len, err, 256);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct file f = make_file();
	struct snap_reader *r = malloc(sizeof(*r));
	char err[256] = "";
	assert_int_equal(snap_parse(r, f.buf, f.len, err, sizeof(err)), 0);
	assert_int_equal(r->major, SNAP_VERSION_MAJOR);
	assert_int_equal(r->nr, 4);
	assert_int_equal(snap_count(r, SNAP_SEC_VCPU), 2);
	uint8_t meta[16];
	assert_int_equal(snap_get(r, SNAP_SEC_META, 0, meta, sizeof(meta)), 0);
	assert_int_equal(meta[2], 3);
	uint64_t v = 0;
	assert_int_equal(snap_get(r, SNAP_SEC_VCPU, 0, &v, 8), 0);
	assert_int_equal(v, 0x1111);
	assert_int_equal(snap_get(r, SNAP_SEC_VCPU, 1, &v, 8), -EINVAL); /* it has 5 */
	v = 0;
	assert_int_equal(snap_get(r, SNAP_SEC_VCPU, 1, &v, 5), 0);
	assert_int_equal(v, 0x2222);
	assert_int_equal(snap_get(r, SNAP_SEC_VCPU, 2, &v, 8), -ENOENT);
	size_t len = 99;
	assert_non_null(snap_find(r, SNAP_SEC_CONFIG, 0, &len));
	assert_int_equal(len, 0);
	free(r);
	free(f.buf);
}

static void test_bad_magic(void **state)
{
	(void)state;
	struct file f = make_file();
	char err[256];
	f.buf[0] = 'X';
	fix_crc(&f);
	assert_int_equal(parse(&f, err), -EINVAL);
	assert_string_equal(err, "not a kiln snapshot (bad magic)");
	struct file empty = {f.buf, 0};
	assert_int_equal(parse(&empty, err), -EINVAL);
	free(f.buf);
}

/* Every single-byte change and every truncation is caught by the CRC. */
static void test_crc_catches_every_byte(void **state)
{
	(void)state;
	struct file f = make_file();
	char err[256];
	for (size_t i = 8; i < f.len; i++) {
		f.buf[i] ^= 0x40;
		assert_int_equal(parse(&f, err), -EINVAL);
		assert_string_equal(err, "checksum mismatch (corrupt or truncated)");
		f.buf[i] ^= 0x40;
	}
	for (size_t n = 32; n < f.len; n += 8) {
		struct file t = {f.buf, n};
		assert_int_equal(parse(&t, err), -EINVAL);
	}
	assert_int_equal(parse(&f, err), 0);
	free(f.buf);
}

static void test_version(void **state)
{
	(void)state;
	struct file f = make_file();
	char err[256];
	uint16_t major = SNAP_VERSION_MAJOR + 1, minor = 7;
	memcpy(f.buf + 8, &major, 2);
	fix_crc(&f);
	assert_int_equal(parse(&f, err), -EINVAL);
	assert_non_null(strstr(err, "this kiln reads"));
	major = SNAP_VERSION_MAJOR; /* a newer minor is read */
	memcpy(f.buf + 8, &major, 2);
	memcpy(f.buf + 10, &minor, 2);
	fix_crc(&f);
	assert_int_equal(parse(&f, err), 0);
	free(f.buf);
}

/* Lengths and counts that lie, with a valid CRC (a crafted file). */
static void test_lying_headers(void **state)
{
	(void)state;
	struct file f = make_file();
	char err[256];
	uint32_t nr;
	uint64_t len;
	memcpy(&nr, f.buf + 12, 4);
	uint32_t more = nr + 1, huge = SNAP_MAX_SECTIONS + 1;
	memcpy(f.buf + 12, &more, 4);
	fix_crc(&f);
	assert_int_equal(parse(&f, err), -EINVAL);
	memcpy(f.buf + 12, &huge, 4);
	fix_crc(&f);
	assert_int_equal(parse(&f, err), -EINVAL);
	memcpy(f.buf + 12, &nr, 4);
	/* first section's length: past the end, and a huge one that must not wrap */
	uint64_t lies[] = {1u << 20, UINT64_MAX - 3, UINT64_MAX};
	for (unsigned i = 0; i < 3; i++) {
		memcpy(&len, f.buf + SNAP_HEADER_BYTES + 8, 8);
		memcpy(f.buf + SNAP_HEADER_BYTES + 8, &lies[i], 8);
		fix_crc(&f);
		assert_int_equal(parse(&f, err), -EINVAL);
		assert_non_null(strstr(err, "past the end"));
		memcpy(f.buf + SNAP_HEADER_BYTES + 8, &len, 8);
	}
	/* the second section becomes a duplicate of the first */
	size_t second = SNAP_HEADER_BYTES + SNAP_SECTION_HEADER_BYTES + 16;
	uint32_t meta = SNAP_SEC_META;
	memcpy(f.buf + second, &meta, 4);
	memset(f.buf + second + 4, 0, 4);
	fix_crc(&f);
	assert_int_equal(parse(&f, err), -EINVAL);
	assert_non_null(strstr(err, "twice"));
	free(f.buf);
}

static void test_writer_limits(void **state)
{
	(void)state;
	struct snap_writer w;
	snap_writer_init(&w);
	for (unsigned i = 0; i < SNAP_MAX_SECTIONS; i++)
		assert_int_equal(snap_put(&w, SNAP_SEC_VIRTIO, i, &i, sizeof(i)), 0);
	assert_int_equal(snap_put(&w, SNAP_SEC_VIRTIO, 9999, &w, 1), -E2BIG);
	assert_int_equal(snap_writer_finish(&w, -1), -E2BIG); /* sticky */
	snap_writer_free(&w);
	snap_writer_init(&w);
	assert_int_equal(snap_put(&w, SNAP_SEC_CONFIG, 0, &w, (size_t)SNAP_MAX_BYTES), -E2BIG);
	snap_writer_free(&w);
}

static void test_read_file_errors(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t len;
	char err[256];
	assert_int_equal(snap_read_file("/nonexistent/state", &buf, &len, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/state: No such file or directory");
	assert_int_equal(snap_read_file("/", &buf, &len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/: not a regular file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),	    cmocka_unit_test(test_bad_magic),
	    cmocka_unit_test(test_crc_catches_every_byte), cmocka_unit_test(test_version),
	    cmocka_unit_test(test_lying_headers),   cmocka_unit_test(test_writer_limits),
	    cmocka_unit_test(test_read_file_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
