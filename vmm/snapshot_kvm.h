/* What KVM holds of a VM, saved into and restored from a snapshot's state file: per vCPU
 * registers, system registers, FPU/XSAVE, XCRs, debug registers, LAPIC, MSRs, MP state and
 * events; for the VM the PICs, IOAPIC, PIT and KVM clock. The structs are the KVM API's
 * own, fixed-size and pointer-free, so each is one section of the file. */
#ifndef KILN_SNAPSHOT_KVM_H
#define KILN_SNAPSHOT_KVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/snapshot_file.h"
#include "vmm/vm.h"

#define SNAP_MAX_MSRS 256

struct vcpu_snap {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint32_t xsave[1024]; /* struct kvm_xsave's region: KVM_GET_XSAVE fills 4096 bytes */
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
	uint32_t nr_msrs;
	uint32_t pad;
	struct kvm_msr_entry msrs[SNAP_MAX_MSRS];
};

struct vm_snap {
	struct kvm_irqchip pic_master;
	struct kvm_irqchip pic_slave;
	struct kvm_irqchip ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

/* The MSRs worth saving on this host: KVM_GET_MSR_INDEX_LIST, bounded by SNAP_MAX_MSRS.
 * Fills idx and *nr; 0 or -errno. Once per snapshot. */
int snap_kvm_msr_list(int kvm_fd, uint32_t *idx, uint32_t *nr);

/* Reads vCPU v's whole state (v must be out of KVM_RUN: parked, its last exit completed)
 * into s, reading the MSRs of idx[0, nr) and keeping those KVM can read. 0 or -errno;
 * *what names the ioctl that failed. */
int snap_vcpu_save(const struct vcpu *v, const uint32_t *idx, uint32_t nr, struct vcpu_snap *s,
		   const char **what);

/* Puts s back into vCPU v (created with its CPUID by vcpu_create_all()), in the order KVM
 * needs: registers, system registers, MSRs, XSAVE, XCRs, debug registers, LAPIC, the TSC
 * deadline (after the LAPIC, which would drop it), MP state, events. 0 or -errno; *what
 * names the step (for MSRs "KVM_SET_MSRS 0x<index>"). s->nr_msrs must be checked first. */
int snap_vcpu_restore(const struct vcpu *v, const struct vcpu_snap *s, const char **what);

/* The VM-wide state: irqchips, PIT, KVM clock. 0 or -errno; *what names the ioctl. */
int snap_vm_save(const struct vm *vm, struct vm_snap *s, const char **what);
int snap_vm_restore(const struct vm *vm, const struct vm_snap *s, const char **what);

/* Every vCPU's and the VM's state into w (SNAP_SEC_VCPU n, SNAP_SEC_VM 0). 0 or -errno with
 * one line in err. */
int snap_kvm_save(const struct vm *vm, struct snap_writer *w, char *err, size_t errlen);

/* The inverse, for a VM built with the same number of vCPUs; every section is checked for
 * size and count first. 0 or -errno with one line in err. */
int snap_kvm_restore(const struct vm *vm, const struct snap_reader *r, char *err, size_t errlen);

#endif
