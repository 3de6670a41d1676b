/* vsock packet parsing: header byte order, chains split anywhere, the checks on guest
 * packets, and the host CONNECT line. */
#include <errno.h>
#include <linux/virtio_vsock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/vsock_pkt.h"

#define GUEST_CID 3

static uint8_t mem[VSOCK_HDR_BYTES + VSOCK_MAX_PAYLOAD + 64];

static struct vsock_hdr sample_hdr(void)
{
	return (struct vsock_hdr){.src_cid = GUEST_CID,
				  .dst_cid = VSOCK_HOST_CID,
				  .src_port = 0x01020304,
				  .dst_port = 0x05060708,
				  .len = 0,
				  .type = VIRTIO_VSOCK_TYPE_STREAM,
				  .op = VIRTIO_VSOCK_OP_REQUEST,
				  .flags = 0x11223344,
				  .buf_alloc = 0x55667788,
				  .fwd_cnt = 0x99aabbcc};
}

static void assert_hdr_equal(const struct vsock_hdr *a, const struct vsock_hdr *b)
{
	assert_int_equal(a->src_cid, b->src_cid);
	assert_int_equal(a->dst_cid, b->dst_cid);
	assert_int_equal(a->src_port, b->src_port);
	assert_int_equal(a->dst_port, b->dst_port);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->buf_alloc, b->buf_alloc);
	assert_int_equal(a->fwd_cnt, b->fwd_cnt);
}

/* Cuts mem[0, len) into readable segments at the given offsets (ascending, < len). */
static struct virtq_chain cut(struct virtq_seg *segs, uint32_t len, const uint32_t *cuts,
			      unsigned nr_cuts)
{
	uint32_t start = 0;
	unsigned n = 0;
	for (unsigned i = 0; i <= nr_cuts; i++) {
		uint32_t end = i < nr_cuts ? cuts[i] : len;
		segs[n++] = (struct virtq_seg){.host = mem + start, .len = end - start};
		start = end;
	}
	return (struct virtq_chain){.nr_segs = n, .nr_read = n, .read_len = len};
}

static void test_header_layout(void **state)
{
	(void)state;
	struct vsock_hdr h = sample_hdr(), back;
	uint8_t raw[VSOCK_HDR_BYTES];
	vsock_hdr_encode(&h, raw);
	/* Little-endian, packed, as struct virtio_vsock_hdr. */
	struct virtio_vsock_hdr uapi;
	assert_int_equal(sizeof(uapi), VSOCK_HDR_BYTES);
	memcpy(&uapi, raw, sizeof(uapi));
	assert_int_equal(uapi.src_cid, GUEST_CID);
	assert_int_equal(uapi.dst_port, 0x05060708);
	assert_int_equal(uapi.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(uapi.fwd_cnt, 0x99aabbcc);
	assert_int_equal(raw[16], 0x04); /* src_port's low byte first */
	vsock_hdr_decode(&back, raw);
	assert_hdr_equal(&back, &h);
}

static void test_sg_helpers(void **state)
{
	(void)state;
	struct virtq_seg segs[4];
	uint8_t out[32];
	for (unsigned i = 0; i < 32; i++)
		mem[i] = i;
	uint32_t cuts[] = {3, 3, 10}; /* an empty segment in the middle */
	struct virtq_chain c = cut(segs, 20, cuts, 3);
	assert_int_equal(c.nr_segs, 4);
	assert_int_equal(vsock_sg_read(segs, 4, 2, out, 10), 10);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(out[i], i + 2);
	assert_int_equal(vsock_sg_read(segs, 4, 15, out, 10), 5); /* runs out */
	assert_int_equal(vsock_sg_read(segs, 4, 25, out, 10), 0);
	uint8_t in[6] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5};
	assert_int_equal(vsock_sg_write(segs, 4, 8, in, 6), 6);
	assert_int_equal(mem[9], 0xa1);
	assert_int_equal(mem[13], 0xa5);
	struct vsock_iov iov;
	vsock_sg_slice(segs, 4, 1, 12, &iov);
	assert_int_equal(iov.len, 12);
	assert_int_equal(iov.n, 3);
	assert_ptr_equal(iov.iov[0].iov_base, mem + 1);
	assert_int_equal(iov.iov[1].iov_len, 7);
	assert_int_equal(iov.iov[2].iov_len, 3);
}

static enum vsock_verdict parse(const struct vsock_hdr *h, uint32_t chain_len, const uint32_t *cuts,
				unsigned nr_cuts, struct vsock_hdr *out, struct vsock_iov *payload)
{
	struct virtq_seg segs[8];
	vsock_hdr_encode(h, mem);
	struct virtq_chain c = cut(segs, chain_len, cuts, nr_cuts);
	return vsock_pkt_parse_tx(segs, &c, GUEST_CID, out, payload);
}

static void test_parse_good_packets(void **state)
{
	(void)state;
	struct vsock_hdr h = sample_hdr(), out;
	struct vsock_iov p;
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES, NULL, 0, &out, &p), VSOCK_PKT_OK);
	assert_hdr_equal(&out, &h);
	assert_int_equal(p.len, 0);
	/* RW: header split inside itself, payload over two more descriptors. */
	h.op = VIRTIO_VSOCK_OP_RW;
	h.len = 100;
	memset(mem + VSOCK_HDR_BYTES, 0x5a, 100);
	uint32_t cuts[] = {20, 50, 90};
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES + 100, cuts, 3, &out, &p), VSOCK_PKT_OK);
	assert_int_equal(p.len, 100);
	assert_int_equal(p.n, 3);
	assert_ptr_equal(p.iov[0].iov_base, mem + VSOCK_HDR_BYTES);
	assert_int_equal(p.iov[0].iov_len, 6);
	/* Extra readable bytes after the payload are ignored; the maximum is allowed. */
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES + 150, NULL, 0, &out, &p), VSOCK_PKT_OK);
	assert_int_equal(p.len, 100);
	h.len = VSOCK_MAX_PAYLOAD;
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES + VSOCK_MAX_PAYLOAD, NULL, 0, &out, &p),
			 VSOCK_PKT_OK);
	/* Payload bytes on a control packet are not looked at. */
	h.op = VIRTIO_VSOCK_OP_SHUTDOWN;
	h.len = 10;
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES + 10, NULL, 0, &out, &p), VSOCK_PKT_OK);
	assert_int_equal(p.len, 0);
}

static void test_parse_bad_packets(void **state)
{
	(void)state;
	struct vsock_hdr h = sample_hdr(), out;
	struct vsock_iov p;
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES - 1, NULL, 0, &out, &p), VSOCK_PKT_DROP_SHORT);
	assert_int_equal(out.op, 0);
	h.src_cid = GUEST_CID + 1;
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES, NULL, 0, &out, &p), VSOCK_PKT_DROP_CID);
	h.src_cid = VSOCK_HOST_CID; /* spoofing the host */
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES, NULL, 0, &out, &p), VSOCK_PKT_DROP_CID);
	h = sample_hdr();
	h.dst_cid = 1;
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES, NULL, 0, &out, &p), VSOCK_PKT_DROP_CID);
	h.dst_cid = (1ULL << 32) | VSOCK_HOST_CID; /* 64-bit CIDs compare whole */
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES, NULL, 0, &out, &p), VSOCK_PKT_DROP_CID);
	h = sample_hdr();
	h.op = VIRTIO_VSOCK_OP_RW;
	h.len = VSOCK_MAX_PAYLOAD + 1;
	assert_int_equal(parse(&h, sizeof(mem), NULL, 0, &out, &p), VSOCK_PKT_RST_LEN);
	h.len = 0xffffffff;
	assert_int_equal(parse(&h, sizeof(mem), NULL, 0, &out, &p), VSOCK_PKT_RST_LEN);
	h.len = 100;
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES + 99, NULL, 0, &out, &p), VSOCK_PKT_RST_LEN);
	h.len = 0;
	h.type = VIRTIO_VSOCK_TYPE_SEQPACKET;
	assert_int_equal(parse(&h, VSOCK_HDR_BYTES, NULL, 0, &out, &p), VSOCK_PKT_RST_TYPE);
	h.type = VIRTIO_VSOCK_TYPE_STREAM;
	uint16_t bad_ops[] = {0, 8, 0xffff};
	for (unsigned i = 0; i < 3; i++) {
		h.op = bad_ops[i];
		assert_int_equal(parse(&h, VSOCK_HDR_BYTES, NULL, 0, &out, &p), VSOCK_PKT_RST_OP);
		assert_int_equal(out.op, bad_ops[i]);
	}
	/* A payload in more pieces than kiln describes is refused, not truncated. */
	h.op = VIRTIO_VSOCK_OP_RW;
	h.len = VSOCK_MAX_IOV + 1;
	static struct virtq_seg segs[VSOCK_MAX_IOV + 2];
	segs[0] = (struct virtq_seg){.host = mem, .len = VSOCK_HDR_BYTES};
	for (unsigned i = 1; i < VSOCK_MAX_IOV + 2; i++)
		segs[i] = (struct virtq_seg){.host = mem + VSOCK_HDR_BYTES + i, .len = 1};
	vsock_hdr_encode(&h, mem);
	struct virtq_chain c = {.nr_segs = VSOCK_MAX_IOV + 2,
				.nr_read = VSOCK_MAX_IOV + 2,
				.read_len = VSOCK_HDR_BYTES + VSOCK_MAX_IOV + 1};
	assert_int_equal(vsock_pkt_parse_tx(segs, &c, GUEST_CID, &out, &p), VSOCK_PKT_RST_LEN);
	h.len = VSOCK_MAX_IOV;
	vsock_hdr_encode(&h, mem);
	c.read_len--;
	c.nr_segs = c.nr_read = VSOCK_MAX_IOV + 1;
	assert_int_equal(vsock_pkt_parse_tx(segs, &c, GUEST_CID, &out, &p), VSOCK_PKT_OK);
}

static void test_rx_room(void **state)
{
	(void)state;
	struct virtq_seg segs[2] = {{.host = mem, .len = VSOCK_HDR_BYTES, .is_write = true},
				    {.host = mem + 64, .len = 4096, .is_write = true}};
	struct virtq_chain c = {.nr_segs = 2, .write_len = VSOCK_HDR_BYTES + 4096};
	assert_int_equal(vsock_pkt_rx_room(segs, &c), 4096);
	c.write_len = VSOCK_HDR_BYTES;
	assert_int_equal(vsock_pkt_rx_room(segs, &c), 0);
	c.write_len = VSOCK_HDR_BYTES - 1;
	assert_int_equal(vsock_pkt_rx_room(segs, &c), -EINVAL);
	c.write_len = 1u << 20;
	assert_int_equal(vsock_pkt_rx_room(segs, &c), VSOCK_MAX_PAYLOAD);
	c.nr_read = 1; /* a device-readable part: not an rx buffer */
	assert_int_equal(vsock_pkt_rx_room(segs, &c), -EINVAL);
}

static int connect_port(const char *s, uint32_t *port)
{
	return vsock_parse_connect(s, strlen(s), port);
}

static void test_connect_line(void **state)
{
	(void)state;
	uint32_t port = 0;
	assert_int_equal(connect_port("CONNECT 52\n", &port), 0);
	assert_int_equal(port, 52);
	assert_int_equal(connect_port("connect 0\n", &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(connect_port("  CoNnEcT\t4294967295 extra words\r\n", &port), 0);
	assert_int_equal(port, 4294967295u);
	assert_int_equal(connect_port("CONNECT +7\n", &port), 0);
	assert_int_equal(port, 7);
	assert_int_equal(connect_port("CONNECT 007\n", &port), 0);
	assert_int_equal(port, 7);
	const char *bad[] = {
	    "",
	    "\n",
	    "CONNECT\n",
	    "CONNECT \n",
	    "CONNECTX 5\n",
	    "CONNEC 5\n",
	    "OK 5\n",
	    "CONNECT 4294967296\n",
	    "CONNECT -1\n",
	    "CONNECT 5x\n",
	    "CONNECT +\n",
	    "CONNECT ++5\n",
	    "CONNECT 0x10\n",
	    "5 CONNECT\n",
	    "CONNECT 99999999999999999999\n",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		port = 1234;
		assert_int_equal(connect_port(bad[i], &port), -EINVAL);
		assert_int_equal(port, 1234);
	}
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(vsock_parse_connect("CONNECT 123456", 10, &port), 0);
	assert_int_equal(port, 12);
}

static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(vsock_op_name(VIRTIO_VSOCK_OP_CREDIT_REQUEST), "CREDIT_REQUEST");
	assert_string_equal(vsock_op_name(0), "?");
	assert_string_equal(vsock_op_name(1000), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_layout),
	    cmocka_unit_test(test_sg_helpers),
	    cmocka_unit_test(test_parse_good_packets),
	    cmocka_unit_test(test_parse_bad_packets),
	    cmocka_unit_test(test_rx_room),
	    cmocka_unit_test(test_connect_line),
	    cmocka_unit_test(test_op_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
