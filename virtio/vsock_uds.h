/* The host side of virtio-vsock in Firecracker's hybrid model: kiln listens on uds_path; a
 * host client that connects there and writes "CONNECT <port>\n" gets a stream to guest port
 * <port> ("OK <local_port>\n" once the guest accepts), and a guest connect to CID 2 port P
 * is forwarded to the AF_UNIX socket listening at "<uds_path>_P". The muxer owns the
 * connections (a bounded table), routes guest packets to them, queues what they have for
 * the guest, and keeps every host socket's event-loop registration in line with it.
 *
 * Not thread-safe: the device calls everything with the transport lock held. Event sources
 * live in slots that stay allocated until vsock_uds_close(), so an event already fetched
 * for a connection that has since gone finds a free or reused slot, never freed memory,
 * and every handler treats its events as hints (non-blocking calls decide). */
#ifndef KILN_VSOCK_UDS_H
#define KILN_VSOCK_UDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "virtio/vsock_conn.h"
#include "virtio/vsock_pkt.h"
#include "vmm/evloop.h"

#define VSOCK_MAX_CONNS 1024 /* connections plus unfinished CONNECT handshakes per VM */
#define VSOCK_RST_QUEUE 256  /* RSTs for packets without a connection, waiting for rx */
#define VSOCK_HASH_BUCKETS 1024
#define VSOCK_HANDSHAKE_TIMEOUT_NS 5000000000ULL /* to send the whole CONNECT line */
#define VSOCK_LOCAL_PORT_BASE (1u << 30)	 /* host-initiated local ports: [2^30, 2^31) */
#define VSOCK_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

enum { VSOCK_SRC_LISTENER = -1, VSOCK_SRC_TIMER = -2 };

/* The next packet for the guest: a connection's (slot >= 0) or a standalone RST. */
struct vsock_rx_job {
	int slot;
	uint16_t op;
	uint32_t local_port, peer_port; /* of a standalone RST */
};

struct vsock_rst {
	uint32_t local_port, peer_port;
};

struct vsock_uds {
	struct evloop *loop;
	char path[VSOCK_PATH_MAX + 1];
	bool bound; /* path is ours to unlink */
	uint64_t guest_cid;
	uint64_t (*clock)(void *ctx); /* CLOCK_MONOTONIC ns; tests substitute their own */
	void *clock_ctx;
	struct vsock_src listener;
	struct vsock_src timer;
	uint64_t timer_at;  /* deadline the timer is armed for, 0 if disarmed */
	bool active;	    /* the device is live: the listener is polled */
	bool accept_paused; /* accept failed (EMFILE...): the timer resumes the listener */
	struct vsock_conn *slot[VSOCK_MAX_CONNS]; /* slot[0, nr_slots) are allocated */
	int nr_slots;
	unsigned nr_used; /* slots not VSOCK_FREE */
	int hash[VSOCK_HASH_BUCKETS];
	int rxq_head, rxq_tail; /* connections with packets for the guest */
	struct vsock_rst rst[VSOCK_RST_QUEUE];
	unsigned rst_head, rst_len;
	uint32_t local_port_last;
	struct vsock_stats stats;
};

/* Binds and listens on uds_path (an existing file is an error, as in Firecracker: nothing
 * is unlinked) and creates the timer, watched by `loop` from now on; the listener is only
 * polled between vsock_uds_activate() and vsock_uds_reset(). Every event source calls
 * `handler` with its struct vsock_src as ctx. 0, or -errno with one line in err naming
 * the path (then nothing is left open). */
int vsock_uds_open(struct vsock_uds *m, const char *uds_path, uint64_t guest_cid,
		   struct evloop *loop, void (*handler)(void *ctx, uint32_t events), char *err,
		   size_t errlen);

/* Closes every socket, unlinks uds_path and frees the slots; safe after a failed open. */
void vsock_uds_close(struct vsock_uds *m);

/* The driver activated the device: start accepting host clients. */
void vsock_uds_activate(struct vsock_uds *m);

/* The driver reset the device: every connection and handshake is closed without a word to
 * the guest, the listener is paused. */
void vsock_uds_reset(struct vsock_uds *m);

/* For VIRTIO_VSOCK_EVENT_TRANSPORT_RESET: closes every connection (their host sockets) and
 * forgets queued RSTs, since the guest drops its side of them all; handshakes stay. */
void vsock_uds_drop_conns(struct vsock_uds *m);

/* A packet from the guest with the verdict vsock_pkt_parse_tx() gave it. */
void vsock_uds_send(struct vsock_uds *m, enum vsock_verdict v, const struct vsock_hdr *h,
		    const struct vsock_iov *payload);

/* An event of one of the muxer's sources (src->mux == m) while the device is live. */
void vsock_uds_on_event(struct vsock_uds *m, struct vsock_src *src, uint32_t events);

/* The same while the device is not live: stops polling the source (drains the timer). */
void vsock_uds_quiesce(struct vsock_uds *m, struct vsock_src *src);

/* The next packet for the guest into *job: 0, or -EAGAIN when there is none. Nothing is
 * consumed until vsock_uds_fill_rx(), so a caller without an rx buffer can stop here. */
int vsock_uds_next_rx(struct vsock_uds *m, struct vsock_rx_job *job);

/* The most payload job may carry (the guest's credit for RW, else 0). */
uint32_t vsock_uds_rx_limit(const struct vsock_uds *m, const struct vsock_rx_job *job);

/* Produces the job's packet: header into *h, RW payload read into room (sized to at most
 * vsock_uds_rx_limit()); a connection whose RST this is is gone afterwards. */
void vsock_uds_fill_rx(struct vsock_uds *m, const struct vsock_rx_job *job, struct vsock_hdr *h,
		       const struct vsock_iov *room);

/* Live connections (not handshakes, not free slots), for tests and metrics. */
unsigned vsock_uds_nr_conns(const struct vsock_uds *m);

#endif
