/* A small AML byte-code builder for the DSDT: named objects, integers, strings, packages,
 * scopes, devices and resource templates, written into a caller-supplied bounded buffer.
 *
 * Every emitter appends to the buffer; on overflow or bad input it records a sticky error
 * and writes nothing more, so a whole table can be emitted and aml_status() checked once.
 * Objects whose encoding starts with a PkgLength (Scope, Device, Package, Buffer) are
 * opened with aml_*_open(), which returns a mark, filled in and closed with aml_close();
 * closing shrinks the reserved length field to its shortest encoding. Opens and closes
 * must nest. */
#ifndef KILN_AML_H
#define KILN_AML_H

#include <stddef.h>
#include <stdint.h>

struct aml_buf {
	uint8_t *data;
	size_t cap;
	size_t len;
	int err; /* 0, -ENOSPC or -EINVAL; sticky */
};

/* Identifies an open object; pass it back to aml_close(). */
struct aml_mark {
	size_t pos; /* offset of the reserved header */
	int kind;
};

/* Starts an empty builder over mem[0, cap). */
void aml_init(struct aml_buf *b, void *mem, size_t cap);

/* 0 if everything emitted so far fits and was valid, else -ENOSPC or -EINVAL. */
int aml_status(const struct aml_buf *b);

/* Encodes a PkgLength for an object whose bytes after the PkgLength field number
 * body_len: the encoded value counts the field itself. Writes 1-4 bytes to out and
 * returns how many, or 0 when the length is beyond the 28-bit AML limit. */
size_t aml_pkglen_encode(uint8_t out[4], size_t body_len);

/* Raw bytes, for opcodes the builder does not wrap. */
void aml_bytes(struct aml_buf *b, const void *src, size_t len);

/* An integer in its shortest form: ZeroOp, OneOp, Byte/Word/DWord/QWordConst. */
void aml_integer(struct aml_buf *b, uint64_t v);

/* A NUL-terminated String object (ASCII 0x01-0x7f only, else -EINVAL). */
void aml_string(struct aml_buf *b, const char *s);

/* EISAID("PNP0501"): three uppercase letters and four hex digits, compressed into a
 * DWordConst (always 32-bit, so disassemblers show EisaId()); else -EINVAL. */
void aml_eisaid(struct aml_buf *b, const char *id);

/* A NameString: optional "\" or "^"s, then '.'-separated segments of 1-4 characters
 * (first A-Z or '_', rest A-Z, 0-9, '_'; short ones padded with '_'). A bare "\" is the
 * root. Malformed names set -EINVAL. */
void aml_name_string(struct aml_buf *b, const char *name);

/* Name(name, ...): emits the NameOp and name; the caller emits the one data object. */
void aml_name(struct aml_buf *b, const char *name);

/* Scope(name) { ... } and Device(name) { ... }. */
struct aml_mark aml_scope_open(struct aml_buf *b, const char *name);
struct aml_mark aml_device_open(struct aml_buf *b, const char *name);

/* Package() { ... } with nr_elements (at most 255) data objects to follow. */
struct aml_mark aml_package_open(struct aml_buf *b, unsigned nr_elements);

/* Buffer() { ... } of raw bytes; its BufferSize is computed on close. */
struct aml_mark aml_buffer_open(struct aml_buf *b);

/* Closes the innermost open object, fixing up its PkgLength (and BufferSize). */
void aml_close(struct aml_buf *b, struct aml_mark m);

/* ResourceTemplate() { ... }: a Buffer whose close appends the EndTag. */
struct aml_mark aml_rt_open(struct aml_buf *b);
void aml_rt_close(struct aml_buf *b, struct aml_mark m);

/* IO(Decode16, min, max, align, len). */
void aml_rt_io(struct aml_buf *b, uint16_t min, uint16_t max, uint8_t align, uint8_t len);

/* IRQNoFlags() { irq } for ISA IRQ 0-15; else -EINVAL. */
void aml_rt_irq_noflags(struct aml_buf *b, unsigned irq);

/* Memory32Fixed(ReadWrite or ReadOnly, base, size). */
void aml_rt_memory32_fixed(struct aml_buf *b, int read_write, uint32_t base, uint32_t size);

/* Interrupt(...) { gsi }: the Extended Interrupt descriptor with one interrupt number;
 * flags are AML_IRQ_* bits. */
#define AML_IRQ_CONSUMER 0x01
#define AML_IRQ_EDGE 0x02
#define AML_IRQ_ACTIVE_LOW 0x04
#define AML_IRQ_SHARED 0x08
#define AML_IRQ_WAKE 0x10
void aml_rt_ext_irq(struct aml_buf *b, uint8_t flags, uint32_t gsi);

#endif
