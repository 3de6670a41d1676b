#!/bin/sh
# Regenerates the seed corpora of fuzz_elf and fuzz_bzimage from the same synthesized images
# the unit tests use (tests/unit/boot_test_images.h). Run from anywhere; needs a C compiler.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/gen.c" <<'GEN'
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/boot_test_images.h"

static void put(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void elf_seeds(const char *dir)
{
	_Alignas(8) uint8_t img[TEST_ELF_LEN];
	put(dir, "elf_text_data_bss", img, test_make_elf(img));
	test_make_elf(img);
	test_elf_phdr(img, TEST_ELF_DATA)->p_type = PT_NULL;
	put(dir, "elf_text_only", img, TEST_ELF_LEN);
	test_make_elf(img);
	test_elf_phdr(img, TEST_ELF_DATA)->p_flags |= PF_X;
	test_elf_ehdr(img)->e_entry = TEST_ELF_DATA_PADDR + 4;
	put(dir, "elf_entry_in_second", img, TEST_ELF_LEN);
	test_make_elf(img);
	test_elf_phdr(img, TEST_ELF_DATA)->p_paddr = (60ULL << 20) - TEST_ELF_DATA_MEMSZ;
	put(dir, "elf_top_of_ram", img, TEST_ELF_LEN);
}

static void bz_seeds(const char *dir)
{
	uint8_t img[5 * 512 + TEST_BZ_PAYLOAD_LEN];
	put(dir, "bz_pref", img, test_make_bzimage(img));
	test_bz_hdr(img)->pref_address += 0x1000;
	put(dir, "bz_relocated", img, TEST_BZ_LEN);
	test_make_bzimage(img);
	test_bz_hdr(img)->relocatable_kernel = 0;
	test_bz_hdr(img)->init_size = 40 << 20;
	put(dir, "bz_fixed_big_init", img, TEST_BZ_LEN);
	test_make_bzimage(img);
	test_bz_hdr(img)->version = 0x020c;
	img[0x201] = 0x264 - 0x202; /* header ends right after init_size */
	put(dir, "bz_short_header", img, TEST_BZ_LEN);
	memset(img + TEST_BZ_LEN, 0x90, sizeof(img) - TEST_BZ_LEN);
	test_make_bzimage(img);
	test_bz_hdr(img)->setup_sects = 0; /* means 4 */
	put(dir, "bz_setup_sects_0", img, sizeof(img));
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	elf_seeds(argv[1]);
	bz_seeds(argv[2]);
	return 0;
}
GEN

"$cc" -std=c11 -D_GNU_SOURCE -I"$root" -o "$tmp/gen" "$tmp/gen.c"
mkdir -p "$root/fuzz/corpus/fuzz_elf" "$root/fuzz/corpus/fuzz_bzimage"
"$tmp/gen" "$root/fuzz/corpus/fuzz_elf" "$root/fuzz/corpus/fuzz_bzimage"
