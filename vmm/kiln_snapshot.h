/* Snapshots of a kiln process: PUT /snapshot/create on a paused VM, and the restore path
 * (PUT /snapshot/load, or --restore-from) that builds a VM from a state file and a memory
 * file instead of a kernel. Private to main.c and kiln_api.c, like kiln.h. */
#ifndef KILN_KILN_SNAPSHOT_H
#define KILN_KILN_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/snapshot_file.h"
#include "vmm/snapshot_params.h"

struct kiln;

/* What a state file says about the VM it holds (SNAP_SEC_META). */
struct snap_meta {
	char kiln_version[32];
	uint64_t ram_size;
	uint64_t created_unix_ms;
	uint64_t region_gpa[2];
	uint64_t region_size[2];
	uint32_t nr_regions;
	uint32_t nr_vcpus;
	uint32_t nr_devices; /* virtio devices */
	uint32_t diff;	     /* 1: the memory file holds only the pages dirtied since the last */
};

/* A restore in preparation: the parsed state file and where the memory comes from. */
struct kiln_restore {
	uint8_t *buf; /* the state file */
	size_t len;
	struct snap_reader *reader;
	struct snap_meta meta;
	struct snapshot_load_params params;
	int mem_fd;
	int uffd;
	uint64_t start_ns; /* when the load began (metrics' load_snapshot) */
};

/* On the VMM thread of a paused VM: writes the state file (every section, CRC) and the
 * memory file (all of RAM for Full, the pages dirtied since the last snapshot for Diff,
 * which needs track_dirty_pages). 0, or -errno with one line in err naming the path or
 * the step; a file half-written is removed. */
int kiln_snapshot_create(struct kiln *k, const struct snapshot_create_params *p, char *err,
			 size_t errlen);

/* Before anything of the VM exists: reads and checks the state file (CRC, version, every
 * section's presence and size), takes its configuration with p's overrides (keeping the
 * logger and metrics configured so far), checks the drives, TAPs and the vsock socket path,
 * and maps guest RAM: the memory file MAP_PRIVATE (refused when shorter than the RAM), or
 * anonymous memory handed to the page-fault handler at p's socket (Uffd). On success the
 * restore is recorded in k and p moved into it (zeroed). 0, or -errno with one line in err;
 * k is then unchanged. */
int kiln_snapshot_prepare(struct kiln *k, struct snapshot_load_params *p, char *err,
			  size_t errlen);

/* Once the VM, its devices and vCPUs exist (and before any vCPU runs): puts back the state
 * of KVM, the legacy devices and the virtio devices, then lets the devices tell the guest
 * what changed (vsock's transport reset), frees the state file and, unless the load
 * resumes, marks the VM paused (its vCPUs park before their first KVM_RUN). 0 or -errno
 * with one line in err. */
int kiln_snapshot_restore_state(struct kiln *k, char *err, size_t errlen);

/* --describe-snapshot: prints what the state file at path holds. 0, or -errno with one
 * line in err. */
int kiln_snapshot_describe(const char *path, FILE *out, char *err, size_t errlen);

/* The same for a state file in memory (the fuzz harness's entry): checks it like a load
 * does (container, meta) and prints only what passed. */
int kiln_snapshot_describe_buf(const uint8_t *buf, size_t len, FILE *out, char *err,
				size_t errlen);

#endif
