#include "vmm/console.h"
#include "vmm/log.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Pausing removes stdin from epoll: an empty event mask would still report EPOLLHUP. */
static void console_pause_input(struct console *c, bool pause)
{
	if (c->in_paused == pause || c->in_src.fd < 0 || c->in_eof)
		return;
	c->in_paused = pause;
	if (pause)
		evloop_del(c->loop, &c->in_src);
	else
		evloop_add(c->loop, &c->in_src, EPOLLIN);
}

/* Pushes what is pending; input stays paused until the guest made room for all of it. */
static void console_flush_pending(struct console *c)
{
	size_t left = c->pending_len - c->pending_off;
	if (left)
		c->pending_off += serial_rx_push(c->serial, c->pending + c->pending_off, left);
	console_pause_input(c, c->pending_off < c->pending_len);
}

static void console_on_input(void *ctx, uint32_t events)
{
	struct console *c = ctx;
	if (c->in_paused)
		return;
	ssize_t n = read(c->in_src.fd, c->pending, sizeof(c->pending));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (events & (EPOLLERR | EPOLLHUP) && n == 0)) {
		/* EOF or error: the guest keeps running with no input. */
		evloop_del(c->loop, &c->in_src);
		c->in_eof = true;
		return;
	}
	c->pending_off = 0;
	c->pending_len = (size_t)n;
	console_flush_pending(c);
}

static void console_on_space(void *ctx, uint32_t events)
{
	struct console *c = ctx;
	uint64_t cnt;
	(void)events;
	ssize_t rc = read(c->space_src.fd, &cnt, sizeof(cnt));
	(void)rc;
	console_flush_pending(c);
}

int console_prepare(struct console *c, int *space_efd)
{
	c->in_src.fd = -1;
	c->space_src.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->space_src.fd < 0)
		return -errno;
	*space_efd = c->space_src.fd;
	return 0;
}

static void console_make_raw(struct console *c, int fd)
{
	if (tcgetattr(fd, &c->saved_tio) < 0)
		return;
	struct termios raw = c->saved_tio;
	raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &raw) == 0)
		c->is_tty = true;
}

int console_start(struct console *c, struct serial *s, struct evloop *loop, int in_fd)
{
	c->serial = s;
	c->loop = loop;
	c->space_src =
	    (struct ev_source){.handle = console_on_space, .ctx = c, .fd = c->space_src.fd};
	int err = evloop_add(loop, &c->space_src, EPOLLIN);
	if (err)
		return err;
	c->in_src = (struct ev_source){.handle = console_on_input, .ctx = c, .fd = in_fd};
	err = evloop_add(loop, &c->in_src, EPOLLIN);
	if (err == -EPERM) { /* regular file or /dev/null-like: nothing to forward */
		c->in_src.fd = -1;
		return 0;
	}
	if (err)
		return err;
	if (isatty(in_fd))
		console_make_raw(c, in_fd);
	return 0;
}

void console_stop(struct console *c)
{
	if (c->is_tty)
		tcsetattr(c->in_src.fd, TCSANOW, &c->saved_tio);
	c->is_tty = false;
	if (c->space_src.fd >= 0)
		close(c->space_src.fd);
	c->space_src.fd = -1;
}
