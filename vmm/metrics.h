/* Firecracker-style metrics: one JSON object per line, appended to metrics.metrics_path
 * every 60 seconds and when kiln exits. Counters are copied under each device's lock into
 * a snapshot, then formatted (pure, so it can be tested). */
#ifndef KILN_METRICS_H
#define KILN_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/devices.h"
#include "vmm/evloop.h"
#include "vmm/kvm_stats.h"
#include "vmm/serial.h"
#include "vmm/vm.h"

#define METRICS_PERIOD_S 60
/* One flushed line at most: every device a VM can have, with the longest ids and values. */
#define METRICS_LINE_MAX 32768
#define METRICS_ID_MAX 80 /* a device id, as in the transport's name */

/* A device's counters by index; the names below are the JSON keys, as in Firecracker. */
enum {
	BLK_READS,
	BLK_WRITES,
	BLK_FLUSHES,
	BLK_READ_BYTES,
	BLK_WRITE_BYTES,
	BLK_IO_ERRORS,
	BLK_NR_COUNTERS
};
enum {
	NET_RX_BYTES,
	NET_RX_PACKETS,
	NET_RX_DROPS,
	NET_TX_BYTES,
	NET_TX_PACKETS,
	NET_TX_DROPS,
	NET_RX_THROTTLED,
	NET_TX_THROTTLED,
	NET_NR_COUNTERS
};
enum {
	VSOCK_RX_PACKETS,
	VSOCK_TX_PACKETS,
	VSOCK_RX_BYTES,
	VSOCK_TX_BYTES,
	VSOCK_CONNS_ADDED,
	VSOCK_CONNS_REMOVED,
	VSOCK_CONNS_REFUSED,
	VSOCK_MALFORMED,
	VSOCK_NR_COUNTERS
};
/* After a device's own counters, its transport's (kiln's, not Firecracker's except
 * <queue>queue_event_count): per queue events, chains used and interrupts asked for, then
 * interrupts raised and coalesced. */
#define METRICS_TRANSPORT_COUNTERS(nr_queues) (3 * (nr_queues) + 2)
#define BLK_NR_METRICS (BLK_NR_COUNTERS + METRICS_TRANSPORT_COUNTERS(1))
#define NET_NR_METRICS (NET_NR_COUNTERS + METRICS_TRANSPORT_COUNTERS(2))
#define VSOCK_NR_METRICS (VSOCK_NR_COUNTERS + METRICS_TRANSPORT_COUNTERS(3))
#define METRICS_MAX_COUNTERS VSOCK_NR_METRICS

/* Firecracker's latencies_us: the last duration of each operation, in microseconds. */
enum {
	LAT_FULL_CREATE_SNAPSHOT,
	LAT_DIFF_CREATE_SNAPSHOT,
	LAT_LOAD_SNAPSHOT,
	LAT_PAUSE_VM,
	LAT_RESUME_VM,
	LAT_NR
};

struct metrics_dev {
	char id[METRICS_ID_MAX];
	uint64_t c[METRICS_MAX_COUNTERS];
};

struct metrics_snapshot {
	uint64_t utc_ms;
	const char *exit_reason; /* NULL while the VM runs */
	uint64_t uart_write_count;
	struct metrics_dev blk[VIRTIO_DEVICES_MAX];
	unsigned nr_blk;
	struct metrics_dev net[VIRTIO_DEVICES_MAX];
	unsigned nr_net;
	int has_vsock;
	struct metrics_dev vsock;
	uint64_t latency_us[LAT_NR];
	uint64_t vcpu[VCPU_NR_COUNTS]; /* Firecracker's "vcpu", summed over the vCPUs */
	int has_kvm;		       /* KVM has binary stats: a "kvm" object */
	uint32_t kvm_present;	       /* which of kvm[] KVM has (bit KVM_STAT_*) */
	uint64_t kvm[KVM_STAT_NR];     /* KVM's counters, summed over the VM and its vCPUs */
};

struct metrics {
	int fd; /* -1: no metrics configured */
	struct serial *serial;
	struct virtio_set *virtio;
	struct vm *vm;
	struct kvm_stats kvm_stats; /* opened by metrics_start(), before the seccomp filters */
	struct evloop *loop;
	struct ev_source timer_src;
	_Atomic uint64_t latency_us[LAT_NR];
};

/* Records that operation `which` (LAT_*) took from start_ns (monotonic_ns()) until now. */
void metrics_latency(struct metrics *m, unsigned which, uint64_t start_ns);

/* Formats `snap` as one JSON line (with its newline) into buf. Returns the length, or
 * -ENOSPC when it does not fit. */
int metrics_format(const struct metrics_snapshot *snap, char *buf, size_t cap);

/* Writes the transport's counters (METRICS_TRANSPORT_COUNTERS of its queues) to c: per
 * queue the events, then chains used, then interrupts asked for, then interrupts raised and
 * coalesced. The caller holds t->lock. */
void metrics_transport_counts(const struct virtio_mmio *t, uint64_t *c);

/* Copies the counters of the UART, every virtio device, the vCPUs and KVM into snap. */
void metrics_snapshot_take(struct metrics *m, struct metrics_snapshot *snap);

/* Starts the periodic flush on `loop` (a timerfd) and opens KVM's binary stats of vm (its
 * vCPUs created; NULL: no vCPU or KVM counters). Call during setup: the stats files are
 * opened with an ioctl the seccomp filters deny. fd -1 does nothing. 0 or -errno. */
int metrics_start(struct metrics *m, int fd, struct evloop *loop, struct serial *serial,
		  struct virtio_set *virtio, struct vm *vm);

/* Writes one line now; exit_reason is NULL while the VM runs. 0 or -errno. */
int metrics_flush(struct metrics *m, const char *exit_reason);

/* Stops the timer and closes the metrics fd and KVM's stats files. */
void metrics_stop(struct metrics *m);

#endif
