#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/config_json.h"

#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
/* Keeps refill_time * 1e6 (milliseconds to nanoseconds) inside 64 bits. */
#define REFILL_MS_MAX (UINT64_MAX / 1000000)

/* ---- shared value parsers ---------------------------------------------------------------- */

static int parse_id(struct json *j, int tok, const char *name, unsigned flags, char *id)
{
	char raw[72];
	int rc = json_strbuf(j, tok, name, flags | JSON_NONEMPTY, id, CONFIG_ID_MAX + 1);
	if (rc == 0 && tok >= 0 && id[strspn(id, ID_CHARS)] != '\0')
		rc = json_member_error(j, name, "%s: invalid id (allowed: A-Z a-z 0-9 _ -)",
				       json_raw(j, tok, raw, sizeof(raw)));
	return rc;
}

static const char *const bucket_keys[] = {"size", "one_time_burst", "refill_time"};

static int parse_bucket(struct json *j, int obj, const char *name, struct token_bucket_cfg *b)
{
	if (obj < 0)
		return 0;
	size_t saved = json_push_key(j, name);
	int v[3];
	int rc = json_members(j, obj, bucket_keys, 3, v);
	if (rc == 0)
		rc = json_uint(j, v[0], "size", JSON_REQUIRED, 0, UINT64_MAX, &b->size);
	if (rc == 0)
		rc = json_uint(j, v[1], "one_time_burst", 0, 0, UINT64_MAX, &b->one_time_burst);
	if (rc == 0)
		rc = json_uint(j, v[2], "refill_time", JSON_REQUIRED, 0, REFILL_MS_MAX,
			       &b->refill_time_ms);
	json_pop(j, saved);
	/* Like Firecracker: a bucket with size 0 or refill_time 0 is no limit at all. */
	if (rc || !b->size || !b->refill_time_ms)
		*b = (struct token_bucket_cfg){0};
	b->present = b->size != 0;
	return rc;
}

static const char *const limiter_keys[] = {"bandwidth", "ops"};

static int parse_limiter(struct json *j, int obj, const char *name, struct rate_limiter_cfg *rl)
{
	if (obj < 0)
		return 0;
	size_t saved = json_push_key(j, name);
	int v[2];
	int rc = json_members(j, obj, limiter_keys, 2, v);
	if (rc == 0)
		rc = parse_bucket(j, v[0], "bandwidth", &rl->bandwidth);
	if (rc == 0)
		rc = parse_bucket(j, v[1], "ops", &rl->ops);
	rl->present = rl->bandwidth.present || rl->ops.present;
	json_pop(j, saved);
	return rc;
}

/* ---- sections ------------------------------------------------------------------------------ */

static const char *const boot_keys[] = {"kernel_image_path", "boot_args", "initrd_path"};

static int parse_boot(struct json *j, int obj, struct kiln_config *cfg)
{
	struct boot_cfg *b = &cfg->boot;
	int v[3];
	int rc = json_members(j, obj, boot_keys, 3, v);
	if (rc == 0)
		rc = json_str(j, v[0], boot_keys[0], JSON_REQUIRED | JSON_NONEMPTY,
			      &b->kernel_image_path);
	if (rc == 0)
		rc = json_str(j, v[1], boot_keys[1], 0, &b->boot_args);
	if (rc == 0)
		rc = json_str(j, v[2], boot_keys[2], JSON_NONEMPTY, &b->initrd_path);
	return rc;
}

enum { M_VCPUS, M_MEM, M_SMT, M_DIRTY, M_TEMPLATE, M_HUGE, M_NKEYS };
static const char *const machine_keys[M_NKEYS] = {
    "vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "huge_pages"};
static const char *const only_none[] = {"None"};

static int parse_machine(struct json *j, int obj, struct kiln_config *cfg)
{
	struct machine_cfg *m = &cfg->machine;
	uint64_t vcpus = m->vcpu_count;
	int v[M_NKEYS], none;
	int rc = json_members(j, obj, machine_keys, M_NKEYS, v);
	if (rc == 0)
		rc = json_uint(j, v[M_VCPUS], "vcpu_count", 0, 1, 32, &vcpus);
	if (rc == 0)
		rc = json_uint(j, v[M_MEM], "mem_size_mib", 0, 1, 1 << 20, &m->mem_size_mib);
	if (rc == 0)
		rc = json_bool(j, v[M_SMT], "smt", 0, &m->smt);
	if (rc == 0)
		rc = json_bool(j, v[M_DIRTY], "track_dirty_pages", 0, &m->track_dirty_pages);
	if (rc == 0)
		rc = json_enum(j, v[M_TEMPLATE], "cpu_template", 0, only_none, 1, false, &none);
	if (rc == 0)
		rc = json_enum(j, v[M_HUGE], "huge_pages", 0, only_none, 1, false, &none);
	m->vcpu_count = (unsigned)vcpus;
	if (rc == 0 && m->smt && vcpus > 1 && vcpus % 2)
		rc = json_member_error(j, "vcpu_count", "%u must be 1 or even when smt is true",
				       m->vcpu_count);
	return rc;
}

enum { D_ID, D_PATH, D_ROOT, D_RO, D_PARTUUID, D_CACHE, D_ENGINE, D_LIMITER, D_SOCKET, D_NKEYS };
static const char *const drive_keys[D_NKEYS] = {"drive_id",	"path_on_host", "is_root_device",
						"is_read_only", "partuuid",	"cache_type",
						"io_engine",	"rate_limiter", "socket"};
static const char *const cache_types[] = {"Unsafe", "Writeback"};
static const char *const io_engines[] = {"Sync", "Async"};

static int parse_drive(struct json *j, int obj, struct drive_cfg *d)
{
	int v[D_NKEYS], cache = CACHE_UNSAFE, engine = IO_ENGINE_SYNC;
	int rc = json_members(j, obj, drive_keys, D_NKEYS, v);
	if (rc == 0)
		rc = parse_id(j, v[D_ID], "drive_id", JSON_REQUIRED, d->id);
	if (rc == 0)
		rc = json_str(j, v[D_PATH], "path_on_host", JSON_REQUIRED | JSON_NONEMPTY,
			      &d->path_on_host);
	if (rc == 0)
		rc = json_bool(j, v[D_ROOT], "is_root_device", JSON_REQUIRED, &d->is_root_device);
	if (rc == 0)
		rc = json_bool(j, v[D_RO], "is_read_only", 0, &d->is_read_only);
	if (rc == 0)
		rc = json_str(j, v[D_PARTUUID], "partuuid", 0, &d->partuuid);
	if (rc == 0)
		rc = json_enum(j, v[D_CACHE], "cache_type", 0, cache_types, 2, false, &cache);
	if (rc == 0)
		rc = json_enum(j, v[D_ENGINE], "io_engine", 0, io_engines, 2, false, &engine);
	if (rc == 0)
		rc = parse_limiter(j, v[D_LIMITER], "rate_limiter", &d->rate_limiter);
	if (rc == 0 && v[D_SOCKET] >= 0)
		rc = json_member_error(j, "socket", "not supported by kiln");
	d->cache_type = cache == CACHE_WRITEBACK ? CACHE_WRITEBACK : CACHE_UNSAFE;
	d->io_engine = engine == IO_ENGINE_ASYNC ? IO_ENGINE_ASYNC : IO_ENGINE_SYNC;
	return rc;
}

/* d (at index `self`) against the other drives of cfg: ids and the root device are unique. */
static int check_drive_unique(struct json *j, const struct kiln_config *cfg,
			      const struct drive_cfg *d, unsigned self)
{
	for (unsigned k = 0; k < cfg->nr_drives; k++) {
		if (k == self)
			continue;
		if (!strcmp(cfg->drives[k].id, d->id))
			return json_member_error(j, "drive_id", "duplicate id %s", d->id);
		if (cfg->drives[k].is_root_device && d->is_root_device)
			return json_member_error(j, "is_root_device", "more than one root device");
	}
	return 0;
}

static int parse_drives(struct json *j, int arr, struct kiln_config *cfg)
{
	int el[CONFIG_MAX_DRIVES];
	unsigned n;
	int rc = json_array(j, arr, el, CONFIG_MAX_DRIVES, &n);
	for (unsigned i = 0; i < n && rc == 0; i++) {
		struct drive_cfg *d = &cfg->drives[i];
		size_t saved = json_push_index(j, i);
		cfg->nr_drives = i + 1;
		rc = parse_drive(j, el[i], d);
		if (rc == 0)
			rc = check_drive_unique(j, cfg, d, i);
		json_pop(j, saved);
	}
	return rc;
}

/* The kernel's dev_valid_name(): no '/', ':' or whitespace, not "." or "..". */
static bool valid_ifname(const char *s)
{
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == ':' || (unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return strcmp(s, ".") && strcmp(s, "..");
}

static int parse_mac(struct json *j, int tok, struct net_cfg *n)
{
	char s[64], raw[72];
	bool ok;
	int rc = json_strbuf(j, tok, "guest_mac", 0, s, sizeof(s));
	if (rc || tok < 0)
		return rc;
	ok = strlen(s) == 17;
	for (int i = 0; i < 6 && ok; i++) {
		char hex[3] = {s[3 * i], s[3 * i + 1], '\0'};
		ok = isxdigit((unsigned char)hex[0]) && isxdigit((unsigned char)hex[1]) &&
		     (i == 5 || s[3 * i + 2] == ':');
		n->guest_mac[i] = (uint8_t)strtoul(hex, NULL, 16);
	}
	n->has_guest_mac = ok;
	if (!ok)
		rc = json_member_error(j, "guest_mac",
				       "%s: expected a MAC address xx:xx:xx:xx:xx:xx",
				       json_raw(j, tok, raw, sizeof(raw)));
	return rc;
}

enum { N_ID, N_DEV, N_MAC, N_RX, N_TX, N_NKEYS };
static const char *const net_keys[N_NKEYS] = {"iface_id", "host_dev_name", "guest_mac",
					      "rx_rate_limiter", "tx_rate_limiter"};

static int parse_net(struct json *j, int obj, struct net_cfg *n)
{
	char raw[72];
	int v[N_NKEYS];
	int rc = json_members(j, obj, net_keys, N_NKEYS, v);
	if (rc == 0)
		rc = parse_id(j, v[N_ID], "iface_id", JSON_REQUIRED, n->id);
	if (rc == 0)
		rc = json_strbuf(j, v[N_DEV], "host_dev_name", JSON_REQUIRED | JSON_NONEMPTY,
				 n->host_dev_name, sizeof(n->host_dev_name));
	if (rc == 0 && !valid_ifname(n->host_dev_name))
		rc = json_member_error(j, "host_dev_name", "%s: invalid interface name",
				       json_raw(j, v[N_DEV], raw, sizeof(raw)));
	if (rc == 0)
		rc = parse_mac(j, v[N_MAC], n);
	if (rc == 0)
		rc = parse_limiter(j, v[N_RX], "rx_rate_limiter", &n->rx_rate_limiter);
	if (rc == 0)
		rc = parse_limiter(j, v[N_TX], "tx_rate_limiter", &n->tx_rate_limiter);
	return rc;
}

static int check_net_unique(struct json *j, const struct kiln_config *cfg, const struct net_cfg *n,
			    unsigned self)
{
	for (unsigned k = 0; k < cfg->nr_nets; k++) {
		if (k == self)
			continue;
		if (!strcmp(cfg->nets[k].id, n->id))
			return json_member_error(j, "iface_id", "duplicate id %s", n->id);
		if (!strcmp(cfg->nets[k].host_dev_name, n->host_dev_name))
			return json_member_error(j, "host_dev_name", "duplicate %s",
						 n->host_dev_name);
	}
	return 0;
}

static int parse_nets(struct json *j, int arr, struct kiln_config *cfg)
{
	int el[CONFIG_MAX_NETS];
	unsigned n;
	int rc = json_array(j, arr, el, CONFIG_MAX_NETS, &n);
	for (unsigned i = 0; i < n && rc == 0; i++) {
		struct net_cfg *net = &cfg->nets[i];
		size_t saved = json_push_index(j, i);
		cfg->nr_nets = i + 1;
		rc = parse_net(j, el[i], net);
		if (rc == 0)
			rc = check_net_unique(j, cfg, net, i);
		json_pop(j, saved);
	}
	return rc;
}

static const char *const vsock_keys[] = {"vsock_id", "guest_cid", "uds_path"};

static int parse_vsock(struct json *j, int obj, struct kiln_config *cfg)
{
	struct vsock_cfg *vs = &cfg->vsock;
	uint64_t cid = 0;
	int v[3];
	int rc = json_members(j, obj, vsock_keys, 3, v);
	if (rc == 0)
		rc = parse_id(j, v[0], "vsock_id", 0, vs->id);
	if (rc == 0)
		rc = json_uint(j, v[1], "guest_cid", JSON_REQUIRED, 3, 0xfffffffe, &cid);
	if (rc == 0)
		rc = json_str(j, v[2], "uds_path", JSON_REQUIRED | JSON_NONEMPTY, &vs->uds_path);
	if (rc == 0 && strlen(vs->uds_path) > SUN_PATH_MAX)
		rc = json_member_error(j, "uds_path", "longer than %zu bytes (sun_path)",
				       SUN_PATH_MAX);
	vs->guest_cid = (uint32_t)cid;
	vs->present = rc == 0;
	return rc;
}

static const char *const logger_keys[] = {"log_path", "level", "show_level", "show_log_origin",
					  "module"};
static const char *const level_names[] = {"Error", "Warning", "Info", "Debug", "Trace", "Off"};
static const enum log_level level_values[] = {LOG_ERROR, LOG_WARN,  LOG_INFO,
					      LOG_DEBUG, LOG_DEBUG, LOG_OFF};

static int parse_logger(struct json *j, int obj, struct kiln_config *cfg)
{
	struct logger_cfg *l = &cfg->logger;
	char *module = NULL; /* accepted for compatibility, not used */
	int v[5], level = 1;
	int rc = json_members(j, obj, logger_keys, 5, v);
	if (rc == 0)
		rc = json_str(j, v[0], "log_path", JSON_NONEMPTY, &l->log_path);
	if (rc == 0)
		rc = json_enum(j, v[1], "level", 0, level_names, 6, true, &level);
	if (rc == 0)
		rc = json_bool(j, v[2], "show_level", 0, &l->show_level);
	if (rc == 0)
		rc = json_bool(j, v[3], "show_log_origin", 0, &l->show_log_origin);
	if (rc == 0)
		rc = json_str(j, v[4], "module", 0, &module);
	free(module);
	l->level = level_values[level];
	l->present = rc == 0;
	return rc;
}

static int parse_metrics(struct json *j, int obj, struct kiln_config *cfg)
{
	static const char *const keys[] = {"metrics_path"};
	int v[1];
	int rc = json_members(j, obj, keys, 1, v);
	if (rc == 0)
		rc = json_str(j, v[0], "metrics_path", JSON_REQUIRED | JSON_NONEMPTY,
			      &cfg->metrics.metrics_path);
	cfg->metrics.present = rc == 0;
	return rc;
}

/* ---- the document ------------------------------------------------------------------------ */

typedef int (*section_fn)(struct json *j, int tok, struct kiln_config *cfg);

static const struct section {
	const char *key;
	section_fn parse; /* NULL: a Firecracker device kiln does not have */
	bool required;
} sections[] = {
    {"boot-source", parse_boot, true}, {"machine-config", parse_machine, false},
    {"drives", parse_drives, false},   {"network-interfaces", parse_nets, false},
    {"vsock", parse_vsock, false},     {"logger", parse_logger, false},
    {"metrics", parse_metrics, false}, {"balloon", NULL, false},
    {"entropy", NULL, false},	       {"pmem", NULL, false},
    {"memory-hotplug", NULL, false},   {"mmds-config", NULL, false},
    {"cpu-config", NULL, false},
};
#define NR_SECTIONS (sizeof(sections) / sizeof(sections[0]))

static int parse_document(struct json *j, struct kiln_config *cfg)
{
	const char *keys[NR_SECTIONS];
	int v[NR_SECTIONS];
	for (size_t k = 0; k < NR_SECTIONS; k++)
		keys[k] = sections[k].key;
	int rc = json_members(j, 0, keys, NR_SECTIONS, v);
	for (size_t k = 0; k < NR_SECTIONS && rc == 0; k++) {
		const struct section *s = &sections[k];
		size_t saved = json_push_key(j, s->key);
		/* null is "not configured", as in Firecracker's own example configs. */
		if (v[k] == JSON_ABSENT && s->required)
			rc = json_error(j, "missing required key");
		else if (v[k] == JSON_NULL && s->required)
			rc = json_error(j, "expected an object");
		/* [] is "none" too: Firecracker's own configs write "pmem": []. */
		else if (v[k] >= 0 && !s->parse && !json_is_empty_array(j, v[k]))
			rc = json_error(j, "kiln has no %s device", s->key);
		else if (v[k] >= 0 && s->parse)
			rc = s->parse(j, v[k], cfg);
		json_pop(j, saved);
	}
	return rc;
}

int config_parse(const char *json, size_t len, struct kiln_config *cfg, char *err, size_t errlen)
{
	struct json j;
	int rc;
	config_init(cfg);
	if (len > CONFIG_MAX_FILE_BYTES) {
		if (err && errlen)
			snprintf(err, errlen, "config: larger than %d bytes",
				 CONFIG_MAX_FILE_BYTES);
		rc = -EINVAL;
		goto out;
	}
	rc = json_open(&j, json, len, err, errlen);
	if (rc == 0)
		rc = parse_document(&j, cfg);
	json_close(&j);
out:
	if (rc)
		config_free(cfg);
	return rc;
}

void config_init(struct kiln_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->machine.vcpu_count = 1;
	cfg->machine.mem_size_mib = 128;
	cfg->logger.level = LOG_WARN;
}

static void free_drive(struct drive_cfg *d)
{
	free(d->path_on_host);
	free(d->partuuid);
	memset(d, 0, sizeof(*d));
}

void config_free(struct kiln_config *cfg)
{
	free(cfg->boot.kernel_image_path);
	free(cfg->boot.boot_args);
	free(cfg->boot.initrd_path);
	/* Every slot, not just nr_drives: a failed parse may leave one half filled. */
	for (unsigned i = 0; i < CONFIG_MAX_DRIVES; i++)
		free_drive(&cfg->drives[i]);
	free(cfg->vsock.uds_path);
	free(cfg->logger.log_path);
	free(cfg->metrics.metrics_path);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- one section at a time: the API's PUT bodies ----------------------------------------- */

static int find_drive(const struct kiln_config *cfg, const char *id)
{
	unsigned i = 0;
	while (i < cfg->nr_drives && strcmp(cfg->drives[i].id, id))
		i++;
	return (int)i;
}

static int find_net(const struct kiln_config *cfg, const char *id)
{
	unsigned i = 0;
	while (i < cfg->nr_nets && strcmp(cfg->nets[i].id, id))
		i++;
	return (int)i;
}

/* The id in a PUT/PATCH body must be the one in the request path. */
static int check_path_id(struct json *j, const char *key, const char *body_id, const char *id)
{
	if (!strcmp(body_id, id))
		return 0;
	return json_member_error(j, key, "%s does not match the id in the path", body_id);
}

/* The body of PUT /drives/{id}: one drives[] element at the index it takes in cfg. */
static int put_drive(struct json *j, const struct kiln_config *cfg, struct kiln_config *tmp,
		     const char *id, int idx)
{
	struct drive_cfg *d = &tmp->drives[0];
	json_push_key(j, "drives");
	if (idx >= CONFIG_MAX_DRIVES)
		return json_error(j, "more than %u entries", CONFIG_MAX_DRIVES);
	json_push_index(j, (unsigned)idx);
	int rc = parse_drive(j, 0, d);
	if (rc == 0)
		rc = check_path_id(j, "drive_id", d->id, id);
	if (rc == 0)
		rc = check_drive_unique(j, cfg, d, (unsigned)idx);
	return rc;
}

static int put_net(struct json *j, const struct kiln_config *cfg, struct kiln_config *tmp,
		   const char *id, int idx)
{
	struct net_cfg *n = &tmp->nets[0];
	json_push_key(j, "network-interfaces");
	if (idx >= CONFIG_MAX_NETS)
		return json_error(j, "more than %u entries", CONFIG_MAX_NETS);
	json_push_index(j, (unsigned)idx);
	int rc = parse_net(j, 0, n);
	if (rc == 0)
		rc = check_path_id(j, "iface_id", n->id, id);
	if (rc == 0)
		rc = check_net_unique(j, cfg, n, (unsigned)idx);
	return rc;
}

static int put_parse(struct json *j, const struct kiln_config *cfg, struct kiln_config *tmp,
		     enum config_section sec, const char *id, int idx)
{
	static const char *const keys[] = {
	    [CONFIG_SECTION_BOOT] = "boot-source",
	    [CONFIG_SECTION_MACHINE] = "machine-config",
	    [CONFIG_SECTION_MACHINE_PATCH] = "machine-config",
	    [CONFIG_SECTION_VSOCK] = "vsock",
	    [CONFIG_SECTION_LOGGER] = "logger",
	    [CONFIG_SECTION_METRICS] = "metrics",
	};
	static const section_fn fns[] = {
	    [CONFIG_SECTION_BOOT] = parse_boot,
	    [CONFIG_SECTION_MACHINE] = parse_machine,
	    [CONFIG_SECTION_MACHINE_PATCH] = parse_machine,
	    [CONFIG_SECTION_VSOCK] = parse_vsock,
	    [CONFIG_SECTION_LOGGER] = parse_logger,
	    [CONFIG_SECTION_METRICS] = parse_metrics,
	};
	if (sec == CONFIG_SECTION_DRIVE)
		return put_drive(j, cfg, tmp, id, idx);
	if (sec == CONFIG_SECTION_NET)
		return put_net(j, cfg, tmp, id, idx);
	json_push_key(j, keys[sec]);
	return fns[sec](j, 0, tmp);
}

/* Moves the new section from tmp into cfg; the old one goes to tmp, to be freed with it. */
static void put_commit(struct kiln_config *cfg, struct kiln_config *tmp, enum config_section sec,
		       int idx)
{
#define SWAP(a, b)                                                                                 \
	do {                                                                                       \
		__typeof__(a) t_ = (a);                                                            \
		(a) = (b);                                                                         \
		(b) = t_;                                                                          \
	} while (0)
	switch (sec) {
	case CONFIG_SECTION_BOOT:
		SWAP(cfg->boot, tmp->boot);
		break;
	case CONFIG_SECTION_MACHINE:
	case CONFIG_SECTION_MACHINE_PATCH:
		cfg->machine = tmp->machine;
		break;
	case CONFIG_SECTION_DRIVE:
		SWAP(cfg->drives[idx], tmp->drives[0]);
		cfg->nr_drives += idx == (int)cfg->nr_drives;
		break;
	case CONFIG_SECTION_NET:
		SWAP(cfg->nets[idx], tmp->nets[0]);
		cfg->nr_nets += idx == (int)cfg->nr_nets;
		break;
	case CONFIG_SECTION_VSOCK:
		SWAP(cfg->vsock, tmp->vsock);
		break;
	case CONFIG_SECTION_LOGGER:
		SWAP(cfg->logger, tmp->logger);
		break;
	case CONFIG_SECTION_METRICS:
		SWAP(cfg->metrics, tmp->metrics);
		break;
	}
#undef SWAP
}

int config_put(struct kiln_config *cfg, enum config_section sec, const char *id, const char *body,
	       size_t len, char *err, size_t errlen)
{
	struct kiln_config tmp;
	struct json j;
	int idx = 0;
	config_init(&tmp);
	if (sec == CONFIG_SECTION_MACHINE_PATCH)
		tmp.machine = cfg->machine;
	if (sec == CONFIG_SECTION_DRIVE)
		idx = find_drive(cfg, id);
	else if (sec == CONFIG_SECTION_NET)
		idx = find_net(cfg, id);
	int rc = json_open(&j, body, len, err, errlen);
	if (rc == 0)
		rc = put_parse(&j, cfg, &tmp, sec, id, idx);
	json_close(&j);
	if (rc == 0 && sec == CONFIG_SECTION_BOOT)
		rc = config_check_boot(&tmp.boot, err, errlen);
	if (rc == 0 && sec == CONFIG_SECTION_DRIVE)
		rc = config_check_drive(&tmp.drives[0], (unsigned)idx, err, errlen);
	if (rc == 0 && sec == CONFIG_SECTION_NET)
		rc = config_check_net(&tmp.nets[0], (unsigned)idx, err, errlen);
	if (rc == 0)
		put_commit(cfg, &tmp, sec, idx);
	config_free(&tmp);
	return rc;
}

/* ---- PATCH /drives/{id}: a running drive's new backing file -------------------------------- */

static int copy_drive(struct drive_cfg *dst, const struct drive_cfg *src)
{
	*dst = *src;
	dst->path_on_host = src->path_on_host ? strdup(src->path_on_host) : NULL;
	dst->partuuid = src->partuuid ? strdup(src->partuuid) : NULL;
	if ((src->path_on_host && !dst->path_on_host) || (src->partuuid && !dst->partuuid)) {
		free_drive(dst);
		return -ENOMEM;
	}
	return 0;
}

/* The buckets an update names replace those of `into`; the others stay. */
static void merge_limiter(struct rate_limiter_cfg *into, const struct rate_limiter_cfg *upd)
{
	if (upd->bandwidth.present)
		into->bandwidth = upd->bandwidth;
	if (upd->ops.present)
		into->ops = upd->ops;
	into->present = into->bandwidth.present || into->ops.present;
}

static const char *const patch_keys[] = {"drive_id", "path_on_host", "rate_limiter"};

static int patch_parse(struct json *j, int idx, const char *id, struct drive_cfg *d,
		       struct config_patch *what)
{
	char body_id[CONFIG_ID_MAX + 1] = "";
	int v[3];
	json_push_key(j, "drives");
	json_push_index(j, (unsigned)idx);
	int rc = json_members(j, 0, patch_keys, 3, v);
	if (rc == 0)
		rc = parse_id(j, v[0], "drive_id", JSON_REQUIRED, body_id);
	if (rc == 0)
		rc = check_path_id(j, "drive_id", body_id, id);
	what->new_path = v[1] != JSON_ABSENT;
	if (rc == 0)
		rc = json_str(j, v[1], "path_on_host", JSON_NONEMPTY, &d->path_on_host);
	if (rc == 0)
		rc = parse_limiter(j, v[2], "rate_limiter", &what->limiter[0]);
	if (rc == 0)
		merge_limiter(&d->rate_limiter, &what->limiter[0]);
	return rc;
}

int config_patch_drive(const struct kiln_config *cfg, const char *id, const char *body, size_t len,
		       struct drive_cfg *out, unsigned *index, struct config_patch *what,
		       char *err, size_t errlen)
{
	struct json j;
	int idx = find_drive(cfg, id);
	memset(out, 0, sizeof(*out));
	memset(what, 0, sizeof(*what));
	if (idx >= (int)cfg->nr_drives) {
		snprintf(err, errlen, "drives: no drive with drive_id %.64s", id);
		return -EINVAL;
	}
	if (copy_drive(out, &cfg->drives[idx])) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = json_open(&j, body, len, err, errlen);
	if (rc == 0)
		rc = patch_parse(&j, idx, id, out, what);
	json_close(&j);
	if (rc == 0 && what->new_path)
		rc = config_check_drive(out, (unsigned)idx, err, errlen);
	if (rc)
		free_drive(out);
	*index = (unsigned)idx;
	return rc;
}

static const char *const patch_net_keys[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter"};

int config_patch_net(const struct kiln_config *cfg, const char *id, const char *body, size_t len,
		     struct net_cfg *out, unsigned *index, struct config_patch *what, char *err,
		     size_t errlen)
{
	struct json j;
	char body_id[CONFIG_ID_MAX + 1] = "";
	int v[3], idx = find_net(cfg, id);
	memset(what, 0, sizeof(*what));
	if (idx >= (int)cfg->nr_nets) {
		snprintf(err, errlen, "network-interfaces: no interface with iface_id %.64s", id);
		return -EINVAL;
	}
	*out = cfg->nets[idx];
	*index = (unsigned)idx;
	int rc = json_open(&j, body, len, err, errlen);
	if (rc == 0) {
		json_push_key(&j, "network-interfaces");
		json_push_index(&j, (unsigned)idx);
		rc = json_members(&j, 0, patch_net_keys, 3, v);
	}
	if (rc == 0)
		rc = parse_id(&j, v[0], "iface_id", JSON_REQUIRED, body_id);
	if (rc == 0)
		rc = check_path_id(&j, "iface_id", body_id, id);
	if (rc == 0)
		rc = parse_limiter(&j, v[1], "rx_rate_limiter", &what->limiter[0]);
	if (rc == 0)
		rc = parse_limiter(&j, v[2], "tx_rate_limiter", &what->limiter[1]);
	json_close(&j);
	if (rc == 0) {
		merge_limiter(&out->rx_rate_limiter, &what->limiter[0]);
		merge_limiter(&out->tx_rate_limiter, &what->limiter[1]);
	}
	return rc;
}

void config_replace_net(struct kiln_config *cfg, unsigned index, const struct net_cfg *n)
{
	cfg->nets[index] = *n;
}

void config_free_drive(struct drive_cfg *d)
{
	free_drive(d);
}

void config_replace_drive(struct kiln_config *cfg, unsigned index, struct drive_cfg *d)
{
	free_drive(&cfg->drives[index]);
	cfg->drives[index] = *d;
	memset(d, 0, sizeof(*d));
}
