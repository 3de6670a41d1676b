/* kiln's snapshot state file: a versioned container of tagged sections, each a
 * pointer-free state struct that one module wrote and only that module reads back.
 *
 *   header  : magic "KILNSNAP", u16 major, u16 minor, u32 nr_sections, u64 body bytes
 *   section : u32 tag, u32 index, u64 len, then len bytes padded to 8
 *   trailer : CRC-64/XZ (liblzma's lzma_crc64) of every byte before it
 *
 * Numbers are little-endian x86-64 as the structs are in memory: a snapshot is restored on
 * the same architecture by a kiln of the same major version. The reader checks the size, the
 * magic and the CRC before it looks at anything else, then every length and count. */
#ifndef KILN_SNAPSHOT_FILE_H
#define KILN_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "KILNSNAP"
#define SNAP_VERSION_MAJOR 1 /* bump on any change to a section's layout */
#define SNAP_VERSION_MINOR 0
#define SNAP_MAX_BYTES (64u << 20) /* the largest state file kiln reads */
#define SNAP_MAX_SECTIONS 512
#define SNAP_HEADER_BYTES 24
#define SNAP_SECTION_HEADER_BYTES 16

/* Section tags. index tells apart sections of one tag (vCPU n, virtio device n). */
enum snap_tag {
	SNAP_SEC_META = 1,   /* struct snap_meta, index 0 */
	SNAP_SEC_CONFIG = 2, /* the VM's config-file JSON (config_to_json), index 0 */
	SNAP_SEC_VM = 3,     /* irqchips, PIT, KVM clock, index 0 */
	SNAP_SEC_VCPU = 4,   /* one per vCPU, index = vCPU number */
	SNAP_SEC_SERIAL = 5, /* the 8250 at COM1, index 0 */
	SNAP_SEC_I8042 = 6,  /* index 0 */
	SNAP_SEC_PM = 7,     /* the ACPI sleep/reset registers, index 0 */
	SNAP_SEC_VIRTIO = 8, /* one per virtio device, index = its slot (add order) */
	SNAP_SEC_MAX = 8,
};

/* Writes one error line (printf) into err and returns rc: how snapshot code reports. */
int snap_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The name of a tag for --describe-snapshot ("vcpu"), "unknown" for others. */
const char *snap_tag_name(uint32_t tag);

/* Builds a state file in memory. Errors are sticky: the first one is returned by
 * snap_writer_finish() and every later call does nothing. */
struct snap_writer {
	uint8_t *buf;
	size_t len;
	size_t cap;
	uint32_t nr;
	int err;
};

void snap_writer_init(struct snap_writer *w);

/* Appends a section holding a copy of data[0, len). 0, or the sticky -errno (-E2BIG past
 * SNAP_MAX_BYTES or SNAP_MAX_SECTIONS, -ENOMEM). */
int snap_put(struct snap_writer *w, uint32_t tag, uint32_t index, const void *data, size_t len);

/* Completes the header and trailer and writes the whole file to fd at offset 0 (the fd
 * should be empty), then fdatasync()s it. 0 or -errno. */
int snap_writer_finish(struct snap_writer *w, int fd);

void snap_writer_free(struct snap_writer *w);

struct snap_section_ref {
	uint32_t tag;
	uint32_t index;
	size_t off; /* of the data in buf */
	size_t len;
};

/* A parsed state file; points into the caller's buffer, which must outlive it. */
struct snap_reader {
	const uint8_t *buf;
	size_t len;
	uint16_t major, minor;
	unsigned nr;
	struct snap_section_ref sec[SNAP_MAX_SECTIONS];
};

/* Checks buf[0, len) in this order: size, magic, CRC, major version, then each section
 * header (lengths inside the file, no (tag, index) twice, the count in the header). 0, or
 * -EINVAL with one line in err ("not a kiln snapshot (bad magic)", "checksum mismatch
 * (corrupt or truncated)", "version 2.0, this kiln reads 1.x", ...). */
int snap_parse(struct snap_reader *r, const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Reads a whole file of at most SNAP_MAX_BYTES into a new buffer (free() it). 0, or -errno
 * with one line in err naming the path. */
int snap_read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen);

/* The data of section (tag, index) and its length, or NULL. */
const void *snap_find(const struct snap_reader *r, uint32_t tag, uint32_t index, size_t *len);

/* Copies section (tag, index) into out, which must be exactly len bytes: 0, -ENOENT when
 * the section is missing, -EINVAL when its length is not len. */
int snap_get(const struct snap_reader *r, uint32_t tag, uint32_t index, void *out, size_t len);

/* How many sections have this tag. */
unsigned snap_count(const struct snap_reader *r, uint32_t tag);

#endif
