/* virtio-vsock packets (virtio 1.x 5.10.6): the 44-byte little-endian header and the checks
 * every packet from the guest passes before the connection layer sees it. A packet is the
 * readable (tx) or writable (rx) bytes of one descriptor chain taken as one byte stream: the
 * header first, the payload right after it, split across descriptors however the driver
 * likes (Linux before 6.2 uses two descriptors, later ones one). */
#ifndef KILN_VSOCK_PKT_H
#define KILN_VSOCK_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/virtq.h"

#define VSOCK_HDR_BYTES 44
#define VSOCK_HOST_CID 2
#define VSOCK_MAX_PAYLOAD (64 * 1024) /* largest payload kiln accepts or produces */

/* struct virtio_vsock_hdr in host byte order. */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

/* What to do with a packet from the guest. */
enum vsock_verdict {
	VSOCK_PKT_OK,
	VSOCK_PKT_DROP_SHORT, /* fewer than 44 readable bytes: no header to answer */
	VSOCK_PKT_DROP_CID,   /* src_cid is not the guest's or dst_cid not the host's */
	VSOCK_PKT_RST_LEN,    /* len above VSOCK_MAX_PAYLOAD or beyond the chain */
	VSOCK_PKT_RST_TYPE,   /* not VIRTIO_VSOCK_TYPE_STREAM */
	VSOCK_PKT_RST_OP,     /* an op kiln does not know */
};

/* A slice of a chain's payload as an iovec (a tx payload in more pieces is refused). */
#define VSOCK_MAX_IOV 256
struct vsock_iov {
	struct iovec iov[VSOCK_MAX_IOV];
	unsigned n;
	uint32_t len; /* total bytes */
};

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_BYTES]);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_BYTES]);

/* An RST from host port local_port to the guest's peer_port, credit fields zero. */
void vsock_hdr_rst(struct vsock_hdr *h, uint64_t guest_cid, uint32_t local_port,
		   uint32_t peer_port);

/* Copies up to len bytes starting `off` bytes into segs[0, n) to dst / from src. Returns
 * the bytes copied (less than len when the segments end first). */
size_t vsock_sg_read(const struct virtq_seg *segs, unsigned n, uint64_t off, void *dst, size_t len);
size_t vsock_sg_write(const struct virtq_seg *segs, unsigned n, uint64_t off, const void *src,
		      size_t len);

/* Describes up to len bytes starting `off` bytes into segs[0, n) in out (which ends early
 * once VSOCK_MAX_IOV entries are used; out->len says how much it holds). */
void vsock_sg_slice(const struct virtq_seg *segs, unsigned n, uint64_t off, uint32_t len,
		    struct vsock_iov *out);

/* Parses and checks the packet in the readable part of a tx chain (segs[0, c->nr_read)):
 * fills *h (read once from guest memory) and, for VSOCK_PKT_OK, the payload's place in
 * *payload (len bytes, which the chain holds). *h is zeroed for DROP_SHORT, filled otherwise. */
enum vsock_verdict vsock_pkt_parse_tx(const struct virtq_seg *segs, const struct virtq_chain *c,
				      uint64_t guest_cid, struct vsock_hdr *h,
				      struct vsock_iov *payload);

/* The room an rx chain offers for payload after the header (capped at VSOCK_MAX_PAYLOAD),
 * or -EINVAL when it is not a usable rx buffer (readable parts, or under 44 bytes). */
int64_t vsock_pkt_rx_room(const struct virtq_seg *segs, const struct virtq_chain *c);

/* Parses a host CONNECT line as Firecracker does: whitespace-separated words, the first
 * "connect" in any case, the second a u32 decimal port, the rest ignored. 0 with *port, or
 * -EINVAL. `line` need not be NUL-terminated. */
int vsock_parse_connect(const char *line, size_t len, uint32_t *port);

/* The op's name for logs ("REQUEST"), "?" for one kiln does not know. */
const char *vsock_op_name(uint16_t op);

#endif
