/* Long-mode CPU state: GDT, IDT, identity page tables and the BSP's registers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "boot/boot.h"
#include "vmm/guest_mem.h"

#define RAM_SIZE (256ULL << 20)
#define ENTRY 0x1000200ULL
#define APIC_BASE 0xfee00900ULL

struct fixture {
	struct guest_mem gm;
	struct kernel_image k;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->gm, RAM_SIZE), 0);
	/* Stale low memory and registers: everything must be overwritten. */
	memset(gm_ptr(&f->gm, 0, 0x10000), 0xee, 0x10000);
	memset(&f->sregs, 0x77, sizeof(f->sregs));
	memset(&f->regs, 0x77, sizeof(f->regs));
	f->sregs.apic_base = APIC_BASE;
	f->k.entry = ENTRY;
	assert_int_equal(boot_setup_cpu(&f->gm, &f->k, &f->sregs, &f->regs), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	guest_mem_free(&f->gm);
	free(f);
	return 0;
}

static uint64_t read64(const struct guest_mem *gm, uint64_t gpa)
{
	uint64_t v;
	assert_int_equal(gm_read(gm, gpa, &v, sizeof(v)), 0);
	return v;
}

static void test_gdt_idt(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(read64(&f->gm, LAYOUT_GDT_ADDR), 0);
	assert_int_equal(read64(&f->gm, LAYOUT_GDT_ADDR + 8), 0x00af9b000000ffffULL);
	assert_int_equal(read64(&f->gm, LAYOUT_GDT_ADDR + 16), 0x00cf93000000ffffULL);
	assert_int_equal(read64(&f->gm, LAYOUT_GDT_ADDR + 24), 0x008f8b000000ffffULL);
	assert_int_equal(read64(&f->gm, BOOT_IDT_ADDR), 0);
	assert_int_equal(f->sregs.gdt.base, LAYOUT_GDT_ADDR);
	assert_int_equal(f->sregs.gdt.limit, 31);
	assert_int_equal(f->sregs.idt.base, BOOT_IDT_ADDR);
	assert_int_equal(f->sregs.idt.limit, 7);
}

static void test_page_tables(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(read64(&f->gm, LAYOUT_PML4_ADDR), LAYOUT_PDPT_ADDR | 0x3);
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(read64(&f->gm, LAYOUT_PML4_ADDR + 8 * i), 0);
	for (unsigned i = 0; i < 512; i++) {
		uint64_t want = i < 4 ? (LAYOUT_PD_ADDR + 0x1000ULL * i) | 0x3 : 0;
		assert_int_equal(read64(&f->gm, LAYOUT_PDPT_ADDR + 8 * i), want);
	}
	for (unsigned i = 0; i < 4 * 512; i++)
		assert_int_equal(read64(&f->gm, LAYOUT_PD_ADDR + 8 * i),
				 ((uint64_t)i << 21) | 0x83);
}

/* Walks the tables the way the MMU does; returns the physical address or UINT64_MAX. */
static uint64_t translate(const struct guest_mem *gm, uint64_t cr3, uint64_t va)
{
	uint64_t pml4e = read64(gm, (cr3 & ~0xfffULL) + 8 * ((va >> 39) & 511));
	if (!(pml4e & 1))
		return UINT64_MAX;
	uint64_t pdpte = read64(gm, (pml4e & 0xffffffffff000ULL) + 8 * ((va >> 30) & 511));
	if (!(pdpte & 1) || (pdpte & 0x80))
		return UINT64_MAX;
	uint64_t pde = read64(gm, (pdpte & 0xffffffffff000ULL) + 8 * ((va >> 21) & 511));
	if (!(pde & 1) || !(pde & 0x80))
		return UINT64_MAX;
	return (pde & 0xfffffffe00000ULL) + (va & 0x1fffff);
}

static void test_identity_map(void **state)
{
	struct fixture *f = *state;
	static const uint64_t probes[] = {
	    0, LAYOUT_ZERO_PAGE_ADDR, ENTRY, 0x12345678, 0xcfffffff, 0xfee00000, 0xffffffff};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		assert_int_equal(translate(&f->gm, f->sregs.cr3, probes[i]), probes[i]);
	assert_int_equal(translate(&f->gm, f->sregs.cr3, 0x100000000ULL), UINT64_MAX);
}

static void check_seg(const struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t sflag,
		      uint8_t l, uint8_t db)
{
	assert_int_equal(s->selector, sel);
	assert_int_equal(s->type, type);
	assert_int_equal(s->s, sflag);
	assert_int_equal(s->l, l);
	assert_int_equal(s->db, db);
	assert_int_equal(s->present, 1);
	assert_int_equal(s->dpl, 0);
	assert_int_equal(s->g, 1);
	assert_int_equal(s->avl, 0);
	assert_int_equal(s->unusable, 0);
	assert_int_equal(s->base, 0);
	assert_int_equal(s->limit, 0xffffffff);
}

static void test_sregs(void **state)
{
	struct fixture *f = *state;
	const struct kvm_sregs *s = &f->sregs;
	check_seg(&s->cs, 0x08, 0xb, 1, 1, 0);
	check_seg(&s->ds, 0x10, 0x3, 1, 0, 1);
	check_seg(&s->es, 0x10, 0x3, 1, 0, 1);
	check_seg(&s->fs, 0x10, 0x3, 1, 0, 1);
	check_seg(&s->gs, 0x10, 0x3, 1, 0, 1);
	check_seg(&s->ss, 0x10, 0x3, 1, 0, 1);
	check_seg(&s->tr, 0x18, 0xb, 0, 0, 0);
	assert_true(s->cr0 & 1);	    /* PE */
	assert_true(s->cr0 & (1ULL << 31)); /* PG */
	assert_int_equal(s->cr0, 0x80050033);
	assert_int_equal(s->cr3, LAYOUT_PML4_ADDR);
	assert_int_equal(s->cr4, 0x20);
	assert_int_equal(s->efer, 0x500);
	/* What KVM_GET_SREGS reported and kiln does not own stays. */
	assert_int_equal(s->apic_base, APIC_BASE);
	assert_int_equal(s->interrupt_bitmap[0], 0x7777777777777777ULL);
}

static void test_regs(void **state)
{
	struct fixture *f = *state;
	const struct kvm_regs *r = &f->regs;
	assert_int_equal(r->rflags, 0x2);
	assert_int_equal(r->rip, ENTRY);
	assert_int_equal(r->rsp, LAYOUT_BOOT_STACK_ADDR);
	assert_int_equal(r->rbp, LAYOUT_BOOT_STACK_ADDR);
	assert_int_equal(r->rsi, LAYOUT_ZERO_PAGE_ADDR);
	assert_int_equal(r->rax | r->rbx | r->rcx | r->rdx | r->rdi, 0);
	assert_int_equal(r->r8 | r->r9 | r->r10 | r->r11 | r->r12 | r->r13 | r->r14 | r->r15, 0);
}

static void test_too_small(void **state)
{
	(void)state;
	struct guest_mem gm;
	struct kernel_image k = {.entry = ENTRY};
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	memset(&sregs, 0, sizeof(sregs));
	/* Room for the GDT but not the page tables. */
	assert_int_equal(guest_mem_init(&gm, 0x8000), 0);
	assert_int_equal(boot_setup_cpu(&gm, &k, &sregs, &regs), -EFAULT);
	guest_mem_free(&gm);
	assert_int_equal(guest_mem_init(&gm, 0xc000), 0);
	assert_int_equal(boot_setup_cpu(&gm, &k, &sregs, &regs), -EFAULT);
	guest_mem_free(&gm);
	assert_int_equal(guest_mem_init(&gm, 0xf000), 0);
	assert_int_equal(boot_setup_cpu(&gm, &k, &sregs, &regs), 0);
	guest_mem_free(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_gdt_idt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_page_tables, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identity_map, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sregs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_regs, setup, teardown),
	    cmocka_unit_test(test_too_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
