/* Long-mode CPU state for the Linux 64-bit entry: a flat GDT, a zero IDT, identity page
 * tables for the first 4 GiB and the BSP's registers (boot.rst, "64-bit Boot Protocol"). */
#include "boot/boot.h"

#include <errno.h>
#include <string.h>

#define PTE_PRESENT 0x1ULL
#define PTE_WRITE 0x2ULL
#define PTE_HUGE 0x80ULL /* PS: a 2 MiB page in a PD entry */
#define PT_PAGE_SIZE 4096
#define PT_ENTRIES 512
#define HUGE_PAGE_SHIFT 21

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_AM (1ULL << 18)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define RFLAGS_RESERVED 0x2ULL /* bit 1 always reads as 1 */

#define IDT_LEN 8

/* The kernel's own boot CR0 value: caches on, protected mode, paging. */
#define BOOT_CR0 (CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG)

#define PD_MAPPED_BYTES ((uint64_t)LAYOUT_PD_PAGES * PT_ENTRIES << HUGE_PAGE_SHIFT)
_Static_assert(PD_MAPPED_BYTES == (4ULL << 30), "the PD pages map exactly 4 GiB");
_Static_assert(LAYOUT_PD_PAGES <= PT_ENTRIES, "one PDPT is enough");
_Static_assert(BOOT_IDT_ADDR + IDT_LEN <= LAYOUT_ZERO_PAGE_ADDR, "GDT/IDT below the zero page");

/* Same descriptors as Firecracker (gdt_entry(0xa09b/0xc093/0x808b, 0, 0xfffff)). */
static const uint64_t boot_gdt[BOOT_GDT_ENTRIES] = {
    [0] = 0,
    /* code: P, DPL 0, S, type 0xb (exec/read, accessed), L, G */
    [BOOT_CS_SELECTOR / 8] = 0x00af9b000000ffffULL,
    /* data: P, DPL 0, S, type 0x3 (read/write, accessed), D/B, G */
    [BOOT_DS_SELECTOR / 8] = 0x00cf93000000ffffULL,
    /* TSS: P, type 0xb (busy 64-bit TSS), G */
    [BOOT_TSS_SELECTOR / 8] = 0x008f8b000000ffffULL,
};

/* Decodes the boot GDT descriptor `selector` names into KVM's segment cache. KVM takes the
 * byte-granular limit (VMX checks limit[11:0] == 0xfff when G is set), so a 4 KiB-granular
 * limit is expanded. */
static void seg_from_gdt(uint16_t selector, struct kvm_segment *seg)
{
	uint64_t e = boot_gdt[selector / 8];
	uint32_t limit = (uint32_t)(((e >> 32) & 0xf0000) | (e & 0xffff));
	uint8_t g = (e >> 55) & 1;
	uint8_t present = (e >> 47) & 1;
	*seg = (struct kvm_segment){
	    .base = ((e >> 16) & 0xffffff) | (((e >> 56) & 0xff) << 24),
	    .limit = g ? (limit << 12) | 0xfff : limit,
	    .selector = selector,
	    .type = (e >> 40) & 0xf,
	    .present = present,
	    .dpl = (e >> 45) & 3,
	    .db = (e >> 54) & 1,
	    .s = (e >> 44) & 1,
	    .l = (e >> 53) & 1,
	    .g = g,
	    .avl = (e >> 52) & 1,
	    .unusable = !present,
	};
}

static int write_gdt_idt(const struct guest_mem *gm)
{
	static const uint8_t idt[IDT_LEN];
	int err = gm_write(gm, LAYOUT_GDT_ADDR, boot_gdt, sizeof(boot_gdt));
	if (!err)
		err = gm_write(gm, BOOT_IDT_ADDR, idt, sizeof(idt));
	return err;
}

/* PML4[0] -> PDPT[0..3] -> PD pages of 2 MiB identity mappings; everything else not
 * present. Whole pages are written so stale contents never survive. */
static int write_page_tables(const struct guest_mem *gm)
{
	uint64_t page[PT_ENTRIES];
	memset(page, 0, sizeof(page));
	page[0] = LAYOUT_PDPT_ADDR | PTE_PRESENT | PTE_WRITE;
	int err = gm_write(gm, LAYOUT_PML4_ADDR, page, sizeof(page));
	if (err)
		return err;
	memset(page, 0, sizeof(page));
	for (unsigned i = 0; i < LAYOUT_PD_PAGES; i++)
		page[i] = (LAYOUT_PD_ADDR + (uint64_t)i * PT_PAGE_SIZE) | PTE_PRESENT | PTE_WRITE;
	err = gm_write(gm, LAYOUT_PDPT_ADDR, page, sizeof(page));
	for (unsigned p = 0; !err && p < LAYOUT_PD_PAGES; p++) {
		for (unsigned i = 0; i < PT_ENTRIES; i++) {
			uint64_t frame = (uint64_t)p * PT_ENTRIES + i;
			page[i] = (frame << HUGE_PAGE_SHIFT) | PTE_PRESENT | PTE_WRITE | PTE_HUGE;
		}
		err = gm_write(gm, LAYOUT_PD_ADDR + (uint64_t)p * PT_PAGE_SIZE, page, sizeof(page));
	}
	return err;
}

static void fill_sregs(struct kvm_sregs *sregs)
{
	struct kvm_segment data;
	seg_from_gdt(BOOT_CS_SELECTOR, &sregs->cs);
	seg_from_gdt(BOOT_DS_SELECTOR, &data);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	seg_from_gdt(BOOT_TSS_SELECTOR, &sregs->tr);
	sregs->gdt.base = LAYOUT_GDT_ADDR;
	sregs->gdt.limit = sizeof(boot_gdt) - 1;
	sregs->idt.base = BOOT_IDT_ADDR;
	sregs->idt.limit = IDT_LEN - 1;
	sregs->cr0 = BOOT_CR0;
	sregs->cr2 = 0;
	sregs->cr3 = LAYOUT_PML4_ADDR;
	sregs->cr4 = CR4_PAE;
	sregs->efer = EFER_LME | EFER_LMA;
}

int boot_setup_cpu(const struct guest_mem *gm, const struct kernel_image *k,
		   struct kvm_sregs *sregs, struct kvm_regs *regs)
{
	int err = write_gdt_idt(gm);
	if (!err)
		err = write_page_tables(gm);
	if (err)
		return err;
	fill_sregs(sregs);
	memset(regs, 0, sizeof(*regs));
	regs->rflags = RFLAGS_RESERVED;
	regs->rip = k->entry;
	regs->rsp = LAYOUT_BOOT_STACK_ADDR;
	regs->rbp = LAYOUT_BOOT_STACK_ADDR;
	regs->rsi = LAYOUT_ZERO_PAGE_ADDR;
	return 0;
}
