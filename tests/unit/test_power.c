/* How the guest ends itself: the i8042 reset line and the ACPI sleep/reset registers, each
 * recorded as a VM exit reason with the event loop woken exactly once. */
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
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/power.h"
#include "vmm/vm.h"

#define STS_OBF 0x01
#define STS_IBF 0x02
#define STS_SYS 0x04
#define STS_CMD 0x08
#define SLP_EN 0x20
#define SLP_TYP(t) ((t) << 2)

struct fx {
	struct vm_exit_ctl exit;
	struct i8042 kbd;
	struct acpi_pm pm;
	struct bus pio;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	atomic_init(&f->exit.reason, VM_RUNNING);
	f->exit.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(f->exit.efd >= 0);
	assert_int_equal(i8042_init(&f->kbd, &f->exit), 0);
	acpi_pm_init(&f->pm, &f->exit);
	assert_int_equal(bus_add(&f->pio, LAYOUT_I8042_DATA_PORT, 5, &i8042_bus_ops, &f->kbd), 0);
	assert_int_equal(bus_add(&f->pio, LAYOUT_ACPI_SLEEP_CTL_PORT, 3, &acpi_pm_bus_ops, &f->pm),
			 0);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	i8042_destroy(&f->kbd);
	close(f->exit.efd);
	free(f);
	return 0;
}

static uint8_t in8(struct fx *f, uint16_t port)
{
	uint8_t v = 0x5e;
	assert_int_equal(bus_read(&f->pio, port, &v, 1), 0);
	return v;
}

static void out8(struct fx *f, uint16_t port, uint8_t v)
{
	assert_int_equal(bus_write(&f->pio, port, &v, 1), 0);
}

static uint8_t kbd_status(struct fx *f)
{
	return in8(f, LAYOUT_I8042_CMD_PORT);
}

static void kbd_cmd(struct fx *f, uint8_t cmd)
{
	out8(f, LAYOUT_I8042_CMD_PORT, cmd);
}

/* What Linux's i8042_wait_read + data read does: OBF must be set, then the byte. */
static uint8_t kbd_read_data(struct fx *f)
{
	assert_true(kbd_status(f) & STS_OBF);
	uint8_t v = in8(f, LAYOUT_I8042_DATA_PORT);
	assert_false(kbd_status(f) & STS_OBF);
	return v;
}

/* Times the exit eventfd was written since the last call. */
static uint64_t exit_wakeups(struct fx *f)
{
	uint64_t v = 0;
	if (read(f->exit.efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static int reason(struct fx *f)
{
	return atomic_load(&f->exit.reason);
}

static void assert_still_running(struct fx *f)
{
	assert_int_equal(reason(f), VM_RUNNING);
	assert_int_equal(exit_wakeups(f), 0);
}

static void test_i8042_status_polling(void **state)
{
	struct fx *f = *state;
	/* Idle: input buffer never full (kb_wait() in Linux's reboot path spins on IBF),
	 * nothing to read, system flag set after POST. */
	for (int i = 0; i < 1000; i++) {
		uint8_t st = kbd_status(f);
		assert_int_equal(st & (STS_IBF | STS_OBF), 0);
		assert_true(st & STS_SYS);
	}
	/* Reading data with nothing in the buffer does not invent OBF. */
	in8(f, LAYOUT_I8042_DATA_PORT);
	assert_int_equal(kbd_status(f) & STS_OBF, 0);
	/* Ports 0x61..0x63 belong to no i8042 register: all-ones, writes ignored. */
	for (uint16_t p = 0x61; p <= 0x63; p++) {
		assert_int_equal(in8(f, p), 0xff);
		out8(f, p, 0xfe);
	}
	assert_still_running(f);
	/* Ports outside the i8042 window are not claimed. */
	uint8_t v;
	assert_int_equal(bus_read(&f->pio, 0x65, &v, 1), -ENOENT);
	assert_int_equal(bus_read(&f->pio, 0x5f, &v, 1), -ENOENT);
}

static void test_i8042_command_byte(void **state)
{
	struct fx *f = *state;
	kbd_cmd(f, 0x20);
	assert_true(kbd_status(f) & STS_CMD); /* last write went to the command port */
	assert_int_equal(kbd_read_data(f), 0x45);
	kbd_cmd(f, 0x60);
	out8(f, LAYOUT_I8042_DATA_PORT, 0x65);
	assert_false(kbd_status(f) & STS_CMD);
	assert_false(kbd_status(f) & STS_OBF); /* writing the CTR produces no reply */
	kbd_cmd(f, 0x20);
	assert_int_equal(kbd_read_data(f), 0x65);
	/* A data byte with no command pending is swallowed. */
	out8(f, LAYOUT_I8042_DATA_PORT, 0x00);
	kbd_cmd(f, 0x20);
	assert_int_equal(kbd_read_data(f), 0x65);
	/* The CTR may have bit 0 clear: that is not the output port. */
	kbd_cmd(f, 0x60);
	out8(f, LAYOUT_I8042_DATA_PORT, 0x00);
	assert_still_running(f);
	kbd_cmd(f, 0x20);
	assert_int_equal(kbd_read_data(f), 0x00);
}

static int irq_edges;

static int count_irq(void *ctx, int level)
{
	(void)ctx;
	irq_edges += level;
	return 0;
}

/* SendCtrlAltDel: the scancodes, one per output buffer fill, each with an IRQ 1 edge; set 1
 * while the command byte translates (the reset value), set 2 otherwise. */
static void test_i8042_ctrl_alt_del(void **state)
{
	static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
				       0x71, 0xf0, 0x11, 0xf0, 0x14};
	struct fx *f = *state;
	irq_edges = 0;
	i8042_set_irq(&f->kbd, count_irq, NULL);
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbd), 0);
	/* The next code fills the output buffer as soon as the last one was read. */
	for (unsigned i = 0; i < sizeof(set1); i++) {
		assert_int_equal(irq_edges, (int)i + 1);
		assert_true(kbd_status(f) & STS_OBF);
		assert_false(kbd_status(f) & STS_CMD); /* keyboard data, not a command reply */
		assert_int_equal(in8(f, LAYOUT_I8042_DATA_PORT), set1[i]);
	}
	assert_int_equal(irq_edges, (int)sizeof(set1));
	assert_false(kbd_status(f) & STS_OBF);
	/* Translation and interrupts off: set 2, no edges. */
	kbd_cmd(f, 0x60);
	out8(f, LAYOUT_I8042_DATA_PORT, 0x04);
	irq_edges = 0;
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbd), 0);
	for (unsigned i = 0; i < sizeof(set2); i++)
		assert_int_equal(in8(f, LAYOUT_I8042_DATA_PORT), set2[i]);
	assert_int_equal(irq_edges, 0);
	/* A full queue refuses more; a command reply waits for the queued codes. */
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbd), 0);
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbd), -EBUSY);
	assert_int_equal(in8(f, LAYOUT_I8042_DATA_PORT), set2[0]);
	assert_still_running(f);
}

static void test_i8042_self_tests(void **state)
{
	struct fx *f = *state;
	kbd_cmd(f, 0xaa);
	assert_int_equal(kbd_read_data(f), 0x55);
	kbd_cmd(f, 0xab);
	assert_int_equal(kbd_read_data(f), 0x00);
	kbd_cmd(f, 0xd0);
	assert_int_equal(kbd_read_data(f) & 0x01, 0x01); /* reset line not asserted */
	/* Unknown commands answer nothing and stop nothing. */
	kbd_cmd(f, 0xa7);
	kbd_cmd(f, 0xff);
	assert_false(kbd_status(f) & STS_OBF);
	assert_still_running(f);
}

static void test_i8042_pulse_reset(void **state)
{
	struct fx *f = *state;
	kbd_cmd(f, 0xfe);
	assert_int_equal(reason(f), VM_EXIT_REBOOT);
	assert_int_equal(exit_wakeups(f), 1);
	/* Linux pulses it ten times; the reason stays and the loop is woken only once. */
	for (int i = 0; i < 9; i++)
		kbd_cmd(f, 0xfe);
	assert_int_equal(reason(f), VM_EXIT_REBOOT);
	assert_int_equal(exit_wakeups(f), 0);
}

static void test_i8042_output_port_reset(void **state)
{
	struct fx *f = *state;
	/* Output port written with the reset bit set: nothing happens. */
	kbd_cmd(f, 0xd1);
	out8(f, LAYOUT_I8042_DATA_PORT, 0xdf);
	assert_still_running(f);
	/* With bit 0 cleared the CPU is reset. */
	kbd_cmd(f, 0xd1);
	out8(f, LAYOUT_I8042_DATA_PORT, 0xfe);
	assert_int_equal(reason(f), VM_EXIT_REBOOT);
	assert_int_equal(exit_wakeups(f), 1);
}

static void test_i8042_output_port_needs_command(void **state)
{
	struct fx *f = *state;
	/* A bare data write of 0xfe is a keyboard byte, not an output-port write. */
	out8(f, LAYOUT_I8042_DATA_PORT, 0xfe);
	assert_still_running(f);
	/* The pending command is consumed by one data byte only. */
	kbd_cmd(f, 0xd1);
	out8(f, LAYOUT_I8042_DATA_PORT, 0x01);
	out8(f, LAYOUT_I8042_DATA_PORT, 0x00);
	assert_still_running(f);
}

static void test_acpi_poweroff(void **state)
{
	struct fx *f = *state;
	out8(f, LAYOUT_ACPI_SLEEP_CTL_PORT, SLP_EN | SLP_TYP(LAYOUT_ACPI_S5_SLP_TYP));
	assert_int_equal(reason(f), VM_EXIT_POWEROFF);
	assert_int_equal(exit_wakeups(f), 1);
}

static void test_acpi_poweroff_other_bits(void **state)
{
	struct fx *f = *state;
	/* Bits outside SLP_TYP/SLP_EN do not matter. */
	out8(f, LAYOUT_ACPI_SLEEP_CTL_PORT, 0xc3 | SLP_EN | SLP_TYP(5));
	assert_int_equal(reason(f), VM_EXIT_POWEROFF);
	assert_int_equal(exit_wakeups(f), 1);
}

static void test_acpi_sleep_ignored(void **state)
{
	struct fx *f = *state;
	/* Every other sleep type, with and without SLP_EN, and S5 without SLP_EN. */
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ != LAYOUT_ACPI_S5_SLP_TYP)
			out8(f, LAYOUT_ACPI_SLEEP_CTL_PORT, SLP_EN | SLP_TYP(typ));
		out8(f, LAYOUT_ACPI_SLEEP_CTL_PORT, SLP_TYP(typ));
	}
	out8(f, LAYOUT_ACPI_SLEEP_CTL_PORT, 0xff & ~SLP_EN);
	assert_still_running(f);
	/* S5 on the status or reset port is not a sleep request. */
	out8(f, LAYOUT_ACPI_SLEEP_STS_PORT, SLP_EN | SLP_TYP(5));
	assert_still_running(f);
	/* The registers read as zero (never sleeping, never woken). */
	assert_int_equal(in8(f, LAYOUT_ACPI_SLEEP_CTL_PORT), 0);
	assert_int_equal(in8(f, LAYOUT_ACPI_SLEEP_STS_PORT), 0);
	assert_int_equal(in8(f, LAYOUT_ACPI_RESET_PORT), 0);
}

static void test_acpi_reset(void **state)
{
	struct fx *f = *state;
	/* Wrong values: nothing. */
	static const uint8_t wrong[] = {0x00, 0x01, 0x06, 0x0e, 0x41, 0x43, 0xc2, 0xff};
	for (size_t i = 0; i < sizeof(wrong); i++)
		out8(f, LAYOUT_ACPI_RESET_PORT, wrong[i]);
	/* The right value on the wrong port: nothing. */
	out8(f, LAYOUT_ACPI_SLEEP_CTL_PORT, LAYOUT_ACPI_RESET_VALUE);
	out8(f, LAYOUT_ACPI_SLEEP_STS_PORT, LAYOUT_ACPI_RESET_VALUE);
	assert_still_running(f);
	out8(f, LAYOUT_ACPI_RESET_PORT, LAYOUT_ACPI_RESET_VALUE);
	assert_int_equal(reason(f), VM_EXIT_REBOOT);
	assert_int_equal(exit_wakeups(f), 1);
}

static void test_first_reason_wins(void **state)
{
	struct fx *f = *state;
	out8(f, LAYOUT_ACPI_SLEEP_CTL_PORT, SLP_EN | SLP_TYP(5));
	out8(f, LAYOUT_ACPI_RESET_PORT, LAYOUT_ACPI_RESET_VALUE);
	kbd_cmd(f, 0xfe);
	vm_request_exit(&f->exit, VM_EXIT_ERROR);
	assert_int_equal(reason(f), VM_EXIT_POWEROFF);
	assert_int_equal(exit_wakeups(f), 1);
}

static void test_first_reason_wins_reboot(void **state)
{
	struct fx *f = *state;
	kbd_cmd(f, 0xd1);
	out8(f, LAYOUT_I8042_DATA_PORT, 0x00);
	out8(f, LAYOUT_ACPI_SLEEP_CTL_PORT, SLP_EN | SLP_TYP(5));
	vm_request_exit(&f->exit, VM_EXIT_SIGNAL);
	assert_int_equal(reason(f), VM_EXIT_REBOOT);
	assert_int_equal(exit_wakeups(f), 1);
}

static void test_vm_request_exit_direct(void **state)
{
	(void)state;
	struct vm_exit_ctl ctl;
	atomic_init(&ctl.reason, VM_RUNNING);
	ctl.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(ctl.efd >= 0);
	vm_request_exit(&ctl, VM_EXIT_SIGNAL);
	vm_request_exit(&ctl, VM_EXIT_SIGNAL);
	vm_request_exit(&ctl, VM_EXIT_REBOOT);
	assert_int_equal(atomic_load(&ctl.reason), VM_EXIT_SIGNAL);
	uint64_t v = 0;
	assert_int_equal(read(ctl.efd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	close(ctl.efd);
}

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_i8042_status_polling),
	    T(test_i8042_command_byte),
	    T(test_i8042_self_tests),
	    T(test_i8042_ctrl_alt_del),
	    T(test_i8042_pulse_reset),
	    T(test_i8042_output_port_reset),
	    T(test_i8042_output_port_needs_command),
	    T(test_acpi_poweroff),
	    T(test_acpi_poweroff_other_bits),
	    T(test_acpi_sleep_ignored),
	    T(test_acpi_reset),
	    T(test_first_reason_wins),
	    T(test_first_reason_wins_reboot),
	    cmocka_unit_test(test_vm_request_exit_direct),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
