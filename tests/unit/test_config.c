/* Tests for the config parser: every field of a full config, defaults, Firecracker-style
 * nulls, string decoding, a table of bad inputs (each must name the exact key path), the
 * file-system checks and config_load(). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/test_child.h"
#include "vmm/config.h"

#define ERRLEN 512
/* A minimal valid boot-source; most cases below add one thing to it. */
#define B "'boot-source':{'kernel_image_path':'/k'}"
#define DRIVE(id, root, extra)                                                                     \
	"{'drive_id':'" id "','path_on_host':'/d','is_root_device':" root extra "}"
#define NET(id, dev, extra) "{'iface_id':'" id "','host_dev_name':'" dev "'" extra "}"

/* Test JSON uses ' for " so it stays readable; this swaps them back. */
static char *dq(const char *s)
{
	char *j = strdup(s);
	assert_non_null(j);
	for (char *p = j; *p; p++)
		if (*p == '\'')
			*p = '"';
	return j;
}

static int parse(const char *s, struct kiln_config *cfg, char *err)
{
	char *j = dq(s);
	int rc = config_parse(j, strlen(j), cfg, err, ERRLEN);
	free(j);
	return rc;
}

static void assert_zeroed(const struct kiln_config *cfg)
{
	static const struct kiln_config zero;
	assert_memory_equal(cfg, &zero, sizeof(zero));
}

struct bad {
	const char *json;
	const char *msg;
};

static void run_bad(const struct bad *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct kiln_config cfg;
		char err[ERRLEN] = "";
		int rc = parse(cases[i].json, &cfg, err);
		if (rc != -EINVAL || strcmp(err, cases[i].msg)) {
			print_error("case %zu: %s\n  got  %d \"%s\"\n  want \"%s\"\n", i,
				    cases[i].json, rc, err, cases[i].msg);
			fail();
		}
		assert_null(strchr(err, '\n'));
		assert_zeroed(&cfg);
		config_free(&cfg);
	}
}

#define RUN_BAD(cases) run_bad(cases, sizeof(cases) / sizeof(cases[0]))

/* ---- valid documents ---------------------------------------------------------------------- */

static const char full_json[] =
    "{'boot-source':{'kernel_image_path':'/img/vmlinux','boot_args':'console=ttyS0 "
    "reboot=k panic=1','initrd_path':'/img/initrd'},"
    "'machine-config':{'vcpu_count':4,'mem_size_mib':1048576,'smt':true,"
    "'track_dirty_pages':false,'cpu_template':'None','huge_pages':'None'},"
    "'drives':[{'drive_id':'rootfs','path_on_host':'/img/root.ext4','is_root_device':true,"
    "'is_read_only':false,'partuuid':'0eaa91a0-01','cache_type':'Writeback',"
    "'io_engine':'Async','rate_limiter':{'bandwidth':{'size':18446744073709551615,"
    "'one_time_burst':7,'refill_time':100},'ops':{'size':0,'refill_time':10}}},"
    "{'drive_id':'Data_2-x','path_on_host':'/img/data','is_root_device':false,"
    "'is_read_only':true,'cache_type':'Unsafe','io_engine':'Sync',"
    "'rate_limiter':{'ops':{'size':500,'refill_time':1000}}}],"
    "'network-interfaces':[{'iface_id':'eth0','host_dev_name':'tap0',"
    "'guest_mac':'06:00:AC:10:00:fe','rx_rate_limiter':{'bandwidth':{'size':1000,"
    "'refill_time':0}},'tx_rate_limiter':{'bandwidth':{'size':2000,'refill_time':50},"
    "'ops':{'size':30,'one_time_burst':40,'refill_time':60}}},"
    "{'iface_id':'eth1','host_dev_name':'123456789012345'}],"
    "'vsock':{'vsock_id':'vs0','guest_cid':4294967294,'uds_path':'/run/v.sock'},"
    "'logger':{'log_path':'/log/kiln.log','level':'debug','show_level':true,"
    "'show_log_origin':true,'module':'vmm::config'},"
    "'metrics':{'metrics_path':'/log/metrics'}}";

static void test_full_config(void **state)
{
	(void)state;
	struct kiln_config c;
	char err[ERRLEN] = "";
	assert_int_equal(parse(full_json, &c, err), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.boot.kernel_image_path, "/img/vmlinux");
	assert_string_equal(c.boot.boot_args, "console=ttyS0 reboot=k panic=1");
	assert_string_equal(c.boot.initrd_path, "/img/initrd");
	assert_int_equal(c.machine.vcpu_count, 4);
	assert_int_equal(c.machine.mem_size_mib, 1048576);
	assert_true(c.machine.smt);
	assert_true(c.vsock.present);
	assert_string_equal(c.vsock.id, "vs0");
	assert_int_equal(c.vsock.guest_cid, 0xfffffffe);
	assert_string_equal(c.vsock.uds_path, "/run/v.sock");
	assert_true(c.logger.present);
	assert_string_equal(c.logger.log_path, "/log/kiln.log");
	assert_int_equal(c.logger.level, LOG_DEBUG);
	assert_true(c.logger.show_level);
	assert_true(c.logger.show_log_origin);
	assert_true(c.metrics.present);
	assert_string_equal(c.metrics.metrics_path, "/log/metrics");
	config_free(&c);
	assert_zeroed(&c);
	config_free(&c); /* twice is fine */
}

static void test_full_config_devices(void **state)
{
	(void)state;
	struct kiln_config c;
	char err[ERRLEN] = "";
	assert_int_equal(parse(full_json, &c, err), 0);
	assert_int_equal(c.nr_drives, 2);
	const struct drive_cfg *d = &c.drives[0];
	assert_string_equal(d->id, "rootfs");
	assert_string_equal(d->path_on_host, "/img/root.ext4");
	assert_true(d->is_root_device);
	assert_false(d->is_read_only);
	assert_string_equal(d->partuuid, "0eaa91a0-01");
	assert_int_equal(d->cache_type, CACHE_WRITEBACK);
	assert_true(d->rate_limiter.present);
	assert_true(d->rate_limiter.bandwidth.present);
	assert_true(d->rate_limiter.bandwidth.size == UINT64_MAX);
	assert_int_equal(d->rate_limiter.bandwidth.one_time_burst, 7);
	assert_int_equal(d->rate_limiter.bandwidth.refill_time_ms, 100);
	assert_false(d->rate_limiter.ops.present); /* size 0: disabled */
	d = &c.drives[1];
	assert_string_equal(d->id, "Data_2-x");
	assert_string_equal(d->path_on_host, "/img/data");
	assert_false(d->is_root_device);
	assert_true(d->is_read_only);
	assert_null(d->partuuid);
	assert_int_equal(d->cache_type, CACHE_UNSAFE);
	assert_true(d->rate_limiter.present);
	assert_false(d->rate_limiter.bandwidth.present);
	assert_true(d->rate_limiter.ops.present);
	assert_int_equal(d->rate_limiter.ops.size, 500);
	assert_int_equal(d->rate_limiter.ops.one_time_burst, 0);
	assert_int_equal(d->rate_limiter.ops.refill_time_ms, 1000);

	assert_int_equal(c.nr_nets, 2);
	const struct net_cfg *n = &c.nets[0];
	static const uint8_t mac[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0xfe};
	assert_string_equal(n->id, "eth0");
	assert_string_equal(n->host_dev_name, "tap0");
	assert_true(n->has_guest_mac);
	assert_memory_equal(n->guest_mac, mac, 6);
	assert_false(n->rx_rate_limiter.present); /* refill_time 0: disabled */
	assert_false(n->rx_rate_limiter.bandwidth.present);
	assert_true(n->tx_rate_limiter.present);
	assert_int_equal(n->tx_rate_limiter.bandwidth.size, 2000);
	assert_int_equal(n->tx_rate_limiter.bandwidth.refill_time_ms, 50);
	assert_int_equal(n->tx_rate_limiter.ops.size, 30);
	assert_int_equal(n->tx_rate_limiter.ops.one_time_burst, 40);
	assert_int_equal(n->tx_rate_limiter.ops.refill_time_ms, 60);
	n = &c.nets[1];
	assert_string_equal(n->id, "eth1");
	assert_string_equal(n->host_dev_name, "123456789012345");
	assert_false(n->has_guest_mac);
	assert_false(n->rx_rate_limiter.present);
	assert_false(n->tx_rate_limiter.present);
	config_free(&c);
}

static void test_defaults(void **state)
{
	(void)state;
	struct kiln_config c;
	char err[ERRLEN];
	assert_int_equal(parse("{" B "}", &c, err), 0);
	assert_string_equal(c.boot.kernel_image_path, "/k");
	assert_null(c.boot.boot_args);
	assert_null(c.boot.initrd_path);
	assert_int_equal(c.machine.vcpu_count, 1);
	assert_int_equal(c.machine.mem_size_mib, 128);
	assert_false(c.machine.smt);
	assert_int_equal(c.nr_drives, 0);
	assert_int_equal(c.nr_nets, 0);
	assert_false(c.vsock.present);
	assert_false(c.logger.present);
	assert_int_equal(c.logger.level, LOG_WARN);
	assert_false(c.metrics.present);
	config_free(&c);

	/* Empty sections and optional fields left out. */
	assert_int_equal(parse("{" B ",'machine-config':{},'drives':[],'network-interfaces':[],"
			       "'vsock':{'guest_cid':3,'uds_path':'/v'},'logger':{}}",
			       &c, err),
			 0);
	assert_int_equal(c.machine.vcpu_count, 1);
	assert_int_equal(c.machine.mem_size_mib, 128);
	assert_true(c.vsock.present);
	assert_string_equal(c.vsock.id, "");
	assert_int_equal(c.vsock.guest_cid, 3);
	assert_true(c.logger.present);
	assert_null(c.logger.log_path);
	assert_int_equal(c.logger.level, LOG_WARN);
	assert_false(c.logger.show_level);
	config_free(&c);

	/* smt with one vCPU or an even count; whitespace of every kind between tokens. */
	assert_int_equal(parse(" \t\r\n{" B ",'machine-config':{'smt':true}}\n", &c, err), 0);
	config_free(&c);
	assert_int_equal(parse("{" B ",'machine-config':{'smt':true,'vcpu_count':32}}", &c, err),
			 0);
	assert_int_equal(c.machine.vcpu_count, 32);
	config_free(&c);
}

/* Firecracker's own example configs spell "not configured" as null. */
static void test_nulls(void **state)
{
	(void)state;
	struct kiln_config c;
	char err[ERRLEN];
	assert_int_equal(
	    parse("{'boot-source':{'kernel_image_path':'/k','boot_args':null,"
		  "'initrd_path':null},'machine-config':{'vcpu_count':2,"
		  "'cpu_template':null,'huge_pages':null},"
		  "'drives':[" DRIVE(
		      "root", "true",
		      ",'partuuid':null,'rate_limiter':"
		      "null,'socket':null,'cache_type':null") "],"
							      "'network-interfaces':[" NET(
								  "e", "t",
								  ",'guest_mac':null,"
								  "'rx_rate_limiter':{'bandwidth':"
								  "null}") "],"
									   "'vsock':null,'logger':"
									   "null,'metrics':null,'"
									   "balloon':null,"
									   "'entropy':null,'mmds-"
									   "config':null,'cpu-"
									   "config':null}",
		  &c, err),
	    0);
	assert_null(c.boot.boot_args);
	assert_int_equal(c.machine.vcpu_count, 2);
	assert_null(c.drives[0].partuuid);
	assert_false(c.drives[0].rate_limiter.present);
	assert_false(c.nets[0].has_guest_mac);
	assert_false(c.nets[0].rx_rate_limiter.present);
	assert_false(c.vsock.present);
	assert_false(c.logger.present);
	assert_false(c.metrics.present);
	config_free(&c);
}

/* Firecracker 1.17's tests/framework/vm_config.json: every device kiln lacks is null or []. */
static void test_firecracker_vm_config(void **state)
{
	(void)state;
	struct kiln_config c;
	char err[ERRLEN] = "";
	int rc = parse("{'boot-source':{'kernel_image_path':'vmlinux.bin','boot_args':"
		       "'console=ttyS0 reboot=k panic=1','initrd_path':null},"
		       "'drives':[{'drive_id':'rootfs','partuuid':null,'is_root_device':true,"
		       "'cache_type':'Unsafe','is_read_only':false,'path_on_host':'r.ext4',"
		       "'io_engine':'Sync','rate_limiter':null,'socket':null}],"
		       "'machine-config':{'vcpu_count':2,'mem_size_mib':1024,'smt':false,"
		       "'track_dirty_pages':false,'huge_pages':'None'},"
		       "'cpu-config':null,'balloon':null,'network-interfaces':[],'vsock':null,"
		       "'logger':null,'metrics':null,'mmds-config':null,'entropy':null,"
		       "'pmem':[],'memory-hotplug':null}",
		       &c, err);
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_int_equal(c.nr_drives, 1);
	assert_int_equal(c.machine.mem_size_mib, 1024);
	config_free(&c);
	/* [] means "none" for every device section kiln lacks, not only pmem. */
	assert_int_equal(parse("{" B ",'balloon':[],'entropy':[],'memory-hotplug':[]}", &c, err),
			 0);
	config_free(&c);
}

static void test_string_escapes(void **state)
{
	(void)state;
	struct kiln_config c;
	char err[ERRLEN];
	assert_int_equal(parse("{'boot-source':{'kernel_image_path':'/k\\u00e9\\/x',"
			       "'boot_args':'a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t|\\u0041\\u00e9\\u20AC"
			       "\\ud83d\\ude00|\xc3\xa9\xf0\x9f\x98\x80'}}",
			       &c, err),
			 0);
	assert_string_equal(c.boot.kernel_image_path, "/k\xc3\xa9/x");
	assert_string_equal(c.boot.boot_args, "a\"b\\c/d\b\f\n\r\t|A\xc3\xa9\xe2\x82\xac"
					      "\xf0\x9f\x98\x80|\xc3\xa9\xf0\x9f\x98\x80");
	config_free(&c);

	/* Escaped keys are compared decoded; a log level matches in any case. */
	assert_int_equal(parse("{'boot\\u002dsource':{'kernel_image_path':'/k'},"
			       "'logger':{'level':'tRaCe'}}",
			       &c, err),
			 0);
	assert_int_equal(c.logger.level, LOG_DEBUG);
	config_free(&c);
	assert_int_equal(parse("{" B ",'logger':{'level':'OFF'}}", &c, err), 0);
	assert_int_equal(c.logger.level, LOG_OFF);
	config_free(&c);
	assert_int_equal(parse("{" B ",'logger':{'level':'Error'}}", &c, err), 0);
	assert_int_equal(c.logger.level, LOG_ERROR);
	config_free(&c);

	/* A path of PATH_MAX - 1 bytes fits, written with escapes that decode to fewer. */
	size_t n = PATH_MAX - 1;
	char *json = malloc(64 + 2 * n);
	assert_non_null(json);
	char *p = json + sprintf(json, "{'boot-source':{'kernel_image_path':'");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s", i % 2 ? "\\/" : "a");
	strcpy(p, "'}}");
	assert_int_equal(parse(json, &c, err), 0);
	assert_int_equal(strlen(c.boot.kernel_image_path), n);
	config_free(&c);
	strcpy(p, "b'}}"); /* one byte more */
	assert_int_equal(parse(json, &c, err), -EINVAL);
	assert_string_equal(err, "boot-source.kernel_image_path: longer than 4095 bytes");
	free(json);
}

static void example_path(char *buf, size_t size)
{
	/* Tests run from the repo root, and __FILE__ is relative to it (or absolute). */
	const char *f = __FILE__, *t = strstr(f, "tests/unit/test_config.c");
	snprintf(buf, size, "%.*sconfig.example.json", t ? (int)(t - f) : 0, f);
	if (access(buf, R_OK) < 0)
		snprintf(buf, size, "config.example.json");
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void test_example_file(void **state)
{
	(void)state;
	char path[PATH_MAX], err[ERRLEN] = "";
	size_t len;
	struct kiln_config c;
	example_path(path, sizeof(path));
	char *json = read_all(path, &len);
	int rc = config_parse(json, len, &c, err, sizeof(err));
	free(json);
	if (rc)
		print_error("%s: %s\n", path, err);
	assert_int_equal(rc, 0);
	assert_string_equal(c.boot.boot_args, "console=ttyS0 reboot=k panic=1");
	assert_int_equal(c.nr_drives, 2);
	assert_true(c.drives[0].is_root_device);
	assert_true(c.drives[1].is_read_only);
	assert_true(c.drives[1].rate_limiter.present);
	assert_int_equal(c.nr_nets, 1);
	assert_true(c.nets[0].has_guest_mac);
	assert_true(c.nets[0].rx_rate_limiter.present);
	assert_true(c.nets[0].tx_rate_limiter.present);
	assert_true(c.vsock.present);
	assert_true(c.logger.present);
	assert_true(c.metrics.present);
	config_free(&c);

	/* Its paths are examples, so loading it fails the file checks, cleanly. */
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "boot-source.kernel_image_path: /var/lib/kiln/vmlinux: "
				 "No such file or directory");
	assert_zeroed(&c);
}

/* ---- bad documents ------------------------------------------------------------------------ */

static const struct bad bad_syntax[] = {
    {"", "line 1: invalid JSON"},
    {" \n ", "line 2: invalid JSON"},
    {"{" B, "line 1: invalid JSON"}, /* truncated */
    {"{'boot-source':{'kernel_image_path':'/k", "line 1: invalid JSON"},
    {"{\n'boot-source':\n{'kernel_image_path' '/k'}}", "line 3: invalid JSON"},
    {"{\n" B ",\n'drives':[1 2]}", "line 3: invalid JSON"}, /* missing comma */
    {"{" B " 'vsock':null}", "line 1: invalid JSON"},
    {"{" B ",}", "line 1: invalid JSON"}, /* trailing comma */
    {"{" B ",'drives':[,]}", "line 1: invalid JSON"},
    {"{" B ",'drives':[" DRIVE("a", "true", "") ",]}", "line 1: invalid JSON"},
    {"{" B ",'x':1:2}", "line 1: invalid JSON"},
    {"{" B ",'x':'a':'b'}", "line 1: invalid JSON"},
    {"{" B "}\n{}", "line 2: invalid JSON"}, /* two documents */
    {"{" B "} x", "line 1: invalid JSON"},
    {"{" B ",'x':tru}", "line 1: invalid JSON"},
    {"{" B ",'x':nulls}", "line 1: invalid JSON"},
    {"{" B ",'x':01}", "line 1: invalid JSON"},
    {"{" B ",'x':1.}", "line 1: invalid JSON"},
    {"{" B ",'x':.5}", "line 1: invalid JSON"},
    {"{" B ",'x':-}", "line 1: invalid JSON"},
    {"{" B ",'x':1e}", "line 1: invalid JSON"},
    {"{" B ",'x':+1}", "line 1: invalid JSON"},
    {"{" B ",'x':'\\x'}", "line 1: invalid JSON"},	    /* bad escape */
    {"{" B ",'x':'\\u12g4'}", "line 1: invalid JSON"},	    /* bad \u */
    {"{" B ",'x':'\\ud800'}", "line 1: invalid JSON"},	    /* lone high surrogate */
    {"{" B ",'x':'\\udc00'}", "line 1: invalid JSON"},	    /* lone low surrogate */
    {"{" B ",\n'x':'a\tb'}", "line 2: invalid JSON"},	    /* raw control character */
    {"{" B ",'x':'\xc3'}", "line 1: invalid JSON"},	    /* cut UTF-8 */
    {"{" B ",'x':'\xc0\xaf'}", "line 1: invalid JSON"},	    /* overlong */
    {"{" B ",'x':'\xed\xa0\x80'}", "line 1: invalid JSON"}, /* UTF-8 surrogate */
    {"{" B ",'x':'\xff'}", "line 1: invalid JSON"},
    {"{'boot-source':{'kernel_image_path':'/k'}]", "line 1: invalid JSON"},
    {"{{}:1}", "line 1: invalid JSON"},
    {"{1:2}", "line 1: invalid JSON"},
};

static void test_bad_syntax(void **state)
{
	(void)state;
	RUN_BAD(bad_syntax);
}

static const struct bad bad_keys[] = {
    {"{}", "boot-source: missing required key"},
    {"[]", "config: expected an object"},
    {"'x'", "config: expected an object"},
    {"{'boot-source':null}", "boot-source: expected an object"},
    {"{'boot-source':[]}", "boot-source: expected an object"},
    {"{" B ",'foo':1}", "foo: unknown key"},
    {"{" B ",'Drives':[]}", "Drives: unknown key"},
    {"{'boot-source':{'kernel_image_path':'/k','kernel':1}}", "boot-source.kernel: unknown key"},
    {"{" B ",'machine-config':{'cpus':1}}", "machine-config.cpus: unknown key"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'ro':true") "]}", "drives[0].ro: unknown key"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'rate_limiter':{'iops':{}}") "]}",
     "drives[0].rate_limiter.iops: unknown key"},
    {"{" B ",'drives':[" DRIVE("a", "true",
			       ",'rate_limiter':{'ops':{'size':1,"
			       "'refill_time':1,'burst':1}}") "]}",
     "drives[0].rate_limiter.ops.burst: unknown key"},
    {"{" B ",'network-interfaces':[" NET("e", "t", ",'allow_mmds_requests':true") "]}",
     "network-interfaces[0].allow_mmds_requests: unknown key"},
    {"{" B ",'vsock':{'guest_cid':3,'uds_path':'/v','cid':3}}", "vsock.cid: unknown key"},
    {"{" B ",'logger':{'path':'/l'}}", "logger.path: unknown key"},
    {"{" B ",'metrics':{'metrics_path':'/m','x':null}}", "metrics.x: unknown key"},
    {"{" B ",'x\\u0000y':1}", "x\\u0000y: unknown key"},
    {"{" B ",'a\\nb':1}", "a\\nb: unknown key"}, /* stays on one line */
    {"{" B ",'balloon':{'amount_mib':0}}", "balloon: kiln has no balloon device"},
    {"{" B ",'entropy':{}}", "entropy: kiln has no entropy device"},
    {"{" B ",'mmds-config':{}}", "mmds-config: kiln has no mmds-config device"},
    {"{" B ",'cpu-config':'/c.json'}", "cpu-config: kiln has no cpu-config device"},
    {"{" B ",'pmem':[{'id':'p','path_on_host':'/p'}]}", "pmem: kiln has no pmem device"},
    {"{" B ",'pmem':{}}", "pmem: kiln has no pmem device"},
    {"{" B ",'memory-hotplug':{'total_size_mib':1024}}",
     "memory-hotplug: kiln has no memory-hotplug device"},
    {"{" B ",'balloon':[1]}", "balloon: kiln has no balloon device"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'socket':'/s'") "]}",
     "drives[0].socket: not supported by kiln"},
    {"{" B "," B "}", "boot-source: duplicate key"},
    {"{'boot-source':{'kernel_image_path':'/k','boot_args':null,'boot_args':''}}",
     "boot-source.boot_args: duplicate key"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'is_read_only':true,'is_read_only':true") "]}",
     "drives[0].is_read_only: duplicate key"},
    {"{" B ",'drives':[" DRIVE("a", "true",
			       ",'rate_limiter':{'ops':{'size':1,"
			       "'size':1,'refill_time':1}}") "]}",
     "drives[0].rate_limiter.ops.size: duplicate key"},
};

static void test_bad_keys(void **state)
{
	(void)state;
	RUN_BAD(bad_keys);
}

static const struct bad bad_types[] = {
    {"{'boot-source':{'kernel_image_path':5}}", "boot-source.kernel_image_path: expected a string"},
    {"{'boot-source':{'kernel_image_path':null}}",
     "boot-source.kernel_image_path: expected a string"},
    {"{'boot-source':{}}", "boot-source.kernel_image_path: missing required key"},
    {"{'boot-source':{'kernel_image_path':''}}",
     "boot-source.kernel_image_path: must not be empty"},
    {"{'boot-source':{'kernel_image_path':'/k','initrd_path':''}}",
     "boot-source.initrd_path: must not be empty"},
    {"{'boot-source':{'kernel_image_path':'/k','boot_args':['a']}}",
     "boot-source.boot_args: expected a string"},
    {"{" B ",'machine-config':[]}", "machine-config: expected an object"},
    {"{" B ",'machine-config':{'vcpu_count':'2'}}",
     "machine-config.vcpu_count: expected an unsigned integer"},
    {"{" B ",'machine-config':{'vcpu_count':true}}",
     "machine-config.vcpu_count: expected an unsigned integer"},
    {"{" B ",'machine-config':{'vcpu_count':-1}}",
     "machine-config.vcpu_count: expected an unsigned integer"},
    {"{" B ",'machine-config':{'vcpu_count':-0}}",
     "machine-config.vcpu_count: expected an unsigned integer"},
    {"{" B ",'machine-config':{'vcpu_count':1.5}}",
     "machine-config.vcpu_count: expected an unsigned integer"},
    {"{" B ",'machine-config':{'vcpu_count':2.0}}",
     "machine-config.vcpu_count: expected an unsigned integer"},
    {"{" B ",'machine-config':{'vcpu_count':1e1}}",
     "machine-config.vcpu_count: expected an unsigned integer"},
    {"{" B ",'machine-config':{'mem_size_mib':2E+3}}",
     "machine-config.mem_size_mib: expected an unsigned integer"},
    {"{" B ",'machine-config':{'smt':1}}", "machine-config.smt: expected a boolean"},
    {"{" B ",'machine-config':{'smt':'true'}}", "machine-config.smt: expected a boolean"},
    {"{" B ",'machine-config':{'cpu_template':1}}",
     "machine-config.cpu_template: expected a string"},
    {"{" B ",'drives':{}}", "drives: expected an array"},
    {"{" B ",'drives':[1]}", "drives[0]: expected an object"},
    {"{" B ",'drives':[null]}", "drives[0]: expected an object"},
    {"{" B ",'drives':[" DRIVE("a", "true", "") ",{'drive_id':'b','path_on_host':5}]}",
     "drives[1].path_on_host: expected a string"},
    {"{" B ",'drives':[{'drive_id':'a','path_on_host':'/d'}]}",
     "drives[0].is_root_device: missing required key"},
    {"{" B ",'drives':[{'path_on_host':'/d','is_root_device':true}]}",
     "drives[0].drive_id: missing required key"},
    {"{" B ",'drives':[" DRIVE("a", "'yes'", "") "]}",
     "drives[0].is_root_device: expected a boolean"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'rate_limiter':[]") "]}",
     "drives[0].rate_limiter: expected an object"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'rate_limiter':{'bandwidth':1}") "]}",
     "drives[0].rate_limiter.bandwidth: expected an object"},
    {"{" B ",'network-interfaces':[" NET("e", "t",
					 ",'tx_rate_limiter':{'ops':"
					 "{'refill_time':1}}") "]}",
     "network-interfaces[0].tx_rate_limiter.ops.size: missing required key"},
    {"{" B ",'network-interfaces':[" NET("e", "t",
					 ",'rx_rate_limiter':{'bandwidth':"
					 "{'size':1}}") "]}",
     "network-interfaces[0].rx_rate_limiter.bandwidth.refill_time: missing required key"},
    {"{" B ",'network-interfaces':[{'iface_id':'e'}]}",
     "network-interfaces[0].host_dev_name: missing required key"},
    {"{" B ",'vsock':{'uds_path':'/v'}}", "vsock.guest_cid: missing required key"},
    {"{" B ",'vsock':{'guest_cid':3}}", "vsock.uds_path: missing required key"},
    {"{" B ",'vsock':{'guest_cid':'3','uds_path':'/v'}}",
     "vsock.guest_cid: expected an unsigned integer"},
    {"{" B ",'logger':{'show_level':'yes'}}", "logger.show_level: expected a boolean"},
    {"{" B ",'logger':{'module':1}}", "logger.module: expected a string"},
    {"{" B ",'metrics':{}}", "metrics.metrics_path: missing required key"},
    {"{" B ",'metrics':'/m'}", "metrics: expected an object"},
};

static void test_bad_types(void **state)
{
	(void)state;
	RUN_BAD(bad_types);
}

static const struct bad bad_values[] = {
    {"{" B ",'machine-config':{'vcpu_count':0}}",
     "machine-config.vcpu_count: 0 out of range 1..32"},
    {"{" B ",'machine-config':{'vcpu_count':33}}",
     "machine-config.vcpu_count: 33 out of range 1..32"},
    {"{" B ",'machine-config':{'vcpu_count':4294967297}}",
     "machine-config.vcpu_count: 4294967297 out of range 1..32"},
    {"{" B ",'machine-config':{'vcpu_count':99999999999999999999999}}",
     "machine-config.vcpu_count: 99999999999999999999999 out of range 1..32"},
    {"{" B ",'machine-config':{'mem_size_mib':0}}",
     "machine-config.mem_size_mib: 0 out of range 1..1048576"},
    {"{" B ",'machine-config':{'mem_size_mib':1048577}}",
     "machine-config.mem_size_mib: 1048577 out of range 1..1048576"},
    {"{" B ",'machine-config':{'smt':true,'vcpu_count':3}}",
     "machine-config.vcpu_count: 3 must be 1 or even when smt is true"},
    {"{" B ",'machine-config':{'track_dirty_pages':1}}",
     "machine-config.track_dirty_pages: expected a boolean"},
    {"{" B ",'machine-config':{'cpu_template':'T2'}}",
     "machine-config.cpu_template: T2 not supported by kiln"},
    {"{" B ",'machine-config':{'cpu_template':'none'}}",
     "machine-config.cpu_template: none not supported by kiln"},
    {"{" B ",'machine-config':{'huge_pages':'2M'}}",
     "machine-config.huge_pages: 2M not supported by kiln"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'cache_type':'None'") "]}",
     "drives[0].cache_type: None not supported by kiln"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'io_engine':'io_uring'") "]}",
     "drives[0].io_engine: io_uring not supported by kiln"},
    {"{" B ",'drives':[" DRIVE("a b", "true", "") "]}",
     "drives[0].drive_id: a b: invalid id (allowed: A-Z a-z 0-9 _ -)"},
    {"{" B ",'drives':[" DRIVE("", "true", "") "]}", "drives[0].drive_id: must not be empty"},
    {"{" B ",'drives':[" DRIVE("12345678901234567890123456789012345678901234567890123456789012345",
			       "true", "") "]}",
     "drives[0].drive_id: longer than 64 bytes"},
    {"{" B ",'drives':[" DRIVE("rootfs", "true", "") "," DRIVE("rootfs", "false", "") "]}",
     "drives[1].drive_id: duplicate id rootfs"},
    {"{" B ",'drives':[" DRIVE("a", "false", "") "," DRIVE("b", "true", "") "," DRIVE("c", "true",
										      "") "]}",
     "drives[2].is_root_device: more than one root device"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'path_on_host':'/x'") "]}",
     "drives[0].path_on_host: duplicate key"},
    {"{" B ",'drives':[" DRIVE("a", "true",
			       ",'rate_limiter':{'ops':{'size':1,"
			       "'refill_time':18446744073710}}") "]}",
     "drives[0].rate_limiter.ops.refill_time: 18446744073710 out of range "
     "0..18446744073709"},
    {"{" B ",'drives':[" DRIVE("a", "true",
			       ",'rate_limiter':{'ops':{'size':"
			       "18446744073709551616,'refill_time':1}}") "]}",
     "drives[0].rate_limiter.ops.size: 18446744073709551616 out of range "
     "0..18446744073709551615"},
    {"{" B ",'network-interfaces':[" NET("e", "t", ",'guest_mac':'aa:bb:cc:dd:ee'") "]}",
     "network-interfaces[0].guest_mac: aa:bb:cc:dd:ee: expected a MAC address "
     "xx:xx:xx:xx:xx:xx"},
    {"{" B ",'network-interfaces':[" NET("e", "t", ",'guest_mac':'aa:bb:cc:dd:ee:gg'") "]}",
     "network-interfaces[0].guest_mac: aa:bb:cc:dd:ee:gg: expected a MAC address "
     "xx:xx:xx:xx:xx:xx"},
    {"{" B ",'network-interfaces':[" NET("e", "t", ",'guest_mac':'aa-bb-cc-dd-ee-ff'") "]}",
     "network-interfaces[0].guest_mac: aa-bb-cc-dd-ee-ff: expected a MAC address "
     "xx:xx:xx:xx:xx:xx"},
    {"{" B ",'network-interfaces':[" NET("e", "t", ",'guest_mac':'aa:bb:cc:dd:ee:ff:'") "]}",
     "network-interfaces[0].guest_mac: aa:bb:cc:dd:ee:ff:: expected a MAC address "
     "xx:xx:xx:xx:xx:xx"},
    {"{" B ",'network-interfaces':[" NET("e", "1234567890123456", "") "]}",
     "network-interfaces[0].host_dev_name: longer than 15 bytes"},
    {"{" B ",'network-interfaces':[" NET("e", "ta/p", "") "]}",
     "network-interfaces[0].host_dev_name: ta/p: invalid interface name"},
    {"{" B ",'network-interfaces':[" NET("e", "tap 0", "") "]}",
     "network-interfaces[0].host_dev_name: tap 0: invalid interface name"},
    {"{" B ",'network-interfaces':[" NET("e", "", "") "]}",
     "network-interfaces[0].host_dev_name: must not be empty"},
    {"{" B ",'network-interfaces':[" NET("e0", "t0", "") "," NET("e1", "t1", "") "," NET("e0", "t2",
											 "") "]}",
     "network-interfaces[2].iface_id: duplicate id e0"},
    {"{" B ",'network-interfaces':[" NET("e0", "t0", "") "," NET("e1", "t0", "") "]}",
     "network-interfaces[1].host_dev_name: duplicate t0"},
    {"{" B ",'network-interfaces':[" NET("e.0", "t0", "") "]}",
     "network-interfaces[0].iface_id: e.0: invalid id (allowed: A-Z a-z 0-9 _ -)"},
    {"{" B ",'vsock':{'guest_cid':2,'uds_path':'/v'}}",
     "vsock.guest_cid: 2 out of range 3..4294967294"},
    {"{" B ",'vsock':{'guest_cid':4294967295,'uds_path':'/v'}}",
     "vsock.guest_cid: 4294967295 out of range 3..4294967294"},
    {"{" B ",'vsock':{'guest_cid':3,'uds_path':''}}", "vsock.uds_path: must not be empty"},
    {"{" B ",'vsock':{'guest_cid':3,'uds_path':'/run/kiln/0123456789012345678901234567890"
     "123456789012345678901234567890123456789012345678901234567890123456789'}}",
     "vsock.uds_path: longer than 107 bytes (sun_path)"},
    {"{" B ",'vsock':{'vsock_id':'v/0','guest_cid':3,'uds_path':'/v'}}",
     "vsock.vsock_id: v/0: invalid id (allowed: A-Z a-z 0-9 _ -)"},
    {"{" B ",'logger':{'level':'Verbose'}}", "logger.level: Verbose not supported by kiln"},
    {"{" B ",'logger':{'level':''}}", "logger.level:  not supported by kiln"},
    {"{" B ",'logger':{'log_path':''}}", "logger.log_path: must not be empty"},
    {"{'boot-source':{'kernel_image_path':'/k\\u0000x'}}",
     "boot-source.kernel_image_path: NUL character not allowed"},
    {"{" B ",'drives':[" DRIVE("a", "true", ",'partuuid':'\\u0000'") "]}",
     "drives[0].partuuid: NUL character not allowed"},
    {"{" B ",'drives':[" DRIVE("a\\u0000", "true", "") "]}",
     "drives[0].drive_id: NUL character not allowed"},
};

static void test_bad_values(void **state)
{
	(void)state;
	RUN_BAD(bad_values);
}

/* Limits that need generated input: nesting, entry counts, sizes, raw NUL bytes. */
static void test_bad_generated(void **state)
{
	(void)state;
	struct kiln_config c;
	char err[ERRLEN];
	char *json = malloc(CONFIG_MAX_FILE_BYTES + 2);
	assert_non_null(json);

	int n = sprintf(json, "{" B ",'x':");
	for (int i = 0; i < 20; i++)
		json[n++] = '[';
	memset(json + n, ']', 20);
	strcpy(json + n + 20, "}");
	assert_int_equal(parse(json, &c, err), -EINVAL);
	assert_string_equal(err, "line 1: invalid JSON (nested too deeply)");

	n = sprintf(json, "{" B ",'drives':[");
	for (int i = 0; i <= CONFIG_MAX_DRIVES; i++)
		n += sprintf(json + n,
			     "%s{'drive_id':'d%d','path_on_host':'/d','is_root_device':false}",
			     i ? "," : "", i);
	strcpy(json + n, "]}");
	assert_int_equal(parse(json, &c, err), -EINVAL);
	assert_string_equal(err, "drives: more than 16 entries");

	n = sprintf(json, "{" B ",'network-interfaces':[");
	for (int i = 0; i <= CONFIG_MAX_NETS; i++)
		n += sprintf(json + n, "%s" NET("e%d", "t%d", ""), i ? "," : "", i, i);
	strcpy(json + n, "]}");
	assert_int_equal(parse(json, &c, err), -EINVAL);
	assert_string_equal(err, "network-interfaces: more than 8 entries");

	/* Exactly the limit parses (whitespace padding); one byte more is refused. */
	n = sprintf(json, "{\"boot-source\":{\"kernel_image_path\":\"/k\"}}");
	memset(json + n, ' ', CONFIG_MAX_FILE_BYTES + 1 - n);
	assert_int_equal(config_parse(json, CONFIG_MAX_FILE_BYTES, &c, err, sizeof(err)), 0);
	config_free(&c);
	assert_int_equal(config_parse(json, CONFIG_MAX_FILE_BYTES + 1, &c, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "config: larger than 1048576 bytes");

	/* A raw NUL byte ends nothing early: it is an error wherever it is. */
	static const char nul_doc[] = "{\"boot-source\":{\"kernel_image_path\":\"/k\"}}\n\0{";
	assert_int_equal(config_parse(nul_doc, sizeof(nul_doc) - 1, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 2: invalid JSON");
	static const char nul_str[] = "{\"boot-source\":{\"kernel_image_path\":\"/k\0x\"}}";
	assert_int_equal(config_parse(nul_str, sizeof(nul_str) - 1, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1: invalid JSON");
	assert_zeroed(&c);
	free(json);
}

static void test_error_buffer(void **state)
{
	(void)state;
	struct kiln_config c;
	char err[8];
	memset(err, 'x', sizeof(err));
	char *j = dq("{}");
	assert_int_equal(config_parse(j, strlen(j), &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "boot-so"); /* cut, still terminated */
	assert_int_equal(config_parse(j, strlen(j), &c, NULL, 0), -EINVAL);
	free(j);
	assert_int_equal(config_parse(NULL, 0, &c, NULL, 0), -EINVAL);
	struct kiln_config zero = {0};
	config_free(&zero);
}

/* ---- files -------------------------------------------------------------------------------- */

struct files {
	char dir[64];
	char kernel[96], initrd[96], root[96], ro[96], cfgfile[96];
};

static void make_file(const char *path, mode_t mode, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int files_setup(void **state)
{
	struct files *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/kiln-test-config-XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	chmod(f->dir, 0755); /* the privilege-dropped child must get in */
	snprintf(f->kernel, sizeof(f->kernel), "%s/vmlinux", f->dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
	snprintf(f->root, sizeof(f->root), "%s/root.img", f->dir);
	snprintf(f->ro, sizeof(f->ro), "%s/ro.img", f->dir);
	snprintf(f->cfgfile, sizeof(f->cfgfile), "%s/config.json", f->dir);
	make_file(f->kernel, 0644, 4096);
	make_file(f->initrd, 0644, 4096);
	make_file(f->root, 0666, 1 << 20);
	make_file(f->ro, 0444, 4096);
	*state = f;
	return 0;
}

static int files_teardown(void **state)
{
	struct files *f = *state;
	const char *paths[] = {f->kernel, f->initrd, f->root, f->ro, f->cfgfile};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		unlink(paths[i]);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A config with every file check: kernel, initrd, a writable and a read-only drive. */
static char *files_json(const struct files *f, const char *kernel, const char *root, const char *ro,
			bool ro_flag)
{
	char *buf = malloc(1024);
	assert_non_null(buf);
	snprintf(
	    buf, 1024,
	    "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\"},"
	    "\"drives\":[{\"drive_id\":\"root\",\"path_on_host\":\"%s\",\"is_root_device\":true},"
	    "{\"drive_id\":\"ro\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
	    "\"is_read_only\":%s}]}",
	    kernel, f->initrd, root, ro, ro_flag ? "true" : "false");
	return buf;
}

/* Parses the files_json() config and runs config_check_files(); "" expects success. */
static int check_files_case(const struct files *f, const char *kernel, const char *root,
			    const char *ro, bool ro_flag, const char *want)
{
	struct kiln_config c;
	char err[ERRLEN] = "";
	char *json = files_json(f, kernel, root, ro, ro_flag);
	int rc = config_parse(json, strlen(json), &c, err, sizeof(err));
	free(json);
	if (rc == 0)
		rc = config_check_files(&c, err, sizeof(err));
	config_free(&c);
	if ((rc == 0) != (want[0] == '\0') || strcmp(err, want)) {
		print_error("got %d \"%s\", want \"%s\"\n", rc, err, want);
		return -1;
	}
	return 0;
}

static void test_check_files(void **state)
{
	const struct files *f = *state;
	char want[ERRLEN], missing[128];
	snprintf(missing, sizeof(missing), "%s/nope", f->dir);
	assert_int_equal(check_files_case(f, f->kernel, f->root, f->ro, true, ""), 0);

	snprintf(want, sizeof(want), "boot-source.kernel_image_path: %s: No such file or directory",
		 missing);
	assert_int_equal(check_files_case(f, missing, f->root, f->ro, true, want), 0);
	snprintf(want, sizeof(want), "boot-source.kernel_image_path: %s: not a regular file",
		 f->dir);
	assert_int_equal(check_files_case(f, f->dir, f->root, f->ro, true, want), 0);
	snprintf(want, sizeof(want), "drives[0].path_on_host: %s: No such file or directory",
		 missing);
	assert_int_equal(check_files_case(f, f->kernel, missing, f->ro, true, want), 0);
	snprintf(want, sizeof(want),
		 "drives[1].path_on_host: %s: not a regular file or block device", f->dir);
	assert_int_equal(check_files_case(f, f->kernel, f->root, f->dir, true, want), 0);
	assert_int_equal(check_files_case(f, f->kernel, f->root, "/dev/null", true,
					  "drives[1].path_on_host: /dev/null: not a regular file "
					  "or block device"),
			 0);
}

/* Permission checks; run as an unprivileged user because root passes access(). */
static int check_permissions(const struct files *f)
{
	char want[ERRLEN];
	int bad = 0;
	snprintf(want, sizeof(want), "drives[1].path_on_host: %s: Permission denied", f->ro);
	bad |= check_files_case(f, f->kernel, f->root, f->ro, false, want);
	bad |= check_files_case(f, f->kernel, f->root, f->ro, true, "");
	chmod(f->kernel, 0);
	snprintf(want, sizeof(want), "boot-source.kernel_image_path: %s: Permission denied",
		 f->kernel);
	bad |= check_files_case(f, f->kernel, f->root, f->ro, true, want);
	chmod(f->kernel, 0644);
	return bad;
}

static void test_check_permissions(void **state)
{
	const struct files *f = *state;
	if (geteuid() != 0) {
		assert_int_equal(check_permissions(f), 0);
		return;
	}
	/* The child owns the files it chmods, so hand them over first. */
	const char *paths[] = {f->kernel, f->initrd, f->root, f->ro};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(chown(paths[i], 65534, 65534), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		test_child_begin();
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(77);
		_exit(check_permissions(f) ? 1 : 0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_load(void **state)
{
	const struct files *f = *state;
	struct kiln_config c;
	char err[ERRLEN], want[ERRLEN];
	char *json = files_json(f, f->kernel, f->root, f->ro, true);
	write_file(f->cfgfile, json, strlen(json));
	free(json);
	assert_int_equal(config_load(f->cfgfile, &c, err, sizeof(err)), 0);
	assert_string_equal(c.boot.kernel_image_path, f->kernel);
	assert_string_equal(c.boot.initrd_path, f->initrd);
	assert_int_equal(c.nr_drives, 2);
	assert_string_equal(c.drives[1].path_on_host, f->ro);
	config_free(&c);

	json = files_json(f, f->kernel, f->dir, f->ro, true); /* fails the file checks */
	write_file(f->cfgfile, json, strlen(json));
	free(json);
	assert_int_equal(config_load(f->cfgfile, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "drives[0].path_on_host: %s: not a regular file or block device", f->dir);
	assert_string_equal(err, want);
	assert_zeroed(&c);

	write_file(f->cfgfile, "{\n\"boot-source\":\n}", 18);
	assert_int_equal(config_load(f->cfgfile, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 3: invalid JSON");

	char *big = malloc(CONFIG_MAX_FILE_BYTES + 1);
	assert_non_null(big);
	memset(big, ' ', CONFIG_MAX_FILE_BYTES + 1);
	write_file(f->cfgfile, big, CONFIG_MAX_FILE_BYTES + 1);
	free(big);
	assert_int_equal(config_load(f->cfgfile, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", f->cfgfile);
	assert_string_equal(err, want);
	assert_zeroed(&c);

	unlink(f->cfgfile);
	assert_int_equal(config_load(f->cfgfile, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: No such file or directory", f->cfgfile);
	assert_string_equal(err, want);
	assert_int_equal(config_load(f->dir, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: Is a directory", f->dir);
	assert_string_equal(err, want);
	assert_zeroed(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_config),
	    cmocka_unit_test(test_full_config_devices),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_nulls),
	    cmocka_unit_test(test_firecracker_vm_config),
	    cmocka_unit_test(test_string_escapes),
	    cmocka_unit_test(test_example_file),
	    cmocka_unit_test(test_bad_syntax),
	    cmocka_unit_test(test_bad_keys),
	    cmocka_unit_test(test_bad_types),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_bad_generated),
	    cmocka_unit_test(test_error_buffer),
	    cmocka_unit_test_setup_teardown(test_check_files, files_setup, files_teardown),
	    cmocka_unit_test_setup_teardown(test_check_permissions, files_setup, files_teardown),
	    cmocka_unit_test_setup_teardown(test_load, files_setup, files_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
