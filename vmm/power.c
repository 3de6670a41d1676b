#include "vmm/power.h"
#include "vmm/layout.h"
#include "vmm/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define I8042_STATUS_OBF 0x01
#define I8042_STATUS_SYS 0x04
#define I8042_STATUS_CMD 0x08
#define I8042_CMD_READ_CTR 0x20
#define I8042_CMD_WRITE_CTR 0x60
#define I8042_CMD_SELF_TEST 0xaa
#define I8042_CMD_KBD_TEST 0xab
#define I8042_CMD_READ_OUTP 0xd0
#define I8042_CMD_WRITE_OUTP 0xd1
#define I8042_CMD_PULSE_RESET 0xfe
#define I8042_OUTP_RESET_BIT 0x01 /* 0 in the output port asserts reset */
#define I8042_CTR_KBD_INT 0x01	  /* command byte: keyboard interrupt enabled */
#define I8042_CTR_XLATE 0x40	  /* command byte: translate to scancode set 1 */

#define ACPI_SLP_EN 0x20
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK 0x7

static void i8042_output(struct i8042 *k, uint8_t val)
{
	k->out = val;
	k->status |= I8042_STATUS_OBF;
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->status |= I8042_STATUS_CMD;
	switch (cmd) {
	case I8042_CMD_READ_CTR:
		i8042_output(k, k->cmd_byte);
		break;
	case I8042_CMD_WRITE_CTR:
	case I8042_CMD_WRITE_OUTP:
		k->pending = cmd;
		break;
	case I8042_CMD_SELF_TEST:
		i8042_output(k, 0x55);
		break;
	case I8042_CMD_KBD_TEST:
		i8042_output(k, 0x00);
		break;
	case I8042_CMD_READ_OUTP:
		i8042_output(k, 0x01);
		break;
	case I8042_CMD_PULSE_RESET:
		log_info("guest reset through the i8042");
		vm_request_exit(k->exit, VM_EXIT_REBOOT);
		break;
	default:
		break;
	}
}

static void i8042_data(struct i8042 *k, uint8_t val)
{
	k->status &= ~I8042_STATUS_CMD;
	if (k->pending == I8042_CMD_WRITE_CTR) {
		k->cmd_byte = val;
	} else if (k->pending == I8042_CMD_WRITE_OUTP && !(val & I8042_OUTP_RESET_BIT)) {
		log_info("guest reset through the i8042 output port");
		vm_request_exit(k->exit, VM_EXIT_REBOOT);
	}
	k->pending = 0;
}

/* Moves the next queued scancode into a free output buffer and pulses IRQ 1 for it. */
static void i8042_kbd_next(struct i8042 *k)
{
	if ((k->status & I8042_STATUS_OBF) || !k->kbd_len)
		return;
	i8042_output(k, k->kbd[k->kbd_head]);
	k->status &= ~I8042_STATUS_CMD;
	k->kbd_head = (k->kbd_head + 1) % I8042_KBD_QUEUE;
	k->kbd_len--;
	if (k->irq && (k->cmd_byte & I8042_CTR_KBD_INT)) {
		k->irq(k->irq_ctx, 1);
		k->irq(k->irq_ctx, 0);
	}
}

static void i8042_bus_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct i8042 *k = dev;
	memset(data, 0xff, len);
	pthread_mutex_lock(&k->lock);
	if (off == 0) {
		data[0] = k->out;
		k->status &= ~I8042_STATUS_OBF;
		i8042_kbd_next(k);
	} else if (off == LAYOUT_I8042_CMD_PORT - LAYOUT_I8042_DATA_PORT) {
		data[0] = k->status;
	}
	pthread_mutex_unlock(&k->lock);
}

static void i8042_bus_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = dev;
	(void)len;
	pthread_mutex_lock(&k->lock);
	if (off == 0)
		i8042_data(k, data[0]);
	else if (off == LAYOUT_I8042_CMD_PORT - LAYOUT_I8042_DATA_PORT)
		i8042_command(k, data[0]);
	pthread_mutex_unlock(&k->lock);
}

const struct bus_dev_ops i8042_bus_ops = {
    .read = i8042_bus_read,
    .write = i8042_bus_write,
};

int i8042_init(struct i8042 *k, struct vm_exit_ctl *exit)
{
	memset(k, 0, sizeof(*k));
	k->status = I8042_STATUS_SYS;
	k->cmd_byte = 0x45; /* translate, system flag, keyboard interrupt */
	k->exit = exit;
	return -pthread_mutex_init(&k->lock, NULL);
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

void i8042_set_irq(struct i8042 *k, int (*irq)(void *ctx, int level), void *ctx)
{
	pthread_mutex_lock(&k->lock);
	k->irq = irq;
	k->irq_ctx = ctx;
	pthread_mutex_unlock(&k->lock);
}

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	/* Ctrl, Alt, Del (an extended key) pressed, then released in reverse order. */
	static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
				       0x71, 0xf0, 0x11, 0xf0, 0x14};
	int rc = 0;
	pthread_mutex_lock(&k->lock);
	bool xlate = k->cmd_byte & I8042_CTR_XLATE;
	const uint8_t *codes = xlate ? set1 : set2;
	unsigned n = xlate ? sizeof(set1) : sizeof(set2);
	if (n > I8042_KBD_QUEUE - k->kbd_len) {
		rc = -EBUSY;
	} else {
		for (unsigned i = 0; i < n; i++)
			k->kbd[(k->kbd_head + k->kbd_len++) % I8042_KBD_QUEUE] = codes[i];
		i8042_kbd_next(k);
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

static void acpi_pm_bus_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	(void)dev;
	(void)off;
	memset(data, 0, len); /* sleep status: never woken, never sleeping */
}

static void acpi_pm_bus_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = dev;
	(void)len;
	uint64_t port = LAYOUT_ACPI_SLEEP_CTL_PORT + off;
	uint8_t v = data[0];
	if (port == LAYOUT_ACPI_SLEEP_CTL_PORT && (v & ACPI_SLP_EN) &&
	    ((v >> ACPI_SLP_TYP_SHIFT) & ACPI_SLP_TYP_MASK) == LAYOUT_ACPI_S5_SLP_TYP) {
		log_info("guest powered off (ACPI S5)");
		vm_request_exit(pm->exit, VM_EXIT_POWEROFF);
	} else if (port == LAYOUT_ACPI_RESET_PORT && v == LAYOUT_ACPI_RESET_VALUE) {
		log_info("guest reset through the ACPI reset register");
		vm_request_exit(pm->exit, VM_EXIT_REBOOT);
	}
}

const struct bus_dev_ops acpi_pm_bus_ops = {
    .read = acpi_pm_bus_read,
    .write = acpi_pm_bus_write,
};

void acpi_pm_init(struct acpi_pm *pm, struct vm_exit_ctl *exit)
{
	pm->exit = exit;
}

_Static_assert(sizeof(struct i8042_state) == 8 + I8042_KBD_QUEUE, "i8042_state layout");

int i8042_save(struct i8042 *k, struct snap_writer *w)
{
	pthread_mutex_lock(&k->lock);
	struct i8042_state st = {.status = k->status,
				 .cmd_byte = k->cmd_byte,
				 .out = k->out,
				 .pending = k->pending,
				 .kbd_len = k->kbd_len};
	for (unsigned i = 0; i < k->kbd_len; i++)
		st.kbd[i] = k->kbd[(k->kbd_head + i) % I8042_KBD_QUEUE];
	pthread_mutex_unlock(&k->lock);
	return snap_put(w, SNAP_SEC_I8042, 0, &st, sizeof(st));
}

/* NULL, or what the controller could not have come to hold. */
static const char *i8042_state_error(const struct i8042_state *st)
{
	if (st->status & ~(I8042_STATUS_OBF | I8042_STATUS_SYS | I8042_STATUS_CMD))
		return "status bits the controller never sets";
	if (st->pending && st->pending != I8042_CMD_WRITE_CTR &&
	    st->pending != I8042_CMD_WRITE_OUTP)
		return "pending command that takes no data byte";
	if (st->kbd_len > I8042_KBD_QUEUE)
		return "keyboard queue longer than its capacity";
	for (unsigned i = st->kbd_len; i < I8042_KBD_QUEUE; i++)
		if (st->kbd[i])
			return "bytes past the keyboard queue length";
	return NULL;
}

/* A section of exactly len bytes into out: NULL, or why not (with *ret set). */
static const char *get_section(const struct snap_reader *r, uint32_t tag, void *out, size_t len,
			       int *ret)
{
	*ret = snap_get(r, tag, 0, out, len);
	if (*ret == -ENOENT)
		return "missing from the snapshot";
	return *ret ? "state of the wrong size" : NULL;
}

int i8042_restore(struct i8042 *k, const struct snap_reader *r, char *err, size_t errlen)
{
	struct i8042_state st;
	int ret;
	const char *why = get_section(r, SNAP_SEC_I8042, &st, sizeof(st), &ret);
	if (!why && (why = i8042_state_error(&st)))
		ret = -EINVAL;
	if (why) {
		snprintf(err, errlen, "i8042: %s", why);
		return ret;
	}
	pthread_mutex_lock(&k->lock);
	k->status = st.status;
	k->cmd_byte = st.cmd_byte;
	k->out = st.out;
	k->pending = st.pending;
	memcpy(k->kbd, st.kbd, sizeof(k->kbd));
	k->kbd_head = 0;
	k->kbd_len = st.kbd_len;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

int acpi_pm_save(struct acpi_pm *pm, struct snap_writer *w)
{
	(void)pm;
	struct acpi_pm_state st = {.reserved = 0};
	return snap_put(w, SNAP_SEC_PM, 0, &st, sizeof(st));
}

int acpi_pm_restore(struct acpi_pm *pm, const struct snap_reader *r, char *err, size_t errlen)
{
	struct acpi_pm_state st;
	int ret;
	(void)pm;
	const char *why = get_section(r, SNAP_SEC_PM, &st, sizeof(st), &ret);
	if (!why && st.reserved) {
		why = "reserved bits set";
		ret = -EINVAL;
	}
	if (why)
		snprintf(err, errlen, "acpi-pm: %s", why);
	return why ? ret : 0;
}
