/* How a guest ends itself: the i8042 controller's reset line (reboot=k), and the ACPI
 * hardware-reduced sleep control and reset registers described in the FADT. */
#ifndef KILN_POWER_H
#define KILN_POWER_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/vm.h"

/* Enough of an i8042 for Linux's keyboard-controller reset and status polling. */
struct i8042 {
	pthread_mutex_t lock;
	uint8_t status;
	uint8_t cmd_byte;
	uint8_t out;	 /* output buffer, valid when status has OBF */
	uint8_t pending; /* command awaiting a data byte on port 0x60 */
	struct vm_exit_ctl *exit;
};

struct acpi_pm {
	struct vm_exit_ctl *exit;
};

extern const struct bus_dev_ops i8042_bus_ops;	 /* register at 0x60, length 5 (0x60..0x64) */
extern const struct bus_dev_ops acpi_pm_bus_ops; /* register at the sleep control port, 3 */

int i8042_init(struct i8042 *k, struct vm_exit_ctl *exit);
void i8042_destroy(struct i8042 *k);
void acpi_pm_init(struct acpi_pm *pm, struct vm_exit_ctl *exit);

#endif
