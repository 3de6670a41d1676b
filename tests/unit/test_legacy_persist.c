/* Snapshots of the legacy devices (8250 UART, i8042, ACPI PM): a device driven through its
 * bus ops, saved into a real state file, restored into a fresh one, must then answer the
 * guest exactly as the original does; restore touches no interrupt line; a state a guest
 * could not have produced is refused with one line and the device left as it was. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/power.h"
#include "vmm/serial.h"
#include "vmm/snapshot_file.h"

enum { THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5 };
enum { MSR = 6, SCR = 7 };

/* A state file built from whatever was put in w, parsed back. */
struct snapfile {
	struct snap_writer w;
	struct snap_reader r;
	uint8_t *buf;
	char err[256];
};

static void snapfile_parse(struct snapfile *f)
{
	int fd = memfd_create("snap", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(snap_writer_finish(&f->w, fd), 0);
	off_t len = lseek(fd, 0, SEEK_END);
	f->buf = malloc(len);
	assert_int_equal(pread(fd, f->buf, len, 0), len);
	close(fd);
	assert_int_equal(snap_parse(&f->r, f->buf, len, f->err, sizeof(f->err)), 0);
}

static struct snapfile *snapfile_new(void)
{
	struct snapfile *f = calloc(1, sizeof(*f));
	snap_writer_init(&f->w);
	return f;
}

static void snapfile_free(struct snapfile *f)
{
	snap_writer_free(&f->w);
	free(f->buf);
	free(f);
}

/* ---- 8250 ------------------------------------------------------------------------------ */

struct uart {
	struct serial s;
	int levels; /* set_level calls */
	int out[2];
};

static int count_level(void *ctx, int level)
{
	(void)level;
	((struct uart *)ctx)->levels++;
	return 0;
}

static void uart_init(struct uart *u)
{
	assert_int_equal(pipe2(u->out, O_NONBLOCK | O_CLOEXEC), 0);
	struct serial_irq irq = {.set_level = count_level, .ctx = u};
	assert_int_equal(serial_init(&u->s, u->out[1], -1, &irq), 0);
	u->levels = 0;
}

static void uart_fini(struct uart *u)
{
	serial_destroy(&u->s);
	close(u->out[0]);
	close(u->out[1]);
}

static uint8_t uart_in(struct uart *u, uint64_t reg)
{
	uint8_t v;
	serial_bus_ops.read(&u->s, reg, &v, 1);
	return v;
}

static void uart_out(struct uart *u, uint64_t reg, uint8_t v)
{
	serial_bus_ops.write(&u->s, reg, &v, 1);
}

/* A guest driver's setup, then a FIFO that has wrapped: 64 in, 10 read, 5 more in. */
static void uart_drive(struct uart *u)
{
	uint8_t in[69];
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	uart_out(u, LCR, 0x83);
	uart_out(u, DLL, 1);
	uart_out(u, DLM, 0);
	uart_out(u, LCR, 0x03);
	uart_out(u, FCR, 0x07);
	uart_out(u, MCR, 0x0b);
	uart_out(u, SCR, 0x5a);
	uart_out(u, IER, 0x03);
	assert_int_equal(serial_rx_push(&u->s, in, 64), 64);
	for (int i = 0; i < 10; i++)
		assert_int_equal(uart_in(u, THR), in[i]);
	assert_int_equal(serial_rx_push(&u->s, in + 64, 5), 5);
}

static void test_serial_round_trip(void **state)
{
	(void)state;
	struct uart a, b;
	struct snapfile *f = snapfile_new();
	uart_init(&a);
	uart_init(&b);
	uart_drive(&a);
	assert_int_equal(serial_save(&a.s, &f->w), 0);
	snapfile_parse(f);
	assert_int_equal(serial_restore(&b.s, &f->r, f->err, sizeof(f->err)), 0);
	assert_int_equal(b.levels, 0); /* the interrupt controller's state holds the line */
	/* The same reads give the same answers, FIFO bytes included, in order. */
	static const uint8_t regs[] = {IER, IIR, LCR, MCR, LSR, MSR, SCR};
	for (unsigned i = 0; i < sizeof(regs); i++)
		assert_int_equal(uart_in(&b, regs[i]), uart_in(&a, regs[i]));
	for (int i = 0; i < 60; i++)
		assert_int_equal(uart_in(&b, THR), uart_in(&a, THR));
	assert_int_equal(uart_in(&b, LSR), uart_in(&a, LSR));
	uart_out(&a, LCR, 0x83);
	uart_out(&b, LCR, 0x83);
	assert_int_equal(uart_in(&b, DLL), 1);
	assert_int_equal(uart_in(&b, IIR), uart_in(&a, IIR));
	uart_fini(&a);
	uart_fini(&b);
	snapfile_free(f);
}

/* A corrupt state: refused with a line naming it; the UART keeps what it had. */
static void serial_refuses(const struct serial_state *st, size_t len, const char *want)
{
	struct uart u;
	struct snapfile *f = snapfile_new();
	uart_init(&u);
	uart_out(&u, SCR, 0x33);
	if (st)
		assert_int_equal(snap_put(&f->w, SNAP_SEC_SERIAL, 0, st, len), 0);
	snapfile_parse(f);
	assert_true(serial_restore(&u.s, &f->r, f->err, sizeof(f->err)) < 0);
	assert_string_equal(f->err, want);
	assert_int_equal(uart_in(&u, SCR), 0x33);
	assert_int_equal(u.s.rx_count, 0);
	uart_fini(&u);
	snapfile_free(f);
}

static void test_serial_refuses_bad_state(void **state)
{
	(void)state;
	struct serial_state good = {.mcr = 0x08, .dll = 12, .rx_count = 2, .rx = {1, 2}};
	struct serial_state st = good;
	st.rx_count = SERIAL_FIFO_LEN + 1;
	serial_refuses(&st, sizeof(st), "serial: receive FIFO count beyond its capacity");
	st = good;
	st.rx[5] = 9;
	serial_refuses(&st, sizeof(st), "serial: bytes past the receive FIFO count");
	st = good;
	st.ier = 0x10;
	serial_refuses(&st, sizeof(st), "serial: register bits the guest cannot set");
	st = good;
	st.lsr = 0x01;
	serial_refuses(&st, sizeof(st), "serial: register bits the guest cannot set");
	st = good;
	st.irq_level = 2;
	serial_refuses(&st, sizeof(st), "serial: malformed state");
	serial_refuses(&good, sizeof(good) - 4, "serial: state of the wrong size");
	serial_refuses(NULL, 0, "serial: missing from the snapshot");
}

/* ---- i8042 and ACPI PM ---------------------------------------------------------------- */

struct kbd {
	struct vm_exit_ctl exit;
	struct i8042 k;
	int irqs;
};

static int count_irq(void *ctx, int level)
{
	((struct kbd *)ctx)->irqs += level;
	return 0;
}

static void kbd_init(struct kbd *k)
{
	atomic_init(&k->exit.reason, VM_RUNNING);
	k->exit.efd = -1;
	assert_int_equal(i8042_init(&k->k, &k->exit), 0);
	i8042_set_irq(&k->k, count_irq, k);
}

static uint8_t kbd_in(struct kbd *k, uint64_t off)
{
	uint8_t v;
	i8042_bus_ops.read(&k->k, off, &v, 1);
	return v;
}

static void kbd_out(struct kbd *k, uint64_t off, uint8_t v)
{
	i8042_bus_ops.write(&k->k, off, &v, 1);
}

#define KBD_CMD (LAYOUT_I8042_CMD_PORT - LAYOUT_I8042_DATA_PORT)

static void test_i8042_round_trip(void **state)
{
	(void)state;
	struct kbd a, b;
	struct snapfile *f = snapfile_new();
	kbd_init(&a);
	kbd_init(&b);
	kbd_out(&a, KBD_CMD, 0x60); /* write the command byte: translation off, IRQ on */
	kbd_out(&a, 0, 0x05);
	assert_int_equal(i8042_send_ctrl_alt_del(&a.k), 0); /* set 2: 11 codes */
	for (int i = 0; i < 3; i++)
		kbd_in(&a, 0);
	assert_int_equal(i8042_send_ctrl_alt_del(&a.k), -EBUSY); /* 7 left, no room for 11 */
	kbd_out(&a, KBD_CMD, 0xd1); /* a command waiting for its data byte */
	assert_int_equal(i8042_save(&a.k, &f->w), 0);
	snapfile_parse(f);
	b.irqs = 0;
	assert_int_equal(i8042_restore(&b.k, &f->r, f->err, sizeof(f->err)), 0);
	assert_int_equal(b.irqs, 0);
	for (int i = 0; i < 9; i++) {
		assert_int_equal(kbd_in(&b, KBD_CMD), kbd_in(&a, KBD_CMD));
		assert_int_equal(kbd_in(&b, 0), kbd_in(&a, 0));
	}
	assert_int_equal(b.irqs, 7); /* one per scancode that entered the output buffer */
	kbd_out(&b, 0, 0x00);	     /* the pending 0xd1: output port without reset bit */
	assert_int_equal(atomic_load(&b.exit.reason), VM_EXIT_REBOOT);
	i8042_destroy(&a.k);
	i8042_destroy(&b.k);
	snapfile_free(f);
}

static void i8042_refuses(const struct i8042_state *st, const char *want)
{
	struct kbd k;
	struct snapfile *f = snapfile_new();
	kbd_init(&k);
	assert_int_equal(snap_put(&f->w, SNAP_SEC_I8042, 0, st, sizeof(*st)), 0);
	snapfile_parse(f);
	assert_int_equal(i8042_restore(&k.k, &f->r, f->err, sizeof(f->err)), -EINVAL);
	assert_string_equal(f->err, want);
	assert_int_equal(kbd_in(&k, KBD_CMD), 0x04); /* still fresh: SYS only */
	i8042_destroy(&k.k);
	snapfile_free(f);
}

static void test_i8042_refuses_bad_state(void **state)
{
	(void)state;
	struct i8042_state good = {.status = 0x05, .cmd_byte = 0x45, .kbd_len = 1, .kbd = {0x1d}};
	struct i8042_state st = good;
	st.kbd_len = I8042_KBD_QUEUE + 1;
	i8042_refuses(&st, "i8042: keyboard queue longer than its capacity");
	st = good;
	st.kbd[3] = 1;
	i8042_refuses(&st, "i8042: bytes past the keyboard queue length");
	st = good;
	st.pending = 0xaa;
	i8042_refuses(&st, "i8042: pending command that takes no data byte");
	st = good;
	st.status = 0x80;
	i8042_refuses(&st, "i8042: status bits the controller never sets");
}

static void test_acpi_pm_round_trip(void **state)
{
	(void)state;
	struct vm_exit_ctl exit = {.efd = -1};
	struct acpi_pm pm;
	acpi_pm_init(&pm, &exit);
	struct snapfile *f = snapfile_new();
	assert_int_equal(acpi_pm_save(&pm, &f->w), 0);
	snapfile_parse(f);
	assert_int_equal(acpi_pm_restore(&pm, &f->r, f->err, sizeof(f->err)), 0);
	snapfile_free(f);
	f = snapfile_new();
	struct acpi_pm_state st = {.reserved = 1};
	assert_int_equal(snap_put(&f->w, SNAP_SEC_PM, 0, &st, sizeof(st)), 0);
	snapfile_parse(f);
	assert_int_equal(acpi_pm_restore(&pm, &f->r, f->err, sizeof(f->err)), -EINVAL);
	assert_string_equal(f->err, "acpi-pm: reserved bits set");
	snapfile_free(f);
	f = snapfile_new();
	snapfile_parse(f);
	assert_int_equal(acpi_pm_restore(&pm, &f->r, f->err, sizeof(f->err)), -ENOENT);
	assert_string_equal(f->err, "acpi-pm: missing from the snapshot");
	snapfile_free(f);
}

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serial_round_trip),
	    cmocka_unit_test(test_serial_refuses_bad_state),
	    cmocka_unit_test(test_i8042_round_trip),
	    cmocka_unit_test(test_i8042_refuses_bad_state),
	    cmocka_unit_test(test_acpi_pm_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
