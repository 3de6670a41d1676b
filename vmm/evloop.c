#include "vmm/evloop.h"
#include "vmm/log.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EVLOOP_BATCH 32

int evloop_init(struct evloop *loop)
{
	*loop = (struct evloop){.epfd = -1};
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epfd < 0 ? -errno : 0;
}

void evloop_destroy(struct evloop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}

static int evloop_ctl(struct evloop *loop, int op, struct ev_source *src, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = src};
	return epoll_ctl(loop->epfd, op, src->fd, &ev) < 0 ? -errno : 0;
}

int evloop_add(struct evloop *loop, struct ev_source *src, uint32_t events)
{
	return evloop_ctl(loop, EPOLL_CTL_ADD, src, events);
}

int evloop_mod(struct evloop *loop, struct ev_source *src, uint32_t events)
{
	return evloop_ctl(loop, EPOLL_CTL_MOD, src, events);
}

int evloop_del(struct evloop *loop, struct ev_source *src)
{
	return evloop_ctl(loop, EPOLL_CTL_DEL, src, 0);
}

void evloop_follow_flow(struct evloop *loop, int (*set_batch)(bool batch))
{
	loop->set_batch = set_batch;
}

void evloop_note_flow(struct evloop *loop, uint64_t to_host, uint64_t to_guest)
{
	if (!loop || (!to_host && !to_guest))
		return;
	if (to_host > EVLOOP_FLOW_MAX)
		to_host = EVLOOP_FLOW_MAX;
	if (to_guest > EVLOOP_FLOW_MAX)
		to_guest = EVLOOP_FLOW_MAX;
	int64_t d = (int64_t)to_host - (int64_t)to_guest;
	int64_t old = atomic_load_explicit(&loop->flow, memory_order_relaxed), next;
	do {
		next = old + d;
		next = next > EVLOOP_FLOW_MAX ? EVLOOP_FLOW_MAX : next;
		next = next < -EVLOOP_FLOW_MAX ? -EVLOOP_FLOW_MAX : next;
	} while (!atomic_compare_exchange_weak_explicit(
	    &loop->flow, &old, next, memory_order_relaxed, memory_order_relaxed));
}

int evloop_thread_batch(bool batch)
{
	/* musl's sched_setscheduler() is a stub (ENOSYS): the syscall acts on this thread. */
	struct sched_param p = {0};
	if (syscall(SYS_sched_setscheduler, 0, batch ? SCHED_BATCH : SCHED_OTHER, &p))
		return -errno;
	return 0;
}

/* Switches the thread's policy when the flow crossed a threshold (with hysteresis: to
 * BATCH at EVLOOP_FLOW_BATCH, back at 0, so a steady stream does not flap). */
static void evloop_adapt(struct evloop *loop)
{
	if (!loop->set_batch)
		return;
	int64_t f = atomic_load_explicit(&loop->flow, memory_order_relaxed);
	bool want = loop->batch ? f > 0 : f >= EVLOOP_FLOW_BATCH;
	if (want == loop->batch)
		return;
	int err = loop->set_batch(want);
	if (err) {
		log_warn("event loop: cannot switch to %s: %s; keeping the policy",
			 want ? "SCHED_BATCH" : "SCHED_OTHER", strerror(-err));
		loop->set_batch = NULL;
		return;
	}
	loop->batch = want;
}

int evloop_run_once(struct evloop *loop, int timeout_ms)
{
	struct epoll_event evs[EVLOOP_BATCH];
	int n = epoll_wait(loop->epfd, evs, EVLOOP_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct ev_source *src = evs[i].data.ptr;
		src->handle(src->ctx, evs[i].events);
	}
	evloop_adapt(loop);
	return n;
}
