/* vCPUs: creation and architectural setup (CPUID, MSRs, LAPIC LINT pins, FPU), the BSP's
 * boot state, and one thread per vCPU running KVM_RUN and dispatching its exits. */
#ifndef KILN_VCPU_H
#define KILN_VCPU_H

#include "boot/boot.h"
#include "vmm/vm.h"

/* Creates nr_vcpus vCPUs with normalized CPUID, boot MSRs, LAPIC and FPU state.
 * 0 or -errno; *what names the failing step. */
int vcpu_create_all(struct vm *vm, unsigned nr_vcpus, bool smt, const char **what);

/* Puts the BSP (vCPU 0) at the kernel's 64-bit entry. */
int vcpu_setup_boot(struct vm *vm, const struct kernel_image *k, const char **what);

/* Starts one thread per vCPU. Signals must already be blocked in the caller; vCPU threads
 * unblock only SIGUSR1, which vcpu_stop_all() uses to kick them out of KVM_RUN. */
int vcpu_start_all(struct vm *vm);

/* Makes every vCPU thread leave KVM_RUN and joins it. */
void vcpu_stop_all(struct vm *vm);

/* Handles one KVM exit of `v` (exposed for tests). Returns 0 to keep running, 1 when the
 * vCPU must stop (the VM exit reason has been recorded). */
int vcpu_handle_exit(struct vcpu *v);

#endif
