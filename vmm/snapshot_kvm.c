/* vCPU and VM state through the KVM API, for snapshots (snapshot_kvm.h). */
#include "vmm/snapshot_kvm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_TSC_DEADLINE 0x6e0

int snap_kvm_msr_list(int kvm_fd, uint32_t *idx, uint32_t *nr)
{
	union {
		struct kvm_msr_list hdr;
		uint8_t bytes[sizeof(struct kvm_msr_list) + 1024 * sizeof(uint32_t)];
	} *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->hdr.nmsrs = 1024;
	int err = ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0 ? -errno : 0;
	if (!err && l->hdr.nmsrs > SNAP_MAX_MSRS)
		err = -E2BIG;
	if (!err) {
		memcpy(idx, l->hdr.indices, l->hdr.nmsrs * sizeof(uint32_t));
		*nr = l->hdr.nmsrs;
	}
	free(l);
	return err;
}

/* struct kvm_msrs ends in a flexible array: room for SNAP_MAX_MSRS entries after it. */
union msr_buf {
	struct kvm_msrs hdr;
	uint8_t bytes[sizeof(struct kvm_msrs) + SNAP_MAX_MSRS * sizeof(struct kvm_msr_entry)];
};

/* Reads idx[0, nr); KVM_GET_MSRS stops at the first MSR it cannot read: drop that one and
 * go on, so s keeps every readable MSR. */
static int save_msrs(const struct vcpu *v, const uint32_t *idx, uint32_t nr, struct vcpu_snap *s)
{
	union msr_buf b;
	uint32_t done = 0;
	s->nr_msrs = 0;
	while (done < nr) {
		memset(&b, 0, sizeof(b));
		b.hdr.nmsrs = nr - done;
		for (uint32_t i = 0; i < b.hdr.nmsrs; i++)
			b.hdr.entries[i].index = idx[done + i];
		int n = ioctl(v->fd, KVM_GET_MSRS, &b);
		if (n < 0)
			return -errno;
		memcpy(&s->msrs[s->nr_msrs], b.hdr.entries, (size_t)n * sizeof(b.hdr.entries[0]));
		s->nr_msrs += (uint32_t)n;
		done += (uint32_t)n + 1; /* skip the unreadable one */
	}
	return 0;
}

int snap_vcpu_save(const struct vcpu *v, const uint32_t *idx, uint32_t nr, struct vcpu_snap *s,
		   const char **what)
{
	struct kvm_xsave *xs = calloc(1, sizeof(*xs) + 4096);
	int err = 0;
	memset(s, 0, sizeof(*s));
	if (!xs)
		return -ENOMEM;
#define GET(req, arg)                                                                          \
	do {                                                                                   \
		if (!err && ioctl(v->fd, req, arg) < 0) {                                      \
			err = -errno;                                                          \
			*what = #req;                                                          \
		}                                                                              \
	} while (0)
	GET(KVM_GET_REGS, &s->regs);
	GET(KVM_GET_SREGS, &s->sregs);
	GET(KVM_GET_XSAVE, xs);
	GET(KVM_GET_XCRS, &s->xcrs);
	GET(KVM_GET_DEBUGREGS, &s->dregs);
	GET(KVM_GET_LAPIC, &s->lapic);
	GET(KVM_GET_MP_STATE, &s->mp);
	GET(KVM_GET_VCPU_EVENTS, &s->events);
#undef GET
	if (!err && (err = save_msrs(v, idx, nr, s)))
		*what = "KVM_GET_MSRS";
	if (!err)
		memcpy(s->xsave, xs->region, sizeof(s->xsave));
	free(xs);
	return err;
}

/* Sets s's MSRs but the TSC deadline (deadline false) or only it (true). */
static int restore_msrs(const struct vcpu *v, const struct vcpu_snap *s, bool deadline,
			const char **what)
{
	static __thread char name[40];
	union msr_buf b;
	memset(&b, 0, sizeof(b));
	for (uint32_t i = 0; i < s->nr_msrs && i < SNAP_MAX_MSRS; i++)
		if ((s->msrs[i].index == MSR_IA32_TSC_DEADLINE) == deadline)
			b.hdr.entries[b.hdr.nmsrs++] = s->msrs[i];
	if (!b.hdr.nmsrs)
		return 0;
	int n = ioctl(v->fd, KVM_SET_MSRS, &b);
	if (n < 0 || (uint32_t)n < b.hdr.nmsrs) {
		snprintf(name, sizeof(name), "KVM_SET_MSRS 0x%x",
			 n < 0 ? b.hdr.entries[0].index : b.hdr.entries[n].index);
		*what = name;
		return n < 0 ? -errno : -EINVAL;
	}
	return 0;
}

int snap_vcpu_restore(const struct vcpu *v, const struct vcpu_snap *s, const char **what)
{
	struct kvm_xsave *xs = calloc(1, sizeof(*xs) + 4096);
	struct kvm_mp_state mp = s->mp;
	struct kvm_vcpu_events ev = s->events;
	int err = 0;
	if (!xs)
		return -ENOMEM;
	memcpy(xs->region, s->xsave, sizeof(s->xsave));
#define SET(req, arg)                                                                          \
	do {                                                                                   \
		if (!err && ioctl(v->fd, req, arg) < 0) {                                      \
			err = -errno;                                                          \
			*what = #req;                                                          \
		}                                                                              \
	} while (0)
	SET(KVM_SET_REGS, &s->regs);
	SET(KVM_SET_SREGS, &s->sregs);
	if (!err)
		err = restore_msrs(v, s, false, what);
	SET(KVM_SET_XSAVE, xs);
	SET(KVM_SET_XCRS, &s->xcrs);
	SET(KVM_SET_DEBUGREGS, &s->dregs);
	SET(KVM_SET_LAPIC, &s->lapic);
	if (!err)
		err = restore_msrs(v, s, true, what);
	SET(KVM_SET_MP_STATE, &mp);
	SET(KVM_SET_VCPU_EVENTS, &ev);
#undef SET
	free(xs);
	return err;
}

int snap_vm_save(const struct vm *vm, struct vm_snap *s, const char **what)
{
	memset(s, 0, sizeof(*s));
	s->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	s->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	struct {
		unsigned long req;
		void *arg;
		const char *name;
	} steps[] = {
	    {KVM_GET_IRQCHIP, &s->pic_master, "KVM_GET_IRQCHIP"},
	    {KVM_GET_IRQCHIP, &s->pic_slave, "KVM_GET_IRQCHIP"},
	    {KVM_GET_IRQCHIP, &s->ioapic, "KVM_GET_IRQCHIP"},
	    {KVM_GET_PIT2, &s->pit, "KVM_GET_PIT2"},
	    {KVM_GET_CLOCK, &s->clock, "KVM_GET_CLOCK"},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (ioctl(vm->vm_fd, steps[i].req, steps[i].arg) < 0) {
			*what = steps[i].name;
			return -errno;
		}
	return 0;
}

int snap_vm_restore(const struct vm *vm, const struct vm_snap *s, const char **what)
{
	struct kvm_irqchip chips[3] = {s->pic_master, s->pic_slave, s->ioapic};
	struct kvm_pit_state2 pit = s->pit;
	/* The guest's clock goes on from the snapshot's reading (no realtime adjustment). */
	struct kvm_clock_data clock = {.clock = s->clock.clock};
	static const uint32_t ids[3] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
					KVM_IRQCHIP_IOAPIC};
	for (unsigned i = 0; i < 3; i++) {
		if (chips[i].chip_id != ids[i]) {
			*what = "irqchip id";
			return -EINVAL;
		}
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0) {
			*what = "KVM_SET_IRQCHIP";
			return -errno;
		}
	}
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0) {
		*what = "KVM_SET_PIT2";
		return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0) {
		*what = "KVM_SET_CLOCK";
		return -errno;
	}
	return 0;
}

int snap_kvm_save(const struct vm *vm, struct snap_writer *w, char *err, size_t errlen)
{
	uint32_t idx[SNAP_MAX_MSRS], nr = 0;
	const char *what = "KVM_GET_MSR_INDEX_LIST";
	struct vm_snap vs;
	struct vcpu_snap *s = malloc(sizeof(*s));
	int e = -ENOMEM;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return e;
	}
	if ((e = snap_vm_save(vm, &vs, &what)) || (e = snap_put(w, SNAP_SEC_VM, 0, &vs, sizeof(vs)))) {
		snprintf(err, errlen, "VM: %s: %s", what, strerror(-e));
		goto out;
	}
	what = "KVM_GET_MSR_INDEX_LIST";
	if ((e = snap_kvm_msr_list(vm->kvm_fd, idx, &nr))) {
		snprintf(err, errlen, "%s: %s", what, strerror(-e));
		goto out;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if ((e = snap_vcpu_save(&vm->vcpu[i], idx, nr, s, &what)) ||
		    (e = snap_put(w, SNAP_SEC_VCPU, i, s, sizeof(*s)))) {
			snprintf(err, errlen, "vCPU %u: %s: %s", i, what, strerror(-e));
			goto out;
		}
	}
out:
	free(s);
	return e;
}

int snap_kvm_restore(const struct vm *vm, const struct snap_reader *r, char *err, size_t errlen)
{
	const char *what = "";
	struct vm_snap vs;
	struct vcpu_snap *s = malloc(sizeof(*s));
	int e = -EINVAL;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (snap_count(r, SNAP_SEC_VCPU) != vm->nr_vcpus) {
		snprintf(err, errlen, "the state has %u vCPUs, the VM %u",
			 snap_count(r, SNAP_SEC_VCPU), vm->nr_vcpus);
		goto out;
	}
	/* The VM first: the KVM clock before the vCPUs' kvmclock MSRs. */
	if (snap_get(r, SNAP_SEC_VM, 0, &vs, sizeof(vs))) {
		snprintf(err, errlen, "VM state missing or malformed");
		goto out;
	}
	if ((e = snap_vm_restore(vm, &vs, &what))) {
		snprintf(err, errlen, "VM: %s: %s", what, strerror(-e));
		goto out;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (snap_get(r, SNAP_SEC_VCPU, i, s, sizeof(*s)) || s->nr_msrs > SNAP_MAX_MSRS) {
			snprintf(err, errlen, "vCPU %u: state missing or malformed", i);
			e = -EINVAL;
			goto out;
		}
		if ((e = snap_vcpu_restore(&vm->vcpu[i], s, &what))) {
			snprintf(err, errlen, "vCPU %u: %s: %s", i, what, strerror(-e));
			goto out;
		}
	}
out:
	free(s);
	return e;
}
