/* vcpu_handle_exit on a fake vCPU: port and MMIO exits reach the buses with KVM's data
 * layout (and never index past the kvm_run mapping), the other exits become VM exit
 * reasons. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define RUN_SIZE 4096
#define DATA_OFF 3072 /* past struct kvm_run, like KVM's PIO page */
#define DEV_PORT 0x3f8
#define DEV_MMIO 0xd0000000ULL

struct access {
	int write;
	uint64_t off;
	uint32_t len;
	uint8_t data[8];
};

struct rec_dev {
	struct access log[64];
	unsigned n;
	uint8_t next; /* reads return next, next+1, ... */
};

static void rec(struct rec_dev *d, int write, uint64_t off, const uint8_t *data, uint32_t len)
{
	assert_true(len <= 8);
	if (d->n < 64) {
		struct access *a = &d->log[d->n];
		*a = (struct access){.write = write, .off = off, .len = len};
		memcpy(a->data, data, len);
	}
	d->n++;
}

static void dev_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct rec_dev *d = dev;
	for (uint32_t i = 0; i < len; i++)
		data[i] = d->next++;
	rec(d, 0, off, data, len);
}

static void dev_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	rec(dev, 1, off, data, len);
}

static const struct bus_dev_ops dev_ops = {.read = dev_read, .write = dev_write};

struct fx {
	struct vm *vm;
	struct vcpu *v;
	struct kvm_run *run;
	uint8_t *raw;
	struct rec_dev pio_dev, mmio_dev;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->vm = calloc(1, sizeof(*f->vm));
	assert_non_null(f->vm);
	atomic_init(&f->vm->exit.reason, VM_RUNNING);
	f->vm->exit.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(f->vm->exit.efd >= 0);
	assert_int_equal(bus_add(&f->vm->pio, DEV_PORT, 8, &dev_ops, &f->pio_dev), 0);
	assert_int_equal(bus_add(&f->vm->mmio, DEV_MMIO, 0x1000, &dev_ops, &f->mmio_dev), 0);
	f->v = &f->vm->vcpu[0];
	f->v->index = 0;
	f->v->fd = -1;
	f->v->vm = f->vm;
	f->v->run_size = RUN_SIZE;
	/* Exactly run_size bytes: ASan catches any access past the mapping KVM would give. */
	f->raw = calloc(1, RUN_SIZE);
	assert_non_null(f->raw);
	f->run = (struct kvm_run *)f->raw;
	f->v->run = f->run;
	f->vm->nr_vcpus = 1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	close(f->vm->exit.efd);
	free(f->raw);
	free(f->vm);
	free(f);
	return 0;
}

static uint64_t exit_wakeups(struct fx *f)
{
	uint64_t v = 0;
	if (read(f->vm->exit.efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static int reason(struct fx *f)
{
	return atomic_load(&f->vm->exit.reason);
}

static void set_io(struct fx *f, uint8_t dir, uint8_t size, uint16_t port, uint32_t count,
		   uint64_t data_offset)
{
	f->run->exit_reason = KVM_EXIT_IO;
	f->run->io.direction = dir;
	f->run->io.size = size;
	f->run->io.port = port;
	f->run->io.count = count;
	f->run->io.data_offset = data_offset;
}

static void test_io_out_single(void **state)
{
	struct fx *f = *state;
	set_io(f, KVM_EXIT_IO_OUT, 1, DEV_PORT + 5, 1, DATA_OFF);
	f->raw[DATA_OFF] = 0x41;
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->pio_dev.n, 1);
	struct access *a = &f->pio_dev.log[0];
	assert_int_equal(a->write, 1);
	assert_int_equal(a->off, 5);
	assert_int_equal(a->len, 1);
	assert_int_equal(a->data[0], 0x41);
	assert_int_equal(f->mmio_dev.n, 0);
	assert_int_equal(reason(f), VM_RUNNING);
	assert_int_equal(exit_wakeups(f), 0);
}

static void test_io_out_string(void **state)
{
	struct fx *f = *state;
	/* rep outsw: count elements of size bytes, one after another in the data area. */
	const uint8_t words[6] = {0x11, 0x12, 0x21, 0x22, 0x31, 0x32};
	memcpy(f->raw + DATA_OFF, words, sizeof(words));
	set_io(f, KVM_EXIT_IO_OUT, 2, DEV_PORT + 2, 3, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->pio_dev.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		struct access *a = &f->pio_dev.log[i];
		assert_int_equal(a->write, 1);
		assert_int_equal(a->off, 2); /* same port every time */
		assert_int_equal(a->len, 2);
		assert_memory_equal(a->data, words + 2 * i, 2);
	}
	/* Dword string at another data offset. */
	f->pio_dev.n = 0;
	const uint8_t dw[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	memcpy(f->raw + 2600, dw, 8);
	set_io(f, KVM_EXIT_IO_OUT, 4, DEV_PORT + 4, 2, 2600);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->pio_dev.n, 2);
	assert_int_equal(f->pio_dev.log[1].off, 4);
	assert_memory_equal(f->pio_dev.log[0].data, dw, 4);
	assert_memory_equal(f->pio_dev.log[1].data, dw + 4, 4);
}

static void test_io_in(void **state)
{
	struct fx *f = *state;
	f->pio_dev.next = 0xa0;
	set_io(f, KVM_EXIT_IO_IN, 1, DEV_PORT, 1, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->raw[DATA_OFF], 0xa0);
	/* rep insl, four dwords. */
	f->pio_dev.n = 0;
	memset(f->raw + DATA_OFF, 0, 16);
	set_io(f, KVM_EXIT_IO_IN, 4, DEV_PORT + 4, 4, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->pio_dev.n, 4);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(f->raw[DATA_OFF + i], (uint8_t)(0xa1 + i));
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(f->pio_dev.log[i].write, 0);
		assert_int_equal(f->pio_dev.log[i].off, 4);
		assert_int_equal(f->pio_dev.log[i].len, 4);
	}
	/* Word reads. */
	f->pio_dev.n = 0;
	set_io(f, KVM_EXIT_IO_IN, 2, DEV_PORT + 6, 2, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->pio_dev.n, 2);
	assert_int_equal(f->raw[DATA_OFF + 3], 0xb4);
}

static void test_io_unclaimed(void **state)
{
	struct fx *f = *state;
	/* Nothing at 0x80: reads see all-ones, writes vanish, the vCPU goes on. */
	memset(f->raw + DATA_OFF, 0, 8);
	set_io(f, KVM_EXIT_IO_IN, 4, 0x80, 2, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(f->raw[DATA_OFF + i], 0xff);
	set_io(f, KVM_EXIT_IO_OUT, 1, 0x80, 1, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	/* A dword at the last byte of the device straddles its end: unclaimed too. */
	memset(f->raw + DATA_OFF, 0, 4);
	set_io(f, KVM_EXIT_IO_IN, 4, DEV_PORT + 6, 1, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->raw[DATA_OFF], 0xff);
	assert_int_equal(f->pio_dev.n, 0);
	assert_int_equal(reason(f), VM_RUNNING);
}

static void test_io_bounds(void **state)
{
	struct fx *f = *state;
	/* Exactly fitting at the very end of the mapping is fine. */
	set_io(f, KVM_EXIT_IO_OUT, 1, DEV_PORT, 2, RUN_SIZE - 2);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->pio_dev.n, 2);
	set_io(f, KVM_EXIT_IO_IN, 4, DEV_PORT, 1, RUN_SIZE - 4);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->pio_dev.n, 3);
	set_io(f, KVM_EXIT_IO_IN, 1, DEV_PORT, 0, RUN_SIZE); /* nothing to move */
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->pio_dev.n, 3);

	/* Anything that would run past run_size is ignored, never half-done. */
	static const struct {
		uint8_t size;
		uint32_t count;
		uint64_t off;
	} bad[] = {
	    {1, 3, RUN_SIZE - 2},   {4, 1, RUN_SIZE - 3}, {2, 2, RUN_SIZE - 3},
	    {1, 1, RUN_SIZE},	    {1, 1, RUN_SIZE + 1}, {4, 1, UINT64_MAX},
	    {4, 1, UINT64_MAX - 3}, {1, 0, RUN_SIZE + 1}, {4, UINT32_MAX, DATA_OFF},
	    {4, 0x40000001, 0}, /* size * count wraps 32 bits to 4 */
	    {8, 0x20000000, 0}, /* wraps to 0 in 32 bits */
	    {0, 1, DATA_OFF},	/* no size */
	    {9, 1, DATA_OFF},	/* larger than any access */
	    {255, 1, DATA_OFF},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int dir = 0; dir < 2; dir++) {
			set_io(f, dir ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN, bad[i].size, DEV_PORT,
			       bad[i].count, bad[i].off);
			assert_int_equal(vcpu_handle_exit(f->v), 0);
			assert_int_equal(f->pio_dev.n, 3);
		}
	}
	assert_int_equal(reason(f), VM_RUNNING);
	assert_int_equal(exit_wakeups(f), 0);
}

static void set_mmio(struct fx *f, uint64_t addr, uint32_t len, uint8_t is_write)
{
	f->run->exit_reason = KVM_EXIT_MMIO;
	f->run->mmio.phys_addr = addr;
	f->run->mmio.len = len;
	f->run->mmio.is_write = is_write;
}

static void test_mmio(void **state)
{
	struct fx *f = *state;
	const uint8_t val[4] = {0xde, 0xad, 0xbe, 0xef};
	memcpy(f->run->mmio.data, val, 4);
	set_mmio(f, DEV_MMIO + 0x50, 4, 1);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->mmio_dev.n, 1);
	assert_int_equal(f->mmio_dev.log[0].write, 1);
	assert_int_equal(f->mmio_dev.log[0].off, 0x50);
	assert_int_equal(f->mmio_dev.log[0].len, 4);
	assert_memory_equal(f->mmio_dev.log[0].data, val, 4);

	f->mmio_dev.next = 0x10;
	memset(f->run->mmio.data, 0, 8);
	set_mmio(f, DEV_MMIO + 0xff8, 8, 0);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->mmio_dev.n, 2);
	assert_int_equal(f->mmio_dev.log[1].off, 0xff8);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(f->run->mmio.data[i], 0x10 + i);

	set_mmio(f, DEV_MMIO + 0x70, 1, 0);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->run->mmio.data[0], 0x18);
	assert_int_equal(f->pio_dev.n, 0); /* MMIO never reaches the port bus */

	/* Unclaimed: reads all-ones, including one straddling the window's end. */
	memset(f->run->mmio.data, 0, 8);
	set_mmio(f, 0xfee00000, 4, 0);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->run->mmio.data[3], 0xff);
	memset(f->run->mmio.data, 0, 8);
	set_mmio(f, DEV_MMIO + 0xffc, 8, 0);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->run->mmio.data[7], 0xff);
	set_mmio(f, DEV_MMIO + 0x1000, 4, 1);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->mmio_dev.n, 3);

	/* Lengths KVM would never report are ignored. */
	set_mmio(f, DEV_MMIO, 0, 1);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	set_mmio(f, DEV_MMIO, 9, 0);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	set_mmio(f, DEV_MMIO, UINT32_MAX, 1);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(f->mmio_dev.n, 3);
	assert_int_equal(reason(f), VM_RUNNING);
}

static void test_continue_exits(void **state)
{
	struct fx *f = *state;
	f->run->exit_reason = KVM_EXIT_HLT;
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	f->run->exit_reason = KVM_EXIT_INTR;
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(reason(f), VM_RUNNING);
	assert_int_equal(exit_wakeups(f), 0);
}

static void expect_stop(struct fx *f, uint32_t exit_reason, uint32_t event, int want)
{
	atomic_store(&f->vm->exit.reason, VM_RUNNING);
	f->run->exit_reason = exit_reason;
	f->run->system_event.type = event;
	assert_int_equal(vcpu_handle_exit(f->v), 1);
	assert_int_equal(reason(f), want);
	assert_int_equal(exit_wakeups(f), 1);
}

/* A triple fault is a guest crash, not a reboot: its own reason, and kiln exits 1. */
static void test_shutdown_is_triple_fault(void **state)
{
	struct fx *f = *state;
	expect_stop(f, KVM_EXIT_SHUTDOWN, 0, VM_EXIT_TRIPLE_FAULT);
	assert_string_equal(vm_exit_reason_name(VM_EXIT_TRIPLE_FAULT), "triple-fault");
	assert_int_equal(vm_exit_code(VM_EXIT_TRIPLE_FAULT), KILN_EXIT_ERROR);
}

/* The names of kiln's last stderr line and metrics' exit_reason, and the exit codes. */
static void test_reason_names_and_codes(void **state)
{
	(void)state;
	static const struct {
		int reason;
		const char *name;
		int code;
	} want[] = {
	    {VM_EXIT_REBOOT, "reboot", 0},
	    {VM_EXIT_POWEROFF, "poweroff", 0},
	    {VM_EXIT_SIGNAL, "signal", 0},
	    {VM_EXIT_ERROR, "error", 1},
	    {VM_EXIT_TRIPLE_FAULT, "triple-fault", 1},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_string_equal(vm_exit_reason_name(want[i].reason), want[i].name);
		assert_int_equal(vm_exit_code(want[i].reason), want[i].code);
	}
	assert_string_equal(vm_exit_reason_name(VM_RUNNING), "running");
	assert_string_equal(vm_exit_reason_name(-1), "unknown");
	assert_string_equal(vm_exit_reason_name(VM_EXIT_TRIPLE_FAULT + 1), "unknown");
}

static void test_system_events(void **state)
{
	struct fx *f = *state;
	expect_stop(f, KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SHUTDOWN, VM_EXIT_POWEROFF);
	expect_stop(f, KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_RESET, VM_EXIT_REBOOT);
	expect_stop(f, KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_CRASH, VM_EXIT_ERROR);
	expect_stop(f, KVM_EXIT_SYSTEM_EVENT, 0x7777, VM_EXIT_ERROR);
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	f->run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	expect_stop(f, KVM_EXIT_INTERNAL_ERROR, 0, VM_EXIT_ERROR);
	f->run->fail_entry.hardware_entry_failure_reason = 0x80000021ULL;
	expect_stop(f, KVM_EXIT_FAIL_ENTRY, 0, VM_EXIT_ERROR);
	expect_stop(f, KVM_EXIT_UNKNOWN, 0, VM_EXIT_ERROR);
	expect_stop(f, KVM_EXIT_DEBUG, 0, VM_EXIT_ERROR);
	expect_stop(f, 0xdeadbeef, 0, VM_EXIT_ERROR);
}

static uint64_t count(struct fx *f, unsigned which)
{
	return atomic_load(&f->v->counts[which]);
}

/* Firecracker's vcpu metrics: one count per exit (a string I/O of 4 items is one exit), by
 * direction; failures for the exits that end the vCPU in error, not for a guest's own ends. */
static void test_metric_counts(void **state)
{
	struct fx *f = *state;
	set_io(f, KVM_EXIT_IO_OUT, 1, DEV_PORT, 4, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	set_io(f, KVM_EXIT_IO_OUT, 1, 0x80, 1, DATA_OFF); /* unclaimed: still an exit */
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	set_io(f, KVM_EXIT_IO_IN, 2, DEV_PORT, 1, DATA_OFF);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	set_mmio(f, DEV_MMIO, 4, 1);
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	for (int i = 0; i < 3; i++) {
		set_mmio(f, DEV_MMIO + 4, 4, 0);
		assert_int_equal(vcpu_handle_exit(f->v), 0);
	}
	f->run->exit_reason = KVM_EXIT_HLT;
	assert_int_equal(vcpu_handle_exit(f->v), 0);
	assert_int_equal(count(f, VCPU_EXIT_IO_OUT), 2);
	assert_int_equal(count(f, VCPU_EXIT_IO_IN), 1);
	assert_int_equal(count(f, VCPU_EXIT_MMIO_WRITE), 1);
	assert_int_equal(count(f, VCPU_EXIT_MMIO_READ), 3);
	assert_int_equal(count(f, VCPU_FAILURES), 0);
	expect_stop(f, KVM_EXIT_SHUTDOWN, 0, VM_EXIT_TRIPLE_FAULT);
	expect_stop(f, KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SHUTDOWN, VM_EXIT_POWEROFF);
	assert_int_equal(count(f, VCPU_FAILURES), 0);
	expect_stop(f, KVM_EXIT_INTERNAL_ERROR, 0, VM_EXIT_ERROR);
	expect_stop(f, KVM_EXIT_FAIL_ENTRY, 0, VM_EXIT_ERROR);
	expect_stop(f, 0xdeadbeef, 0, VM_EXIT_ERROR);
	assert_int_equal(count(f, VCPU_FAILURES), 3);
	assert_int_equal(count(f, VCPU_EXIT_IO_OUT) + count(f, VCPU_EXIT_MMIO_READ), 5);
}

static void test_first_reason_wins(void **state)
{
	struct fx *f = *state;
	f->run->exit_reason = KVM_EXIT_SHUTDOWN;
	assert_int_equal(vcpu_handle_exit(f->v), 1);
	/* Another vCPU fails afterwards: still the triple fault, and the loop was woken once. */
	struct vcpu *v1 = &f->vm->vcpu[1];
	uint8_t *raw1 = calloc(1, RUN_SIZE);
	assert_non_null(raw1);
	*v1 = (struct vcpu){
	    .index = 1, .fd = -1, .run = (struct kvm_run *)raw1, .run_size = RUN_SIZE, .vm = f->vm};
	v1->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	assert_int_equal(vcpu_handle_exit(v1), 1);
	v1->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	v1->run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	assert_int_equal(vcpu_handle_exit(v1), 1);
	assert_int_equal(reason(f), VM_EXIT_TRIPLE_FAULT);
	assert_int_equal(exit_wakeups(f), 1);
	free(raw1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
	const struct CMUnitTest tests[] = {
	    T(test_io_out_single),
	    T(test_io_out_string),
	    T(test_io_in),
	    T(test_io_unclaimed),
	    T(test_io_bounds),
	    T(test_mmio),
	    T(test_continue_exits),
	    T(test_shutdown_is_triple_fault),
	    T(test_reason_names_and_codes),
	    T(test_system_events),
	    T(test_errors),
	    T(test_metric_counts),
	    T(test_first_reason_wins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
