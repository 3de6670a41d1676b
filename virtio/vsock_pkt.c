#include "virtio/vsock_pkt.h"

#include <errno.h>
#include <linux/virtio_vsock.h>
#include <string.h>
#include <strings.h>

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_BYTES])
{
	h->src_cid = get_le(raw + 0, 8);
	h->dst_cid = get_le(raw + 8, 8);
	h->src_port = get_le(raw + 16, 4);
	h->dst_port = get_le(raw + 20, 4);
	h->len = get_le(raw + 24, 4);
	h->type = get_le(raw + 28, 2);
	h->op = get_le(raw + 30, 2);
	h->flags = get_le(raw + 32, 4);
	h->buf_alloc = get_le(raw + 36, 4);
	h->fwd_cnt = get_le(raw + 40, 4);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_BYTES])
{
	put_le(raw + 0, h->src_cid, 8);
	put_le(raw + 8, h->dst_cid, 8);
	put_le(raw + 16, h->src_port, 4);
	put_le(raw + 20, h->dst_port, 4);
	put_le(raw + 24, h->len, 4);
	put_le(raw + 28, h->type, 2);
	put_le(raw + 30, h->op, 2);
	put_le(raw + 32, h->flags, 4);
	put_le(raw + 36, h->buf_alloc, 4);
	put_le(raw + 40, h->fwd_cnt, 4);
}

void vsock_hdr_rst(struct vsock_hdr *h, uint64_t guest_cid, uint32_t local_port, uint32_t peer_port)
{
	*h = (struct vsock_hdr){.src_cid = VSOCK_HOST_CID,
				.dst_cid = guest_cid,
				.src_port = local_port,
				.dst_port = peer_port,
				.type = VIRTIO_VSOCK_TYPE_STREAM,
				.op = VIRTIO_VSOCK_OP_RST};
}

/* A position inside segs[0, n): segment i, byte skip of it. */
struct sg_pos {
	unsigned i;
	uint64_t skip;
};

/* The next piece of at most `left` bytes from *pos on (advancing it), or NULL at the end. */
static uint8_t *sg_next(const struct virtq_seg *segs, unsigned n, struct sg_pos *pos, size_t left,
			size_t *plen)
{
	while (pos->i < n && pos->skip >= segs[pos->i].len) {
		pos->skip -= segs[pos->i].len;
		pos->i++;
	}
	if (pos->i == n || left == 0)
		return NULL;
	uint8_t *p = (uint8_t *)segs[pos->i].host + pos->skip;
	uint64_t avail = segs[pos->i].len - pos->skip;
	*plen = avail < left ? avail : left;
	pos->skip += *plen;
	return p;
}

size_t vsock_sg_read(const struct virtq_seg *segs, unsigned n, uint64_t off, void *dst, size_t len)
{
	struct sg_pos pos = {.skip = off};
	size_t done = 0, plen;
	uint8_t *p;
	while ((p = sg_next(segs, n, &pos, len - done, &plen))) {
		memcpy((uint8_t *)dst + done, p, plen);
		done += plen;
	}
	return done;
}

size_t vsock_sg_write(const struct virtq_seg *segs, unsigned n, uint64_t off, const void *src,
		      size_t len)
{
	struct sg_pos pos = {.skip = off};
	size_t done = 0, plen;
	uint8_t *p;
	while ((p = sg_next(segs, n, &pos, len - done, &plen))) {
		memcpy(p, (const uint8_t *)src + done, plen);
		done += plen;
	}
	return done;
}

void vsock_sg_slice(const struct virtq_seg *segs, unsigned n, uint64_t off, uint32_t len,
		    struct vsock_iov *out)
{
	struct sg_pos pos = {.skip = off};
	size_t plen, done = 0;
	uint8_t *p;
	out->n = 0;
	while (out->n < VSOCK_MAX_IOV && (p = sg_next(segs, n, &pos, len - done, &plen))) {
		out->iov[out->n++] = (struct iovec){.iov_base = p, .iov_len = plen};
		done += plen;
	}
	out->len = done;
}

static bool op_known(uint16_t op)
{
	return op >= VIRTIO_VSOCK_OP_REQUEST && op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST;
}

enum vsock_verdict vsock_pkt_parse_tx(const struct virtq_seg *segs, const struct virtq_chain *c,
				      uint64_t guest_cid, struct vsock_hdr *h,
				      struct vsock_iov *payload)
{
	uint8_t raw[VSOCK_HDR_BYTES];
	memset(h, 0, sizeof(*h));
	payload->n = 0;
	payload->len = 0;
	if (c->read_len < VSOCK_HDR_BYTES ||
	    vsock_sg_read(segs, c->nr_read, 0, raw, VSOCK_HDR_BYTES) != VSOCK_HDR_BYTES)
		return VSOCK_PKT_DROP_SHORT;
	vsock_hdr_decode(h, raw);
	if (h->src_cid != guest_cid || h->dst_cid != VSOCK_HOST_CID)
		return VSOCK_PKT_DROP_CID;
	if (h->len > VSOCK_MAX_PAYLOAD || h->len > c->read_len - VSOCK_HDR_BYTES)
		return VSOCK_PKT_RST_LEN;
	if (h->type != VIRTIO_VSOCK_TYPE_STREAM)
		return VSOCK_PKT_RST_TYPE;
	if (!op_known(h->op))
		return VSOCK_PKT_RST_OP;
	if (h->op != VIRTIO_VSOCK_OP_RW || h->len == 0)
		return VSOCK_PKT_OK;
	vsock_sg_slice(segs, c->nr_read, VSOCK_HDR_BYTES, h->len, payload);
	if (payload->len != h->len)
		return VSOCK_PKT_RST_LEN;
	return VSOCK_PKT_OK;
}

int64_t vsock_pkt_rx_room(const struct virtq_seg *segs, const struct virtq_chain *c)
{
	(void)segs;
	if (c->nr_read != 0 || c->write_len < VSOCK_HDR_BYTES)
		return -EINVAL;
	uint32_t room = c->write_len - VSOCK_HDR_BYTES;
	return room > VSOCK_MAX_PAYLOAD ? VSOCK_MAX_PAYLOAD : room;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* The next whitespace-separated word of [*p, end), or NULL. */
static const char *next_word(const char **p, const char *end, size_t *len)
{
	while (*p < end && is_space(**p))
		(*p)++;
	const char *w = *p;
	while (*p < end && !is_space(**p))
		(*p)++;
	*len = *p - w;
	return *len ? w : NULL;
}

int vsock_parse_connect(const char *line, size_t len, uint32_t *port)
{
	const char *p = line, *end = line + len, *w;
	size_t wl;
	if (!(w = next_word(&p, end, &wl)) || wl != 7 || strncasecmp(w, "connect", 7))
		return -EINVAL;
	if (!(w = next_word(&p, end, &wl)))
		return -EINVAL;
	if (*w == '+' && wl > 1) { /* Rust's u32::from_str takes a leading '+' */
		w++;
		wl--;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < wl; i++) {
		if (w[i] < '0' || w[i] > '9' || (v = v * 10 + (w[i] - '0')) > UINT32_MAX)
			return -EINVAL;
	}
	*port = v;
	return 0;
}

const char *vsock_op_name(uint16_t op)
{
	static const char *const names[] = {
	    [VIRTIO_VSOCK_OP_REQUEST] = "REQUEST",
	    [VIRTIO_VSOCK_OP_RESPONSE] = "RESPONSE",
	    [VIRTIO_VSOCK_OP_RST] = "RST",
	    [VIRTIO_VSOCK_OP_SHUTDOWN] = "SHUTDOWN",
	    [VIRTIO_VSOCK_OP_RW] = "RW",
	    [VIRTIO_VSOCK_OP_CREDIT_UPDATE] = "CREDIT_UPDATE",
	    [VIRTIO_VSOCK_OP_CREDIT_REQUEST] = "CREDIT_REQUEST",
	};
	return op_known(op) ? names[op] : "?";
}
