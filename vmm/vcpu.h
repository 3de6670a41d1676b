/* vCPUs: creation and architectural setup (CPUID, MSRs, LAPIC LINT pins, FPU), the BSP's
 * boot state, and one thread per vCPU running KVM_RUN and dispatching its exits. */
#ifndef KILN_VCPU_H
#define KILN_VCPU_H

#include "boot/boot.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#include <stddef.h>

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

#define VCPU_PAUSE_TIMEOUT_MS 5000

/* Stops every running vCPU at a safe point (out of KVM_RUN, its last exit fully handled)
 * and waits until all are parked. 0, -ESHUTDOWN if the VM is ending meanwhile, or
 * -ETIMEDOUT after VCPU_PAUSE_TIMEOUT_MS (then call vcpu_resume_all()). */
int vcpu_pause_all(struct vm *vm);

/* Lets parked vCPUs run again. */
void vcpu_resume_all(struct vm *vm);

/* Asks every running vCPU to log its state (vcpu_log_state) and keep running: sets its
 * dump_requested flag and immediate_exit, then kicks it with SIGUSR1; the vCPU thread logs
 * once it is out of KVM_RUN (only it may read its registers without waiting for the vCPU
 * to exit). A vCPU that is about to stop still logs before its thread ends. */
void vcpu_request_state_dump(struct vm *vm);

/* The widest line vcpu_state_format() writes, with its NUL. */
#define VCPU_STATE_MAX 448

/* Formats the registers, system registers and pending/injected exception as one line
 * "RIP=0x.. RSP=0x.. RFLAGS=0x.. CR0=0x.. CR2=0x.. CR3=0x.. CR4=0x.. EFER=0x..
 * CS=<sel>/<base>/<limit> SS=<sel>/<base>/<limit> GDTR=<base>/<limit> IDTR=<base>/<limit>
 * exception=<none|injected nr=N error_code=<0x..|none>|pending nr=N error_code=..>"
 * (all numbers in hex but nr). Returns its length, or -ENOSPC when it was cut to fit len. */
int vcpu_state_format(char *buf, size_t len, const struct kvm_regs *r, const struct kvm_sregs *s,
		      const struct kvm_vcpu_events *e);

/* Whether the registers are those of a vCPU just reset (INIT/power-on: real mode at the
 * reset vector), which is all KVM on AMD leaves of a vCPU after a triple fault. */
bool vcpu_state_is_init(const struct kvm_regs *r, const struct kvm_sregs *s);

/* On v's own thread, out of KVM_RUN: reads its state (KVM_GET_REGS, KVM_GET_SREGS,
 * KVM_GET_VCPU_EVENTS) and logs "vCPU <n> <what>: <vcpu_state_format line> exits=<n>
 * [last_io=<pio|mmio>-<read|write>@<addr>] [(the INIT state: ...)]" at `lvl`, or
 * "vCPU <n> <what>: registers unavailable: <ioctl>: <error>". */
void vcpu_log_state(struct vcpu *v, enum log_level lvl, const char *what);

/* Handles one KVM exit of `v` (exposed for tests). Returns 0 to keep running, 1 when the
 * vCPU must stop (the VM exit reason has been recorded). */
int vcpu_handle_exit(struct vcpu *v);

#endif
