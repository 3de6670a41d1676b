/* Firecracker-style metrics: one JSON object per line, appended to metrics.metrics_path
 * every 60 seconds and when kiln exits. Counters are copied under each device's lock into
 * a snapshot, then formatted (pure, so it can be tested). */
#ifndef KILN_METRICS_H
#define KILN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/devices.h"
#include "vmm/evloop.h"
#include "vmm/serial.h"

#define METRICS_PERIOD_S 60
#define METRICS_ID_MAX 80 /* a device id, as in the transport's name */

struct metrics_blk {
	char id[METRICS_ID_MAX];
	uint64_t read_count, write_count, flush_count, read_bytes, write_bytes, io_errors;
};

struct metrics_net {
	char id[METRICS_ID_MAX];
	uint64_t rx_bytes, rx_packets, rx_drops, tx_bytes, tx_packets, tx_drops;
	uint64_t rx_throttled, tx_throttled;
};

struct metrics_snapshot {
	uint64_t utc_ms;
	const char *exit_reason; /* NULL while the VM runs */
	uint64_t uart_write_count;
	struct metrics_blk blk[VIRTIO_DEVICES_MAX];
	unsigned nr_blk;
	struct metrics_net net[VIRTIO_DEVICES_MAX];
	unsigned nr_net;
	int has_vsock;
	struct vsock_stats vsock;
};

struct metrics {
	int fd; /* -1: no metrics configured */
	struct serial *serial;
	struct virtio_set *virtio;
	struct evloop *loop;
	struct ev_source timer_src;
};

/* Formats `snap` as one JSON line (with its newline) into buf. Returns the length, or
 * -ENOSPC when it does not fit. */
int metrics_format(const struct metrics_snapshot *snap, char *buf, size_t cap);

/* Copies the counters of the UART and every virtio device into snap. */
void metrics_snapshot_take(struct metrics *m, struct metrics_snapshot *snap);

/* Starts the periodic flush on `loop` (a timerfd). fd -1 does nothing. 0 or -errno. */
int metrics_start(struct metrics *m, int fd, struct evloop *loop, struct serial *serial,
		  struct virtio_set *virtio);

/* Writes one line now; exit_reason is NULL while the VM runs. 0 or -errno. */
int metrics_flush(struct metrics *m, const char *exit_reason);

/* Stops the timer and closes the metrics fd. */
void metrics_stop(struct metrics *m);

#endif
