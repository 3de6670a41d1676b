#!/bin/sh
# Regenerates the seed corpus of fuzz_net_tx (fuzz/corpus/fuzz_net_tx/): well-formed and
# deliberately broken RX/TX rings in the harness's input layout (see fuzz/fuzz_net_tx.c).
# Run from anywhere; needs a C compiler.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/gen.c" << 'GEN'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRE 19
#define RXD 0x0000 /* RX ring (at most 64 entries here): desc, avail, used */
#define RXA 0x0400
#define RXU 0x0500
#define TXD 0x0800
#define TXA 0x0c00
#define TXU 0x0d00
#define DATA 0x1000	 /* TX frames and tables, in the seed file */
#define RX_DATA 0x8000 /* RX buffers: zeroes, so left out of the file */
#define NEXT 1
#define WRITE 2
#define INDIRECT 4

static uint8_t in[PRE + 0x20000];
static size_t used_len;
static uint32_t data_next, rx_next;

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

static uint8_t *ram(uint32_t gpa, uint32_t len)
{
	if (PRE + gpa + len > used_len)
		used_len = PRE + gpa + len;
	return in + PRE + gpa;
}

static void desc(uint32_t table, uint16_t i, uint32_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	uint8_t *d = ram(table + 16u * i, 16);
	put32(d, addr);
	put32(d + 8, len);
	put16(d + 12, flags);
	put16(d + 14, next);
}

static uint32_t buf(uint32_t len)
{
	uint32_t a = data_next;
	data_next += (len + 15) & ~15u;
	ram(a, len);
	return a;
}

static uint32_t rxbuf(uint32_t len)
{
	uint32_t a = rx_next;
	rx_next += (len + 15) & ~15u;
	return a;
}

static void avail(uint32_t ring, uint16_t slot, uint16_t head)
{
	put16(ram(ring + 4 + 2u * slot, 2), head);
	put16(ram(ring + 2, 2), slot + 1);
}

/* A TX frame: virtio header then Ethernet bytes, in one buffer. */
static uint32_t frame(uint32_t len, uint8_t flags, uint8_t gso, uint16_t mss, uint16_t cs,
		      uint16_t co)
{
	uint32_t a = buf(len);
	uint8_t *p = ram(a, len);
	p[0] = flags;
	p[1] = gso;
	put16(p + 4, mss);
	put16(p + 6, cs);
	put16(p + 8, co);
	for (uint32_t i = 12; i < len; i++)
		p[i] = (uint8_t)(i * 3);
	return a;
}

static void begin(uint8_t qsize_log2, uint8_t flags, uint16_t len1, uint16_t len2)
{
	memset(in, 0, sizeof(in));
	used_len = PRE;
	data_next = DATA;
	rx_next = RX_DATA;
	in[0] = in[1] = qsize_log2;
	in[2] = flags;
	put16(in + 3, RXD / 16);
	put16(in + 5, RXA / 2);
	put16(in + 7, RXU / 4);
	put16(in + 9, TXD / 16);
	put16(in + 11, TXA / 2);
	put16(in + 13, TXU / 4);
	put16(in + 15, len1);
	put16(in + 17, len2);
	ram(TXU, 4 + 8u * (1u << qsize_log2) + 2);
}

static void save(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(in, 1, used_len, f) != used_len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *dir = argv[argc - 1];
	/* One plain frame each way. */
	begin(4, 1, 100, 0);
	desc(TXD, 0, frame(74, 0, 0, 0, 0, 0), 74, 0, 0);
	avail(TXA, 0, 0);
	desc(RXD, 0, rxbuf(1600), 1600, WRITE, 0);
	avail(RXA, 0, 0);
	save(dir, "plain");
	/* TSO frame with the header split over three descriptors; checksum offload. */
	begin(4, 1 | 8 | 32, 60, 1500);
	uint32_t f = frame(1600, 1, 1, 1448, 34, 16);
	desc(TXD, 0, f, 5, NEXT, 1);
	desc(TXD, 1, f + 5, 7, NEXT, 2);
	desc(TXD, 2, f + 12, 1588, 0, 0);
	avail(TXA, 0, 0);
	desc(RXD, 0, rxbuf(2048), 2048, WRITE, 0);
	avail(RXA, 0, 0);
	save(dir, "tso_split_header");
	/* MRG_RXBUF: a 5000-byte frame over several 1024-byte buffers. */
	begin(5, 1 | 4 | 128, 5000, 60);
	for (uint16_t i = 0; i < 12; i++) {
		desc(RXD, i, rxbuf(1024), 1024, WRITE, 0);
		avail(RXA, i, i);
	}
	save(dir, "mrg_spanning");
	/* Indirect TX table and an RX chain of two descriptors. */
	begin(3, 1 | 2, 300, 0);
	uint32_t table = buf(48);
	uint32_t g = frame(200, 0, 0, 0, 0, 0);
	desc(table, 0, g, 12, NEXT, 1);
	desc(table, 1, g + 12, 100, NEXT, 2);
	desc(table, 2, g + 112, 88, 0, 0);
	desc(TXD, 0, table, 48, INDIRECT, 0);
	avail(TXA, 0, 0);
	desc(RXD, 0, rxbuf(200), 200, WRITE | NEXT, 1);
	desc(RXD, 1, rxbuf(200), 200, WRITE, 0);
	avail(RXA, 0, 0);
	save(dir, "indirect_and_chain");
	/* Broken: writable TX descriptor, readable RX buffer, too-small RX buffer, limiters. */
	begin(2, 64 | 128, 1000, 20);
	desc(TXD, 0, frame(100, 0, 0, 0, 0, 0), 100, NEXT, 1);
	desc(TXD, 1, buf(64), 64, WRITE, 0);
	avail(TXA, 0, 0);
	desc(RXD, 0, rxbuf(64), 64, 0, 0);
	desc(RXD, 1, rxbuf(64), 64, WRITE, 0);
	avail(RXA, 0, 0);
	avail(RXA, 1, 1);
	save(dir, "malformed");
	/* Largest frames, EVENT_IDX off, rate limited. */
	begin(6, 4 | 8 | 16 | 32 | 64, 65535, 65535);
	in[18] |= 1;
	for (uint16_t i = 0; i < 17; i++) {
		desc(RXD, i, rxbuf(4096), 4096, WRITE, 0);
		avail(RXA, i, i);
	}
	desc(TXD, 0, frame(9000, 1, 4, 1400, 54, 16), 9000, 0, 0);
	avail(TXA, 0, 0);
	save(dir, "big_frames");
	return 0;
}
GEN
$cc -std=c11 -O1 -o "$tmp/gen" "$tmp/gen.c"
out=$root/fuzz/corpus/fuzz_net_tx
mkdir -p "$out"
"$tmp/gen" "$out"
echo "make_seeds_net: $(ls "$out" | wc -l) seeds in $out"
