/* Per-vCPU CPUID: KVM's supported set, normalized so the guest sees one package with the
 * configured vCPUs (APIC ids, topology leaves 0xB/0x1F, AMD core counts) and knows it is a
 * guest (hypervisor bit). */
#ifndef KILN_CPUID_H
#define KILN_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#define CPUID_MAX_ENTRIES 256
/* Entries cpuid_normalize may add to KVM's list: levels 1 and 2 of leaves 0xB and 0x1F (KVM
 * reports only level 0), AMD's 0x8000001E and five 0x8000001D cache descriptors. */
#define CPUID_NORMALIZE_ADDS 10

struct cpu_topology {
	unsigned nr_vcpus;	   /* 1..LAYOUT_MAX_VCPUS */
	unsigned threads_per_core; /* 1, or 2 with smt */
};

/* Topology for nr_vcpus with or without SMT (SMT with one vCPU is one thread). */
struct cpu_topology cpu_topology_make(unsigned nr_vcpus, bool smt);

/* Rewrites `cpuid` (KVM_GET_SUPPORTED_CPUID output, room for `capacity` entries) in place for
 * vCPU `index`, whose APIC id is index. Adds the topology entries KVM leaves out (each
 * (function, index) stays unique); on AMD it also sets TOPOEXT and provides the cache (0x8000001D)
 * and core (0x8000001E) topology Linux reads with it. Returns 0, -EINVAL for a topology or index
 * out of range, or -ENOSPC if capacity < nent + CPUID_NORMALIZE_ADDS; nothing is written then. */
int cpuid_normalize(struct kvm_cpuid2 *cpuid, unsigned capacity, unsigned index,
		    const struct cpu_topology *topo);

/* The entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *cpuid, unsigned function, unsigned index);

#endif
