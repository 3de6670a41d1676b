/* jail helpers: recognising an initramfs root from /proc/self/mountinfo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jailer/jail.h"

static void test_root_is_rootfs(void **state)
{
	(void)state;
	/* The KVM test host: its root is the initramfs, pivot_root fails there. */
	assert_true(jail_root_is_rootfs(
	    "1 1 0:2 / / rw - rootfs rootfs rw,size=1004452k,nr_inodes=251113\n"
	    "21 1 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
	    "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw\n"));
	/* A disk root mounted over rootfs: the last mount on / wins. */
	assert_false(jail_root_is_rootfs("1 1 0:2 / / rw - rootfs rootfs rw\n"
					 "25 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
					 "26 25 0:22 / /proc rw - proc proc rw"));
	/* Inside a mount namespace after unshare: ids differ, the type is what counts. */
	assert_true(jail_root_is_rootfs("309 308 0:2 / / rw master:1 - rootfs rootfs rw\n"));
	assert_false(jail_root_is_rootfs("309 308 0:2 / / rw master:1 - tmpfs tmpfs rw\n"));
	assert_false(jail_root_is_rootfs("23 1 0:5 / /rootfs rw - rootfs rootfs rw\n"));
	assert_false(jail_root_is_rootfs(""));
	assert_false(jail_root_is_rootfs("garbage"));
	assert_false(jail_root_is_rootfs("1 1 0:2 / / rw - rootf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_root_is_rootfs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
