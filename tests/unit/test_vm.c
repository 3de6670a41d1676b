/* vm_ram_limit(): the most guest RAM a host's KVM can map with kiln's memory layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vmm/vm.h"

#define GIB (1ULL << 30)
#define LOW LAYOUT_MMIO_GAP_START

static void test_ram_limit(void **state)
{
	(void)state;
	/* 39 bits: RAM above 4 GiB ends at 512 GiB. */
	assert_int_equal(vm_ram_limit(39, 509), LOW + (512 * GIB - 4 * GIB));
	assert_int_equal(vm_ram_limit(36, 32), LOW + (64 * GIB - 4 * GIB));
	/* 32 bits or a single slot: only the RAM below the MMIO gap. */
	assert_int_equal(vm_ram_limit(32, 509), LOW);
	assert_int_equal(vm_ram_limit(48, 1), LOW);
	assert_int_equal(vm_ram_limit(48, 0), 0);
	/* 52 bits: one memslot's size (KVM_MEM_MAX_NR_PAGES) bounds the RAM above 4 GiB. */
	assert_int_equal(vm_ram_limit(52, 509), LOW + VM_SLOT_MAX_BYTES);
	assert_int_equal(vm_ram_limit(64, 509), LOW + VM_SLOT_MAX_BYTES);
	assert_true(LOW + VM_SLOT_MAX_BYTES <= GUEST_MEM_MAX_BYTES);
	/* Every limit is a whole number of MiB less than the config maximum of 1 TiB or more. */
	assert_int_equal(vm_ram_limit(40, 509) % (1 << 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ram_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
