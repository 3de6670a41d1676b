/* One vsock stream between a guest port and a host AF_UNIX socket: the connection state
 * machine of the Firecracker hybrid model and credit-based flow control both ways.
 *
 * Guest -> host: kiln advertises buf_alloc = VSOCK_CONN_BUF_SIZE. Data goes straight to the
 * host socket; what it does not take waits in a per-connection buffer of that size, and a
 * guest that sends more than its credit allows (the buffer would overflow) is reset.
 * Host -> guest: kiln reads from the host socket only as much as the guest's credit allows,
 * straight into a guest rx buffer, so nothing is buffered on that side; without credit the
 * socket is not polled. The muxer (vsock_uds.c) owns connections, routes packets and keeps
 * the event-loop registration in line with vsock_conn_events(). */
#ifndef KILN_VSOCK_CONN_H
#define KILN_VSOCK_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/vsock_pkt.h"
#include "vmm/evloop.h"

#define VSOCK_CONN_BUF_SIZE (64 * 1024)		 /* buf_alloc kiln advertises */
#define VSOCK_CREDIT_UPDATE_THRESHOLD (4 * 1024) /* update the guest below this free space */
#define VSOCK_REQUEST_TIMEOUT_NS 2000000000ULL	 /* REQUEST without RESPONSE: reset */
#define VSOCK_SHUTDOWN_TIMEOUT_NS 2000000000ULL	 /* SHUTDOWN without RST: reset */
#define VSOCK_CONNECT_LINE_MAX 32		 /* "CONNECT <port>\n" with the newline */

enum vsock_state {
	VSOCK_FREE = 0,
	VSOCK_HANDSHAKE,    /* a host client of uds_path, its CONNECT line not read yet */
	VSOCK_LOCAL_INIT,   /* host-initiated: REQUEST for the guest, waiting for RESPONSE */
	VSOCK_PEER_INIT,    /* guest-initiated: RESPONSE for the guest pending */
	VSOCK_ESTABLISHED,  /* data flows both ways */
	VSOCK_LOCAL_CLOSED, /* the host socket hit EOF: SHUTDOWN sent, waiting for the RST */
	VSOCK_PEER_CLOSED,  /* the guest sent SHUTDOWN (peer_no_recv / peer_no_send) */
	VSOCK_KILLED,	    /* host socket closed, RST for the guest pending */
};

/* Packets a connection owes the guest (bits of `pending`), highest priority first. */
enum {
	VSOCK_RX_RST = 1u << 0,
	VSOCK_RX_RESPONSE = 1u << 1,
	VSOCK_RX_REQUEST = 1u << 2,
	VSOCK_RX_RW = 1u << 3, /* the host socket is readable: data (or EOF) to relay */
	VSOCK_RX_CREDIT_REQUEST = 1u << 4,
	VSOCK_RX_CREDIT_UPDATE = 1u << 5,
};

/* Counters of one device; guest misbehaviour is counted here, never fatal. */
struct vsock_stats {
	uint64_t tx_packets, rx_packets; /* from / to the guest */
	uint64_t tx_bytes, rx_bytes;	 /* payload bytes */
	uint64_t conns_added, conns_removed;
	uint64_t conns_refused;	   /* guest connect with no listener at <uds_path>_<port> */
	uint64_t conns_over_limit; /* new connections refused at VSOCK_MAX_CONNS */
	uint64_t bad_handshakes;   /* malformed or timed out CONNECT lines */
	uint64_t malformed;	   /* dropped: short header, wrong cid */
	uint64_t bad_len, bad_type, bad_op;
	uint64_t credit_lies; /* guest data beyond its credit, or fwd_cnt beyond what was sent */
	uint64_t unexpected;  /* packets that make no sense in the connection's state */
	uint64_t rst_dropped; /* RSTs for unknown connections lost to a full queue */
	uint64_t rx_bad_chains;
	uint64_t host_errors; /* host socket read/write errors */
	uint64_t timeouts;
};

/* An event-loop source of the device: ev.ctx points back here. */
struct vsock_src {
	struct ev_source ev;
	void *mux;	/* the struct vsock_uds it belongs to */
	int id;		/* connection slot, or a VSOCK_SRC_* kind */
	uint32_t armed; /* events registered with the loop */
	bool in_loop;	/* added to the loop (an empty mask is deleted: HUP ignores masks) */
};

struct vsock_conn {
	struct vsock_src src; /* src.ev.fd: the host socket, -1 once closed */
	enum vsock_state state;
	bool peer_no_recv, peer_no_send; /* SHUTDOWN flags the guest sent */
	bool credit_requested;		 /* CREDIT_REQUEST sent, no credit since */
	unsigned pending;		 /* VSOCK_RX_* */
	uint32_t local_port, peer_port;
	uint64_t expiry_ns; /* CLOCK_MONOTONIC deadline, 0 for none */
	/* guest -> host */
	uint8_t *buf; /* VSOCK_CONN_BUF_SIZE bytes, allocated while data waits */
	uint32_t buf_head, buf_len;
	uint32_t recv_cnt;     /* payload bytes taken from the guest */
	uint32_t fwd_cnt;      /* of those, written to the host socket */
	uint32_t fwd_cnt_told; /* fwd_cnt in the last packet to the guest */
	/* host -> guest */
	uint32_t rx_cnt; /* payload bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	/* muxer bookkeeping */
	int rx_prev, rx_next; /* neighbours on the muxer's rx list, -1 at its ends */
	bool in_rxq;	      /* on that list */
	int hash_next;	      /* next slot in the same hash bucket, -1 at its end */
	char line[VSOCK_CONNECT_LINE_MAX];
	unsigned line_len;
};

/* A host client in VSOCK_HANDSHAKE: reads its CONNECT line without taking a byte past the
 * newline (what follows is data for the guest), consuming what it peeked so a partial line
 * does not keep the socket readable. 0 with the guest port, -EAGAIN until the line is
 * complete, -EINVAL for a bad or overlong line, -EPIPE at EOF, other -errno on errors. */
int vsock_conn_read_line(struct vsock_conn *c, uint32_t *port);

/* Turns a connection that has a host socket into a host-initiated one (REQUEST pending, with
 * its timeout) or a guest-initiated one answering `req` (RESPONSE pending). */
void vsock_conn_start_local(struct vsock_conn *c, uint32_t local_port, uint32_t peer_port,
			    uint64_t now);
void vsock_conn_start_peer(struct vsock_conn *c, const struct vsock_hdr *req);

/* A packet from the guest for this connection (any op but RST, which the muxer handles):
 * relays RW payloads to the host socket (buffering what it does not take), answers
 * RESPONSE with "OK <local_port>\n" to the host, and updates state, credit and pending
 * packets. A guest that breaks flow control gets the connection killed. */
void vsock_conn_recv(struct vsock_conn *c, const struct vsock_hdr *h,
		     const struct vsock_iov *payload, uint64_t now, struct vsock_stats *st);

/* The host socket reported `events`: marks data to relay and flushes buffered data. */
void vsock_conn_on_event(struct vsock_conn *c, uint32_t events, struct vsock_stats *st);

/* The epoll events the connection wants on its host socket now (0: none). */
uint32_t vsock_conn_events(const struct vsock_conn *c);

/* Bytes the guest can take right now (its buf_alloc minus what is in flight). */
uint32_t vsock_conn_peer_credit(const struct vsock_conn *c);

/* The op of the next packet for the guest, or 0 when there is none now. Peeks at the host
 * socket for RW (data, EOF, or an error that kills the connection), so it may change
 * `pending`, but produces nothing until vsock_conn_fill(). */
uint16_t vsock_conn_next_op(struct vsock_conn *c, struct vsock_stats *st);

/* Builds packet `op` (just returned by vsock_conn_next_op()) into *h. For RW the payload
 * is read from the host socket into `room`, which the caller sized to at most
 * vsock_conn_peer_credit() bytes; h->len says how much arrived (a read that finds EOF turns
 * the packet into SHUTDOWN, an error into RST). */
void vsock_conn_fill(struct vsock_conn *c, uint16_t op, uint64_t guest_cid, struct vsock_hdr *h,
		     const struct vsock_iov *room, uint64_t now, struct vsock_stats *st);

/* Schedules an RST for the guest and drops buffered data; the muxer closes the socket. */
void vsock_conn_kill(struct vsock_conn *c);

/* Frees the data buffer (the socket is the muxer's to close). */
void vsock_conn_release(struct vsock_conn *c);

#endif
