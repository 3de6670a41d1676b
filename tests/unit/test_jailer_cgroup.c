/* kiln-jailer cgroup discovery: /proc/self/mountinfo and /proc/self/cgroup lines, v1
 * controllers sharing a hierarchy, escaped mount points and containers' mount roots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jailer/cgroup.h"

static bool mountinfo(const char *text, int version, const char *ctrl, char *mnt_out,
		      char *root_out)
{
	char line[512], *mnt, *root;
	snprintf(line, sizeof(line), "%s", text);
	bool ok = jail_mountinfo_cgroup(line, version, ctrl, ctrl ? strlen(ctrl) : 0, &mnt, &root);
	if (ok) {
		strcpy(mnt_out, mnt);
		strcpy(root_out, root);
	}
	return ok;
}

static void test_mountinfo_v1(void **state)
{
	(void)state;
	char mnt[256], root[256];
	const char *cpu = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup "
			  "cgroup rw,cpu,cpuacct\n";
	assert_true(mountinfo(cpu, 1, "cpu", mnt, root));
	assert_string_equal(mnt, "/sys/fs/cgroup/cpu,cpuacct");
	assert_string_equal(root, "/");
	assert_true(mountinfo(cpu, 1, "cpuacct", mnt, root));
	assert_false(mountinfo(cpu, 1, "cpuset", mnt, root));
	assert_false(mountinfo(cpu, 1, "cp", mnt, root));
	assert_false(mountinfo(cpu, 2, NULL, mnt, root));
	const char *named = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup "
			    "rw,xattr,name=systemd\n";
	assert_false(mountinfo(named, 1, "systemd", mnt, root));
	assert_true(mountinfo(named, 1, "name=systemd", mnt, root));
}

static void test_mountinfo_v2_and_escapes(void **state)
{
	(void)state;
	char mnt[256], root[256];
	const char *v2 = "41 31 0:38 /docker/abc /sys/fs/cgroup/my\\040cg rw,nosuid - cgroup2 "
			 "cgroup2 rw,nsdelegate\n";
	assert_true(mountinfo(v2, 2, NULL, mnt, root));
	assert_string_equal(mnt, "/sys/fs/cgroup/my cg");
	assert_string_equal(root, "/docker/abc");
	assert_false(mountinfo(v2, 1, "memory", mnt, root));
	const char *ext4 = "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
	assert_false(mountinfo(ext4, 2, NULL, mnt, root));
	assert_false(mountinfo(ext4, 1, "cpu", mnt, root));
	assert_false(mountinfo("garbage", 2, NULL, mnt, root));
	assert_false(mountinfo("1 2 3 - cgroup2 x rw", 2, NULL, mnt, root));
}

static void test_proc_cgroup(void **state)
{
	(void)state;
	char line[256], *path;
	snprintf(line, sizeof(line), "0::/user.slice/session-1.scope\n");
	assert_true(jail_proc_cgroup_line(line, 2, NULL, 0, &path));
	assert_string_equal(path, "/user.slice/session-1.scope");
	snprintf(line, sizeof(line), "2:cpu,cpuacct:/kiln/vm1\n");
	assert_false(jail_proc_cgroup_line(line, 2, NULL, 0, &path));
	snprintf(line, sizeof(line), "2:cpu,cpuacct:/kiln/vm1\n");
	assert_true(jail_proc_cgroup_line(line, 1, "cpuacct", 7, &path));
	assert_string_equal(path, "/kiln/vm1");
	snprintf(line, sizeof(line), "3:cpuset:/\n");
	assert_false(jail_proc_cgroup_line(line, 1, "cpu", 3, &path));
	snprintf(line, sizeof(line), "no colons\n");
	assert_false(jail_proc_cgroup_line(line, 2, NULL, 0, &path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mountinfo_v1),
	    cmocka_unit_test(test_mountinfo_v2_and_escapes),
	    cmocka_unit_test(test_proc_cgroup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
