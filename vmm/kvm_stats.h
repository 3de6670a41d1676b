/* KVM's binary statistics (KVM_GET_STATS_FD, with KVM_CAP_BINARY_STATS_FD; the kernel's
 * Documentation/virt/kvm/api.rst): a file per VM and per vCPU holding a header, one
 * descriptor per counter (flags, size, offset, name) and the counters' data. kiln opens them
 * at setup, finds the counters it reports by name once, and then only preads their values
 * (the metrics flush, on the VMM thread). Sizes and offsets are checked before use. */
#ifndef KILN_KVM_STATS_H
#define KILN_KVM_STATS_H

#include <stdint.h>

#include "vmm/vm.h"

/* The counters kiln reports, summed over the VM and its vCPUs; their JSON names are KVM's. */
enum {
	KVM_STAT_EXITS,
	KVM_STAT_IO_EXITS,
	KVM_STAT_MMIO_EXITS,
	KVM_STAT_HALT_EXITS,
	KVM_STAT_HALT_WAKEUP,
	KVM_STAT_IRQ_EXITS,
	KVM_STAT_IRQ_WINDOW_EXITS,
	KVM_STAT_SIGNAL_EXITS,
	KVM_STAT_IRQ_INJECTIONS,
	KVM_STAT_INSN_EMULATION,
	KVM_STAT_REMOTE_TLB_FLUSH, /* a VM counter */
	KVM_STAT_NR
};

/* Limits on what a header may claim (KVM's names are 48 bytes, its counts below 100). */
#define KVM_STATS_NAME_MAX 256
#define KVM_STATS_DESC_MAX 4096
#define KVM_STATS_MAX_FDS (1 + LAYOUT_MAX_VCPUS)

/* One stats file: where each counter's u64 lies in it (0: this file has no such counter). */
struct kvm_stats_file {
	int fd;
	uint64_t off[KVM_STAT_NR];
};

struct kvm_stats {
	struct kvm_stats_file file[KVM_STATS_MAX_FDS];
	unsigned nr; /* 0: KVM has no binary stats (or metrics are off) */
};

/* KVM's name of counter i (KVM_STAT_*), or NULL past KVM_STAT_NR. */
const char *kvm_stat_name(unsigned i);

/* Reads fd's header and descriptors and fills out (out->fd = fd) with the offsets of the
 * counters of KVM_STAT_* it holds as plain cumulative u64 values (a histogram or any other
 * type under one of those names is left out; the first of two same names wins). 0, -EIO for
 * a short read, -EINVAL when the header or a descriptor is out of bounds (name size 0 or over
 * KVM_STATS_NAME_MAX, more than KVM_STATS_DESC_MAX descriptors, blocks overlapping the
 * header, a name without its NUL, a counter's value past the end of the file), or -ENOMEM. */
int kvm_stats_parse(int fd, struct kvm_stats_file *out);

/* Opens and parses the stats file of vm's VM fd and of each vCPU. With no
 * KVM_CAP_BINARY_STATS_FD, ks->nr is 0 and so is the result; a file that fails to open or
 * parse is left out (logged once at Warning). Call during setup (an ioctl the filters deny
 * later). Returns how many files are in use. */
unsigned kvm_stats_open(struct kvm_stats *ks, const struct vm *vm);

/* Sums each counter over ks's files into sum[] and sets bit i of *present for each counter
 * found in at least one file. 0, or -EIO when a value cannot be read (sum is then partial). */
int kvm_stats_read(const struct kvm_stats *ks, uint64_t sum[KVM_STAT_NR], uint32_t *present);

/* Closes every file; ks->nr is 0 afterwards. */
void kvm_stats_close(struct kvm_stats *ks);

#endif
