/* libFuzzer harness for the vmlinux ELF loader: any input is loaded or refused, never a
 * crash or an out-of-bounds access, and an accepted image boots through to the zero page. */
#include "fuzz/fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_boot_one(kernel_load_elf, kernel_check_elf, data, size);
}
