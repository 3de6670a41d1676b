/* kiln-jailer argument validation: the full Firecracker-style command line, each required
 * flag, and every kind of bad value, which must fail with one line naming the flag. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jailer/args.h"

#define MAX_ARGV 64

/* A command line under construction: the good base line plus edits. */
struct cmdline {
	char *argv[MAX_ARGV];
	int argc;
};

static void push(struct cmdline *c, const char *arg)
{
	assert_true(c->argc < MAX_ARGV - 1);
	c->argv[c->argc++] = (char *)arg;
	c->argv[c->argc] = NULL;
}

/* The good base line, without the flag named `skip` (and its value), if any. */
static void base_line(struct cmdline *c, const char *skip)
{
	static const char *const pairs[][2] = {
	    {"--id", "551e7604-e35c-42b3-b825-416853441234"},
	    {"--exec-file", "/usr/bin/kiln"},
	    {"--uid", "123"},
	    {"--gid", "100"},
	};
	c->argc = 0;
	push(c, "kiln-jailer");
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		if (skip && !strcmp(skip, pairs[i][0]))
			continue;
		push(c, pairs[i][0]);
		push(c, pairs[i][1]);
	}
}

static int parse(struct cmdline *c, struct jail_args *a, char *err, size_t len)
{
	return jail_args_parse(c->argc, c->argv, a, err, len);
}

/* The base line without the flag `skip` (when not NULL), plus n extra args, must fail
 * with one line that contains `needle`. */
static void expect_bad(const char *skip, const char *needle, int n, ...)
{
	struct cmdline c;
	struct jail_args a;
	char err[512];
	va_list ap;
	base_line(&c, skip);
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		push(&c, va_arg(ap, const char *));
	va_end(ap);
	assert_int_equal(parse(&c, &a, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not name \"%s\"", err, needle);
	assert_null(strchr(err, '\n'));
}

static void test_full_command_line(void **state)
{
	(void)state;
	struct cmdline c;
	struct jail_args a;
	char err[512];
	base_line(&c, NULL);
	const char *extra[] = {"--chroot-base-dir",  "/var/jail",	 "--netns",
			       "/var/run/netns/x",   "--new-pid-ns",	 "--daemonize",
			       "--cgroup-version=2", "--cgroup",	 "cpu.max=50000 100000",
			       "--cgroup",	     "memory.max=1G",	 "--parent-cgroup",
			       "vms/kiln",	     "--resource-limit", "fsize=1024",
			       "--resource-limit",   "no-file=512",	 "--",
			       "--config-file",	     "/vm.json",	 "--no-api"};
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		push(&c, extra[i]);
	assert_int_equal(parse(&c, &a, err, sizeof(err)), 0);
	assert_string_equal(a.id, "551e7604-e35c-42b3-b825-416853441234");
	assert_string_equal(a.exec_file, "/usr/bin/kiln");
	assert_int_equal(a.uid, 123);
	assert_int_equal(a.gid, 100);
	assert_string_equal(a.chroot_base, "/var/jail");
	assert_string_equal(a.netns, "/var/run/netns/x");
	assert_true(a.new_pid_ns && a.daemonize);
	assert_int_equal(a.cgroup_version, 2);
	assert_int_equal(a.nr_cgroups, 2);
	assert_int_equal(a.cgroups[0].file_len, 7);
	assert_int_equal(a.cgroups[0].ctrl_len, 3);
	assert_memory_equal(a.cgroups[0].file, "cpu.max", 7);
	assert_string_equal(a.cgroups[0].value, "50000 100000");
	assert_string_equal(a.cgroups[1].value, "1G");
	assert_string_equal(a.parent_cgroup, "vms/kiln");
	assert_true(a.has_fsize);
	assert_int_equal(a.fsize, 1024);
	assert_int_equal(a.no_file, 512);
	assert_int_equal(a.nr_kiln_args, 3);
	assert_string_equal(a.kiln_args[0], "--config-file");
	assert_string_equal(a.kiln_args[1], "/vm.json");
	assert_string_equal(a.kiln_args[2], "--no-api");
}

static void test_defaults(void **state)
{
	(void)state;
	struct cmdline c;
	struct jail_args a;
	char err[512];
	base_line(&c, NULL);
	assert_int_equal(parse(&c, &a, err, sizeof(err)), 0);
	assert_string_equal(a.chroot_base, "/srv/jailer");
	assert_null(a.netns);
	assert_false(a.new_pid_ns || a.daemonize || a.has_fsize);
	assert_int_equal(a.cgroup_version, 1);
	assert_null(a.parent_cgroup);
	assert_int_equal(a.nr_cgroups, 0);
	assert_int_equal(a.no_file, 2048);
	assert_int_equal(a.nr_kiln_args, 0);
}

static void test_each_required_flag(void **state)
{
	(void)state;
	static const char *const required[] = {"--id", "--exec-file", "--uid", "--gid"};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		struct cmdline c;
		struct jail_args a;
		char err[512], want[64];
		base_line(&c, required[i]);
		assert_int_equal(parse(&c, &a, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), "%s is required", required[i]);
		if (!strstr(err, want))
			fail_msg("missing %s: got \"%s\"", required[i], err);
	}
}

static void test_bad_ids(void **state)
{
	(void)state;
	char long_id[JAIL_ID_MAX + 2];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[JAIL_ID_MAX + 1] = '\0'; /* 65 characters */
	assert_false(jail_id_valid(long_id));
	long_id[JAIL_ID_MAX] = '\0'; /* 64 */
	assert_true(jail_id_valid(long_id));
	assert_true(jail_id_valid("a"));
	assert_true(jail_id_valid("A-1-b"));
	static const char *const bad[] = {"",	 "a/b", "..",	"a..b",	       "../x",
					  "a b", " a",	"a\tb", "caf\xc3\xa9", "\xe2\x98\x83",
					  "a_b", "a.b", "a\nb"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(jail_id_valid(bad[i]));
		expect_bad("--id", "--id: \"", 2, "--id", bad[i]);
	}
	/* A control character in the value must not break the one line. */
	expect_bad("--id", "--id: \"a?b\"", 2, "--id", "a\nb");
}

static void test_relative_paths(void **state)
{
	(void)state;
	struct cmdline c;
	struct jail_args a;
	char err[512];
	base_line(&c, "--exec-file");
	push(&c, "--exec-file");
	push(&c, "build/kiln");
	assert_int_equal(parse(&c, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--exec-file"));
	assert_non_null(strstr(err, "absolute"));
	base_line(&c, "--exec-file");
	push(&c, "--exec-file");
	push(&c, "/usr/bin/");
	assert_int_equal(parse(&c, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--exec-file"));
	expect_bad(NULL, "--chroot-base-dir: \"", 2, "--chroot-base-dir", "srv/jailer");
	expect_bad(NULL, "--chroot-base-dir: \"", 2, "--chroot-base-dir", "");
	expect_bad(NULL, "--netns: \"", 2, "--netns", "netns/x");
}

static void test_bad_uid_gid(void **state)
{
	(void)state;
	static const char *const bad[] = {"",		"-1",	      "+5",
					  "abc",	"12a",	      " 1",
					  "4294967295", "4294967296", "99999999999999999999",
					  "0x10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_bad("--uid", "--uid: \"", 2, "--uid", bad[i]);
		expect_bad("--gid", "--gid: \"", 2, "--gid", bad[i]);
	}
	uint32_t v;
	assert_int_equal(jail_parse_id_number("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(jail_parse_id_number("4294967294", &v), 0);
	assert_int_equal(v, 4294967294u);
}

static void test_bad_cgroup(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "cpu.max",	   "cpu.max=",	   "=5",	"cpumax=5",	  ".max=5",
	    "cpu.=5",	   "cpu/x.max=5",  "cpu.a/b=5", "cpu.max/../x=5", "cpu..max=5",
	    "cpu.max=a=b", "../cpu.max=5", "cp-u.max=5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(NULL, "--cgroup: \"", 2, "--cgroup", bad[i]);
	struct jail_cgroup_arg cg;
	assert_int_equal(jail_parse_cgroup("hugetlb.2MB.max=0", &cg), 0);
	assert_int_equal(cg.ctrl_len, 7);
	assert_int_equal(cg.file_len, 15);
	assert_string_equal(cg.value, "0");
	assert_int_equal(jail_parse_cgroup("cgroup.max.descendants=5", &cg), 0);
	assert_int_equal(cg.ctrl_len, 6);
}

static void test_bad_cgroup_version_and_parent(void **state)
{
	(void)state;
	static const char *const bad[] = {"0", "3", "", "v2", "12", "2 "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(NULL, "--cgroup-version: \"", 2, "--cgroup-version", bad[i]);
	static const char *const bad_parent[] = {"",	"/abs", "..", "a/../b",
						 "./a", "a//b", "a/", "a/."};
	for (size_t i = 0; i < sizeof(bad_parent) / sizeof(bad_parent[0]); i++)
		expect_bad(NULL, "--parent-cgroup: \"", 2, "--parent-cgroup", bad_parent[i]);
	assert_true(jail_parent_cgroup_valid("kiln"));
	assert_true(jail_parent_cgroup_valid("a/b.c/d"));
}

static void test_bad_resource_limit(void **state)
{
	(void)state;
	static const char *const bad[] = {"fsize",    "fsize=",	      "fsize=-1",
					  "fsize=1k", "no-file=0x10", "nofile=5",
					  "cpu=5",    "=5",	      "fsize=18446744073709551616"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(NULL, "--resource-limit: \"", 2, "--resource-limit", bad[i]);
}

static void test_bad_shapes(void **state)
{
	(void)state;
	expect_bad(NULL, "--id: given more than once", 2, "--id", "again");
	expect_bad(NULL, "--bogus", 1, "--bogus");
	expect_bad(NULL, "unexpected argument", 1, "stray");
	expect_bad(NULL, "--netns: missing value", 1, "--netns");
	expect_bad(NULL, "--daemonize: takes no value", 1, "--daemonize=yes");
	/* After "--" everything is kiln's, even things that look like jailer flags. */
	struct cmdline c;
	struct jail_args a;
	char err[512];
	base_line(&c, NULL);
	push(&c, "--");
	push(&c, "--id");
	push(&c, "stray");
	push(&c, "--");
	assert_int_equal(parse(&c, &a, err, sizeof(err)), 0);
	assert_int_equal(a.nr_kiln_args, 3);
	assert_string_equal(a.kiln_args[2], "--");
}

static void test_help_and_version(void **state)
{
	(void)state;
	struct jail_args a;
	char err[512];
	char *help[] = {"kiln-jailer", "--help", NULL};
	assert_int_equal(jail_args_parse(2, help, &a, err, sizeof(err)), 0);
	assert_true(a.help);
	char *version[] = {"kiln-jailer", "--version", NULL};
	assert_int_equal(jail_args_parse(2, version, &a, err, sizeof(err)), 0);
	assert_true(a.version);
	char *none[] = {"kiln-jailer", NULL};
	assert_int_equal(jail_args_parse(1, none, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--id is required"));
	assert_string_equal(jail_basename("/usr/bin/kiln"), "kiln");
	assert_string_equal(jail_basename("/usr/bin/"), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_command_line),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_each_required_flag),
	    cmocka_unit_test(test_bad_ids),
	    cmocka_unit_test(test_relative_paths),
	    cmocka_unit_test(test_bad_uid_gid),
	    cmocka_unit_test(test_bad_cgroup),
	    cmocka_unit_test(test_bad_cgroup_version_and_parent),
	    cmocka_unit_test(test_bad_resource_limit),
	    cmocka_unit_test(test_bad_shapes),
	    cmocka_unit_test(test_help_and_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
