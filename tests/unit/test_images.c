/* Kernel and initrd files: read (never mapped) so a file that shrinks is a clean error,
 * checked against their own headers, and every error one line naming key, path and why. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/boot_test_images.h"
#include "vmm/images.h"

#define RAM_SIZE (64ULL << 20)

struct fixture {
	char dir[64];
	char kernel[96];
	char initrd[96];
	struct guest_mem gm;
	struct kernel_image k;
	struct boot_layout bl;
	struct boot_cfg cfg;
	char err[512];
};

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/kiln-images.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->kernel, sizeof(f->kernel), "%s/vmlinux", f->dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
	assert_int_equal(guest_mem_init(&f->gm, RAM_SIZE), 0);
	f->cfg.kernel_image_path = f->kernel;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->kernel);
	unlink(f->initrd);
	rmdir(f->dir);
	guest_mem_free(&f->gm);
	free(f);
	return 0;
}

static int load(struct fixture *f)
{
	f->err[0] = '\0';
	return images_load(&f->cfg, &f->gm, &f->k, &f->bl, f->err, sizeof(f->err));
}

/* The read that replaced mmap: a file shorter than measured is -ENODATA, not a SIGBUS on
 * the missing pages. */
static void test_read_fd_shrunk(void **state)
{
	struct fixture *f = *state;
	size_t len = 1 << 20;
	uint8_t *data = calloc(1, len);
	assert_non_null(data);
	write_file(f->kernel, data, len);
	int fd = open(f->kernel, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(image_read_fd(fd, data, len), 0);
	assert_int_equal(ftruncate(open(f->kernel, O_WRONLY), 4096), 0);
	assert_int_equal(image_read_fd(fd, data, len), -ENODATA);
	assert_int_equal(image_read_fd(-1, data, len), -EBADF);
	close(fd);
	free(data);
}

static void test_elf_and_initrd(void **state)
{
	struct fixture *f = *state;
	_Alignas(8) uint8_t img[TEST_ELF_LEN];
	test_make_elf(img);
	write_file(f->kernel, img, sizeof(img));
	uint8_t rd[5000];
	memset(rd, 0x5a, sizeof(rd));
	write_file(f->initrd, rd, sizeof(rd));
	f->cfg.initrd_path = f->initrd;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.entry, TEST_ELF_ENTRY);
	assert_int_equal(f->bl.initrd_size, sizeof(rd));
	assert_memory_equal(gm_ptr(&f->gm, f->bl.initrd_gpa, sizeof(rd)), rd, sizeof(rd));
}

static void expect_error(struct fixture *f, const char *msg)
{
	assert_int_equal(load(f), -EINVAL);
	assert_non_null(strstr(f->err, msg));
	assert_null(strchr(f->err, '\n'));
}

/* A bzImage whose header claims more than the file holds is refused, naming the file. */
static void test_bzimage_claims_more(void **state)
{
	struct fixture *f = *state;
	uint8_t img[TEST_BZ_LEN];
	test_make_bzimage(img);
	write_file(f->kernel, img, sizeof(img) - 16);
	char want[200];
	snprintf(want, sizeof(want),
		 "boot-source.kernel_image_path: %s: bzImage syssize claims more than the file "
		 "holds",
		 f->kernel);
	expect_error(f, want);
	test_bz_hdr(img)->setup_sects = 8;
	write_file(f->kernel, img, sizeof(img));
	expect_error(f, "setup_sects claim more than the file holds");
}

static void test_elf_errors(void **state)
{
	struct fixture *f = *state;
	_Alignas(8) uint8_t img[TEST_ELF_LEN];
	test_make_elf(img);
	write_file(f->kernel, img, sizeof(img) - 1);
	expect_error(f, "ELF segment claims more bytes than the file holds");
	test_elf_phdr(img, TEST_ELF_DATA)->p_paddr = 1ULL << 32;
	write_file(f->kernel, img, sizeof(img));
	expect_error(f, "above 4 GiB");
	test_make_elf(img);
	test_elf_phdr(img, TEST_ELF_DATA)->p_paddr = RAM_SIZE - 0x1000;
	write_file(f->kernel, img, sizeof(img));
	expect_error(f, "does not fit in 64 MiB of guest memory");
	write_file(f->kernel, "", 0);
	expect_error(f, "empty file");
	f->cfg.kernel_image_path = f->dir;
	expect_error(f, "not a regular file");
	f->cfg.kernel_image_path = "/nonexistent/k";
	expect_error(f, "/nonexistent/k: No such file or directory");
}

static void test_initrd_errors(void **state)
{
	struct fixture *f = *state;
	_Alignas(8) uint8_t img[TEST_ELF_LEN];
	test_make_elf(img);
	write_file(f->kernel, img, sizeof(img));
	f->cfg.initrd_path = f->initrd;
	expect_error(f, "boot-source.initrd_path: ");
	int fd = open(f->initrd, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(ftruncate(fd, RAM_SIZE), 0);
	close(fd);
	expect_error(f, "bytes do not fit below the kernel's limit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_read_fd_shrunk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_and_initrd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzimage_claims_more, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
