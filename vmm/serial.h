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
#include "vmm/snapshot_file.h"

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

/* The UART in a snapshot (SNAP_SEC_SERIAL, index 0): registers, the interrupt line's level
 * and the receive FIFO from its oldest byte. Pointer-free, fixed layout. */
struct serial_state {
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm;
	uint8_t fcr;
	uint8_t thri_pending;
	uint8_t irq_level;
	uint8_t pad[1];
	uint32_t rx_count;
	uint8_t rx[SERIAL_FIFO_LEN];
};

extern const struct bus_dev_ops serial_bus_ops;

/* Resets the UART; guest output goes to out_fd, FIFO space is announced on space_efd
 * (-1 for none). */
int serial_init(struct serial *s, int out_fd, int space_efd, const struct serial_irq *irq);
void serial_destroy(struct serial *s);

/* Queues host input for the guest; returns how many bytes fit (0 when the FIFO is full,
 * in which case space_efd is written once the guest has read some). */
size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len);

/* Adds the SNAP_SEC_SERIAL section. 0 or the writer's -errno. */
int serial_save(struct serial *s, struct snap_writer *w);

/* Puts the saved UART back (before the vCPUs run), every value checked as the guest could
 * have set it (register bits, FIFO count <= SERIAL_FIFO_LEN). The interrupt line is left
 * alone: the interrupt controller's saved state holds its level. Host output and input
 * (out_fd, space_efd) stay the new process's. 0, or -EINVAL / -ENOENT with one line in
 * err; s is then unchanged. */
int serial_restore(struct serial *s, const struct snap_reader *r, char *err, size_t errlen);

#endif
