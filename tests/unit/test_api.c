/* Tests for the API router: every path and method, Firecracker's status codes and shapes,
 * pre-boot and post-boot rules, and the ops the router hands to the VMM (fakes here). */
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

#include "tests/unit/api_fake_vmm.h"
#include "vmm/api.h"

struct env {
	struct kiln_config cfg;
	struct fake_vmm vmm;
	struct api api;
	struct api_response r;
	char dir[64], kernel[96], disk[96];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	config_init(&e->cfg);
	e->api = (struct api){.cfg = &e->cfg, .id = "vm-1", .ops = &fake_vmm_ops, .ctx = &e->vmm};
	e->r.body = malloc(API_RESPONSE_MAX);
	strcpy(e->dir, "/tmp/kiln-api.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->kernel, sizeof(e->kernel), "%s/vmlinux", e->dir);
	snprintf(e->disk, sizeof(e->disk), "%s/disk", e->dir);
	close(open(e->kernel, O_CREAT | O_WRONLY, 0600));
	close(open(e->disk, O_CREAT | O_WRONLY, 0600));
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	unlink(e->kernel);
	unlink(e->disk);
	rmdir(e->dir);
	config_free(&e->cfg);
	free(e->r.body);
	free(e);
	return 0;
}

/* Sends a request (' in body stands for ") and returns the status; the body is in e->r. */
static int req(struct env *e, enum api_method m, const char *path, const char *body)
{
	char buf[2048] = "";
	if (body)
		snprintf(buf, sizeof(buf), "%s", body);
	for (char *p = buf; *p; p++)
		if (*p == '\'')
			*p = '"';
	e->r.status = 0;
	api_handle(&e->api, m, path, body ? buf : NULL, strlen(buf), &e->r);
	e->r.body[e->r.len] = '\0';
	return e->r.status;
}

static void expect(struct env *e, enum api_method m, const char *path, const char *body, int status,
		   const char *resp)
{
	int got = req(e, m, path, body);
	if (got != status || (resp && strcmp(e->r.body, resp)))
		fail_msg("%d %s %s: got %d '%s', want %d '%s'", m, path, body ? body : "", got,
			 e->r.body, status, resp ? resp : "*");
}

static void configure_boot(struct env *e)
{
	char body[256];
	snprintf(body, sizeof(body), "{'kernel_image_path':'%s'}", e->kernel);
	expect(e, API_PUT, "/boot-source", body, 204, "");
}

static void test_instance_info_and_version(void **state)
{
	struct env *e = *state;
	expect(e, API_GET, "/", NULL, 200,
	       "{\"id\":\"vm-1\",\"state\":\"Not started\",\"vmm_version\":\"" KILN_VERSION
	       "\",\"app_name\":\"kiln\"}");
	expect(e, API_GET, "/version", NULL, 200, "{\"firecracker_version\":\"" KILN_VERSION "\"}");
	expect(e, API_PUT, "/", "{}", 400,
	       "{\"fault_message\":\"Invalid request method and/or path: PUT /.\"}");
	expect(e, API_OTHER, "/", NULL, 405, NULL);
	e->api.id = "a\"b\\c";
	expect(e, API_GET, "/", NULL, 200,
	       "{\"id\":\"a\\\"b\\\\c\",\"state\":\"Not started\",\"vmm_version\":\"" KILN_VERSION
	       "\",\"app_name\":\"kiln\"}");
	expect(e, API_GET, "/nothing", NULL, 400,
	       "{\"fault_message\":\"Invalid request method and/or path: GET /nothing.\"}");
	expect(e, API_GET, "/drives/a/b", NULL, 400, NULL);
}

/* Firecracker's getting-started sequence, then the state machine. */
static void test_getting_started(void **state)
{
	struct env *e = *state;
	char body[512];
	expect(e, API_PUT, "/logger", "{'log_path':'/tmp/x.log','level':'Debug'}", 204, "");
	configure_boot(e);
	snprintf(body, sizeof(body),
		 "{'drive_id':'rootfs','path_on_host':'%s','is_root_device':true,"
		 "'is_read_only':false}",
		 e->disk);
	expect(e, API_PUT, "/drives/rootfs", body, 204, "");
	/* kiln never creates a TAP: one that is not there is refused at PUT, not at start. */
	expect(e, API_PUT, "/network-interfaces/net1",
	       "{'iface_id':'net1','host_dev_name':'kiln-notap9'}", 400,
	       "{\"fault_message\":\"network-interfaces[0].host_dev_name: kiln-notap9: no such "
	       "network device (create the TAP first)\"}");
	expect(e, API_PUT, "/network-interfaces/net1",
	       "{'iface_id':'net1','guest_mac':'06:00:AC:10:00:02','host_dev_name':'lo'}", 204,
	       "");
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 204, "");
	assert_int_equal(e->vmm.starts, 1);
	assert_int_equal(e->cfg.nr_drives, 1);
	assert_int_equal(e->cfg.nr_nets, 1);
	req(e, API_GET, "/", NULL);
	assert_non_null(strstr(e->r.body, "\"state\":\"Running\""));
	expect(e, API_PATCH, "/vm", "{'state':'Paused'}", 204, "");
	req(e, API_GET, "/", NULL);
	assert_non_null(strstr(e->r.body, "\"state\":\"Paused\""));
	expect(e, API_PATCH, "/vm", "{'state':'Resumed'}", 204, "");
	req(e, API_GET, "/", NULL);
	assert_non_null(strstr(e->r.body, "\"state\":\"Running\""));
	assert_int_equal(e->vmm.pauses, 1);
	assert_int_equal(e->vmm.resumes, 1);
	expect(e, API_PUT, "/actions", "{'action_type':'SendCtrlAltDel'}", 204, "");
	expect(e, API_PUT, "/actions", "{'action_type':'FlushMetrics'}", 204, "");
	assert_int_equal(e->vmm.cads, 1);
	assert_int_equal(e->vmm.flushes, 1);
}

#define AFTER                                                                                      \
	"{\"fault_message\":\"The requested operation is not supported after starting the "        \
	"microVM.\"}"
#define BEFORE                                                                                     \
	"{\"fault_message\":\"The requested operation is not supported before starting the "       \
	"microVM.\"}"

static void test_pre_and_post_boot_rules(void **state)
{
	struct env *e = *state;
	expect(e, API_PATCH, "/vm", "{'state':'Paused'}", 400, BEFORE);
	expect(e, API_PUT, "/actions", "{'action_type':'SendCtrlAltDel'}", 400, BEFORE);
	expect(e, API_PUT, "/actions", "{'action_type':'FlushMetrics'}", 400, BEFORE);
	expect(e, API_PATCH, "/drives/rootfs", "{'drive_id':'rootfs'}", 400, BEFORE);
	expect(e, API_PATCH, "/network-interfaces/eth0", "{'iface_id':'eth0'}", 400, BEFORE);
	/* No boot source: the same message a config file without one gets. */
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 400,
	       "{\"fault_message\":\"boot-source: missing required key\"}");
	assert_int_equal(e->vmm.starts, 0);
	configure_boot(e);
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 204, "");
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 400, AFTER);
	expect(e, API_PUT, "/machine-config", "{'vcpu_count':2}", 400, AFTER);
	expect(e, API_PATCH, "/machine-config", "{'vcpu_count':2}", 400, AFTER);
	expect(e, API_PUT, "/boot-source", "{'kernel_image_path':'/k'}", 400, AFTER);
	expect(e, API_PUT, "/drives/x", "{}", 400, AFTER);
	expect(e, API_PUT, "/network-interfaces/x", "{}", 400, AFTER);
	expect(e, API_PUT, "/vsock", "{}", 400, AFTER);
	expect(e, API_PUT, "/logger", "{}", 400, AFTER);
	expect(e, API_PUT, "/metrics", "{}", 400, AFTER);
	/* Reads still work. */
	expect(e, API_GET, "/machine-config", NULL, 200,
	       "{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":false,\"track_dirty_pages\":false}");
	expect(e, API_GET, "/vm/config", NULL, 200, NULL);
	assert_int_equal(e->vmm.starts, 1);
}

static void test_failed_ops(void **state)
{
	struct env *e = *state;
	configure_boot(e);
	e->vmm.fail = -EIO;
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 400,
	       "{\"fault_message\":\"fake failure\"}");
	req(e, API_GET, "/", NULL);
	assert_non_null(strstr(e->r.body, "Not started"));
	/* The kernel vanished between PUT /boot-source and InstanceStart. */
	e->vmm.fail = 0;
	unlink(e->kernel);
	req(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}");
	assert_int_equal(e->r.status, 400);
	assert_non_null(strstr(e->r.body, "boot-source.kernel_image_path: "));
	assert_int_equal(e->vmm.starts, 1);
	close(open(e->kernel, O_CREAT | O_WRONLY, 0600));
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 204, "");
	e->vmm.fail = -EIO;
	expect(e, API_PATCH, "/vm", "{'state':'Paused'}", 400,
	       "{\"fault_message\":\"fake failure\"}");
	req(e, API_GET, "/", NULL);
	assert_non_null(strstr(e->r.body, "\"Running\""));
}

static void test_bad_bodies(void **state)
{
	struct env *e = *state;
	expect(e, API_PUT, "/actions", "{'action_type':'Reboot'}", 400,
	       "{\"fault_message\":\"action_type: Reboot not supported by kiln\"}");
	expect(e, API_PUT, "/actions", "{}", 400,
	       "{\"fault_message\":\"action_type: missing required key\"}");
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart','x':1}", 400,
	       "{\"fault_message\":\"x: unknown key\"}");
	expect(e, API_PUT, "/actions", NULL, 400, "{\"fault_message\":\"Empty request body.\"}");
	expect(e, API_PATCH, "/vm", "{'state':'Frozen'}", 400, NULL);
	expect(e, API_PUT, "/boot-source", "{'kernel_image_path':'/nonexistent'}", 400,
	       "{\"fault_message\":\"boot-source.kernel_image_path: /nonexistent: No such file or "
	       "directory\"}");
	expect(e, API_PUT, "/machine-config", "{'vcpu_count':33}", 400,
	       "{\"fault_message\":\"machine-config.vcpu_count: 33 out of range 1..32\"}");
	expect(e, API_PUT, "/drives/a",
	       "{'drive_id':'b','path_on_host':'/x','is_root_device':false}", 400,
	       "{\"fault_message\":\"drives[0].drive_id: b does not match the id in the path\"}");
	expect(e, API_PUT, "/machine-config", "not json", 400,
	       "{\"fault_message\":\"line 1: invalid JSON\"}");
	/* Unchanged by the failures. */
	expect(e, API_GET, "/machine-config", NULL, 200,
	       "{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":false,\"track_dirty_pages\":false}");
}

/* PATCH /drives/{id}: post-boot only; the device op gets the checked new path, and the
 * config follows only when it succeeded. */
static void test_patch_drive(void **state)
{
	struct env *e = *state;
	char body[512], disk2[128];
	configure_boot(e);
	snprintf(body, sizeof(body),
		 "{'drive_id':'data','path_on_host':'%s','is_root_device':false}", e->disk);
	expect(e, API_PUT, "/drives/data", body, 204, "");
	expect(e, API_PATCH, "/drives/data", "{'drive_id':'data'}", 400, BEFORE);
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 204, "");
	snprintf(disk2, sizeof(disk2), "%s2", e->disk);
	close(open(disk2, O_CREAT | O_WRONLY, 0600));
	snprintf(body, sizeof(body), "{'drive_id':'data','path_on_host':'%s'}", disk2);
	expect(e, API_PATCH, "/drives/data", body, 204, "");
	assert_int_equal(e->vmm.patches, 1);
	assert_string_equal(e->vmm.patched, disk2);
	req(e, API_GET, "/vm/config", NULL);
	assert_non_null(strstr(e->r.body, disk2));
	/* Bad ones: unknown drive, mismatched id, missing file, rate limiter, bad JSON. */
	expect(e, API_PATCH, "/drives/nope", "{'drive_id':'nope'}", 400,
	       "{\"fault_message\":\"drives: no drive with drive_id nope\"}");
	expect(e, API_PATCH, "/drives/data", "{'drive_id':'other'}", 400,
	       "{\"fault_message\":\"drives[0].drive_id: other does not match the id in the "
	       "path\"}");
	expect(e, API_PATCH, "/drives/data", "{'drive_id':'data','path_on_host':'/nonexistent'}",
	       400,
	       "{\"fault_message\":\"drives[0].path_on_host: /nonexistent: No such file or "
	       "directory\"}");
	expect(e, API_PATCH, "/drives/data",
	       "{'drive_id':'data','rate_limiter':{'ops':{'size':'x','refill_time':1}}}", 400, NULL);
	expect(e, API_PATCH, "/drives/data", "{'drive_id':'data','is_read_only':true}", 400,
	       "{\"fault_message\":\"drives[0].is_read_only: unknown key\"}");
	/* The device refuses: the config keeps the old path. */
	e->vmm.fail = -EBUSY;
	snprintf(body, sizeof(body), "{'drive_id':'data','path_on_host':'%s'}", e->disk);
	expect(e, API_PATCH, "/drives/data", body, 400, "{\"fault_message\":\"fake failure\"}");
	req(e, API_GET, "/vm/config", NULL);
	assert_non_null(strstr(e->r.body, disk2));
	assert_int_equal(e->vmm.patches, 2);
	expect(e, API_PATCH, "/network-interfaces/x", "{}", 400, NULL);
	unlink(disk2);
}

/* PATCH of rate limiters on a running VM: the device op gets the buckets named, the
 * config merges them (a bucket not named stays). */
static void test_patch_limiters(void **state)
{
	struct env *e = *state;
	char body[512];
	configure_boot(e);
	snprintf(body, sizeof(body),
		 "{'drive_id':'data','path_on_host':'%s','is_root_device':false,"
		 "'rate_limiter':{'ops':{'size':50,'refill_time':1000}}}",
		 e->disk);
	expect(e, API_PUT, "/drives/data", body, 204, "");
	expect(e, API_PUT, "/network-interfaces/eth0", "{'iface_id':'eth0','host_dev_name':'lo'}",
	       204, "");
	expect(e, API_PATCH, "/network-interfaces/eth0", "{'iface_id':'eth0'}", 400, BEFORE);
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 204, "");
	expect(e, API_PATCH, "/drives/data",
	       "{'drive_id':'data','rate_limiter':{'bandwidth':{'size':1000,'refill_time':100}}}",
	       204, "");
	assert_int_equal(e->vmm.limiters, 1);
	assert_int_equal(e->vmm.patches, 0); /* no new file */
	assert_string_equal(e->vmm.limited, "data net=0 1000 0");
	req(e, API_GET, "/vm/config", NULL);
	assert_non_null(strstr(e->r.body, "\"rate_limiter\":{\"bandwidth\":{\"size\":1000"));
	assert_non_null(strstr(e->r.body, "\"ops\":{\"size\":50"));
	expect(e, API_PATCH, "/network-interfaces/eth0",
	       "{'iface_id':'eth0','tx_rate_limiter':{'bandwidth':{'size':4096,'refill_time':10}}}",
	       204, "");
	assert_int_equal(e->vmm.limiters, 2);
	assert_string_equal(e->vmm.limited, "eth0 net=1 0 4096");
	req(e, API_GET, "/vm/config", NULL);
	assert_non_null(strstr(e->r.body, "\"tx_rate_limiter\":{\"bandwidth\":{\"size\":4096"));
	/* Bad ones: unknown interface, id mismatch, a key PATCH does not take, a bad bucket. */
	expect(e, API_PATCH, "/network-interfaces/nope", "{'iface_id':'nope'}", 400,
	       "{\"fault_message\":\"network-interfaces: no interface with iface_id nope\"}");
	expect(e, API_PATCH, "/network-interfaces/eth0", "{'iface_id':'eth1'}", 400,
	       "{\"fault_message\":\"network-interfaces[0].iface_id: eth1 does not match the id "
	       "in the path\"}");
	expect(e, API_PATCH, "/network-interfaces/eth0",
	       "{'iface_id':'eth0','host_dev_name':'lo'}", 400,
	       "{\"fault_message\":\"network-interfaces[0].host_dev_name: unknown key\"}");
	/* The device refuses: the config keeps the old limiter. */
	e->vmm.fail = -EIO;
	expect(e, API_PATCH, "/network-interfaces/eth0",
	       "{'iface_id':'eth0','rx_rate_limiter':{'ops':{'size':7,'refill_time':10}}}", 400,
	       "{\"fault_message\":\"fake failure\"}");
	req(e, API_GET, "/vm/config", NULL);
	assert_null(strstr(e->r.body, "\"rx_rate_limiter\""));
}

static void test_no_devices(void **state)
{
	struct env *e = *state;
	expect(e, API_PUT, "/balloon", "{}", 400,
	       "{\"fault_message\":\"kiln has no balloon device\"}");
	expect(e, API_GET, "/balloon/statistics", NULL, 400, NULL);
	expect(e, API_PUT, "/entropy", "{}", 400,
	       "{\"fault_message\":\"kiln has no entropy device\"}");
	expect(e, API_PUT, "/pmem/p0", "{}", 400,
	       "{\"fault_message\":\"kiln has no pmem device\"}");
	expect(e, API_GET, "/mmds", NULL, 400, "{\"fault_message\":\"kiln has no MMDS device\"}");
	expect(e, API_PUT, "/hotplug/memory", "{}", 400, NULL);
	expect(e, API_PUT, "/cpu-config", "{}", 400, NULL);
	expect(e, API_PUT, "/serial", "{}", 400, NULL);
}

/* PUT /snapshot/create only of a paused VM; the body reaches the VMM as parsed. */
static void test_snapshot_create(void **state)
{
	struct env *e = *state;
	const char *body = "{'snapshot_path':'/s','mem_file_path':'/m','snapshot_type':'Diff'}";
	expect(e, API_PUT, "/snapshot/create", body, 400, NULL);
	configure_boot(e);
	expect(e, API_PUT, "/actions", "{'action_type':'InstanceStart'}", 204, "");
	expect(e, API_PUT, "/snapshot/create", body, 400,
	       "{\"fault_message\":\"Create snapshot: the microVM must be paused first.\"}");
	expect(e, API_PATCH, "/vm", "{'state':'Paused'}", 204, "");
	expect(e, API_PUT, "/snapshot/create", "{'snapshot_path':'/s'}", 400,
	       "{\"fault_message\":\"mem_file_path: missing required key\"}");
	assert_int_equal(e->vmm.creates, 0);
	expect(e, API_PUT, "/snapshot/create", body, 204, "");
	assert_int_equal(e->vmm.creates, 1);
	assert_string_equal(e->vmm.snapshot, "/s /m Diff");
	e->vmm.fail = -EIO;
	expect(e, API_PUT, "/snapshot/create", body, 400, "{\"fault_message\":\"fake failure\"}");
	expect(e, API_GET, "/snapshot/create", NULL, 400, NULL);
	expect(e, API_PUT, "/snapshot/other", body, 400, NULL);
	expect(e, API_GET, "/", NULL, 200, NULL);
	assert_non_null(strstr(e->r.body, "\"Paused\""));
}

/* PUT /snapshot/load into a fresh process: only the logger and metrics may come first; the
 * state is then Paused or Running as resume_vm says. */
static void test_snapshot_load(void **state)
{
	struct env *e = *state;
	const char *body = "{'snapshot_path':'/s','mem_backend':{'backend_type':'File',"
			   "'backend_path':'/m'},'network_overrides':[{'iface_id':'net1',"
			   "'host_dev_name':'tap7'}]}";
	char logger[256];
	snprintf(logger, sizeof(logger), "{'log_path':'%s/log'}", e->dir);
	expect(e, API_PUT, "/logger", logger, 204, "");
	expect(e, API_PUT, "/snapshot/load", "{'snapshot_path':'/s'}", 400,
	       "{\"fault_message\":\"mem_backend: exactly one of mem_backend and mem_file_path is required\"}");
	e->vmm.fail = -EINVAL;
	expect(e, API_PUT, "/snapshot/load", body, 400, "{\"fault_message\":\"fake failure\"}");
	expect(e, API_GET, "/", NULL, 200, NULL);
	assert_non_null(strstr(e->r.body, "\"Not started\""));
	e->vmm.fail = 0;
	expect(e, API_PUT, "/snapshot/load", body, 204, "");
	assert_string_equal(e->vmm.snapshot, "/s /m File resume=0 dirty=0 nets=1 tap7");
	expect(e, API_GET, "/", NULL, 200, NULL);
	assert_non_null(strstr(e->r.body, "\"Paused\""));
	expect(e, API_PUT, "/snapshot/load", body, 400, NULL); /* once */
	assert_int_equal(e->vmm.loads, 2);
}

/* A VM configured for a boot cannot load a snapshot. */
static void test_snapshot_load_after_config(void **state)
{
	struct env *e = *state;
	configure_boot(e);
	expect(e, API_PUT, "/snapshot/load", "{'snapshot_path':'/s','mem_file_path':'/m'}", 400,
	       "{\"fault_message\":\"Loading a microVM snapshot not allowed after configuring "
	       "boot-specific resources.\"}");
	assert_int_equal(e->vmm.loads, 0);
}

static void test_vm_config(void **state)
{
	struct env *e = *state;
	char body[512], want[1024];
	expect(e, API_GET, "/vm/config", NULL, 200,
	       "{\"boot-source\":null,\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,"
	       "\"smt\":false,\"track_dirty_pages\":false},\"drives\":[],"
	       "\"network-interfaces\":[]}");
	configure_boot(e);
	snprintf(body, sizeof(body), "{'drive_id':'d','path_on_host':'%s','is_root_device':false}",
		 e->disk);
	expect(e, API_PUT, "/drives/d", body, 204, "");
	snprintf(
	    want, sizeof(want),
	    "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"machine-config\":{\"vcpu_count\":"
	    "1,\"mem_size_mib\":128,\"smt\":false,\"track_dirty_pages\":false},\"drives\":[{"
	    "\"drive_id\":\"d\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
	    "\"is_read_only\":false,\"cache_type\":\"Unsafe\"}],\"network-interfaces\":[]}",
	    e->kernel, e->disk);
	expect(e, API_GET, "/vm/config", NULL, 200, want);
	expect(e, API_GET, "/vm/config?x=1", NULL, 400, NULL); /* the HTTP layer cuts queries */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_instance_info_and_version),
	    T(test_getting_started),
	    T(test_pre_and_post_boot_rules),
	    T(test_failed_ops),
	    T(test_bad_bodies),
	    T(test_no_devices),
	    T(test_vm_config),
	    T(test_patch_drive),
	    T(test_patch_limiters),
	    T(test_snapshot_create),
	    T(test_snapshot_load),
	    T(test_snapshot_load_after_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
