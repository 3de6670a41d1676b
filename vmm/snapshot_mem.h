/* Guest memory in snapshots: the memory file (Full and Diff) and restoring the memory
 * through a userfaultfd page-fault handler (Firecracker's Uffd backend). Loading through the
 * page cache is guest_mem_init_file() (vmm/guest_mem.h); merging a Diff onto its base is
 * tools/rebase_snap.c (kiln-rebase-snap).
 *
 * The memory file is the guest RAM region after region: offset 0 is region[0].host[0] (gpa
 * 0), offset region[0].size is region[1].host[0] (gpa LAYOUT_HIGH_RAM_START); its size is
 * ram_size. Pages are SNAP_PAGE_SIZE bytes; page n of the file is bit n of the dirty bitmaps
 * (gm_take_dirty()'s order). Pages not written are holes, which read as zeros. */
#ifndef KILN_SNAPSHOT_MEM_H
#define KILN_SNAPSHOT_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

#define SNAP_PAGE_SIZE 4096ULL

/* Full snapshot: empties fd, sizes it to ram_size and writes every page that is not all
 * zeros at its file offset (all-zero pages stay holes: the file is sparse), then
 * fdatasync()s it. Reads all of guest RAM; vCPUs and devices must be stopped. 0 or -errno. */
int snap_mem_write_full(const struct guest_mem *gm, int fd);

/* Diff snapshot: the pages dirtied since tracking began or since the last snapshot, i.e.
 * KVM_GET_DIRTY_LOG of memslot i (region i) on vm_fd ORed with gm_take_dirty() (device
 * writes). Empties fd, sizes it to ram_size, writes exactly those pages (all-zero ones too:
 * they must override the base) and fdatasync()s. Both logs are cleared, so the next Diff
 * holds only what changes after this one; when writing fails the pages are recorded as
 * device-dirty again, so no change is lost to the next try. The memslots must log dirty pages
 * (struct vm's track_dirty_pages, which also turns on gm_track_dirty()). vCPUs and devices
 * must be stopped. 0 or -errno (-ENOENT when a slot does not log dirty pages). */
int snap_mem_write_diff(const struct guest_mem *gm, int vm_fd, int fd);

/* Clears both dirty logs without writing anything: after a Full snapshot taken with tracking
 * on, so that the next Diff is relative to that Full. 0 or -errno. */
int snap_mem_reset_dirty(const struct guest_mem *gm, int vm_fd);

/* The writer under both: empties fd, sizes it to ram_size and writes the pages whose bit is
 * set in bitmap (ram_size / SNAP_PAGE_SIZE bits; all of them as they are), or with bitmap
 * NULL every page that is not all zeros; then fdatasync(). 0 or -errno. */
int snap_mem_write_pages(const struct guest_mem *gm, const uint64_t *bitmap, int fd);

/* The merge step of snap_mem_write_diff (public for its tests): ORs log, KVM's dirty bitmap
 * of memslot slot (region slot's pages, 64-bit words), into bitmap at the region's first
 * page. Bits past the region's pages are ignored. */
void snap_mem_or_slot_log(const struct guest_mem *gm, unsigned slot, const uint64_t *log,
			  uint64_t *bitmap);

/* Uffd backend: gm is anonymous (guest_mem_init) and untouched. Creates a userfaultfd
 * (O_CLOEXEC | O_NONBLOCK; the syscall, or /dev/userfaultfd where the syscall is refused),
 * enables UFFD_FEATURE_EVENT_REMOVE as Firecracker does, registers every region for missing
 * pages, connects to the Unix stream socket sock_path and sends Firecracker's handshake in
 * one sendmsg: the JSON array of GuestRegionUffdMapping objects
 *   [{"base_host_virt_addr":H,"size":S,"offset":O,"page_size":4096,"page_size_kib":4096},...]
 * (one per region; O is the region's offset in the memory file; page_size_kib is
 * Firecracker's deprecated copy of page_size, in bytes despite its name) with the uffd
 * attached (SCM_RIGHTS). The connection then stays open until kiln exits, as Firecracker
 * leaves it: a handler may take its hang-up for the VMM's exit. From then on every first
 * touch of guest RAM waits for the handler. 0 with the uffd in *uffd_out (keep it open for the
 * VM's life), or -errno with one line in err naming mem_backend.backend_path; on failure
 * nothing stays registered. */
int snap_uffd_attach(struct guest_mem *gm, const char *sock_path, int *uffd_out, char *err,
		     size_t errlen);

/* The handshake's JSON for gm into buf (NUL-terminated): its length, or -ENOSPC. */
int snap_uffd_mappings_json(const struct guest_mem *gm, char *buf, size_t len);

#endif
