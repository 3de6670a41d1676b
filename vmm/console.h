/* The host side of the serial console: stdin into the UART's receive FIFO, at the pace the
 * guest reads (at most one FIFO's worth buffered), and the terminal in raw mode. */
#ifndef KILN_CONSOLE_H
#define KILN_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "vmm/evloop.h"
#include "vmm/serial.h"

struct console {
	struct serial *serial;
	struct evloop *loop;
	struct ev_source in_src;    /* stdin */
	struct ev_source space_src; /* the UART's "FIFO has space" eventfd */
	bool in_paused;
	bool in_eof;
	bool is_tty;
	struct termios saved_tio;
	uint8_t pending[SERIAL_FIFO_LEN];
	size_t pending_off, pending_len;
};

/* Creates the space eventfd the UART needs (returned in *space_efd, before serial_init). */
int console_prepare(struct console *c, int *space_efd);

/* Starts forwarding in_fd to the UART. A tty goes to raw mode (no echo, no line editing,
 * keys go to the guest). An fd epoll cannot watch (a regular file) is ignored. */
int console_start(struct console *c, struct serial *s, struct evloop *loop, int in_fd);

/* Restores the terminal and closes the eventfd. */
void console_stop(struct console *c);

#endif
