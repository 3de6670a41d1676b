/* libFuzzer harness for the snapshot state file: whatever a state file holds, the parser
 * and the meta checks (snap_parse, kiln_snapshot_describe_buf: what a load reads before
 * building anything) must refuse it or describe it, never crash or read out of bounds.
 * The first byte picks the input's use: odd, the bytes are a state file as they are (the
 * CRC stops almost all of them: that is the point); even, they are cut into sections
 * (tag, index, length from the bytes) that the writer wraps with a valid header and CRC,
 * so the checks after the CRC are reached. Every section snap_find() returns must lie
 * inside the buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/kiln_snapshot.h"
#include "vmm/snapshot_file.h"

/* Checks every section of a parsed file points inside it. */
static void check_sections(const uint8_t *buf, size_t len)
{
	static struct snap_reader r;
	char err[256];
	if (snap_parse(&r, buf, len, err, sizeof(err)))
		return;
	for (unsigned i = 0; i < r.nr; i++) {
		size_t n;
		const uint8_t *p = snap_find(&r, r.sec[i].tag, r.sec[i].index, &n);
		if (!p || p < buf || n > len || (size_t)(p - buf) > len - n)
			abort();
	}
}

/* Wraps data as sections: [tag u8][index u8][len u16] then len bytes, repeated. */
static void build(const uint8_t *data, size_t size, uint8_t **out, size_t *outlen)
{
	struct snap_writer w;
	snap_writer_init(&w);
	while (size >= 4) {
		uint32_t tag = data[0] % (SNAP_SEC_MAX + 2), index = data[1] % 4;
		size_t len = (size_t)data[2] | (size_t)data[3] << 8;
		data += 4;
		size -= 4;
		if (len > size)
			len = size;
		snap_put(&w, tag, index, data, len);
		data += len;
		size -= len;
	}
	FILE *f = tmpfile();
	*out = NULL;
	if (f && snap_writer_finish(&w, fileno(f)) == 0) {
		*outlen = w.len + 8;
		*out = malloc(*outlen);
		if (*out && pread(fileno(f), *out, *outlen, 0) != (ssize_t)*outlen) {
			free(*out);
			*out = NULL;
		}
	}
	if (f)
		fclose(f);
	snap_writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	char err[512];
	if (!sink && !(sink = fopen("/dev/null", "w")))
		abort();
	if (size == 0)
		return 0;
	const uint8_t *buf = data + 1;
	size_t len = size - 1;
	uint8_t *built = NULL;
	if (!(data[0] & 1)) {
		build(data + 1, size - 1, &built, &len);
		if (!built)
			return 0;
		buf = built;
	}
	check_sections(buf, len);
	kiln_snapshot_describe_buf(buf, len, sink, err, sizeof(err));
	free(built);
	return 0;
}
