/* Tests for the API's side of the config model: config_put() builds the same kiln_config a
 * config file does, with the same error text and key paths, and leaves cfg unchanged on an
 * error; config_to_json() writes a document config_parse() reads back to the same config. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/config.h"

#define ERRLEN 512

/* Test JSON uses ' for " so it stays readable; this swaps them back (static buffer). */
static const char *dq(const char *s)
{
	static char buf[4096];
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *p = buf; *p; p++)
		if (*p == '\'')
			*p = '"';
	return buf;
}

struct env {
	char dir[64];
	char kernel[96];
	char disk[96];
	char disk2[96];
};

static void touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	strcpy(e->dir, "/tmp/kiln-cfgput.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->kernel, sizeof(e->kernel), "%s/vmlinux", e->dir);
	snprintf(e->disk, sizeof(e->disk), "%s/root.img", e->dir);
	snprintf(e->disk2, sizeof(e->disk2), "%s/data.img", e->dir);
	touch(e->kernel);
	touch(e->disk);
	touch(e->disk2);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	unlink(e->kernel);
	unlink(e->disk);
	unlink(e->disk2);
	rmdir(e->dir);
	free(e);
	return 0;
}

static int put(struct kiln_config *cfg, enum config_section sec, const char *id, const char *json,
	       char *err)
{
	const char *j = dq(json);
	return config_put(cfg, sec, id, j, strlen(j), err, ERRLEN);
}

/* The getting-started sequence and the equivalent file give the same config. */
static void test_api_equals_file(void **state)
{
	struct env *e = *state;
	struct kiln_config api, file;
	char err[ERRLEN] = "", body[1024], doc[4096];
	config_init(&api);
	snprintf(body, sizeof(body), "{'kernel_image_path':'%s','boot_args':'console=ttyS0'}",
		 e->kernel);
	assert_int_equal(put(&api, CONFIG_SECTION_BOOT, NULL, body, err), 0);
	assert_int_equal(
	    put(&api, CONFIG_SECTION_MACHINE, NULL, "{'vcpu_count':2,'mem_size_mib':256}", err), 0);
	snprintf(body, sizeof(body),
		 "{'drive_id':'rootfs','path_on_host':'%s','is_root_device':true,"
		 "'is_read_only':false,'rate_limiter':{'ops':{'size':10,'refill_time':100}}}",
		 e->disk);
	assert_int_equal(put(&api, CONFIG_SECTION_DRIVE, "rootfs", body, err), 0);
	assert_int_equal(put(&api, CONFIG_SECTION_NET, "eth0",
			     "{'iface_id':'eth0','host_dev_name':'lo','guest_mac':"
			     "'06:00:ac:10:00:02'}",
			     err),
			 0);
	assert_int_equal(put(&api, CONFIG_SECTION_LOGGER, NULL,
			     "{'log_path':'/tmp/l','level':'Info','show_level':true}", err),
			 0);
	assert_int_equal(
	    put(&api, CONFIG_SECTION_VSOCK, NULL, "{'guest_cid':3,'uds_path':'/tmp/v.sock'}", err),
	    0);
	assert_string_equal(err, "");
	snprintf(doc, sizeof(doc),
		 "{'boot-source':{'kernel_image_path':'%s','boot_args':'console=ttyS0'},"
		 "'machine-config':{'vcpu_count':2,'mem_size_mib':256},"
		 "'drives':[{'drive_id':'rootfs','path_on_host':'%s','is_root_device':true,"
		 "'is_read_only':false,'rate_limiter':{'ops':{'size':10,'refill_time':100}}}],"
		 "'network-interfaces':[{'iface_id':'eth0','host_dev_name':'lo',"
		 "'guest_mac':'06:00:ac:10:00:02'}],"
		 "'logger':{'log_path':'/tmp/l','level':'Info','show_level':true},"
		 "'vsock':{'guest_cid':3,'uds_path':'/tmp/v.sock'}}",
		 e->kernel, e->disk);
	const char *d = dq(doc);
	assert_int_equal(config_parse(d, strlen(d), &file, err, ERRLEN), 0);
	char a[8192], f[8192];
	assert_true(config_to_json(&api, a, sizeof(a)) > 0);
	assert_true(config_to_json(&file, f, sizeof(f)) > 0);
	assert_string_equal(a, f);
	config_free(&api);
	config_free(&file);
}

/* config_to_json() output parses back to the same document. */
static void test_dump_round_trip(void **state)
{
	struct env *e = *state;
	struct kiln_config cfg, back;
	char err[ERRLEN], doc[4096], out1[8192], out2[8192];
	snprintf(doc, sizeof(doc),
		 "{'boot-source':{'kernel_image_path':'%s','initrd_path':'/i\\\\n\\\"q'},"
		 "'machine-config':{'vcpu_count':2,'mem_size_mib':64,'smt':true},"
		 "'drives':[{'drive_id':'a','path_on_host':'/a','is_root_device':false,"
		 "'partuuid':'1-2','cache_type':'Writeback','rate_limiter':{'bandwidth':{'size':1,"
		 "'one_time_burst':5,'refill_time':2},'ops':{'size':3,'refill_time':4}}}],"
		 "'network-interfaces':[{'iface_id':'n','host_dev_name':'tap1',"
		 "'tx_rate_limiter':{'bandwidth':{'size':9,'refill_time':9}}}],"
		 "'metrics':{'metrics_path':'/m'},'logger':{'level':'Off'}}",
		 e->kernel);
	const char *d = dq(doc);
	assert_int_equal(config_parse(d, strlen(d), &cfg, err, ERRLEN), 0);
	int n = config_to_json(&cfg, out1, sizeof(out1));
	assert_true(n > 0);
	assert_int_equal(config_parse(out1, (size_t)n, &back, err, ERRLEN), 0);
	assert_true(config_to_json(&back, out2, sizeof(out2)) == n);
	assert_string_equal(out1, out2);
	assert_non_null(strstr(out1, "\"initrd_path\":\"/i\\\\n\\\"q\""));
	assert_int_equal(config_to_json(&cfg, out2, 10), -ENOSPC);
	config_free(&cfg);
	config_free(&back);
}

/* Errors read as a config file's would, and leave cfg as it was. */
static void test_errors_same_as_file(void **state)
{
	struct env *e = *state;
	struct kiln_config cfg, file;
	char err[ERRLEN], ferr[ERRLEN], body[512], before[8192], after[8192];
	config_init(&cfg);
	snprintf(body, sizeof(body), "{'kernel_image_path':'%s'}", e->kernel);
	assert_int_equal(put(&cfg, CONFIG_SECTION_BOOT, NULL, body, err), 0);
	config_to_json(&cfg, before, sizeof(before));
	static const struct {
		enum config_section sec;
		const char *id, *body, *file, *msg;
	} cases[] = {
	    {CONFIG_SECTION_MACHINE, NULL, "{'vcpu_count':0}",
	     "{'boot-source':{'kernel_image_path':'/k'},'machine-config':{'vcpu_count':0}}",
	     "machine-config.vcpu_count: 0 out of range 1..32"},
	    {CONFIG_SECTION_DRIVE, "d", "{'drive_id':'d','path_on_host':3,'is_root_device':true}",
	     "{'boot-source':{'kernel_image_path':'/k'},'drives':[{'drive_id':'d',"
	     "'path_on_host':3,'is_root_device':true}]}",
	     "drives[0].path_on_host: expected a string"},
	    {CONFIG_SECTION_NET, "n", "{'iface_id':'n','host_dev_name':'a/b'}",
	     "{'boot-source':{'kernel_image_path':'/k'},'network-interfaces':[{'iface_id':'n',"
	     "'host_dev_name':'a/b'}]}",
	     "network-interfaces[0].host_dev_name: a/b: invalid interface name"},
	    {CONFIG_SECTION_LOGGER, NULL, "{'level':'Loud'}",
	     "{'boot-source':{'kernel_image_path':'/k'},'logger':{'level':'Loud'}}",
	     "logger.level: Loud not supported by kiln"},
	    {CONFIG_SECTION_VSOCK, NULL, "{'guest_cid':2,'uds_path':'/v'}",
	     "{'boot-source':{'kernel_image_path':'/k'},'vsock':{'guest_cid':2,'uds_path':'/v'}}",
	     "vsock.guest_cid: 2 out of range 3..4294967294"},
	    {CONFIG_SECTION_BOOT, NULL, "{'kernel_image_path':'/k','x':1}",
	     "{'boot-source':{'kernel_image_path':'/k','x':1}}", "boot-source.x: unknown key"},
	    {CONFIG_SECTION_METRICS, NULL, "[", "{'metrics':[}", "line 1: invalid JSON"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(put(&cfg, cases[i].sec, cases[i].id, cases[i].body, err), -EINVAL);
		const char *f = dq(cases[i].file);
		assert_int_equal(config_parse(f, strlen(f), &file, ferr, ERRLEN), -EINVAL);
		if (strcmp(err, cases[i].msg) || strcmp(ferr, cases[i].msg))
			fail_msg("case %zu: api '%s', file '%s', want '%s'", i, err, ferr,
				 cases[i].msg);
		config_to_json(&cfg, after, sizeof(after));
		assert_string_equal(before, after);
	}
	config_free(&cfg);
}

/* Drives: replaced by id, appended otherwise; the path id must match; one root; files. */
static void test_drives(void **state)
{
	struct env *e = *state;
	struct kiln_config cfg;
	char err[ERRLEN], body[512];
	config_init(&cfg);
	snprintf(body, sizeof(body),
		 "{'drive_id':'root','path_on_host':'%s','is_root_device':true}", e->disk);
	assert_int_equal(put(&cfg, CONFIG_SECTION_DRIVE, "root", body, err), 0);
	assert_int_equal(put(&cfg, CONFIG_SECTION_DRIVE, "other", body, err), -EINVAL);
	assert_string_equal(err, "drives[1].drive_id: root does not match the id in the path");
	snprintf(body, sizeof(body),
		 "{'drive_id':'data','path_on_host':'%s','is_root_device':true}", e->disk2);
	assert_int_equal(put(&cfg, CONFIG_SECTION_DRIVE, "data", body, err), -EINVAL);
	assert_string_equal(err, "drives[1].is_root_device: more than one root device");
	snprintf(body, sizeof(body),
		 "{'drive_id':'data','path_on_host':'%s','is_root_device':false}", e->disk2);
	assert_int_equal(put(&cfg, CONFIG_SECTION_DRIVE, "data", body, err), 0);
	assert_int_equal(cfg.nr_drives, 2);
	/* The same id again replaces it in place, read-only now. */
	snprintf(body, sizeof(body),
		 "{'drive_id':'data','path_on_host':'%s','is_root_device':false,"
		 "'is_read_only':true}",
		 e->disk);
	assert_int_equal(put(&cfg, CONFIG_SECTION_DRIVE, "data", body, err), 0);
	assert_int_equal(cfg.nr_drives, 2);
	assert_true(cfg.drives[1].is_read_only);
	assert_string_equal(cfg.drives[1].path_on_host, e->disk);
	assert_int_equal(put(&cfg, CONFIG_SECTION_DRIVE, "x",
			     "{'drive_id':'x','path_on_host':'/nonexistent/x',"
			     "'is_root_device':false}",
			     err),
			 -EINVAL);
	assert_string_equal(err,
			    "drives[2].path_on_host: /nonexistent/x: No such file or directory");
	assert_int_equal(cfg.nr_drives, 2);
	config_free(&cfg);
}

static void test_machine_put_and_patch(void **state)
{
	(void)state;
	struct kiln_config cfg;
	char err[ERRLEN];
	config_init(&cfg);
	assert_int_equal(
	    put(&cfg, CONFIG_SECTION_MACHINE, NULL, "{'vcpu_count':4,'smt':true}", err), 0);
	assert_int_equal(cfg.machine.vcpu_count, 4);
	assert_int_equal(cfg.machine.mem_size_mib, 128);
	assert_int_equal(put(&cfg, CONFIG_SECTION_MACHINE_PATCH, NULL, "{'mem_size_mib':512}", err),
			 0);
	assert_int_equal(cfg.machine.vcpu_count, 4);
	assert_true(cfg.machine.smt);
	assert_int_equal(cfg.machine.mem_size_mib, 512);
	/* PATCH validates the result: smt with 3 vCPUs. */
	assert_int_equal(put(&cfg, CONFIG_SECTION_MACHINE_PATCH, NULL, "{'vcpu_count':3}", err),
			 -EINVAL);
	assert_string_equal(err, "machine-config.vcpu_count: 3 must be 1 or even when smt is true");
	assert_int_equal(cfg.machine.vcpu_count, 4);
	/* PUT starts from the defaults again. */
	assert_int_equal(put(&cfg, CONFIG_SECTION_MACHINE, NULL, "{'mem_size_mib':64}", err), 0);
	assert_int_equal(cfg.machine.vcpu_count, 1);
	assert_false(cfg.machine.smt);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_api_equals_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dump_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors_same_as_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drives, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_machine_put_and_patch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
