/* Snapshot request bodies: Firecracker's shapes parse, every wrong one is one line naming
 * the key, and the load's overrides apply to a snapshot's configuration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/snapshot_params.h"

static int create(const char *body, struct snapshot_create_params *p, char *err)
{
	return snapshot_create_parse(body, strlen(body), p, err, 256);
}

static int load(const char *body, struct snapshot_load_params *p, char *err)
{
	return snapshot_load_parse(body, strlen(body), p, err, 256);
}

static void test_create(void **state)
{
	(void)state;
	struct snapshot_create_params p;
	char err[256];
	assert_int_equal(create("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}", &p, err), 0);
	assert_string_equal(p.snapshot_path, "s");
	assert_string_equal(p.mem_file_path, "m");
	assert_false(p.diff);
	snapshot_create_free(&p);
	assert_int_equal(create("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\","
				"\"snapshot_type\":\"Diff\",\"version\":\"1.0.0\"}",
				&p, err),
			 0);
	assert_true(p.diff);
	snapshot_create_free(&p);
	static const char *const bad[][2] = {
	    {"{\"mem_file_path\":\"m\"}", "snapshot_path: missing required key"},
	    {"{\"snapshot_path\":\"s\"}", "mem_file_path: missing required key"},
	    {"{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"snapshot_type\":\"Half\"}",
	     "snapshot_type: Half not supported by kiln"},
	    {"{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"x\":1}", "x: unknown key"},
	    {"{\"snapshot_path\":\"\",\"mem_file_path\":\"m\"}", "snapshot_path: must not be empty"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(create(bad[i][0], &p, err), -EINVAL);
		assert_string_equal(err, bad[i][1]);
		assert_null(p.snapshot_path);
	}
}

static void test_load(void **state)
{
	(void)state;
	struct snapshot_load_params p;
	char err[256];
	assert_int_equal(load("{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"Uffd\","
			      "\"backend_path\":\"/h.sock\"},\"resume_vm\":true,"
			      "\"track_dirty_pages\":true,\"network_overrides\":[{\"iface_id\":"
			      "\"eth0\",\"host_dev_name\":\"tap9\"}],\"vsock_override\":{"
			      "\"uds_path\":\"/v.sock\"}}",
			      &p, err),
			 0);
	assert_string_equal(p.mem_path, "/h.sock");
	assert_true(p.uffd && p.resume_vm && p.track_dirty_pages);
	assert_int_equal(p.nr_net, 1);
	assert_string_equal(p.net[0].host_dev_name, "tap9");
	assert_string_equal(p.vsock_uds_path, "/v.sock");
	snapshot_load_free(&p);
	/* the deprecated shapes */
	assert_int_equal(load("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\","
			      "\"enable_diff_snapshots\":true}",
			      &p, err),
			 0);
	assert_string_equal(p.mem_path, "m");
	assert_false(p.uffd || p.resume_vm);
	assert_true(p.track_dirty_pages);
	snapshot_load_free(&p);
}

static void test_load_errors(void **state)
{
	(void)state;
	struct snapshot_load_params p;
	char err[256];
	static const char *const bad[][2] = {
	    {"{\"snapshot_path\":\"s\"}", "mem_backend: exactly one of mem_backend and mem_file_path is required"},
	    {"{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"mem_backend\":{\"backend_type\":"
	     "\"File\",\"backend_path\":\"m\"}}",
	     "mem_backend: exactly one of mem_backend and mem_file_path is required"},
	    {"{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"Disk\",\"backend_path\":"
	     "\"m\"}}",
	     "mem_backend.backend_type: Disk not supported by kiln"},
	    {"{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"File\"}}",
	     "mem_backend.backend_path: missing required key"},
	    {"{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"network_overrides\":[{"
	     "\"iface_id\":\"a\",\"host_dev_name\":\"0123456789abcdefg\"}]}",
	     "network_overrides[0].host_dev_name: longer than 15 bytes"},
	    {"{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"vsock_override\":{}}",
	     "vsock_override.uds_path: missing required key"},
	    {"{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"resume_vm\":\"yes\"}",
	     "resume_vm: expected a boolean"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(load(bad[i][0], &p, err), -EINVAL);
		assert_string_equal(err, bad[i][1]);
		assert_null(p.snapshot_path);
	}
}

static void test_overrides(void **state)
{
	(void)state;
	struct kiln_config cfg;
	struct snapshot_load_params p;
	char err[256];
	const char *json = "{\"boot-source\":{\"kernel_image_path\":\"k\"},\"network-interfaces\":"
			   "[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}],\"vsock\":{"
			   "\"guest_cid\":3,\"uds_path\":\"/old\"}}";
	assert_int_equal(config_parse(json, strlen(json), &cfg, err, sizeof(err)), 0);
	assert_int_equal(load("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"network_overrides\":"
			      "[{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\"}]}",
			      &p, err),
			 0);
	assert_int_equal(snapshot_apply_overrides(&p, &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "network_overrides[0].iface_id: eth1: no such interface in the snapshot");
	assert_string_equal(cfg.nets[0].host_dev_name, "tap0");
	snapshot_load_free(&p);
	assert_int_equal(load("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"network_overrides\":"
			      "[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap1\"}],\"vsock_override\":"
			      "{\"uds_path\":\"/new\"},\"track_dirty_pages\":true}",
			      &p, err),
			 0);
	assert_int_equal(snapshot_apply_overrides(&p, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.nets[0].host_dev_name, "tap1");
	assert_string_equal(cfg.vsock.uds_path, "/new");
	assert_true(cfg.machine.track_dirty_pages);
	snapshot_load_free(&p);
	config_free(&cfg);
	json = "{\"boot-source\":{\"kernel_image_path\":\"k\"}}";
	assert_int_equal(config_parse(json, strlen(json), &cfg, err, sizeof(err)), 0);
	assert_int_equal(load("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"vsock_override\":"
			      "{\"uds_path\":\"/new\"}}",
			      &p, err),
			 0);
	assert_int_equal(snapshot_apply_overrides(&p, &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "vsock_override: the snapshot has no vsock device");
	snapshot_load_free(&p);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create),
	    cmocka_unit_test(test_load),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_overrides),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
