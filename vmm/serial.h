/* A 16550A UART (COM1): guest output to a host fd, host input into a bounded receive FIFO,
 * interrupts through a level callback. Registers are accessed from vCPU threads and input
 * arrives from the event loop, so the state is locked. */
#ifndef KILN_SERIAL_H
#define KILN_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"

#define SERIAL_FIFO_LEN 64

struct serial_irq {
	int (*set_level)(void *ctx, int level);
	void *ctx;
};

struct serial {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thri_pending; /* "transmitter empty" interrupt not yet acknowledged */
	int irq_level;
	uint8_t rx[SERIAL_FIFO_LEN];
	unsigned rx_head, rx_count;
	bool rx_space_wanted; /* input was paused on a full FIFO; wake the loop on space */
	int out_fd;
	int space_efd; /* written when rx_space_wanted and the guest drained a byte; -1: none */
	struct serial_irq irq;
	uint64_t tx_bytes;
};

extern const struct bus_dev_ops serial_bus_ops;

/* Resets the UART; guest output goes to out_fd, FIFO space is announced on space_efd
 * (-1 for none). */
int serial_init(struct serial *s, int out_fd, int space_efd, const struct serial_irq *irq);
void serial_destroy(struct serial *s);

/* Queues host input for the guest; returns how many bytes fit (0 when the FIFO is full,
 * in which case space_efd is written once the guest has read some). */
size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len);

#endif
