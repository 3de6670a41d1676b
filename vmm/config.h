/* The VM configuration: Firecracker's --config-file schema, parsed and validated into typed
 * structs. Parsing is pure (no file system access) so it can be fuzzed; config_check_files()
 * does the file-system checks afterwards. */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/log.h"

#define CONFIG_MAX_DRIVES 16
#define CONFIG_MAX_NETS 8
#define CONFIG_ID_MAX 64		/* drive_id, iface_id, vsock_id: [A-Za-z0-9_-]{1,64} */
#define CONFIG_IFNAME_MAX 15		/* host_dev_name: IFNAMSIZ - 1 */
#define CONFIG_MAX_FILE_BYTES (1 << 20) /* a config file larger than this is refused */

struct token_bucket_cfg {
	bool present;
	uint64_t size;		 /* tokens (bytes or ops) per refill_time */
	uint64_t one_time_burst; /* extra initial tokens, 0 if absent */
	uint64_t refill_time_ms; /* > 0 */
};

struct rate_limiter_cfg {
	bool present;
	struct token_bucket_cfg bandwidth;
	struct token_bucket_cfg ops;
};

enum cache_type { CACHE_UNSAFE = 0, CACHE_WRITEBACK };
enum io_engine { IO_ENGINE_SYNC = 0, IO_ENGINE_ASYNC }; /* Async: io_uring */

struct drive_cfg {
	char id[CONFIG_ID_MAX + 1];
	char *path_on_host;
	bool is_root_device;
	bool is_read_only;
	char *partuuid; /* NULL if absent */
	enum cache_type cache_type;
	enum io_engine io_engine;
	struct rate_limiter_cfg rate_limiter;
};

struct net_cfg {
	char id[CONFIG_ID_MAX + 1];
	char host_dev_name[CONFIG_IFNAME_MAX + 1];
	bool has_guest_mac;
	uint8_t guest_mac[6];
	struct rate_limiter_cfg rx_rate_limiter;
	struct rate_limiter_cfg tx_rate_limiter;
};

struct vsock_cfg {
	bool present;
	char id[CONFIG_ID_MAX + 1]; /* optional vsock_id, "" if absent */
	uint32_t guest_cid;	    /* >= 3 */
	char *uds_path;
};

struct logger_cfg {
	bool present;
	char *log_path; /* NULL: stderr */
	enum log_level level;
	bool show_level;
	bool show_log_origin;
};

struct metrics_cfg {
	bool present;
	char *metrics_path;
};

struct machine_cfg {
	unsigned vcpu_count;   /* 1..32, default 1 */
	uint64_t mem_size_mib; /* default 128 */
	bool smt;	       /* 2 threads per core; then vcpu_count must be 1 or even */
	bool track_dirty_pages; /* KVM's dirty log on guest RAM, for Diff snapshots */
};

struct boot_cfg {
	char *kernel_image_path;
	char *boot_args; /* NULL: kiln's default */
	char *initrd_path;
};

struct kiln_config {
	struct boot_cfg boot;
	struct machine_cfg machine;
	struct drive_cfg drives[CONFIG_MAX_DRIVES];
	unsigned nr_drives;
	struct net_cfg nets[CONFIG_MAX_NETS];
	unsigned nr_nets;
	struct vsock_cfg vsock;
	struct logger_cfg logger;
	struct metrics_cfg metrics;
};

/* Parses and validates a JSON document (at most CONFIG_MAX_FILE_BYTES; cfg need not be
 * initialized). An optional key set to null counts as absent. On error returns -EINVAL and
 * writes one line to err naming the key path (e.g. "drives[1].path_on_host: expected a
 * string", or "line 3: invalid JSON" for bad syntax); cfg is then freed and zeroed. On
 * success the caller owns cfg and must call config_free(). err may be NULL. */
int config_parse(const char *json, size_t len, struct kiln_config *cfg, char *err, size_t errlen);

/* Checks that every referenced file exists with the right type and access (kernel and
 * initrd readable regular files, drives readable (and writable unless read-only) regular
 * files or block devices). Returns 0 or -EINVAL with e.g.
 * "boot-source.kernel_image_path: /x/vmlinux: No such file or directory" in err. */
int config_check_files(const struct kiln_config *cfg, char *err, size_t errlen);

/* Reads the file at path (bounded size; pipes work too), then config_parse() and
 * config_check_files(). Returns 0 or -EINVAL with cfg zeroed and one line in err: read
 * errors name the file ("<path>: larger than 1048576 bytes"), the rest are as above. */
int config_load(const char *path, struct kiln_config *cfg, char *err, size_t errlen);

/* Sets cfg to an empty configuration with the defaults (1 vCPU, 128 MiB, logger at
 * Warning): what config_parse() starts from, and the API before its first PUT. */
void config_init(struct kiln_config *cfg);

/* The sections one API request body configures. */
enum config_section {
	CONFIG_SECTION_BOOT,	      /* PUT /boot-source */
	CONFIG_SECTION_MACHINE,	      /* PUT /machine-config: unset keys take the defaults */
	CONFIG_SECTION_MACHINE_PATCH, /* PATCH /machine-config: unset keys keep their value */
	CONFIG_SECTION_DRIVE,	      /* PUT /drives/{id} */
	CONFIG_SECTION_NET,	      /* PUT /network-interfaces/{id} */
	CONFIG_SECTION_VSOCK,	      /* PUT /vsock */
	CONFIG_SECTION_LOGGER,	      /* PUT /logger */
	CONFIG_SECTION_METRICS,	      /* PUT /metrics */
};

/* Parses body (one section's JSON, e.g. one drives[] element for CONFIG_SECTION_DRIVE) with
 * the config file's parsers and checks, and puts it into cfg: a drive or interface whose id
 * exists is replaced, else appended. `id` is the id from the request path (drives and
 * interfaces only) and must equal the one in the body. Errors are those of a config file
 * saying the same thing, with the same key path ("drives[1].path_on_host: ..."), including
 * the file checks of boot-source and drives; on error returns -EINVAL and cfg is unchanged. */
int config_put(struct kiln_config *cfg, enum config_section sec, const char *id, const char *body,
	       size_t len, char *err, size_t errlen);

/* What a PATCH on a running VM changes, for the device: the buckets present in limiter[]
 * (drives: [0]; interfaces: [0] rx, [1] tx) replace the device's, the others stay. */
struct config_patch {
	bool new_path; /* drives: a path_on_host was given */
	struct rate_limiter_cfg limiter[2];
};

/* PATCH /drives/{id} on a running VM: body {"drive_id": id, "path_on_host"?: ...,
 * "rate_limiter"?: ...}. *out gets a copy of the drive with the change, *index its place,
 * *what the change; a new file is checked like a config file's drive, with the same
 * messages ("drives[0].path_on_host: ..."). 0, or -EINVAL with one line in err (out then
 * empty). cfg is not changed: config_replace_drive() does that once the device took it. */
int config_patch_drive(const struct kiln_config *cfg, const char *id, const char *body, size_t len,
		       struct drive_cfg *out, unsigned *index, struct config_patch *what,
		       char *err, size_t errlen);

/* PATCH /network-interfaces/{id} on a running VM: body {"iface_id": id,
 * "rx_rate_limiter"?: ..., "tx_rate_limiter"?: ...}, as config_patch_drive(). */
int config_patch_net(const struct kiln_config *cfg, const char *id, const char *body, size_t len,
		     struct net_cfg *out, unsigned *index, struct config_patch *what, char *err,
		     size_t errlen);

/* Puts *n in place of interface `index` of cfg. */
void config_replace_net(struct kiln_config *cfg, unsigned index, const struct net_cfg *n);

/* Frees drive `index` of cfg and moves *d in its place (*d is left zeroed). */
void config_replace_drive(struct kiln_config *cfg, unsigned index, struct drive_cfg *d);

/* Frees a drive's strings and zeroes it. */
void config_free_drive(struct drive_cfg *d);

/* Writes cfg as a config file document (the schema config_parse() reads; absent sections
 * are omitted) into buf. Returns the length, or -ENOSPC when it does not fit in cap. */
int config_to_json(const struct kiln_config *cfg, char *buf, size_t cap);

/* The file checks of config_check_files() for the boot source and for drive `index`, with
 * the same messages; config_check_file() is the single check: path must be a regular file
 * (or a block device if allow_blk) that access(mode) allows, key names it in the error. */
int config_check_boot(const struct boot_cfg *b, char *err, size_t errlen);
int config_check_drive(const struct drive_cfg *d, unsigned index, char *err, size_t errlen);
/* Network interface `index`: its TAP (host_dev_name) must exist in kiln's network namespace. */
int config_check_net(const struct net_cfg *n, unsigned index, char *err, size_t errlen);
int config_check_file(const char *key, const char *path, int mode, bool allow_blk, char *err,
		      size_t errlen);

/* Frees the strings and zeroes cfg; safe on a zeroed or already freed struct. */
void config_free(struct kiln_config *cfg);

#endif
