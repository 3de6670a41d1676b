/* The configuration written back as a config file document (GET /vm/config): the inverse of
 * config_parse(), so parsing the output gives the same kiln_config. */
#include "vmm/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct out {
	char *buf;
	size_t cap;
	size_t len;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	if (o->full)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

/* "key": followed by a JSON string with ", \ and control characters escaped. */
static void put_str(struct out *o, const char *key, const char *s)
{
	put(o, "\"%s\":\"", key);
	for (; *s && !o->full; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20)
			put(o, "\\u%04x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

static void put_bool(struct out *o, const char *key, bool v)
{
	put(o, "\"%s\":%s", key, v ? "true" : "false");
}

static void put_bucket(struct out *o, bool first, const char *key, const struct token_bucket_cfg *b)
{
	put(o,
	    "%s\"%s\":{\"size\":%" PRIu64 ",\"one_time_burst\":%" PRIu64 ",\"refill_time\":%" PRIu64
	    "}",
	    first ? "" : ",", key, b->size, b->one_time_burst, b->refill_time_ms);
}

/* ,"key":{...} for a limiter in use, nothing otherwise. */
static void put_limiter(struct out *o, const char *key, const struct rate_limiter_cfg *rl)
{
	if (!rl->present)
		return;
	put(o, ",\"%s\":{", key);
	if (rl->bandwidth.present)
		put_bucket(o, true, "bandwidth", &rl->bandwidth);
	if (rl->ops.present)
		put_bucket(o, !rl->bandwidth.present, "ops", &rl->ops);
	put(o, "}");
}

static void put_boot(struct out *o, const struct boot_cfg *b)
{
	if (!b->kernel_image_path) {
		put(o, "\"boot-source\":null"); /* not configured yet (API) */
		return;
	}
	put(o, "\"boot-source\":{");
	put_str(o, "kernel_image_path", b->kernel_image_path);
	if (b->boot_args) {
		put(o, ",");
		put_str(o, "boot_args", b->boot_args);
	}
	if (b->initrd_path) {
		put(o, ",");
		put_str(o, "initrd_path", b->initrd_path);
	}
	put(o, "}");
}

static void put_drive(struct out *o, const struct drive_cfg *d)
{
	put(o, "{");
	put_str(o, "drive_id", d->id);
	put(o, ",");
	put_str(o, "path_on_host", d->path_on_host ? d->path_on_host : "");
	put(o, ",");
	put_bool(o, "is_root_device", d->is_root_device);
	put(o, ",");
	put_bool(o, "is_read_only", d->is_read_only);
	if (d->partuuid) {
		put(o, ",");
		put_str(o, "partuuid", d->partuuid);
	}
	put(o, ",\"cache_type\":\"%s\"", d->cache_type == CACHE_WRITEBACK ? "Writeback" : "Unsafe");
	put_limiter(o, "rate_limiter", &d->rate_limiter);
	put(o, "}");
}

static void put_net(struct out *o, const struct net_cfg *n)
{
	const uint8_t *m = n->guest_mac;
	put(o, "{");
	put_str(o, "iface_id", n->id);
	put(o, ",");
	put_str(o, "host_dev_name", n->host_dev_name);
	if (n->has_guest_mac)
		put(o, ",\"guest_mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\"", m[0], m[1], m[2], m[3],
		    m[4], m[5]);
	put_limiter(o, "rx_rate_limiter", &n->rx_rate_limiter);
	put_limiter(o, "tx_rate_limiter", &n->tx_rate_limiter);
	put(o, "}");
}

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_OFF:
		return "Off";
	case LOG_ERROR:
		return "Error";
	case LOG_WARN:
		return "Warning";
	case LOG_INFO:
		return "Info";
	default:
		return "Debug";
	}
}

static void put_optional(struct out *o, const struct kiln_config *cfg)
{
	if (cfg->vsock.present) {
		put(o, ",\"vsock\":{");
		if (cfg->vsock.id[0]) {
			put_str(o, "vsock_id", cfg->vsock.id);
			put(o, ",");
		}
		put(o, "\"guest_cid\":%u,", cfg->vsock.guest_cid);
		put_str(o, "uds_path", cfg->vsock.uds_path);
		put(o, "}");
	}
	if (cfg->logger.present) {
		const struct logger_cfg *l = &cfg->logger;
		put(o, ",\"logger\":{");
		if (l->log_path) {
			put_str(o, "log_path", l->log_path);
			put(o, ",");
		}
		put(o, "\"level\":\"%s\",", level_name(l->level));
		put_bool(o, "show_level", l->show_level);
		put(o, ",");
		put_bool(o, "show_log_origin", l->show_log_origin);
		put(o, "}");
	}
	if (cfg->metrics.present) {
		put(o, ",\"metrics\":{");
		put_str(o, "metrics_path", cfg->metrics.metrics_path);
		put(o, "}");
	}
}

int config_to_json(const struct kiln_config *cfg, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap};
	if (!cap)
		return -ENOSPC;
	put(&o, "{");
	put_boot(&o, &cfg->boot);
	put(&o, ",\"machine-config\":{\"vcpu_count\":%u,\"mem_size_mib\":%" PRIu64 ",",
	    cfg->machine.vcpu_count, cfg->machine.mem_size_mib);
	put_bool(&o, "smt", cfg->machine.smt);
	put(&o, ",");
	put_bool(&o, "track_dirty_pages", cfg->machine.track_dirty_pages);
	put(&o, "}");
	put(&o, ",\"drives\":[");
	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		put(&o, i ? "," : "");
		put_drive(&o, &cfg->drives[i]);
	}
	put(&o, "],\"network-interfaces\":[");
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		put(&o, i ? "," : "");
		put_net(&o, &cfg->nets[i]);
	}
	put(&o, "]");
	put_optional(&o, cfg);
	put(&o, "}");
	return o.full ? -ENOSPC : (int)o.len;
}
