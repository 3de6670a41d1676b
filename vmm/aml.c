#include "vmm/aml.h"

#include <errno.h>
#include <string.h>

/* AML opcodes (ACPI 6.5, section 20.3). */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82
#define AML_ROOT_CHAR '\\'
#define AML_PARENT_CHAR '^'

/* Resource descriptor tags (ACPI 6.5, section 6.4). */
#define RES_IRQ_NOFLAGS 0x22 /* small item 0x4, length 2 */
#define RES_IO 0x47	     /* small item 0x8, length 7 */
#define RES_END_TAG 0x79     /* small item 0xf, length 1 */
#define RES_MEMORY32_FIXED 0x86
#define RES_EXT_IRQ 0x89

#define PKGLEN_MAX 0x0fffffffu /* 28 bits */
#define PKGLEN_RESERVE 4
#define INT_MAX_BYTES 9 /* QWordPrefix + 8 */

enum { MARK_PKG, MARK_BUFFER };

static void fail(struct aml_buf *b, int err)
{
	if (!b->err)
		b->err = err;
}

void aml_init(struct aml_buf *b, void *mem, size_t cap)
{
	b->data = mem;
	b->cap = cap;
	b->len = 0;
	b->err = 0;
}

int aml_status(const struct aml_buf *b)
{
	return b->err;
}

void aml_bytes(struct aml_buf *b, const void *src, size_t len)
{
	if (b->err)
		return;
	if (len > b->cap - b->len) {
		fail(b, -ENOSPC);
		return;
	}
	memcpy(b->data + b->len, src, len);
	b->len += len;
}

static void aml_byte(struct aml_buf *b, uint8_t v)
{
	aml_bytes(b, &v, 1);
}

static void put_le(uint8_t *out, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

size_t aml_pkglen_encode(uint8_t out[4], size_t body_len)
{
	/* The value includes the 1-4 bytes of the field itself. */
	if (body_len < 0x3f) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	for (size_t n = 2; n <= 4; n++) {
		uint64_t limit = 1ULL << (4 + 8 * (n - 1));
		if (body_len >= limit - n)
			continue;
		uint64_t v = body_len + n;
		/* Lead byte: count of following bytes in bits 7-6, low nibble in bits 3-0. */
		out[0] = (uint8_t)(((n - 1) << 6) | (v & 0xf));
		put_le(out + 1, v >> 4, n - 1);
		return n;
	}
	return 0;
}

static size_t int_encode(uint8_t out[INT_MAX_BYTES], uint64_t v)
{
	if (v <= 1) {
		out[0] = v ? AML_ONE_OP : AML_ZERO_OP;
		return 1;
	}
	size_t n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;
	out[0] = n == 1	  ? AML_BYTE_PREFIX
		 : n == 2 ? AML_WORD_PREFIX
		 : n == 4 ? AML_DWORD_PREFIX
			  : AML_QWORD_PREFIX;
	put_le(out + 1, v, n);
	return n + 1;
}

void aml_integer(struct aml_buf *b, uint64_t v)
{
	uint8_t out[INT_MAX_BYTES];
	aml_bytes(b, out, int_encode(out, v));
}

void aml_string(struct aml_buf *b, const char *s)
{
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7f) {
			fail(b, -EINVAL);
			return;
		}
	}
	aml_byte(b, AML_STRING_PREFIX);
	aml_bytes(b, s, strlen(s) + 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml_buf *b, const char *id)
{
	uint32_t v = 0;
	if (strlen(id) != 7)
		goto bad;
	/* Three 5-bit letters ('A' = 1) then four hex digits: 31 significant bits. */
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			goto bad;
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		int h = hex_digit(id[i]);
		if (h < 0)
			goto bad;
		v = (v << 4) | (uint32_t)h;
	}
	/* Stored big-endian inside the little-endian DWord. */
	uint8_t out[5] = {AML_DWORD_PREFIX, (uint8_t)(v >> 24), (uint8_t)(v >> 16),
			  (uint8_t)(v >> 8), (uint8_t)v};
	aml_bytes(b, out, sizeof(out));
	return;
bad:
	fail(b, -EINVAL);
}

static int seg_char_ok(char c, int first)
{
	if ((c >= 'A' && c <= 'Z') || c == '_')
		return 1;
	return !first && c >= '0' && c <= '9';
}

/* Number of valid '.'-separated segments in s (0 for ""), or -1 if malformed. */
static int count_segments(const char *s)
{
	int n = 0;
	if (!*s)
		return 0;
	for (;;) {
		size_t i = 0;
		for (; s[i] && s[i] != '.'; i++) {
			if (i >= 4 || !seg_char_ok(s[i], i == 0))
				return -1;
		}
		if (i == 0)
			return -1;
		n++;
		if (!s[i])
			return n;
		s += i + 1;
	}
}

static void emit_segments(struct aml_buf *b, const char *s)
{
	while (*s) {
		uint8_t seg[4] = {'_', '_', '_', '_'};
		size_t i = 0;
		for (; s[i] && s[i] != '.'; i++)
			seg[i] = (uint8_t)s[i];
		aml_bytes(b, seg, sizeof(seg));
		s += s[i] ? i + 1 : i;
	}
}

void aml_name_string(struct aml_buf *b, const char *name)
{
	const char *p = name;
	if (*p == AML_ROOT_CHAR)
		p++;
	else
		while (*p == AML_PARENT_CHAR)
			p++;
	int n = count_segments(p);
	if (n < 0 || n > 255 || (n == 0 && p == name)) {
		fail(b, -EINVAL);
		return;
	}
	aml_bytes(b, name, (size_t)(p - name));
	if (n == 0) {
		aml_byte(b, AML_ZERO_OP); /* NullName */
		return;
	}
	if (n == 2) {
		aml_byte(b, AML_DUAL_NAME_PREFIX);
	} else if (n > 2) {
		aml_byte(b, AML_MULTI_NAME_PREFIX);
		aml_byte(b, (uint8_t)n);
	}
	emit_segments(b, p);
}

void aml_name(struct aml_buf *b, const char *name)
{
	aml_byte(b, AML_NAME_OP);
	aml_name_string(b, name);
}

/* Emits the opcode(s) and reserves room for the header that aml_close() fills in. */
static struct aml_mark open_obj(struct aml_buf *b, const uint8_t *op, size_t op_len, int kind)
{
	static const uint8_t zeros[PKGLEN_RESERVE + INT_MAX_BYTES];
	aml_bytes(b, op, op_len);
	struct aml_mark m = {.pos = b->len, .kind = kind};
	aml_bytes(b, zeros, kind == MARK_BUFFER ? sizeof(zeros) : PKGLEN_RESERVE);
	return m;
}

struct aml_mark aml_scope_open(struct aml_buf *b, const char *name)
{
	static const uint8_t op[] = {AML_SCOPE_OP};
	struct aml_mark m = open_obj(b, op, sizeof(op), MARK_PKG);
	aml_name_string(b, name);
	return m;
}

struct aml_mark aml_device_open(struct aml_buf *b, const char *name)
{
	static const uint8_t op[] = {AML_EXT_OP_PREFIX, AML_DEVICE_OP};
	struct aml_mark m = open_obj(b, op, sizeof(op), MARK_PKG);
	aml_name_string(b, name);
	return m;
}

struct aml_mark aml_package_open(struct aml_buf *b, unsigned nr_elements)
{
	static const uint8_t op[] = {AML_PACKAGE_OP};
	struct aml_mark m = open_obj(b, op, sizeof(op), MARK_PKG);
	if (nr_elements > 0xff)
		fail(b, -EINVAL); /* would need a VarPackage */
	aml_byte(b, (uint8_t)nr_elements);
	return m;
}

struct aml_mark aml_buffer_open(struct aml_buf *b)
{
	static const uint8_t op[] = {AML_BUFFER_OP};
	return open_obj(b, op, sizeof(op), MARK_BUFFER);
}

void aml_close(struct aml_buf *b, struct aml_mark m)
{
	size_t reserved = m.kind == MARK_BUFFER ? PKGLEN_RESERVE + INT_MAX_BYTES : PKGLEN_RESERVE;
	if (b->err)
		return;
	if (m.pos > b->len || reserved > b->len - m.pos) {
		fail(b, -EINVAL); /* not a mark of this buffer, or closed out of order */
		return;
	}
	size_t body = m.pos + reserved;
	size_t body_len = b->len - body;
	uint8_t hdr[PKGLEN_RESERVE + INT_MAX_BYTES];
	size_t int_len = 0;
	if (m.kind == MARK_BUFFER)
		int_len = int_encode(hdr + PKGLEN_RESERVE, body_len);
	size_t pkg_len = aml_pkglen_encode(hdr, int_len + body_len);
	if (!pkg_len) {
		fail(b, -ENOSPC);
		return;
	}
	/* The header only shrinks from what was reserved, so this stays in bounds. */
	memmove(hdr + pkg_len, hdr + PKGLEN_RESERVE, int_len);
	memmove(b->data + m.pos + pkg_len + int_len, b->data + body, body_len);
	memcpy(b->data + m.pos, hdr, pkg_len + int_len);
	b->len = m.pos + pkg_len + int_len + body_len;
}

struct aml_mark aml_rt_open(struct aml_buf *b)
{
	return aml_buffer_open(b);
}

void aml_rt_close(struct aml_buf *b, struct aml_mark m)
{
	/* Checksum 0: the OS treats the template as correctly summed. */
	static const uint8_t end[] = {RES_END_TAG, 0};
	aml_bytes(b, end, sizeof(end));
	aml_close(b, m);
}

void aml_rt_io(struct aml_buf *b, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	uint8_t d[8] = {RES_IO, 0x01 /* Decode16 */};
	put_le(d + 2, min, 2);
	put_le(d + 4, max, 2);
	d[6] = align;
	d[7] = len;
	aml_bytes(b, d, sizeof(d));
}

void aml_rt_irq_noflags(struct aml_buf *b, unsigned irq)
{
	if (irq > 15) {
		fail(b, -EINVAL);
		return;
	}
	uint8_t d[3] = {RES_IRQ_NOFLAGS};
	put_le(d + 1, 1u << irq, 2);
	aml_bytes(b, d, sizeof(d));
}

void aml_rt_memory32_fixed(struct aml_buf *b, int read_write, uint32_t base, uint32_t size)
{
	uint8_t d[12] = {RES_MEMORY32_FIXED, 9, 0, read_write ? 1 : 0};
	put_le(d + 4, base, 4);
	put_le(d + 8, size, 4);
	aml_bytes(b, d, sizeof(d));
}

void aml_rt_ext_irq(struct aml_buf *b, uint8_t flags, uint32_t gsi)
{
	/* Length 6: flags, a table of one interrupt, no resource source. */
	uint8_t d[9] = {RES_EXT_IRQ, 6, 0, flags, 1};
	put_le(d + 5, gsi, 4);
	aml_bytes(b, d, sizeof(d));
}
