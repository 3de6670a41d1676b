#include "vmm/cpuid.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define LEAF1_ECX_HYPERVISOR (1u << 31)
#define LEAF1_EDX_HTT (1u << 28)
#define EXT1_ECX_CMP_LEGACY (1u << 1)
#define EXT1_ECX_TOPOEXT (1u << 22)
#define AMD_MAX_EXT_LEAF 0x8000001eu
#define AMD_CACHE_LEAVES 4 /* L1d, L1i, L2, L3; a null descriptor follows */
#define TOPO_LEVEL_SMT 1u
#define TOPO_LEVEL_CORE 2u

struct cpu_topology cpu_topology_make(unsigned nr_vcpus, bool smt)
{
	return (struct cpu_topology){.nr_vcpus = nr_vcpus,
				     .threads_per_core = (smt && nr_vcpus > 1) ? 2 : 1};
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *cpuid, unsigned function, unsigned index)
{
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		if (e->function != function)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
			return e;
	}
	return NULL;
}

/* Makes every entry of `function` answer only its own subleaf; one without the flag answered
 * them all with what KVM read for subleaf 0. */
static void cpuid_mark_indexed(struct kvm_cpuid2 *cpuid, unsigned function)
{
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		if (e->function == function && !(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)) {
			e->flags |= KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
			e->index = 0;
		}
	}
}

/* The entry for (function, index), appended zeroed if absent: cpuid_normalize checked the room
 * up front. `indexed` leaves must have been through cpuid_mark_indexed. */
static struct kvm_cpuid_entry2 *cpuid_get_or_add(struct kvm_cpuid2 *cpuid, unsigned function,
						 unsigned index, bool indexed)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, function, index);
	if (e)
		return e;
	e = &cpuid->entries[cpuid->nent++];
	*e = (struct kvm_cpuid_entry2){
	    .function = function,
	    .index = indexed ? index : 0,
	    .flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
	};
	return e;
}

/* Bits needed to number n items (0 for n <= 1). */
static unsigned order_base_2(unsigned n)
{
	unsigned bits = 0;
	while ((1u << bits) < n)
		bits++;
	return bits;
}

static bool cpuid_is_amd(struct kvm_cpuid2 *cpuid)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, 0, 0);
	/* "AuthenticAMD": ebx "Auth", edx "enti", ecx "cAMD"; Hygon shares the layout. */
	return e && ((e->ebx == 0x68747541 && e->ecx == 0x444d4163) ||
		     (e->ebx == 0x6f677948 && e->ecx == 0x656e6975));
}

static void cpuid_set_leaf1(struct kvm_cpuid2 *cpuid, unsigned apic_id,
			    const struct cpu_topology *t)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, 1, 0);
	if (!e)
		return;
	unsigned logical = 1u << order_base_2(t->nr_vcpus);
	e->ebx = (e->ebx & 0x0000ffff) | (apic_id << 24) | ((logical & 0xff) << 16);
	e->ecx |= LEAF1_ECX_HYPERVISOR;
	if (t->nr_vcpus > 1)
		e->edx |= LEAF1_EDX_HTT;
	else
		e->edx &= ~LEAF1_EDX_HTT;
}

/* Leaves 0xB and 0x1F, where the host has them: SMT level, then core level, then an invalid
 * level. KVM reports only level 0, and Linux reading it alone would put every core (every
 * vCPU without SMT) in a package of its own, so levels 1 and 2 are added. */
static void cpuid_set_ext_topology(struct kvm_cpuid2 *cpuid, unsigned leaf, unsigned apic_id,
				   const struct cpu_topology *t)
{
	cpuid_mark_indexed(cpuid, leaf);
	if (!cpuid_find(cpuid, leaf, 0))
		return;
	cpuid_get_or_add(cpuid, leaf, 1, true);
	cpuid_get_or_add(cpuid, leaf, 2, true);
	unsigned smt_bits = order_base_2(t->threads_per_core);
	unsigned pkg_bits = order_base_2(t->nr_vcpus);
	if (pkg_bits < smt_bits)
		pkg_bits = smt_bits;
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		if (e->function != leaf)
			continue;
		e->edx = apic_id;
		if (e->index == 0) {
			e->eax = smt_bits;
			e->ebx = t->threads_per_core;
			e->ecx = (TOPO_LEVEL_SMT << 8) | 0;
		} else if (e->index == 1) {
			e->eax = pkg_bits;
			e->ebx = t->nr_vcpus;
			e->ecx = (TOPO_LEVEL_CORE << 8) | 1;
		} else {
			e->eax = e->ebx = 0;
			e->ecx = e->index & 0xff;
		}
	}
}

/* Intel deterministic cache parameters: sharing and cores-per-package counts. */
static void cpuid_set_leaf4(struct kvm_cpuid2 *cpuid, const struct cpu_topology *t)
{
	unsigned cores = t->nr_vcpus / t->threads_per_core;
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		if (e->function != 4 || (e->eax & 0x1f) == 0)
			continue;
		unsigned level = (e->eax >> 5) & 0x7;
		unsigned sharing = level >= 3 ? t->nr_vcpus : t->threads_per_core;
		e->eax &= 0x3fff;
		e->eax |= ((sharing - 1) & 0xfff) << 14;
		e->eax |= ((cores - 1) & 0x3f) << 26;
	}
}

/* One AMD cache descriptor (leaf 0x8000001D) before encoding. */
struct amd_cache {
	unsigned type, level; /* type 1 data, 2 instruction, 3 unified */
	unsigned size_kb, ways, line;
};

/* Ways for the associativity codes of leaf 0x80000006 (0: unknown or fully associative). */
static const unsigned amd_assoc_ways[16] = {0, 1, 2, 3, 4, 6, 8, 0, 16, 0, 32, 48, 64, 96, 128, 0};

/* Takes what the legacy leaves 0x80000005/6 say of one cache, keeping the default for any
 * field they leave zero. */
static void amd_cache_take(struct amd_cache *c, unsigned size_kb, unsigned ways, unsigned line)
{
	if (size_kb)
		c->size_kb = size_kb;
	if (ways && ways != 0xff) /* 0xff: fully associative */
		c->ways = ways;
	if (line)
		c->line = line;
}

/* The caches to describe when the host gives no 0x8000001D (an emulated CPU without TOPOEXT):
 * sizes from the legacy leaves where present, else typical Zen values. */
static void amd_default_caches(struct kvm_cpuid2 *cpuid, struct amd_cache c[AMD_CACHE_LEAVES])
{
	c[0] = (struct amd_cache){1, 1, 32, 8, 64};
	c[1] = (struct amd_cache){2, 1, 32, 8, 64};
	c[2] = (struct amd_cache){3, 2, 512, 8, 64};
	c[3] = (struct amd_cache){3, 3, 8192, 16, 64};
	struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, 0x80000005, 0);
	if (e) {
		amd_cache_take(&c[0], e->ecx >> 24, (e->ecx >> 16) & 0xff, e->ecx & 0xff);
		amd_cache_take(&c[1], e->edx >> 24, (e->edx >> 16) & 0xff, e->edx & 0xff);
	}
	e = cpuid_find(cpuid, 0x80000006, 0);
	if (e) {
		amd_cache_take(&c[2], e->ecx >> 16, amd_assoc_ways[(e->ecx >> 12) & 0xf],
			       e->ecx & 0xff);
		amd_cache_take(&c[3], (e->edx >> 18) * 512, amd_assoc_ways[(e->edx >> 12) & 0xf],
			       e->edx & 0xff);
	}
}

/* Writes descriptor `c` (self-initializing, one line partition) into `e`. */
static void amd_cache_encode(struct kvm_cpuid_entry2 *e, const struct amd_cache *c)
{
	uint32_t sets = (uint32_t)(((uint64_t)c->size_kb * 1024) / (c->ways * c->line));
	e->eax = c->type | (c->level << 5) | (1u << 8);
	e->ebx = ((c->ways - 1) << 22) | ((c->line - 1) & 0xfff);
	e->ecx = sets ? sets - 1 : 0;
	e->edx = 0;
}

/* Leaf 0x8000001D: the host's descriptors if it has any, else the ones above, then a null one;
 * L1 and L2 are shared by the threads of a core, L3 by the whole package. Linux reads it with
 * TOPOEXT for the last-level cache id, which SMT siblings must share. */
static void cpuid_set_amd_caches(struct kvm_cpuid2 *cpuid, const struct cpu_topology *t)
{
	cpuid_mark_indexed(cpuid, 0x8000001d);
	struct kvm_cpuid_entry2 *first = cpuid_find(cpuid, 0x8000001d, 0);
	if (!first || (first->eax & 0x1f) == 0) {
		struct amd_cache caches[AMD_CACHE_LEAVES];
		amd_default_caches(cpuid, caches);
		for (unsigned i = 0; i < AMD_CACHE_LEAVES; i++)
			amd_cache_encode(cpuid_get_or_add(cpuid, 0x8000001d, i, true), &caches[i]);
		*cpuid_get_or_add(cpuid, 0x8000001d, AMD_CACHE_LEAVES, true) =
		    (struct kvm_cpuid_entry2){.function = 0x8000001d,
					      .index = AMD_CACHE_LEAVES,
					      .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	}
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *c = &cpuid->entries[i];
		if (c->function != 0x8000001d || (c->eax & 0x1f) == 0)
			continue;
		unsigned sharing = ((c->eax >> 5) & 0x7) >= 3 ? t->nr_vcpus : t->threads_per_core;
		c->eax = (c->eax & ~(0xfffu << 14)) | (((sharing - 1) & 0xfff) << 14);
	}
}

/* TOPOEXT, and the largest extended leaf raised to cover 0x8000001E. False if the host table
 * has no extended feature leaves to carry them. */
static bool cpuid_set_amd_topoext(struct kvm_cpuid2 *cpuid)
{
	struct kvm_cpuid_entry2 *max = cpuid_find(cpuid, 0x80000000, 0);
	struct kvm_cpuid_entry2 *ext = cpuid_find(cpuid, 0x80000001, 0);
	if (!max || !ext)
		return false;
	if (max->eax < AMD_MAX_EXT_LEAF)
		max->eax = AMD_MAX_EXT_LEAF;
	ext->ecx |= EXT1_ECX_TOPOEXT;
	return true;
}

/* Without TOPOEXT Linux numbers the cores of an AMD CPU by APIC id, so two threads would be
 * two cores: the guest always gets TOPOEXT with leaves 0x8000001D and 0x8000001E. */
static void cpuid_set_amd(struct kvm_cpuid2 *cpuid, unsigned apic_id, const struct cpu_topology *t)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, 0x80000001, 0);
	if (e) {
		if (t->nr_vcpus > 1)
			e->ecx |= EXT1_ECX_CMP_LEGACY;
		else
			e->ecx &= ~EXT1_ECX_CMP_LEGACY;
	}
	e = cpuid_find(cpuid, 0x80000008, 0);
	if (e) /* NC: logical processors - 1; ApicIdSize: bits of the APIC id for them */
		e->ecx = (e->ecx & ~0xf0ffu) | (order_base_2(t->nr_vcpus) << 12) |
			 ((t->nr_vcpus - 1) & 0xff);
	if (!cpuid_set_amd_topoext(cpuid))
		return;
	cpuid_set_amd_caches(cpuid, t);
	e = cpuid_get_or_add(cpuid, 0x8000001e, 0, false);
	e->eax = apic_id; /* extended APIC id */
	e->ebx = ((t->threads_per_core - 1) << 8) | (apic_id / t->threads_per_core);
	e->ecx = 0; /* node 0, one node per package */
}

/* Whether the feature bit of leaf (function, 0) register `reg` (0 eax .. 3 edx) is set. */
static bool cpuid_has(struct kvm_cpuid2 *cpuid, unsigned function, unsigned reg, unsigned bit)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, function, 0);
	uint32_t regs[4] = {0};
	if (e) {
		regs[0] = e->eax;
		regs[1] = e->ebx;
		regs[2] = e->ecx;
		regs[3] = e->edx;
	}
	return (regs[reg] >> bit) & 1;
}

/* XSAVE state components must agree with the feature flags: a host (such as an emulated
 * CPU) may offer the YMM state without AVX, and Linux then warns that its xstate sizes do
 * not add up. Drops the components whose feature is absent and recomputes the size of all
 * supported components (leaf 0xD.0 ECX); KVM keeps EBX in step with the guest's XCR0. */
static void cpuid_fix_xsave(struct kvm_cpuid2 *cpuid)
{
	static const struct {
		uint32_t components;
		unsigned function, reg, bit;
	} needs[] = {
	    {1u << 2, 1, 2, 28},	       /* YMM: AVX */
	    {(1u << 3) | (1u << 4), 7, 1, 14}, /* MPX bounds: MPX */
	    {(7u << 5), 7, 1, 16},	       /* opmask, ZMM: AVX512F */
	    {1u << 9, 7, 2, 3},		       /* PKRU: PKU */
	};
	struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, 0xd, 0);
	if (!e)
		return;
	for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++)
		if (!cpuid_has(cpuid, needs[i].function, needs[i].reg, needs[i].bit))
			e->eax &= ~needs[i].components;
	uint32_t max_size = 512 + 64; /* legacy area and XSAVE header */
	for (unsigned c = 2; c < 32; c++) {
		struct kvm_cpuid_entry2 *sub = cpuid_find(cpuid, 0xd, c);
		if (!sub || sub->index != c)
			continue;
		if (!(e->eax & (1u << c))) {
			sub->eax = sub->ebx = sub->ecx = sub->edx = 0;
			continue;
		}
		if (sub->eax + sub->ebx > max_size)
			max_size = sub->eax + sub->ebx;
	}
	e->ecx = max_size;
}

int cpuid_normalize(struct kvm_cpuid2 *cpuid, unsigned capacity, unsigned index,
		    const struct cpu_topology *topo)
{
	if (topo->nr_vcpus == 0 || topo->nr_vcpus > LAYOUT_MAX_VCPUS || index >= topo->nr_vcpus ||
	    (topo->threads_per_core != 1 && topo->threads_per_core != 2) ||
	    topo->nr_vcpus % topo->threads_per_core)
		return -EINVAL;
	if (cpuid->nent > capacity || capacity - cpuid->nent < CPUID_NORMALIZE_ADDS)
		return -ENOSPC;
	cpuid_set_leaf1(cpuid, index, topo);
	cpuid_fix_xsave(cpuid);
	cpuid_set_ext_topology(cpuid, 0xb, index, topo);
	cpuid_set_ext_topology(cpuid, 0x1f, index, topo);
	if (cpuid_is_amd(cpuid))
		cpuid_set_amd(cpuid, index, topo);
	else
		cpuid_set_leaf4(cpuid, topo);
	return 0;
}
