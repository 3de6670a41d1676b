/* bench/floor: the start-up floor for bench/startup. Only the KVM work any VMM needs to run
 * the tiny guest (tests/guest/tiny), done in the plainest order, one thread, no checks beyond
 * the return codes: open /dev/kvm, a VM, guest RAM with the ELF, the command line, a GDT and
 * identity page tables in it, one memory slot, TSS address, irqchip, PIT, the supported CPUID
 * on one vCPU, long-mode registers; then KVM_RUN, COM1 bytes to stdout, exit 0 on the ACPI
 * sleep-control write, which is where the tiny guest powers off. Same image and the same
 * observable end as kiln running it, so bench/startup can compare like with like.
 * Usage: floor TINY_GUEST [CMDLINE] (CMDLINE: the guest's mode, 'p' by default). */
#include <elf.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_BYTES (128ULL << 20) /* bench/startup's mem_size_mib */
#define GDT_ADDR 0x500ULL	 /* kiln's boot layout (vmm/layout.h), which the guest knows */
#define ZERO_PAGE 0x7000ULL
#define CMDLINE_PTR (ZERO_PAGE + 0x228)
#define STACK_TOP 0x8ff0ULL
#define PML4_ADDR 0x9000ULL
#define PDPT_ADDR 0xa000ULL
#define PD_ADDR 0xb000ULL /* one PD: 1 GiB in 2 MiB pages is all the guest touches */
#define CMDLINE_ADDR 0x20000ULL
#define TSS_ADDR 0xfffbd000ULL
#define COM1 0x3f8
#define ACPI_SLEEP_CTL 0x600
#define MAX_CPUID 256

/* A setup step failed: name it and exit 1 (bench/startup counts it as a failed run). */
static _Noreturn void fail(const char *what)
{
	perror(what);
	exit(1);
}

/* ioctl(fd, req, arg)'s result; a failure ends the floor through fail(what). */
static int kvm_ioctl(int fd, unsigned long req, unsigned long arg, const char *what)
{
	int r = ioctl(fd, req, arg);
	if (r < 0)
		fail(what);
	return r;
}

/* Copies the ELF's PT_LOAD segments to their physical addresses; returns the entry point. */
static uint64_t load_elf(uint8_t *ram, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != sizeof(eh))
		fail(path);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), eh.e_phoff + i * sizeof(ph)) != sizeof(ph))
			fail(path);
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_paddr + ph.p_memsz > MEM_BYTES ||
		    pread(fd, ram + ph.p_paddr, ph.p_filesz, ph.p_offset) != (ssize_t)ph.p_filesz)
			fail(path);
	}
	close(fd);
	return eh.e_entry;
}

/* The boot data the guest reads: command line and its pointer, flat GDT, page tables. */
static void write_boot_data(uint8_t *ram, const char *cmdline)
{
	static const uint64_t gdt[4] = {0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL,
					0x008f8b000000ffffULL};
	uint32_t ptr = CMDLINE_ADDR;
	memcpy(ram + GDT_ADDR, gdt, sizeof(gdt));
	memcpy(ram + CMDLINE_PTR, &ptr, sizeof(ptr));
	memcpy(ram + CMDLINE_ADDR, cmdline, strlen(cmdline) + 1);
	uint64_t *pml4 = (uint64_t *)(ram + PML4_ADDR), *pdpt = (uint64_t *)(ram + PDPT_ADDR);
	uint64_t *pd = (uint64_t *)(ram + PD_ADDR);
	pml4[0] = PDPT_ADDR | 3;
	pdpt[0] = PD_ADDR | 3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB */
}

/* The supported CPUID list, unchanged, on the vCPU. */
static void set_cpuid(int kvm, int vcpu)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + MAX_CPUID * sizeof(c->entries[0]));
	if (!c)
		fail("calloc");
	c->nent = MAX_CPUID;
	kvm_ioctl(kvm, KVM_GET_SUPPORTED_CPUID, (unsigned long)c, "KVM_GET_SUPPORTED_CPUID");
	kvm_ioctl(vcpu, KVM_SET_CPUID2, (unsigned long)c, "KVM_SET_CPUID2");
	free(c);
}

/* A flat 4 GiB segment as KVM's segment cache holds it. */
static struct kvm_segment segment(uint16_t sel, uint8_t type, uint8_t s, uint8_t l, uint8_t db)
{
	return (struct kvm_segment){.limit = 0xffffffff, .selector = sel, .type = type,
				    .present = 1, .s = s, .l = l, .db = db, .g = 1};
}

/* 64-bit mode at entry, flat segments, paging on the identity tables, the stack below. */
static void set_long_mode(int vcpu, uint64_t entry)
{
	struct kvm_sregs sr;
	kvm_ioctl(vcpu, KVM_GET_SREGS, (unsigned long)&sr, "KVM_GET_SREGS");
	sr.cs = segment(8, 11, 1, 1, 0);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = segment(16, 3, 1, 0, 1);
	sr.tr = segment(24, 11, 0, 0, 0);
	sr.gdt = (struct kvm_dtable){.base = GDT_ADDR, .limit = 31};
	sr.idt = (struct kvm_dtable){.base = 0, .limit = 0};
	sr.cr0 = 0x80050033; /* PE MP ET NE WP AM PG */
	sr.cr3 = PML4_ADDR;
	sr.cr4 = 0x20; /* PAE */
	sr.efer = 0x500; /* LME LMA */
	kvm_ioctl(vcpu, KVM_SET_SREGS, (unsigned long)&sr, "KVM_SET_SREGS");
	struct kvm_regs r = {.rip = entry, .rsp = STACK_TOP, .rflags = 2, .rsi = ZERO_PAGE};
	kvm_ioctl(vcpu, KVM_SET_REGS, (unsigned long)&r, "KVM_SET_REGS");
}

/* KVM_RUN until the guest writes the ACPI sleep control; COM1 output goes to stdout. */
static _Noreturn void run(int vcpu, struct kvm_run *kr)
{
	for (;;) {
		kvm_ioctl(vcpu, KVM_RUN, 0, "KVM_RUN");
		if (kr->exit_reason == KVM_EXIT_INTR || kr->exit_reason == KVM_EXIT_HLT)
			continue;
		if (kr->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "floor: KVM exit %u\n", kr->exit_reason);
			exit(1);
		}
		if (kr->io.direction != KVM_EXIT_IO_OUT)
			continue;
		if (kr->io.port == ACPI_SLEEP_CTL)
			exit(0);
		if (kr->io.port == COM1 &&
		    write(1, (char *)kr + kr->io.data_offset, kr->io.size * kr->io.count) < 0)
			fail("write");
	}
}

/* The floor's steps in their plainest order: KVM, VM, RAM with the guest, one slot, TSS,
 * irqchip, PIT, one vCPU with the supported CPUID, long mode, run. */
int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s TINY_GUEST [CMDLINE]\n", argv[0]);
		return 2;
	}
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		fail("/dev/kvm");
	int vm = kvm_ioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	uint8_t *ram = mmap(NULL, MEM_BYTES, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		fail("mmap");
	uint64_t entry = load_elf(ram, argv[1]);
	write_boot_data(ram, argc > 2 ? argv[2] : "p");
	struct kvm_userspace_memory_region slot = {
	    .memory_size = MEM_BYTES, .userspace_addr = (uintptr_t)ram};
	kvm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&slot, "KVM_SET_USER_MEMORY_REGION");
	kvm_ioctl(vm, KVM_SET_TSS_ADDR, TSS_ADDR, "KVM_SET_TSS_ADDR");
	kvm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	kvm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2");
	int vcpu = kvm_ioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	set_cpuid(kvm, vcpu);
	int run_size = kvm_ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *kr = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (kr == MAP_FAILED)
		fail("mmap kvm_run");
	set_long_mode(vcpu, entry);
	run(vcpu, kr);
}
