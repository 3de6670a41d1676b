#include "vmm/evloop.h"

#include <errno.h>
#include <sched.h>
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

int evloop_thread_batch(void)
{
	/* musl's sched_setscheduler() is a stub (ENOSYS): the syscall acts on this thread. */
	struct sched_param p = {0};
	if (syscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &p))
		return -errno;
	return 0;
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
	return n;
}
