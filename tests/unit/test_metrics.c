/* Metrics: the JSON line's shape (parsed back with jsmn), per-device and aggregate objects,
 * the vcpu and kvm objects, overflow, and a flush through a pipe. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define JSMN_STATIC
#include <jsmn.h>

#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/vsock.h"
#include "vmm/log.h"
#include "vmm/metrics.h"

static void fill(struct metrics_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->utc_ms = 1234;
	s->exit_reason = "reboot";
	s->uart_write_count = 42;
	s->nr_blk = 2;
	snprintf(s->blk[0].id, sizeof(s->blk[0].id), "rootfs");
	s->blk[0].c[BLK_READS] = 3;
	s->blk[0].c[BLK_WRITE_BYTES] = 4096;
	snprintf(s->blk[1].id, sizeof(s->blk[1].id), "data");
	s->blk[1].c[BLK_READS] = 4;
	s->nr_net = 1;
	snprintf(s->net[0].id, sizeof(s->net[0].id), "eth0");
	s->net[0].c[NET_TX_BYTES] = 1500;
	s->has_vsock = 1;
	s->vsock.c[VSOCK_CONNS_ADDED] = 5;
}

/* Parses buf as one JSON object; returns the number of tokens (negative on error). */
static int parse(const char *buf, size_t len, jsmntok_t *tok, unsigned ntok)
{
	jsmn_parser p;
	jsmn_init(&p);
	return jsmn_parse(&p, buf, len, tok, ntok);
}

static void test_format_shape(void **state)
{
	(void)state;
	struct metrics_snapshot s;
	char buf[8192];
	jsmntok_t tok[512];
	fill(&s);
	int len = metrics_format(&s, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(buf[len - 1], '\n');
	assert_int_equal(strlen(buf), (size_t)len);
	assert_null(memchr(buf, '\n', len - 1)); /* exactly one line */
	int n = parse(buf, len - 1, tok, 512);
	assert_true(n > 0);
	assert_int_equal(tok[0].type, JSMN_OBJECT);
	assert_non_null(strstr(buf, "\"vmm\":{\"exit_reason\":\"reboot\"}"));
	assert_non_null(strstr(buf, "\"uart\":{\"write_count\":42}"));
	assert_non_null(strstr(buf, "\"block_rootfs\":{\"read_count\":3,"));
	assert_non_null(strstr(buf, "\"block_data\":{\"read_count\":4,"));
	assert_non_null(strstr(buf, "\"block\":{\"read_count\":7,")); /* the aggregate */
	assert_non_null(strstr(buf, "\"write_bytes\":4096"));
	assert_non_null(strstr(buf, "\"net_eth0\":{"));
	assert_non_null(strstr(buf, "\"tx_bytes_count\":1500"));
	assert_non_null(strstr(buf, "\"vsock\":{"));
	assert_non_null(strstr(buf, "\"conns_added\":5"));
}

static void test_running_has_no_exit_reason(void **state)
{
	(void)state;
	struct metrics_snapshot s;
	char buf[8192];
	fill(&s);
	s.exit_reason = NULL;
	s.has_vsock = 0;
	int len = metrics_format(&s, buf, sizeof(buf));
	assert_true(len > 0);
	assert_null(strstr(buf, "exit_reason"));
	assert_null(strstr(buf, "\"vsock\""));
}

/* Firecracker's latencies_us: the last duration of each snapshot and pause operation. */
static void test_latencies(void **state)
{
	(void)state;
	struct metrics_snapshot s;
	struct metrics m = {.fd = -1};
	char buf[4096];
	fill(&s);
	uint64_t t0 = monotonic_ns();
	usleep(2000);
	metrics_latency(&m, LAT_LOAD_SNAPSHOT, t0);
	metrics_latency(&m, LAT_NR, t0); /* out of range: ignored */
	uint64_t us = atomic_load(&m.latency_us[LAT_LOAD_SNAPSHOT]);
	assert_true(us >= 2000 && us < 10000000);
	s.latency_us[LAT_LOAD_SNAPSHOT] = 1234;
	s.latency_us[LAT_RESUME_VM] = 7;
	assert_true(metrics_format(&s, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, ",\"latencies_us\":{\"full_create_snapshot\":0,"
				    "\"diff_create_snapshot\":0,\"load_snapshot\":1234,"
				    "\"pause_vm\":0,\"resume_vm\":7},\"vcpu\":{"));
}

/* Firecracker's vcpu object, always there; kiln's kvm object only with KVM's binary stats,
 * holding the counters this KVM has, in KVM's names. */
static void test_vcpu_and_kvm(void **state)
{
	(void)state;
	struct metrics_snapshot s;
	char buf[8192];
	jsmntok_t tok[512];
	fill(&s);
	s.vcpu[VCPU_EXIT_IO_IN] = 1;
	s.vcpu[VCPU_EXIT_IO_OUT] = 23;
	s.vcpu[VCPU_EXIT_MMIO_READ] = 4;
	s.vcpu[VCPU_EXIT_MMIO_WRITE] = 5;
	s.vcpu[VCPU_FAILURES] = 6;
	int len = metrics_format(&s, buf, sizeof(buf));
	assert_true(len > 0);
	assert_non_null(strstr(buf,
			       ",\"vcpu\":{\"exit_io_in\":1,\"exit_io_out\":23,"
			       "\"exit_mmio_read\":4,\"exit_mmio_write\":5,\"failures\":6}}\n"));
	assert_null(strstr(buf, "\"kvm\""));
	s.has_kvm = 1;
	s.kvm_present = (1u << KVM_STAT_EXITS) | (1u << KVM_STAT_IRQ_INJECTIONS);
	s.kvm[KVM_STAT_EXITS] = 1000;
	s.kvm[KVM_STAT_IO_EXITS] = 77; /* not present: not printed */
	s.kvm[KVM_STAT_IRQ_INJECTIONS] = 9;
	len = metrics_format(&s, buf, sizeof(buf));
	assert_true(len > 0);
	assert_true(parse(buf, len - 1, tok, 512) > 0);
	assert_non_null(
	    strstr(buf, "\"failures\":6},\"kvm\":{\"exits\":1000,\"irq_injections\":9}}\n"));
	s.kvm_present = 0; /* a KVM with none of them: an empty object, still valid JSON */
	len = metrics_format(&s, buf, sizeof(buf));
	assert_non_null(strstr(buf, ",\"kvm\":{}}\n"));
	assert_true(parse(buf, len - 1, tok, 512) > 0);
}

/* The vcpu fields are the sums over the vCPUs of their own counts. */
static void test_vcpu_sums(void **state)
{
	(void)state;
	static struct vm vm; /* large: not on the stack */
	struct metrics m;
	struct evloop loop;
	struct metrics_snapshot s;
	assert_int_equal(evloop_init(&loop), 0);
	vm.kvm_fd = -1; /* no KVM: no kvm object */
	vm.nr_vcpus = 3;
	atomic_store(&vm.vcpu[0].counts[VCPU_EXIT_IO_OUT], 10);
	atomic_store(&vm.vcpu[2].counts[VCPU_EXIT_IO_OUT], 5);
	atomic_store(&vm.vcpu[1].counts[VCPU_EXIT_MMIO_READ], 7);
	atomic_store(&vm.vcpu[3].counts[VCPU_FAILURES], 99); /* not a vCPU of this VM */
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(metrics_start(&m, p[1], &loop, NULL, NULL, &vm), 0);
	metrics_snapshot_take(&m, &s);
	assert_int_equal(s.vcpu[VCPU_EXIT_IO_OUT], 15);
	assert_int_equal(s.vcpu[VCPU_EXIT_MMIO_READ], 7);
	assert_int_equal(s.vcpu[VCPU_FAILURES], 0);
	assert_int_equal(s.has_kvm, 0);
	metrics_stop(&m);
	close(p[0]);
	evloop_destroy(&loop);
}

static void test_overflow(void **state)
{
	(void)state;
	struct metrics_snapshot s;
	char buf[8192];
	fill(&s);
	int full = metrics_format(&s, buf, sizeof(buf));
	assert_true(full > 0);
	for (size_t cap = 0; cap <= (size_t)full; cap += 7)
		assert_int_equal(metrics_format(&s, buf, cap), -ENOSPC);
	assert_int_equal(metrics_format(&s, buf, full + 1), full);
}

/* The most a VM can report still fits one flushed line: every device slot a net device
 * (the kind with the most counters, after vsock) with the longest id, vsock, all of KVM's
 * counters, every value at its widest. */
static void test_worst_case_fits_a_line(void **state)
{
	(void)state;
	static struct metrics_snapshot s; /* large: not on the stack */
	static char buf[METRICS_LINE_MAX];
	memset(&s, 0xff, sizeof(s));
	s.exit_reason = "reboot";
	s.nr_blk = 0;
	s.nr_net = VIRTIO_DEVICES_MAX;
	for (unsigned d = 0; d < VIRTIO_DEVICES_MAX; d++) {
		memset(s.net[d].id, 'n', METRICS_ID_MAX - 1);
		s.net[d].id[METRICS_ID_MAX - 1] = 0;
	}
	s.has_vsock = 1;
	s.has_kvm = 1;
	int len = metrics_format(&s, buf, sizeof(buf));
	assert_true(len > 0);
	print_message("worst case: %d of %d bytes\n", len, METRICS_LINE_MAX);
}

/* The transport's counters follow the device's: per queue events, used chains and
 * interrupts asked for, then interrupts raised and coalesced. */
static void test_transport_counts(void **state)
{
	(void)state;
	static const struct virtio_dev_ops ops = {.nr_queues = 2};
	static struct virtio_mmio t;
	t.ops = &ops;
	t.vq[0].counts = (struct virtq_counts){.events = 1, .used = 2, .notifies = 3};
	t.vq[1].counts = (struct virtq_counts){.events = 4, .used = 5, .notifies = 6};
	t.vq[2].counts = (struct virtq_counts){.events = 99}; /* past nr_queues */
	t.interrupts = 7;
	t.coalesced = 8;
	uint64_t c[METRICS_TRANSPORT_COUNTERS(2) + 1];
	memset(c, 0xee, sizeof(c));
	metrics_transport_counts(&t, c);
	const uint64_t want[] = {1, 4, 2, 5, 3, 6, 7, 8};
	assert_int_equal(METRICS_TRANSPORT_COUNTERS(2), 8);
	assert_memory_equal(c, want, sizeof(want));
	assert_int_equal(c[8], 0xeeeeeeeeeeeeeeeeULL); /* nothing past them */

	/* Each kind's names cover exactly its device's queues. */
	assert_int_equal(BLK_NR_COUNTERS + METRICS_TRANSPORT_COUNTERS(virtio_blk_ops.nr_queues),
			 BLK_NR_METRICS);
	assert_int_equal(NET_NR_COUNTERS + METRICS_TRANSPORT_COUNTERS(virtio_net_ops.nr_queues),
			 NET_NR_METRICS);
	assert_int_equal(VSOCK_NR_COUNTERS + METRICS_TRANSPORT_COUNTERS(virtio_vsock_ops.nr_queues),
			 VSOCK_NR_METRICS);

	struct metrics_snapshot s;
	char buf[8192];
	fill(&s);
	metrics_transport_counts(&t, s.net[0].c + NET_NR_COUNTERS);
	assert_true(metrics_format(&s, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "\"rx_queue_event_count\":1,\"tx_queue_event_count\":4,"
				    "\"rx_queue_used_count\":2,\"tx_queue_used_count\":5,"
				    "\"rx_queue_notify_count\":3,\"tx_queue_notify_count\":6,"
				    "\"interrupt_count\":7,\"interrupt_coalesced_count\":8}"));
}

static void test_flush_to_pipe(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct metrics m;
	struct evloop loop;
	assert_int_equal(evloop_init(&loop), 0);
	assert_int_equal(metrics_start(&m, p[1], &loop, NULL, NULL, NULL), 0);
	assert_int_equal(metrics_flush(&m, "poweroff"), 0);
	char buf[4096];
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strstr(buf, "\"exit_reason\":\"poweroff\""));
	assert_int_equal(buf[n - 1], '\n');
	metrics_stop(&m); /* closes p[1] */
	assert_int_equal(read(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
	evloop_destroy(&loop);
}

static void test_no_metrics_configured(void **state)
{
	(void)state;
	struct metrics m;
	struct evloop loop;
	assert_int_equal(evloop_init(&loop), 0);
	assert_int_equal(metrics_start(&m, -1, &loop, NULL, NULL, NULL), 0);
	assert_int_equal(metrics_flush(&m, "reboot"), 0);
	metrics_stop(&m);
	evloop_destroy(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_shape),
	    cmocka_unit_test(test_running_has_no_exit_reason),
	    cmocka_unit_test(test_latencies),
	    cmocka_unit_test(test_vcpu_and_kvm),
	    cmocka_unit_test(test_vcpu_sums),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_flush_to_pipe),
	    cmocka_unit_test(test_no_metrics_configured),
	    cmocka_unit_test(test_worst_case_fits_a_line),
	    cmocka_unit_test(test_transport_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
