#include "vmm/vm.h"
#include "vmm/log.h"
#include "vmm/cpuid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Addresses KVM needs for its own use on Intel (real-mode TSS and EPT identity map); both
 * sit in the MMIO gap, just below the BIOS area, where no device lives. */
#define KVM_TSS_ADDR 0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

void vm_request_exit(struct vm_exit_ctl *ctl, enum vm_exit_reason reason)
{
	int expected = VM_RUNNING;
	if (atomic_compare_exchange_strong(&ctl->reason, &expected, (int)reason)) {
		uint64_t one = 1;
		ssize_t rc = write(ctl->efd, &one, sizeof(one));
		(void)rc;
	}
}

const char *vm_exit_reason_name(int reason)
{
	static const char *const names[] = {
	    [VM_RUNNING] = "running",	     [VM_EXIT_REBOOT] = "reboot",
	    [VM_EXIT_POWEROFF] = "poweroff", [VM_EXIT_SIGNAL] = "signal",
	    [VM_EXIT_ERROR] = "error",	     [VM_EXIT_TRIPLE_FAULT] = "triple-fault",
	};
	if (reason < 0 || (size_t)reason >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[reason];
}

int vm_exit_code(int reason)
{
	return reason == VM_EXIT_ERROR || reason == VM_EXIT_TRIPLE_FAULT ? KILN_EXIT_ERROR
									 : KILN_EXIT_OK;
}

static int vm_check_caps(int kvm_fd, const char **what)
{
	static const struct {
		int cap;
		const char *name;
	} needed[] = {
	    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
	    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
	    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
	    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	};
	if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		*what = "KVM_GET_API_VERSION";
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0) {
			*what = needed[i].name;
			return -ENOTSUP;
		}
	}
	return 0;
}

static int vm_add_memory(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct gm_region *r = &vm->mem.region[i];
		struct kvm_userspace_memory_region slot = {
		    .slot = i,
		    .flags = vm->track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uintptr_t)r->host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return -errno;
	}
	return 0;
}

static int vm_create_platform(struct vm *vm, const char **what)
{
	*what = "KVM_SET_TSS_ADDR";
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		return -errno;
	/* Only meaningful on Intel; AMD and PVM may refuse it, which is harmless. */
	uint64_t ident = KVM_IDENTITY_MAP_ADDR;
	ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
	*what = "KVM_CREATE_IRQCHIP";
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	*what = "KVM_CREATE_PIT2";
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;
	return 0;
}

uint64_t vm_ram_limit(unsigned phys_bits, int nr_memslots)
{
	/* Below the MMIO gap, then from 4 GiB up to the highest guest-physical address. */
	uint64_t low = LAYOUT_MMIO_GAP_START;
	if (nr_memslots < 2 || phys_bits <= 32)
		return nr_memslots < 1 ? 0 : low;
	uint64_t top = phys_bits >= 64 ? UINT64_MAX : 1ULL << phys_bits;
	uint64_t limit = low + (top - LAYOUT_HIGH_RAM_START);
	/* What one memslot may hold (KVM_MEM_MAX_NR_PAGES) and what kiln maps. */
	uint64_t slot_max = low + VM_SLOT_MAX_BYTES;
	limit = limit < slot_max ? limit : slot_max;
	return limit < GUEST_MEM_MAX_BYTES ? limit : GUEST_MEM_MAX_BYTES;
}

/* Guest-physical address bits KVM offers: CPUID 0x80000008, the guest size in EAX[23:16]
 * when set, else EAX[7:0]; 36 (the architectural minimum) if KVM does not say. */
static unsigned vm_phys_bits(const struct kvm_cpuid2 *c)
{
	unsigned bits = 36;
	for (unsigned i = 0; i < c->nent; i++) {
		uint32_t eax = c->entries[i].eax;
		if (c->entries[i].function != 0x80000008)
			continue;
		bits = (eax >> 16) & 0xff ? (eax >> 16) & 0xff : eax & 0xff;
	}
	return bits;
}

/* KVM's supported CPUID list, read once: the RAM check and every vCPU take it from here. */
static int vm_get_supported_cpuid(struct vm *vm)
{
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);
	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int err = -errno;
		free(c);
		return err;
	}
	vm->supported_cpuid = c;
	return 0;
}

static int vm_check_ram(struct vm *vm, const char **what)
{
	*what = "KVM_GET_SUPPORTED_CPUID";
	int err = vm_get_supported_cpuid(vm);
	if (err)
		return err;
	int slots = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	/* Without the capability KVM has at least its historical 32 slots. */
	vm->nr_memslots = slots > 0 ? (unsigned)slots : 32;
	vm->ram_limit = vm_ram_limit(vm_phys_bits(vm->supported_cpuid), (int)vm->nr_memslots);
	*what = "machine-config.mem_size_mib";
	return vm->mem.ram_size > vm->ram_limit ? -EFBIG : 0;
}

int vm_create(struct vm *vm, const char **what)
{
	int err;
	vm->kvm_fd = vm->vm_fd = vm->exit.efd = -1;
	*what = "/dev/kvm";
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		goto fail_errno;
	err = vm_check_caps(vm->kvm_fd, what);
	if (!err)
		err = vm_check_ram(vm, what);
	if (err)
		goto fail;
	*what = "eventfd";
	vm->exit.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit.efd < 0)
		goto fail_errno;
	*what = "KVM_CREATE_VM";
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		goto fail_errno;
	/* The memory slot before the irqchip and PIT: on PVM a slot added after them costs
	 * milliseconds (measured by bench/startup), before them a tenth of that. */
	*what = "dirty page tracking";
	err = vm->track_dirty_pages ? gm_track_dirty(&vm->mem) : 0;
	if (err)
		goto fail;
	*what = "KVM_SET_USER_MEMORY_REGION";
	err = vm_add_memory(vm);
	if (!err)
		err = vm_create_platform(vm, what);
	if (err)
		goto fail;
	return 0;
fail_errno:
	err = -errno;
fail:
	vm_destroy(vm);
	return err;
}

int vm_map_readonly(struct vm *vm, uint64_t gpa, void *host, uint64_t size)
{
	unsigned slot = vm->mem.nr_regions + vm->nr_ro_slots;
	if (slot >= vm->nr_memslots ||
	    ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0)
		return -ENOTSUP;
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .flags = KVM_MEM_READONLY,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uintptr_t)host,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	vm->nr_ro_slots++;
	return 0;
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level};
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

void vm_destroy(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpu[i];
		if (v->run)
			munmap(v->run, v->run_size);
		if (v->fd >= 0)
			close(v->fd);
		v->run = NULL;
		v->fd = -1;
	}
	vm->nr_vcpus = 0;
	free(vm->supported_cpuid);
	vm->supported_cpuid = NULL;
	guest_mem_free(&vm->mem);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->exit.efd >= 0)
		close(vm->exit.efd);
	vm->vm_fd = vm->kvm_fd = vm->exit.efd = -1;
}
