/* The device event loop: one epoll instance, served by the main thread. Sources are
 * caller-owned structs whose address is the epoll cookie. */
#ifndef KILN_EVLOOP_H
#define KILN_EVLOOP_H

#include <stdint.h>

struct ev_source {
	void (*handle)(void *ctx, uint32_t events);
	void *ctx;
	int fd;
};

struct evloop {
	int epfd;
};

int evloop_init(struct evloop *loop);
void evloop_destroy(struct evloop *loop);

/* Watches src->fd for `events` (EPOLLIN...). 0 or -errno. */
int evloop_add(struct evloop *loop, struct ev_source *src, uint32_t events);
/* Changes the events of a watched source (0 pauses it without removing it). */
int evloop_mod(struct evloop *loop, struct ev_source *src, uint32_t events);
int evloop_del(struct evloop *loop, struct ev_source *src);

/* The calling thread to SCHED_BATCH: a wake-up of it (a kick, host data) does not preempt
 * the thread running on its CPU, most often a vCPU thread in the middle of the guest's
 * processing; it runs on an idle CPU or at the next tick and keeps its fair share. Call it
 * on the loop's thread after the vCPU threads exist (they stay SCHED_OTHER). 0 or -errno. */
int evloop_thread_batch(void);

/* Waits up to timeout_ms (-1: forever) and runs the handlers of ready sources.
 * Returns the number handled, or -errno (never -EINTR). */
int evloop_run_once(struct evloop *loop, int timeout_ms);

#endif
