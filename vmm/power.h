/* How a guest ends itself: the i8042 controller's reset line (reboot=k), and the ACPI
 * hardware-reduced sleep control and reset registers described in the FADT. */
#ifndef KILN_POWER_H
#define KILN_POWER_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"

#define I8042_KBD_QUEUE 16

/* Enough of an i8042 for Linux's keyboard-controller reset and status polling, and for
 * keyboard input (SendCtrlAltDel) on IRQ 1. */
struct i8042 {
	pthread_mutex_t lock;
	uint8_t status;
	uint8_t cmd_byte;
	uint8_t out;		      /* output buffer, valid when status has OBF */
	uint8_t pending;	      /* command awaiting a data byte on port 0x60 */
	uint8_t kbd[I8042_KBD_QUEUE]; /* scancodes waiting for the output buffer */
	unsigned kbd_head, kbd_len;
	int (*irq)(void *ctx, int level); /* the keyboard's interrupt line, NULL: none */
	void *irq_ctx;
	struct vm_exit_ctl *exit;
};

struct acpi_pm {
	struct vm_exit_ctl *exit;
};

/* The i8042 in a snapshot (SNAP_SEC_I8042, index 0): its registers and the scancodes queued
 * for the output buffer, oldest first. Pointer-free, fixed layout. */
struct i8042_state {
	uint8_t status;
	uint8_t cmd_byte;
	uint8_t out;
	uint8_t pending;
	uint32_t kbd_len;
	uint8_t kbd[I8042_KBD_QUEUE];
};

/* The ACPI PM registers in a snapshot (SNAP_SEC_PM, index 0): writing them ends the VM and
 * reading them gives 0, so there is nothing to keep; reserved must be 0. */
struct acpi_pm_state {
	uint64_t reserved;
};

extern const struct bus_dev_ops i8042_bus_ops;	 /* register at 0x60, length 5 (0x60..0x64) */
extern const struct bus_dev_ops acpi_pm_bus_ops; /* register at the sleep control port, 3 */

int i8042_init(struct i8042 *k, struct vm_exit_ctl *exit);
void i8042_destroy(struct i8042 *k);

/* Wires the keyboard interrupt (IRQ 1): raised, as an edge, each time a scancode enters
 * the output buffer while the guest enabled keyboard interrupts in the command byte. */
void i8042_set_irq(struct i8042 *k, int (*irq)(void *ctx, int level), void *ctx);

/* Types Ctrl+Alt+Del (press and release): the scancodes go out one by one through the
 * output buffer, in set 1 when the guest left translation on in the command byte, else set
 * 2. Linux reboots on it. 0, or -EBUSY when the queue has no room. Any thread. */
int i8042_send_ctrl_alt_del(struct i8042 *k);
void acpi_pm_init(struct acpi_pm *pm, struct vm_exit_ctl *exit);

/* Snapshots: add the device's section (0 or the writer's -errno), and put it back before
 * the vCPUs run, checked as guest input (status bits the controller sets, a command that
 * takes a data byte, queue length <= I8042_KBD_QUEUE). Restore raises no interrupt. 0, or
 * -EINVAL / -ENOENT with one line in err; the device is then unchanged. */
int i8042_save(struct i8042 *k, struct snap_writer *w);
int i8042_restore(struct i8042 *k, const struct snap_reader *r, char *err, size_t errlen);
int acpi_pm_save(struct acpi_pm *pm, struct snap_writer *w);
int acpi_pm_restore(struct acpi_pm *pm, const struct snap_reader *r, char *err, size_t errlen);

#endif
