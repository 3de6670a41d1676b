/* The device event loop: one epoll instance, served by the main thread. Sources are
 * caller-owned structs whose address is the epoll cookie. */
#ifndef KILN_EVLOOP_H
#define KILN_EVLOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ev_source {
	void (*handle)(void *ctx, uint32_t events);
	void *ctx;
	int fd;
};

/* The loop's thread follows the guest's traffic: while the guest mostly sends (the bytes
 * it sent minus those it received, clamped to EVLOOP_FLOW_MAX, reach EVLOOP_FLOW_BATCH) it
 * runs SCHED_BATCH, so a kick's wake-up does not preempt the vCPU thread that kicked (in a
 * crowded host the guest then fills its queue instead of stalling on every frame); once the
 * flow is back at or below 0 it runs SCHED_OTHER again, so host data wakes it at once. */
#define EVLOOP_FLOW_MAX (1 << 20)
#define EVLOOP_FLOW_BATCH (256 << 10)

struct evloop {
	int epfd;
	_Atomic int64_t flow;	      /* evloop_note_flow() */
	int (*set_batch)(bool batch); /* NULL: the policy is left alone */
	bool batch;
};

int evloop_init(struct evloop *loop);
void evloop_destroy(struct evloop *loop);

/* Watches src->fd for `events` (EPOLLIN...). 0 or -errno. */
int evloop_add(struct evloop *loop, struct ev_source *src, uint32_t events);
/* Changes the events of a watched source (0 pauses it without removing it). */
int evloop_mod(struct evloop *loop, struct ev_source *src, uint32_t events);
int evloop_del(struct evloop *loop, struct ev_source *src);

/* Lets the loop switch its thread's policy with set_batch (evloop_thread_batch, or a fake
 * in tests), which returns 0 or -errno; after a failure the policy is left alone. */
void evloop_follow_flow(struct evloop *loop, int (*set_batch)(bool batch));
/* Any thread: a device moved `to_host` bytes from the guest and `to_guest` bytes to it
 * (every device reports: net frames, blk data written and read, vsock payload). A NULL
 * loop (a device not on one) or nothing moved: nothing to note. */
void evloop_note_flow(struct evloop *loop, uint64_t to_host, uint64_t to_guest);
/* The calling thread to SCHED_BATCH (true) or SCHED_OTHER. 0 or -errno. */
int evloop_thread_batch(bool batch);

/* Waits up to timeout_ms (-1: forever) and runs the handlers of ready sources.
 * Returns the number handled, or -errno (never -EINTR). */
int evloop_run_once(struct evloop *loop, int timeout_ms);

#endif
