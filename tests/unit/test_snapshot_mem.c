/* The snapshot memory file: the sparse Full writer across the MMIO gap, loading it back with
 * guest_mem_init_file (MAP_PRIVATE), the Diff writer (bitmap, device-dirty pages, KVM's dirty
 * log where /dev/kvm is usable, nothing lost when it fails) and kiln-rebase-snap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tests/unit/snap_mem_test.h"
#include "vmm/snapshot_mem.h"
#include "vmm/vm.h"

/* A Full snapshot of a two-region guest with the filled pages, into a new file. Its fd. */
static int full_snapshot(char path[64])
{
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, TWO_REGION_RAM), 0);
	assert_int_equal(gm.nr_regions, 2);
	fill_guest(&gm);
	int fd = temp_file(path);
	assert_true(fd >= 0);
	/* What the file held before must not survive: the writer empties it first. */
	uint8_t junk[PAGE];
	fill_page(junk, 9);
	assert_int_equal(pwrite(fd, junk, PAGE, 0x500000), (ssize_t)PAGE);
	assert_int_equal(snap_mem_write_full(&gm, fd), 0);
	guest_mem_free(&gm);
	return fd;
}

static void test_full_is_sparse_and_exact(void **state)
{
	(void)state;
	char path[64];
	int fd = full_snapshot(path);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, TWO_REGION_RAM);
	/* Five pages of data in a 3.3 GiB file (file systems may add a little metadata). */
	assert_true((uint64_t)st.st_blocks * 512 <= 64 * 1024);
	uint64_t offs[16];
	assert_int_equal(data_pages(fd, offs, 16), NR_FILLED);
	for (size_t i = 0; i < NR_FILLED; i++) {
		assert_int_equal(offs[i], filled[i].off);
		assert_true(file_page_matches(fd, filled[i].off, filled[i].seed));
	}
	assert_true(file_page_matches(fd, 0x500000, 0));
	close(fd);
	unlink(path);
}

static void test_init_file_maps_private(void **state)
{
	(void)state;
	char path[64];
	int fd = full_snapshot(path);
	struct guest_mem gm;
	assert_int_equal(guest_mem_init_file(&gm, TWO_REGION_RAM, fd), 0);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(gm.region[1].gpa, HIGH);
	uint8_t page[PAGE];
	for (size_t i = 0; i < NR_FILLED; i++) {
		assert_int_equal(gm_read(&gm, filled[i].gpa, page, PAGE), 0);
		assert_true(page_matches(page, filled[i].seed));
	}
	assert_int_equal(gm_read(&gm, 0x500000, page, PAGE), 0);
	assert_true(page_matches(page, 0));
	/* Writes stay in this mapping: the file keeps the snapshot's bytes. */
	put_page(&gm, 0, 7);
	put_page(&gm, HIGH, 8);
	assert_int_equal(gm_read(&gm, 0, page, PAGE), 0);
	assert_true(page_matches(page, 7));
	assert_true(file_page_matches(fd, 0, 1));
	assert_true(file_page_matches(fd, LAYOUT_MMIO_GAP_START, 4));
	guest_mem_free(&gm);
	/* One page short of the RAM: refused, nothing mapped. */
	assert_int_equal(ftruncate(fd, (off_t)(TWO_REGION_RAM - PAGE)), 0);
	assert_int_equal(guest_mem_init_file(&gm, TWO_REGION_RAM, fd), -EINVAL);
	assert_null(gm.reservation);
	assert_int_equal(guest_mem_init_file(&gm, TWO_REGION_RAM - PAGE, fd), 0);
	guest_mem_free(&gm);
	assert_int_equal(guest_mem_init_file(&gm, 12345, fd), -EINVAL);
	assert_int_equal(guest_mem_init_file(&gm, PAGE, -1), -EBADF);
	int dir = open("/", O_RDONLY | O_DIRECTORY);
	assert_int_equal(guest_mem_init_file(&gm, PAGE, dir), -EINVAL);
	close(dir);
	close(fd);
	unlink(path);
}

static void set_bit(uint64_t *bitmap, uint64_t page)
{
	bitmap[page / 64] |= 1ULL << (page % 64);
}

/* The Diff writer's core: exactly the pages of the bitmap, zero pages included (a Diff
 * must override the base there); device-dirty pages through gm_take_dirty. */
static void test_write_pages_of_bitmap(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, TWO_REGION_RAM), 0);
	assert_int_equal(gm_track_dirty(&gm), 0);
	uint64_t *bitmap = calloc(TWO_REGION_RAM / PAGE / 64 + 1, sizeof(uint64_t));
	put_page(&gm, 0x3000, 1); /* dirty */
	put_page(&gm, 0x4000, 2); /* clean: left out although not zero */
	set_bit(bitmap, 0x3000 / PAGE);
	set_bit(bitmap, 0x9000 / PAGE); /* dirty and all zeros */
	/* A device wrote 100 bytes across two pages above the gap. */
	put_page(&gm, HIGH + 0x1000, 3);
	put_page(&gm, HIGH + 0x2000, 4);
	gm_mark_dirty(&gm, HIGH + 0x1fd0, 100);
	gm_take_dirty(&gm, bitmap);
	char path[64];
	int fd = temp_file(path);
	assert_int_equal(snap_mem_write_pages(&gm, bitmap, fd), 0);
	uint64_t offs[16];
	assert_int_equal(data_pages(fd, offs, 16), 4);
	assert_int_equal(offs[0], 0x3000);
	assert_int_equal(offs[1], 0x9000);
	assert_int_equal(offs[2], LAYOUT_MMIO_GAP_START + 0x1000);
	assert_int_equal(offs[3], LAYOUT_MMIO_GAP_START + 0x2000);
	assert_true(file_page_matches(fd, 0x3000, 1));
	assert_true(file_page_matches(fd, 0x4000, 0));
	assert_true(file_page_matches(fd, 0x9000, 0));
	assert_true(file_page_matches(fd, LAYOUT_MMIO_GAP_START + 0x2000, 4));
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, TWO_REGION_RAM);
	free(bitmap);
	guest_mem_free(&gm);
	close(fd);
	unlink(path);
}

/* KVM's per-slot logs land at their region's pages; bits past a region are dropped. */
static void test_slot_logs_merge(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, TWO_REGION_RAM), 0);
	const uint64_t n0 = LAYOUT_MMIO_GAP_START / PAGE, words = TWO_REGION_RAM / PAGE / 64;
	uint64_t *bitmap = calloc(words, sizeof(uint64_t));
	uint64_t *log0 = calloc(n0 / 64, sizeof(uint64_t));
	uint64_t log1[8 * MIB / PAGE / 64] = {0};
	log0[0] = 1ULL << 5;
	log0[n0 / 64 - 1] = 1ULL << 63;
	log1[0] = 7;
	log1[31] = 1ULL << 63;
	snap_mem_or_slot_log(&gm, 0, log0, bitmap);
	snap_mem_or_slot_log(&gm, 1, log1, bitmap);
	const uint64_t want[] = {5, n0 - 1, n0, n0 + 1, n0 + 2, n0 + 2047};
	unsigned set = 0;
	for (uint64_t w = 0; w < words; w++)
		set += (unsigned)__builtin_popcountll(bitmap[w]);
	assert_int_equal(set, 6);
	for (size_t i = 0; i < 6; i++)
		assert_true((bitmap[want[i] / 64] >> (want[i] % 64)) & 1);
	guest_mem_free(&gm);
	/* 100 pages: the log's second word has bits for pages 100 to 127 that do not exist. */
	assert_int_equal(guest_mem_init(&gm, 100 * PAGE), 0);
	uint64_t small[2] = {0}, log[2] = {0, ~0ULL};
	snap_mem_or_slot_log(&gm, 0, log, small);
	assert_int_equal(small[0], 0);
	assert_int_equal(small[1], (1ULL << 36) - 1);
	guest_mem_free(&gm);
	free(log0);
	free(bitmap);
}

/* A Diff that cannot be taken keeps the device-dirty pages for the next try. */
static void test_diff_failure_keeps_dirty(void **state)
{
	(void)state;
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 16 * MIB), 0);
	assert_int_equal(gm_track_dirty(&gm), 0);
	gm_mark_dirty(&gm, 0x5000, 1);
	char path[64];
	int fd = temp_file(path);
	assert_int_equal(snap_mem_write_diff(&gm, -1, fd), -EBADF);
	assert_int_equal(snap_mem_reset_dirty(&gm, -1), -EBADF);
	uint64_t bitmap[16 * MIB / PAGE / 64] = {0};
	gm_take_dirty(&gm, bitmap);
	assert_int_equal(bitmap[0], 1ULL << 5);
	guest_mem_free(&gm);
	close(fd);
	unlink(path);
}

/* A VM with track_dirty_pages (two memslots), or skip where /dev/kvm cannot be opened. */
static void kvm_vm(struct vm *vm, bool track)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		skip();
	close(kvm);
	memset(vm, 0, sizeof(*vm));
	assert_int_equal(guest_mem_init(&vm->mem, TWO_REGION_RAM), 0);
	vm->track_dirty_pages = track;
	const char *what = "";
	int rc = vm_create(vm, &what);
	if (rc)
		print_error("vm_create: %s: %s\n", what, strerror(-rc));
	assert_int_equal(rc, 0);
	assert_int_equal(vm->mem.dirty != NULL, track);
}

/* KVM's dirty log (empty: the host's own writes are not in it) ORed with the device-dirty
 * pages; both cleared by a Diff and by snap_mem_reset_dirty; a failed write loses nothing. */
static void test_diff_with_kvm_log(void **state)
{
	(void)state;
	struct vm vm;
	kvm_vm(&vm, true);
	put_page(&vm.mem, 0x7000, 1);
	put_page(&vm.mem, HIGH + 0x3000, 2);
	gm_mark_dirty(&vm.mem, HIGH + 0x3000, 8);
	char path[64];
	int fd = temp_file(path);
	uint64_t offs[16];
	assert_int_equal(snap_mem_write_diff(&vm.mem, vm.vm_fd, fd), 0);
	assert_int_equal(data_pages(fd, offs, 16), 1);
	assert_int_equal(offs[0], LAYOUT_MMIO_GAP_START + 0x3000);
	assert_true(file_page_matches(fd, offs[0], 2));
	/* The next Diff holds only what changed since. */
	assert_int_equal(snap_mem_write_diff(&vm.mem, vm.vm_fd, fd), 0);
	assert_int_equal(data_pages(fd, offs, 16), 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, TWO_REGION_RAM);
	gm_mark_dirty(&vm.mem, 0x7000, 1);
	assert_int_equal(snap_mem_reset_dirty(&vm.mem, vm.vm_fd), 0);
	assert_int_equal(snap_mem_write_diff(&vm.mem, vm.vm_fd, fd), 0);
	assert_int_equal(data_pages(fd, offs, 16), 0);
	/* Writing fails after the logs were read: the pages are dirty again for the retry. */
	gm_mark_dirty(&vm.mem, 0x7000, 1);
	assert_int_equal(snap_mem_write_diff(&vm.mem, vm.vm_fd, -1), -EBADF);
	assert_int_equal(snap_mem_write_diff(&vm.mem, vm.vm_fd, fd), 0);
	assert_int_equal(data_pages(fd, offs, 16), 1);
	assert_int_equal(offs[0], 0x7000);
	assert_true(file_page_matches(fd, 0x7000, 1));
	vm_destroy(&vm);
	close(fd);
	unlink(path);
}

static void test_diff_needs_dirty_logging(void **state)
{
	(void)state;
	struct vm vm;
	kvm_vm(&vm, false);
	char path[64];
	int fd = temp_file(path);
	assert_int_equal(snap_mem_write_diff(&vm.mem, vm.vm_fd, fd), -ENOENT);
	vm_destroy(&vm);
	close(fd);
	unlink(path);
}

/* Runs kiln-rebase-snap with args (NULL-terminated, at most 6). Its exit code (-1 when it
 * did not exit) and in *lines how many lines it wrote to stderr. */
static int run_rebase(const char *const *args, int *lines)
{
	char bin[256], path[64], out[1024];
	char *argv[8] = {(char *)tool_path("kiln-rebase-snap", bin, sizeof(bin))};
	for (int i = 0; args[i] && i < 6; i++)
		argv[i + 1] = (char *)args[i];
	int err_fd = temp_file(path);
	assert_true(err_fd >= 0);
	int status = wait_for(spawn(argv, err_fd), 30);
	ssize_t n = pread(err_fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	*lines = 0;
	for (char *p = out; (p = strchr(p, '\n')); p++)
		++*lines;
	if (*lines)
		print_message("  kiln-rebase-snap: %s", out);
	close(err_fd);
	unlink(path);
	return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define BASE_PAGES 256

/* A base memory file of BASE_PAGES pages, page i of seed i + 1. Its fd. */
static int base_file(char path[64])
{
	int fd = temp_file(path);
	assert_true(fd >= 0);
	uint8_t page[PAGE];
	for (unsigned i = 0; i < BASE_PAGES; i++) {
		fill_page(page, i + 1);
		assert_int_equal(pwrite(fd, page, PAGE, (off_t)(i * PAGE)), (ssize_t)PAGE);
	}
	return fd;
}

static void test_rebase_applies_diff(void **state)
{
	(void)state;
	char base_path[64], diff_path[64], base_arg[80], diff_arg[80];
	int base = base_file(base_path);
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, BASE_PAGES * PAGE), 0);
	uint64_t bitmap[BASE_PAGES / 64] = {0};
	put_page(&gm, 0, 99);
	put_page(&gm, 3 * PAGE, 100);
	put_page(&gm, 255 * PAGE, 101);
	set_bit(bitmap, 0);
	set_bit(bitmap, 3);
	set_bit(bitmap, 100); /* zeroed by the guest since the base */
	set_bit(bitmap, 255);
	int diff = temp_file(diff_path);
	assert_int_equal(snap_mem_write_pages(&gm, bitmap, diff), 0);
	guest_mem_free(&gm);
	snprintf(base_arg, sizeof(base_arg), "--base-file=%s", base_path);
	snprintf(diff_arg, sizeof(diff_arg), "--diff-file=%s", diff_path);
	int lines;
	assert_int_equal(run_rebase((const char *[]){base_arg, diff_arg, NULL}, &lines), 0);
	assert_int_equal(lines, 0);
	for (unsigned i = 0; i < BASE_PAGES; i++) {
		unsigned want = i == 0 ? 99 : i == 3 ? 100 : i == 100 ? 0 : i == 255 ? 101 : i + 1;
		assert_true(file_page_matches(base, i * PAGE, want));
	}
	struct stat st;
	assert_int_equal(fstat(base, &st), 0);
	assert_int_equal((uint64_t)st.st_size, BASE_PAGES * PAGE);
	close(base);
	close(diff);
	unlink(base_path);
	unlink(diff_path);
}

static void test_rebase_refuses(void **state)
{
	(void)state;
	char base_path[64], diff_path[64];
	int base = base_file(base_path);
	int diff = temp_file(diff_path);
	uint8_t page[PAGE];
	fill_page(page, 77);
	/* A Diff one page larger than the base. */
	assert_int_equal(pwrite(diff, page, PAGE, BASE_PAGES * PAGE), (ssize_t)PAGE);
	int lines;
	const char *b = base_path, *d = diff_path;
	assert_int_equal(
	    run_rebase((const char *[]){"--base-file", b, "--diff-file", d, NULL}, &lines), 2);
	assert_int_equal(lines, 1);
	assert_true(file_page_matches(base, 0, 1));
	const char *const *bad[] = {
	    (const char *[]){NULL},
	    (const char *[]){"--base-file", b, NULL},
	    (const char *[]){"--base-file", b, "--diff-file", NULL},
	    (const char *[]){"--base-file", b, "--diff-file", d, "--bogus", NULL},
	    (const char *[]){"--base-file", "/nonexistent/base", "--diff-file", d, NULL},
	    (const char *[]){"--base-file", b, "--diff-file", "/", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(run_rebase(bad[i], &lines), 2);
		assert_int_equal(lines, 1);
	}
	assert_int_equal(run_rebase((const char *[]){"--help", NULL}, &lines), 0);
	close(base);
	close(diff);
	unlink(base_path);
	unlink(diff_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_is_sparse_and_exact),
	    cmocka_unit_test(test_init_file_maps_private),
	    cmocka_unit_test(test_write_pages_of_bitmap),
	    cmocka_unit_test(test_slot_logs_merge),
	    cmocka_unit_test(test_diff_failure_keeps_dirty),
	    cmocka_unit_test(test_diff_with_kvm_log),
	    cmocka_unit_test(test_diff_needs_dirty_logging),
	    cmocka_unit_test(test_rebase_applies_diff),
	    cmocka_unit_test(test_rebase_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
