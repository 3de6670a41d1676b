#include "vmm/images.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KERNEL_KEY "boot-source.kernel_image_path"
#define INITRD_KEY "boot-source.initrd_path"

int image_read_fd(int fd, uint8_t *buf, uint64_t size)
{
	for (uint64_t done = 0; done < size;) {
		ssize_t n = pread(fd, buf + done, size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		done += (uint64_t)n;
	}
	return 0;
}

static int image_error(char *err, size_t errlen, const char *key, const char *path,
		       const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s: %s", key, path, what);
	return -EINVAL;
}

static const char *read_error(int rc)
{
	return rc == -ENODATA ? "file shrank while reading" : strerror(-rc);
}

/* Opens path and measures it; an empty file is an error. */
static int open_image(const char *key, const char *path, uint64_t *size, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int rc = image_error(err, errlen, key, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		return image_error(err, errlen, key, path,
				   S_ISREG(st.st_mode) ? "empty file" : "not a regular file");
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* The whole kernel file in a new heap buffer, checked against its own headers. */
static int read_kernel(const char *path, uint8_t **img, size_t *len, char *err, size_t errlen)
{
	uint64_t size;
	const char *why = "out of memory";
	int fd = open_image(KERNEL_KEY, path, &size, err, errlen);
	if (fd < 0)
		return fd;
	uint8_t *buf = size <= SIZE_MAX ? malloc(size) : NULL;
	int rc = buf ? image_read_fd(fd, buf, size) : -ENOMEM;
	close(fd);
	if (rc)
		why = read_error(rc);
	else if (kernel_check(buf, size, &why) == 0) {
		*img = buf;
		*len = size;
		return 0;
	}
	free(buf);
	return image_error(err, errlen, KERNEL_KEY, path, why);
}

static int load_kernel(const char *path, const struct guest_mem *gm, struct kernel_image *k,
		       char *err, size_t errlen)
{
	uint8_t *img = NULL;
	size_t len = 0;
	char what[96];
	int rc = read_kernel(path, &img, &len, err, errlen);
	if (rc)
		return rc;
	rc = kernel_load(gm, img, len, k);
	free(img);
	if (rc == 0)
		return 0;
	snprintf(what, sizeof(what), "does not fit in %llu MiB of guest memory",
		 (unsigned long long)(gm->ram_size >> 20));
	return image_error(err, errlen, KERNEL_KEY, path,
			   rc == -ENOEXEC ? "not a valid x86-64 vmlinux ELF or bzImage" : what);
}

/* Reads the initrd straight into guest memory at the address the boot protocol allows. */
static int load_initrd(const char *path, const struct guest_mem *gm, const struct kernel_image *k,
		       struct boot_layout *bl, char *err, size_t errlen)
{
	uint64_t size, addr;
	char what[96];
	int fd = open_image(INITRD_KEY, path, &size, err, errlen);
	if (fd < 0)
		return fd;
	int rc = -EINVAL;
	if (initrd_choose_addr(gm, k, size, &addr) < 0) {
		snprintf(what, sizeof(what), "%llu bytes do not fit below the kernel's limit",
			 (unsigned long long)size);
		image_error(err, errlen, INITRD_KEY, path, what);
		goto out;
	}
	rc = image_read_fd(fd, gm_ptr(gm, addr, size), size);
	if (rc) {
		rc = image_error(err, errlen, INITRD_KEY, path, read_error(rc));
		goto out;
	}
	bl->initrd_gpa = addr;
	bl->initrd_size = size;
out:
	close(fd);
	return rc;
}

int images_load(const struct boot_cfg *b, const struct guest_mem *gm, struct kernel_image *k,
		struct boot_layout *bl, char *err, size_t errlen)
{
	if (!b->kernel_image_path)
		return image_error(err, errlen, KERNEL_KEY, "", "missing");
	int rc = load_kernel(b->kernel_image_path, gm, k, err, errlen);
	if (rc == 0 && b->initrd_path)
		rc = load_initrd(b->initrd_path, gm, k, bl, err, errlen);
	return rc;
}
