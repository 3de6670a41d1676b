#include "vmm/vcpu.h"
#include "vmm/cpuid.h"
#include "vmm/log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_IA32_TSC 0x10
#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE_WB ((1ULL << 11) | 6)

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static int vcpu_set_cpuid(struct vcpu *v, const struct kvm_cpuid2 *supported,
			  const struct cpu_topology *topo)
{
	/* Room for the entries normalization adds to KVM's list. */
	unsigned capacity = supported->nent + CPUID_NORMALIZE_ADDS;
	struct kvm_cpuid2 *c =
	    calloc(1, sizeof(struct kvm_cpuid2) + capacity * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return -ENOMEM;
	memcpy(c, supported,
	       sizeof(struct kvm_cpuid2) + supported->nent * sizeof(struct kvm_cpuid_entry2));
	int err = cpuid_normalize(c, capacity, v->index, topo);
	if (!err && ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		err = -errno;
	free(c);
	return err;
}

static int vcpu_set_msrs(struct vcpu *v)
{
	static const struct kvm_msr_entry boot_msrs[] = {
	    {.index = MSR_IA32_SYSENTER_CS},
	    {.index = MSR_IA32_SYSENTER_ESP},
	    {.index = MSR_IA32_SYSENTER_EIP},
	    {.index = MSR_STAR},
	    {.index = MSR_CSTAR},
	    {.index = MSR_KERNEL_GS_BASE},
	    {.index = MSR_SYSCALL_MASK},
	    {.index = MSR_LSTAR},
	    {.index = MSR_IA32_TSC},
	    {.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING},
	    {.index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE_WB},
	};
	enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
	/* struct kvm_msrs ends in a flexible array: give it room for N entries. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(boot_msrs)];
	} msrs = {.hdr.nmsrs = N};
	memcpy(msrs.hdr.entries, boot_msrs, sizeof(boot_msrs));
	int n = ioctl(v->fd, KVM_SET_MSRS, &msrs);
	if (n < 0)
		return -errno;
	return n == N ? 0 : -EIO;
}

static void lapic_set_lvt_mode(struct kvm_lapic_state *la, unsigned reg, unsigned mode)
{
	uint32_t val;
	memcpy(&val, &la->regs[reg], 4);
	val = (val & ~0x700u) | (mode << 8);
	memcpy(&la->regs[reg], &val, 4);
}

/* LINT0 takes the PIC's ExtINT and LINT1 the NMI, as on a PC. */
static int vcpu_set_lapic(struct vcpu *v)
{
	struct kvm_lapic_state la;
	if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
		return -errno;
	lapic_set_lvt_mode(&la, APIC_LVT_LINT0, APIC_MODE_EXTINT);
	lapic_set_lvt_mode(&la, APIC_LVT_LINT1, APIC_MODE_NMI);
	return ioctl(v->fd, KVM_SET_LAPIC, &la) < 0 ? -errno : 0;
}

static int vcpu_set_fpu(struct vcpu *v)
{
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	return ioctl(v->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

static int vcpu_create_one(struct vm *vm, unsigned i, size_t run_size,
			   const struct kvm_cpuid2 *cpuid, const struct cpu_topology *topo,
			   const char **what)
{
	struct vcpu *v = &vm->vcpu[i];
	*what = "KVM_CREATE_VCPU";
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
	if (v->fd < 0)
		return -errno;
	*what = "mmap kvm_run";
	v->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return -errno;
	}
	v->run_size = run_size;
	int err;
	*what = "KVM_SET_CPUID2";
	if ((err = vcpu_set_cpuid(v, cpuid, topo)))
		return err;
	*what = "KVM_SET_MSRS";
	if ((err = vcpu_set_msrs(v)))
		return err;
	*what = "KVM_SET_LAPIC";
	if ((err = vcpu_set_lapic(v)))
		return err;
	*what = "KVM_SET_FPU";
	return vcpu_set_fpu(v);
}

int vcpu_create_all(struct vm *vm, unsigned nr_vcpus, bool smt, const char **what)
{
	if (nr_vcpus == 0 || nr_vcpus > LAYOUT_MAX_VCPUS)
		return -EINVAL;
	*what = "KVM_GET_VCPU_MMAP_SIZE";
	int run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run))
		return -EIO;
	const struct kvm_cpuid2 *cpuid = vm->supported_cpuid;
	if (!cpuid)
		return -EINVAL;
	struct cpu_topology topo = cpu_topology_make(nr_vcpus, smt);
	int err = 0;
	for (unsigned i = 0; i < nr_vcpus && !err; i++) {
		vm->vcpu[i] = (struct vcpu){.index = i, .fd = -1, .vm = vm};
		vm->nr_vcpus = i + 1;
		err = vcpu_create_one(vm, i, (size_t)run_size, cpuid, &topo, what);
	}
	vm->smt = smt;
	return err;
}

int vcpu_setup_boot(struct vm *vm, const struct kernel_image *k, const char **what)
{
	struct vcpu *bsp = &vm->vcpu[0];
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	*what = "KVM_GET_SREGS";
	if (ioctl(bsp->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	memset(&regs, 0, sizeof(regs));
	*what = "boot CPU state";
	int err = boot_setup_cpu(&vm->mem, k, &sregs, &regs);
	if (err)
		return err;
	*what = "KVM_SET_SREGS";
	if (ioctl(bsp->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	*what = "KVM_SET_REGS";
	if (ioctl(bsp->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}
