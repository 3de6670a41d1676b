/* The guest's kernel and initrd: read from their files (never mapped, so a file truncated
 * while kiln reads it is an error, not a SIGBUS), checked, and placed into guest memory,
 * all before /dev/kvm is opened, so a bad image is exit 2 on any host. */
#ifndef KILN_IMAGES_H
#define KILN_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "vmm/config.h"
#include "vmm/guest_mem.h"

/* Reads exactly size bytes from the start of fd into buf. 0, -ENODATA if the file ends
 * first (it shrank after it was measured), or -errno. */
int image_read_fd(int fd, uint8_t *buf, uint64_t size);

/* Loads the kernel (b->kernel_image_path) into fresh guest memory and the initrd (if any)
 * where the boot protocol allows; fills *k and bl->initrd_gpa/initrd_size. The kernel is
 * read into a heap buffer and kernel_check()ed first, the initrd read straight into guest
 * memory. Returns 0, or -EINVAL with one line in err naming the key, the path and what is
 * wrong (e.g. "boot-source.kernel_image_path: /k: bzImage syssize claims more than the
 * file holds"). */
int images_load(const struct boot_cfg *b, const struct guest_mem *gm, struct kernel_image *k,
		struct boot_layout *bl, char *err, size_t errlen);

#endif
