/* CPUID normalization on fake KVM_GET_SUPPORTED_CPUID tables (Intel-like and AMD-like):
 * APIC ids, the topology leaves and core counts for 1..32 vCPUs with and without SMT. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/cpuid.h"
#include "vmm/layout.h"

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX
#define HYPERVISOR (1u << 31)
#define HTT (1u << 28)
#define CMP_LEGACY (1u << 1)

/* Host values the normalization must keep where it has no business. */
#define L1_EAX 0x000906eau
#define L1_EBX_LOW 0x0800u /* CLFLUSH size 8, brand 0 */
#define L1_ECX 0x7ffafbffu
#define L1_EDX_NO_HTT 0xafebfbffu
#define X8_ECX_OTHER 0x00030a00u /* PerfTscSize and reserved bits around NC/ApicIdSize */

#define TABLE_MAX 64
#define TABLE_BYTES (sizeof(struct kvm_cpuid2) + TABLE_MAX * sizeof(struct kvm_cpuid_entry2))

static struct kvm_cpuid2 *new_table(void)
{
	struct kvm_cpuid2 *t = calloc(1, TABLE_BYTES);
	assert_non_null(t);
	return t;
}

static struct kvm_cpuid2 *dup_table(const struct kvm_cpuid2 *t)
{
	struct kvm_cpuid2 *d = malloc(TABLE_BYTES);
	assert_non_null(d);
	memcpy(d, t, TABLE_BYTES);
	return d;
}

static struct kvm_cpuid_entry2 *add(struct kvm_cpuid2 *t, uint32_t fn, uint32_t idx, uint32_t flags,
				    uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	assert_true(t->nent < TABLE_MAX);
	struct kvm_cpuid_entry2 *e = &t->entries[t->nent++];
	*e = (struct kvm_cpuid_entry2){.function = fn,
				       .index = idx,
				       .flags = flags,
				       .eax = eax,
				       .ebx = ebx,
				       .ecx = ecx,
				       .edx = edx};
	return e;
}

/* Leaf 4 cache descriptors: type and level in the low bits, host sharing counts above. */
#define L4(type, level, host_share, host_cores)                                                    \
	((type) | ((level) << 5) | (1u << 8) | ((host_share) << 14) | ((host_cores) << 26))

static struct kvm_cpuid2 *make_intel(void)
{
	struct kvm_cpuid2 *t = new_table();
	add(t, 0, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69); /* GenuineIntel */
	add(t, 1, 0, 0, L1_EAX, (7u << 24) | (16u << 16) | L1_EBX_LOW, L1_ECX, L1_EDX_NO_HTT | HTT);
	add(t, 4, 0, SIG, L4(1, 1, 1, 7), 0x01c0003f, 0x3f, 0);
	add(t, 4, 1, SIG, L4(2, 1, 1, 7), 0x01c0003f, 0x3f, 0);
	add(t, 4, 2, SIG, L4(3, 2, 1, 7), 0x01c0003f, 0x3ff, 0);
	add(t, 4, 3, SIG, L4(3, 3, 15, 7), 0x03c0003f, 0x2fff, 6);
	add(t, 4, 4, SIG, 0, 0, 0, 0); /* the null descriptor ending the list */
	add(t, 7, 0, SIG, 0, 0x029c6fbf, 0, 0);
	for (uint32_t leaf = 0xb; leaf <= 0x1f; leaf += 0x1f - 0xb) {
		add(t, leaf, 0, SIG, 1, 2, 0x100, 7);
		add(t, leaf, 1, SIG, 4, 12, 0x201, 7);
		add(t, leaf, 2, SIG, 5, 24, 0x502, 7); /* a die level the host had */
	}
	add(t, 0x80000000, 0, 0, 0x80000008, 0, 0, 0);
	add(t, 0x80000001, 0, 0, 0, 0, 0x121, 0x2c100800);
	add(t, 0x80000008, 0, 0, 0x3027, 0, 0, 0);
	return t;
}

static struct kvm_cpuid2 *make_amd(void)
{
	struct kvm_cpuid2 *t = new_table();
	add(t, 0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65); /* AuthenticAMD */
	add(t, 1, 0, 0, 0x00a20f10, (5u << 24) | (16u << 16) | L1_EBX_LOW, L1_ECX,
	    L1_EDX_NO_HTT | HTT);
	add(t, 0xb, 0, SIG, 1, 2, 0x100, 5);
	add(t, 0xb, 1, SIG, 7, 16, 0x201, 5);
	add(t, 0xb, 2, SIG, 0, 0, 0x2, 5);
	add(t, 0x80000000, 0, 0, 0x80000021, 0x68747541, 0x444d4163, 0x69746e65);
	add(t, 0x80000001, 0, 0, 0x00a20f10, 0, 0x75c237ff, 0x2fd3fbff);
	add(t, 0x80000008, 0, 0, 0x3030, 0x111ef657, X8_ECX_OTHER | 0x700f, 0);
	add(t, 0x8000001e, 0, 0, 0x0b, 0x0105, 0x0300, 0xdead);
	return t;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

static struct kvm_cpuid_entry2 *get(struct kvm_cpuid2 *t, uint32_t fn, uint32_t idx)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(t, fn, idx);
	assert_non_null(e);
	return e;
}

static void check_leaf1(struct kvm_cpuid2 *t, unsigned index, unsigned nr)
{
	struct kvm_cpuid_entry2 *e = get(t, 1, 0);
	assert_int_equal(e->ebx >> 24, index);
	assert_int_equal((e->ebx >> 16) & 0xff, 1u << bits_for(nr));
	assert_true(((e->ebx >> 16) & 0xff) >= nr);
	assert_int_equal(e->ebx & 0xffff, L1_EBX_LOW);
	assert_int_equal(e->ecx, L1_ECX | HYPERVISOR);
	assert_int_equal(e->edx, L1_EDX_NO_HTT | (nr > 1 ? HTT : 0));
}

static void check_ext_topology(struct kvm_cpuid2 *t, uint32_t leaf, unsigned index, unsigned nr,
			       unsigned threads)
{
	struct kvm_cpuid_entry2 *smt = get(t, leaf, 0);
	struct kvm_cpuid_entry2 *core = get(t, leaf, 1);
	struct kvm_cpuid_entry2 *end = get(t, leaf, 2);
	/* Level 0: SMT, shift = bits for the threads of a core. */
	assert_int_equal(smt->eax, threads == 2 ? 1 : 0);
	assert_int_equal(smt->ebx, threads);
	assert_int_equal(smt->ecx, (1u << 8) | 0);
	assert_int_equal(smt->edx, index);
	/* Level 1: core, shift = bits for everything in the package. */
	assert_int_equal(core->eax, bits_for(nr));
	assert_int_equal(core->ebx, nr);
	assert_int_equal(core->ecx, (2u << 8) | 1);
	assert_int_equal(core->edx, index);
	/* Level 2: invalid, which ends the enumeration. */
	assert_int_equal(end->eax, 0);
	assert_int_equal(end->ebx, 0);
	assert_int_equal(end->ecx, 2);
	assert_int_equal(end->edx, index);
	/* How Linux reads it: everyone in package 0, threads paired on a core. */
	assert_int_equal(index >> core->eax, 0);
	assert_true(core->eax >= smt->eax);
	if (threads == 2)
		assert_int_equal(index >> smt->eax, index / 2);
}

static void check_leaf4(struct kvm_cpuid2 *t, unsigned nr, unsigned threads)
{
	static const uint32_t low[] = {L4(1, 1, 0, 0), L4(2, 1, 0, 0), L4(3, 2, 0, 0),
				       L4(3, 3, 0, 0)};
	unsigned cores = nr / threads;
	for (unsigned i = 0; i < 4; i++) {
		struct kvm_cpuid_entry2 *e = get(t, 4, i);
		unsigned sharing = i == 3 ? nr : threads; /* L3 package-wide, L1/L2 per core */
		assert_int_equal(e->eax & 0x3fff, low[i]);
		assert_int_equal((e->eax >> 14) & 0xfff, sharing - 1);
		assert_int_equal(e->eax >> 26, cores - 1);
	}
	/* The null descriptor stays null, other registers untouched. */
	struct kvm_cpuid_entry2 *null = get(t, 4, 4);
	assert_int_equal(null->eax, 0);
	assert_int_equal(get(t, 4, 3)->edx, 6);
	assert_int_equal(get(t, 4, 2)->ecx, 0x3ff);
}

static void check_amd(struct kvm_cpuid2 *t, unsigned index, unsigned nr, unsigned threads)
{
	struct kvm_cpuid_entry2 *e = get(t, 0x80000001, 0);
	assert_int_equal(e->ecx, (0x75c237ffu & ~CMP_LEGACY) | (nr > 1 ? CMP_LEGACY : 0));
	e = get(t, 0x80000008, 0);
	assert_int_equal(e->ecx & 0xff, nr - 1);	      /* NC */
	assert_int_equal((e->ecx >> 12) & 0xf, bits_for(nr)); /* ApicIdSize */
	assert_int_equal(e->ecx & ~0xf0ffu, X8_ECX_OTHER);
	assert_int_equal(e->eax, 0x3030);
	/* With ApicIdSize != 0 it bounds the APIC ids; with 0, NC + 1 does. */
	unsigned idsize = (e->ecx >> 12) & 0xf;
	unsigned max_ids = idsize ? 1u << idsize : (e->ecx & 0xff) + 1;
	assert_true(index < max_ids);
	assert_true(max_ids >= nr);
	e = get(t, 0x8000001e, 0);
	assert_int_equal(e->eax, index);
	assert_int_equal((e->ebx >> 8) & 0xff, threads - 1);
	assert_int_equal(e->ebx & 0xff, index / threads);
	assert_int_equal(e->ebx >> 16, 0);
	assert_int_equal(e->ecx, 0); /* node 0 of 1 */
}

struct case_ {
	unsigned nr;
	bool smt;
};

static const struct case_ cases[] = {
    {1, false}, {1, true}, {2, false}, {2, true}, {3, false}, {4, true}, {32, false}, {32, true},
};

static void test_topology_make(void **state)
{
	(void)state;
	struct cpu_topology t = cpu_topology_make(1, true);
	assert_int_equal(t.nr_vcpus, 1);
	assert_int_equal(t.threads_per_core, 1);
	t = cpu_topology_make(1, false);
	assert_int_equal(t.threads_per_core, 1);
	t = cpu_topology_make(2, true);
	assert_int_equal(t.threads_per_core, 2);
	t = cpu_topology_make(32, false);
	assert_int_equal(t.nr_vcpus, 32);
	assert_int_equal(t.threads_per_core, 1);
	t = cpu_topology_make(32, true);
	assert_int_equal(t.threads_per_core, 2);
}

static void test_intel(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct cpu_topology topo = cpu_topology_make(cases[c].nr, cases[c].smt);
		unsigned threads = topo.threads_per_core;
		for (unsigned i = 0; i < cases[c].nr; i++) {
			struct kvm_cpuid2 *t = make_intel(), *orig = dup_table(t);
			assert_int_equal(cpuid_normalize(t, TABLE_MAX, i, &topo), 0);
			assert_int_equal(t->nent, orig->nent);
			check_leaf1(t, i, cases[c].nr);
			check_ext_topology(t, 0xb, i, cases[c].nr, threads);
			check_ext_topology(t, 0x1f, i, cases[c].nr, threads);
			check_leaf4(t, cases[c].nr, threads);
			/* AMD-only leaves are left alone on Intel. */
			assert_memory_equal(get(t, 0x80000001, 0), get(orig, 0x80000001, 0),
					    sizeof(struct kvm_cpuid_entry2));
			assert_memory_equal(get(t, 0x80000008, 0), get(orig, 0x80000008, 0),
					    sizeof(struct kvm_cpuid_entry2));
			/* Leaves with nothing topological are untouched. */
			assert_memory_equal(get(t, 0, 0), get(orig, 0, 0),
					    sizeof(struct kvm_cpuid_entry2));
			assert_memory_equal(get(t, 7, 0), get(orig, 7, 0),
					    sizeof(struct kvm_cpuid_entry2));
			assert_int_equal(get(t, 1, 0)->eax, L1_EAX);
			free(t);
			free(orig);
		}
	}
}

static void test_amd(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct cpu_topology topo = cpu_topology_make(cases[c].nr, cases[c].smt);
		unsigned threads = topo.threads_per_core;
		for (unsigned i = 0; i < cases[c].nr; i++) {
			struct kvm_cpuid2 *t = make_amd(), *orig = dup_table(t);
			assert_int_equal(cpuid_normalize(t, TABLE_MAX, i, &topo), 0);
			check_leaf1(t, i, cases[c].nr);
			check_amd(t, i, cases[c].nr, threads);
			/* 0xB exists on AMD too and gets the same treatment. */
			struct kvm_cpuid_entry2 *smt = get(t, 0xb, 0), *core = get(t, 0xb, 1);
			assert_int_equal(smt->ebx, threads);
			assert_int_equal(smt->edx, i);
			assert_int_equal(core->eax, bits_for(cases[c].nr));
			assert_int_equal(core->ebx, cases[c].nr);
			assert_int_equal(core->ecx, 0x201);
			assert_int_equal(get(t, 0xb, 2)->ecx, 2);
			assert_memory_equal(get(t, 0x80000000, 0), get(orig, 0x80000000, 0),
					    sizeof(struct kvm_cpuid_entry2));
			assert_int_equal(get(t, 0x8000001e, 0)->edx, 0xdead);
			free(t);
			free(orig);
		}
	}
}

static void test_hygon_is_amd(void **state)
{
	(void)state;
	struct kvm_cpuid2 *t = make_amd();
	struct kvm_cpuid_entry2 *v = get(t, 0, 0);
	v->ebx = 0x6f677948; /* "Hygo" */
	v->edx = 0x6e65476e; /* "nGen" */
	v->ecx = 0x656e6975; /* "uine" */
	struct cpu_topology topo = cpu_topology_make(4, true);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 3, &topo), 0);
	check_amd(t, 3, 4, 2);
	free(t);
}

static void test_intel_vendor_not_amd(void **state)
{
	(void)state;
	/* An Intel table that happens to carry 0x8000001E: the AMD rules stay off. */
	struct kvm_cpuid2 *t = make_intel();
	add(t, 0x8000001e, 0, 0, 0x77, 0x88, 0x99, 0);
	struct cpu_topology topo = cpu_topology_make(2, false);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 1, &topo), 0);
	struct kvm_cpuid_entry2 *e = get(t, 0x8000001e, 0);
	assert_int_equal(e->eax, 0x77);
	assert_int_equal(e->ebx, 0x88);
	assert_int_equal(e->ecx, 0x99);
	free(t);
}

static void test_three_vcpus_smt_rejected(void **state)
{
	(void)state;
	/* Half a core cannot be described; the config refuses odd counts with smt. */
	struct cpu_topology topo = cpu_topology_make(3, true);
	struct kvm_cpuid2 *t = make_intel(), *orig = dup_table(t);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(cpuid_normalize(t, TABLE_MAX, i, &topo), -EINVAL);
	assert_memory_equal(t, orig, TABLE_BYTES);
	free(t);
	free(orig);
}

static void test_invalid(void **state)
{
	(void)state;
	static const struct cpu_topology bad[] = {
	    {.nr_vcpus = 0, .threads_per_core = 1},
	    {.nr_vcpus = LAYOUT_MAX_VCPUS + 1, .threads_per_core = 1},
	    {.nr_vcpus = 64, .threads_per_core = 2},
	    {.nr_vcpus = UINT32_MAX, .threads_per_core = 1},
	    {.nr_vcpus = 4, .threads_per_core = 0},
	    {.nr_vcpus = 4, .threads_per_core = 4},
	    {.nr_vcpus = 6, .threads_per_core = 3},
	    {.nr_vcpus = 1, .threads_per_core = 2},
	    {.nr_vcpus = 5, .threads_per_core = 2},
	};
	struct kvm_cpuid2 *t = make_amd(), *orig = dup_table(t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cpuid_normalize(t, TABLE_MAX, 0, &bad[i]), -EINVAL);
		assert_memory_equal(t, orig, TABLE_BYTES); /* nothing half-written */
	}
	free(t);
	free(orig);
	/* Index out of range for a valid topology. */
	struct cpu_topology topo = cpu_topology_make(4, false);
	t = make_intel();
	orig = dup_table(t);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 4, &topo), -EINVAL);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 100, &topo), -EINVAL);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, UINT32_MAX, &topo), -EINVAL);
	assert_memory_equal(t, orig, TABLE_BYTES);
	/* The largest valid ones. */
	topo = cpu_topology_make(LAYOUT_MAX_VCPUS, true);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, LAYOUT_MAX_VCPUS - 1, &topo), 0);
	assert_int_equal(get(t, 1, 0)->ebx >> 24, LAYOUT_MAX_VCPUS - 1);
	free(t);
	free(orig);
}

static void test_sparse_tables(void **state)
{
	(void)state;
	struct cpu_topology topo = cpu_topology_make(2, true);
	/* Nothing at all: nothing to do, no crash. */
	struct kvm_cpuid2 *t = new_table();
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 1, &topo), 0);
	assert_int_equal(t->nent, 0);
	/* No vendor leaf, no leaf 1, only 0xB level 0 and an AMD leaf. */
	add(t, 0xb, 0, SIG, 0, 0, 0, 0);
	add(t, 0x80000008, 0, 0, 0x3030, 0, 0x700f, 0);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 1, &topo), 0);
	assert_int_equal(get(t, 0xb, 0)->edx, 1);
	assert_int_equal(get(t, 0xb, 0)->ebx, 2);
	/* No vendor: treated as Intel, so the AMD leaf is untouched. */
	assert_int_equal(get(t, 0x80000008, 0)->ecx, 0x700f);
	/* AMD vendor without any of the extended leaves. */
	memset(t, 0, TABLE_BYTES);
	add(t, 0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65);
	add(t, 1, 0, 0, 0, 0, 0, 0);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 0, &topo), 0);
	assert_int_equal(get(t, 1, 0)->ecx, HYPERVISOR);
	assert_int_equal(get(t, 1, 0)->edx, HTT);
	free(t);
}

static void test_find(void **state)
{
	(void)state;
	struct kvm_cpuid2 *t = new_table();
	assert_null(cpuid_find(t, 0, 0));
	struct kvm_cpuid_entry2 *l1 = add(t, 1, 0, 0, 1, 0, 0, 0);
	struct kvm_cpuid_entry2 *b0 = add(t, 0xb, 0, SIG, 0xb0, 0, 0, 0);
	struct kvm_cpuid_entry2 *b1 = add(t, 0xb, 1, SIG, 0xb1, 0, 0, 0);
	struct kvm_cpuid_entry2 *ext = add(t, 0x80000001, 0, 0, 0, 0, 0, 0);
	/* Without the flag the index does not matter. */
	assert_ptr_equal(cpuid_find(t, 1, 0), l1);
	assert_ptr_equal(cpuid_find(t, 1, 5), l1);
	assert_ptr_equal(cpuid_find(t, 1, UINT32_MAX), l1);
	assert_ptr_equal(cpuid_find(t, 0x80000001, 3), ext);
	/* With it, only the exact subleaf. */
	assert_ptr_equal(cpuid_find(t, 0xb, 0), b0);
	assert_ptr_equal(cpuid_find(t, 0xb, 1), b1);
	assert_null(cpuid_find(t, 0xb, 2));
	/* Absent functions. */
	assert_null(cpuid_find(t, 0, 0));
	assert_null(cpuid_find(t, 4, 0));
	assert_null(cpuid_find(t, 0x8000001e, 0));
	/* Entries past nent are not looked at. */
	add(t, 0x1f, 0, 0, 0, 0, 0, 0);
	t->nent--;
	assert_null(cpuid_find(t, 0x1f, 0));
	free(t);
}

static void test_all_vcpus_distinct(void **state)
{
	(void)state;
	/* Across all vCPUs of one VM: distinct APIC ids, consistent core/thread ids. */
	struct cpu_topology topo = cpu_topology_make(32, true);
	bool seen[256] = {false};
	for (unsigned i = 0; i < 32; i++) {
		struct kvm_cpuid2 *t = make_amd();
		assert_int_equal(cpuid_normalize(t, TABLE_MAX, i, &topo), 0);
		unsigned apic = get(t, 1, 0)->ebx >> 24;
		assert_false(seen[apic]);
		seen[apic] = true;
		assert_int_equal(get(t, 0xb, 0)->edx, apic);
		assert_int_equal(get(t, 0x8000001e, 0)->eax, apic);
		unsigned core_id = get(t, 0x8000001e, 0)->ebx & 0xff;
		assert_int_equal(core_id, apic >> get(t, 0xb, 0)->eax);
		free(t);
	}
}

/* Leaf 0xD keeps only state components whose feature flag is present (an emulated host may
 * offer YMM without AVX), and ECX is the size of the components that remain. */
static void test_xsave_components_follow_features(void **state)
{
	(void)state;
	const uint32_t sig = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	for (int avx = 0; avx <= 1; avx++) {
		struct kvm_cpuid2 *t = new_table();
		add(t, 0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65); /* AuthenticAMD */
		add(t, 1, 0, 0, 0, 0, avx ? (1u << 28) : 0, 0);
		add(t, 7, 0, sig, 0, 0, 0, 0); /* no MPX, AVX-512 or PKU */
		add(t, 0xd, 0, sig, 0x2e7, 832, 2696, 0);
		add(t, 0xd, 1, sig, 0x1, 832, 0, 0);
		add(t, 0xd, 2, sig, 256, 576, 0, 0);
		add(t, 0xd, 5, sig, 64, 1088, 0, 0);
		add(t, 0xd, 9, sig, 8, 2688, 0, 0);
		struct cpu_topology topo = cpu_topology_make(1, false);
		assert_int_equal(cpuid_normalize(t, TABLE_MAX, 0, &topo), 0);
		struct kvm_cpuid_entry2 *d = get(t, 0xd, 0);
		assert_int_equal(d->eax, avx ? 0x7u : 0x3u);
		assert_int_equal(d->ecx, avx ? 832u : 576u);
		assert_int_equal(get(t, 0xd, 2)->eax, avx ? 256u : 0u);
		assert_int_equal(get(t, 0xd, 5)->eax, 0);
		assert_int_equal(get(t, 0xd, 9)->ebx, 0);
		assert_int_equal(get(t, 0xd, 1)->eax, 0x1); /* XSAVEOPT etc. untouched */
		free(t);
	}
}

/* --- AMD topology extensions (TOPOEXT, 0x8000001D, 0x8000001E) --- */

#define TOPOEXT (1u << 22)
#define EXT1_ECX_NO_TOPOEXT 0x000000f1u /* no CMP_LEGACY either */

/* What KVM_GET_SUPPORTED_CPUID gives on an emulated EPYC without TOPOEXT (QEMU TCG): 0xB
 * level 0 zeroed, 0x8000001D subleaf 0 and 0x8000001E empty, the legacy cache leaves set. */
static struct kvm_cpuid2 *make_amd_kvm(void)
{
	struct kvm_cpuid2 *t = new_table();
	add(t, 0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65); /* AuthenticAMD */
	add(t, 1, 0, 0, 0x00800f12, L1_EBX_LOW, L1_ECX, L1_EDX_NO_HTT);
	add(t, 0xb, 0, SIG, 0, 0, 0, 0);
	add(t, 0x80000000, 0, 0, 0x8000001a, 0x68747541, 0x444d4163, 0x69746e65);
	add(t, 0x80000001, 0, 0, 0x00800f12, 0, EXT1_ECX_NO_TOPOEXT, 0x2fd3fbff);
	add(t, 0x80000005, 0, 0, 0xff40ff40, 0xff40ff40, 0x20080140, 0x40040140);
	add(t, 0x80000006, 0, 0, 0, 0x42004200, 0x02006140, 0x00408140);
	add(t, 0x80000008, 0, 0, 0x3030, 0, X8_ECX_OTHER, 0);
	add(t, 0x8000001d, 0, SIG, 0, 0, 0, 0);
	add(t, 0x8000001e, 0, 0, 0, 0, 0, 0);
	return t;
}

/* No two entries answer the same (function, index). */
static void check_unique(struct kvm_cpuid2 *t)
{
	for (unsigned i = 0; i < t->nent; i++)
		for (unsigned j = i + 1; j < t->nent; j++) {
			struct kvm_cpuid_entry2 *a = &t->entries[i], *b = &t->entries[j];
			if (a->function != b->function)
				continue;
			assert_true(a->flags & b->flags & SIG);
			assert_int_not_equal(a->index, b->index);
		}
}

/* The registers of (fn, idx) as the guest reads them: zero where there is no entry. */
static struct kvm_cpuid_entry2 read_leaf(struct kvm_cpuid2 *t, uint32_t fn, uint32_t idx)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(t, fn, idx);
	return e ? *e : (struct kvm_cpuid_entry2){0};
}

/* Where Linux 6.1 (arch/x86/kernel/cpu/amd.c, cacheinfo.c, topology.c) puts an AMD CPU. */
struct linux_place {
	unsigned pkg, core, llc;
	bool topoext;
};

static struct linux_place linux_amd_place(struct kvm_cpuid2 *t, unsigned apic)
{
	struct linux_place p = {.topoext = (read_leaf(t, 0x80000001, 0).ecx & TOPOEXT) != 0};
	unsigned idsize = (read_leaf(t, 0x80000008, 0).ecx >> 12) & 0xf;
	/* amd_detect_cmp: core id from the low ApicIdSize bits, package above them. */
	p.core = apic & ((1u << idsize) - 1);
	p.pkg = p.llc = apic >> idsize;
	if (!p.topoext)
		return p;
	/* amd_get_topology: 0x8000001E core id, then leaf 0xB if it is valid. */
	p.core = read_leaf(t, 0x8000001e, 0).ebx & 0xff;
	struct kvm_cpuid_entry2 smt = read_leaf(t, 0xb, 0);
	if (smt.ebx && ((smt.ecx >> 8) & 0xff) == 1) {
		unsigned ht = smt.eax & 0x1f, core_plus = ht;
		for (unsigned i = 1;; i++) {
			struct kvm_cpuid_entry2 lvl = read_leaf(t, 0xb, i);
			unsigned type = (lvl.ecx >> 8) & 0xff;
			if (type == 0)
				break;
			if (type == 2)
				core_plus = lvl.eax & 0x1f;
		}
		p.core = (apic >> ht) & ((1u << (core_plus - ht)) - 1);
		p.pkg = apic >> core_plus;
	}
	/* cacheinfo_amd_init_llc_id (family >= 0x17): the last 0x8000001D descriptor. */
	unsigned leaves = 0;
	while (read_leaf(t, 0x8000001d, leaves).eax & 0x1f)
		leaves++;
	uint32_t eax = read_leaf(t, 0x8000001d, leaves - 1).eax;
	if (eax)
		p.llc = apic >> bits_for(((eax >> 14) & 0xfff) + 1);
	return p;
}

/* match_smt in smpboot.c: with TOPOEXT, same package, LLC and core. */
static bool linux_smt_siblings(struct linux_place a, struct linux_place b)
{
	if (a.topoext)
		return a.pkg == b.pkg && a.llc == b.llc && a.core == b.core;
	return a.pkg == b.pkg && a.core == b.core;
}

/* Decodes subleaf `i` of 0x8000001D: type, level, sharing, size in KiB. */
static void check_cache(struct kvm_cpuid2 *t, unsigned i, unsigned type, unsigned level,
			unsigned sharing, unsigned size_kb)
{
	struct kvm_cpuid_entry2 *e = get(t, 0x8000001d, i);
	assert_true(e->flags & SIG);
	assert_int_equal(e->eax & 0x1f, type);
	assert_int_equal((e->eax >> 5) & 0x7, level);
	assert_int_equal(((e->eax >> 14) & 0xfff) + 1, sharing);
	unsigned ways = (e->ebx >> 22) + 1, parts = ((e->ebx >> 12) & 0x3ff) + 1;
	unsigned line = (e->ebx & 0xfff) + 1, sets = e->ecx + 1;
	assert_int_equal(ways * parts * line * sets / 1024, size_kb);
}

static void test_amd_topoext_added(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		unsigned nr = cases[c].nr;
		struct cpu_topology topo = cpu_topology_make(nr, cases[c].smt);
		unsigned threads = topo.threads_per_core;
		struct linux_place place[32];
		for (unsigned i = 0; i < nr; i++) {
			struct kvm_cpuid2 *t = make_amd_kvm(), *orig = dup_table(t);
			assert_int_equal(cpuid_normalize(t, TABLE_MAX, i, &topo), 0);
			check_unique(t);
			/* 0xB levels 1, 2 and 0x8000001D subleaves 1-4 are new. */
			assert_int_equal(t->nent, orig->nent + 2 + 4);
			assert_int_equal(get(t, 0x80000001, 0)->ecx,
					 EXT1_ECX_NO_TOPOEXT | TOPOEXT | (nr > 1 ? CMP_LEGACY : 0));
			assert_int_equal(get(t, 0x80000000, 0)->eax, 0x8000001e);
			assert_int_equal(get(t, 0x80000000, 0)->ebx, 0x68747541);
			struct kvm_cpuid_entry2 *e = get(t, 0x8000001e, 0);
			assert_int_equal(e->eax, i);
			assert_int_equal(e->ebx, ((threads - 1) << 8) | (i / threads));
			assert_int_equal(e->ecx, 0);
			/* Sizes from 0x80000005/6: L1d 32K, L1i 64K, L2 512K, L3 8M. */
			check_cache(t, 0, 1, 1, threads, 32);
			check_cache(t, 1, 2, 1, threads, 64);
			check_cache(t, 2, 3, 2, threads, 512);
			check_cache(t, 3, 3, 3, nr, 8192);
			assert_int_equal(get(t, 0x8000001d, 4)->eax, 0);
			check_ext_topology(t, 0xb, i, nr, threads);
			check_leaf1(t, i, nr);
			place[i] = linux_amd_place(t, i);
			free(t);
			free(orig);
		}
		/* Linux pairs threads 0-1, 2-3, ... with smt, and nothing without. */
		for (unsigned i = 0; i < nr; i++)
			for (unsigned j = 0; j < nr; j++) {
				assert_true(place[i].topoext);
				assert_int_equal(place[i].pkg, 0);
				assert_int_equal(linux_smt_siblings(place[i], place[j]),
						 i / threads == j / threads);
			}
	}
}

static void test_amd_leaves_absent(void **state)
{
	(void)state;
	/* No 0x8000001D/1E, no legacy cache leaves, no 0xB: typical sizes, entries added. */
	struct kvm_cpuid2 *t = new_table();
	add(t, 0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65);
	add(t, 0x80000000, 0, 0, 0x80000008, 0, 0, 0);
	add(t, 0x80000001, 0, 0, 0, 0, 0, 0);
	struct cpu_topology topo = cpu_topology_make(4, true);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 3, &topo), 0);
	check_unique(t);
	assert_int_equal(t->nent, 3 + 1 + 5);
	assert_int_equal(get(t, 0x80000000, 0)->eax, 0x8000001e);
	assert_int_equal(get(t, 0x80000001, 0)->ecx, TOPOEXT | CMP_LEGACY);
	assert_int_equal(get(t, 0x8000001e, 0)->eax, 3);
	assert_int_equal(get(t, 0x8000001e, 0)->ebx, 0x101);
	assert_int_equal(get(t, 0x8000001e, 0)->flags, 0);
	check_cache(t, 0, 1, 1, 2, 32);
	check_cache(t, 1, 2, 1, 2, 32);
	check_cache(t, 2, 3, 2, 2, 512);
	check_cache(t, 3, 3, 3, 4, 8192);
	assert_int_equal(get(t, 0x8000001d, 4)->eax, 0);
	assert_null(cpuid_find(t, 0xb, 0)); /* not added where the host has none */
	/* A second normalization (same table, other vCPU) adds nothing more. */
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 2, &topo), 0);
	assert_int_equal(t->nent, 9);
	assert_int_equal(get(t, 0x8000001e, 0)->ebx, 0x101);
	check_unique(t);
	/* Without the extended feature leaves there is nothing to carry TOPOEXT. */
	memset(t, 0, TABLE_BYTES);
	add(t, 0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 0, &topo), 0);
	assert_int_equal(t->nent, 1);
	free(t);
}

static void test_amd_host_caches_adjusted(void **state)
{
	(void)state;
	/* The host's own descriptors stay; only the sharing counts change. */
	struct kvm_cpuid2 *t = make_amd_kvm();
	struct kvm_cpuid_entry2 *d0 = get(t, 0x8000001d, 0);
	d0->eax = 0x00004121; /* L1d, 2 sharing */
	d0->ebx = 0x01c0003f; /* 8 ways, 64-byte lines */
	d0->ecx = 63;
	add(t, 0x8000001d, 1, SIG, 0x00004122, 0x00c0003f, 255, 0);
	add(t, 0x8000001d, 2, SIG, 0x00004143, 0x01c0003f, 2047, 2);
	add(t, 0x8000001d, 3, SIG, 0x0003c163, 0x03c0003f, 32767, 1);
	add(t, 0x8000001d, 4, SIG, 0, 0, 0, 0);
	struct kvm_cpuid2 *orig = dup_table(t);
	struct cpu_topology topo = cpu_topology_make(2, false);
	assert_int_equal(cpuid_normalize(t, TABLE_MAX, 1, &topo), 0);
	check_unique(t);
	assert_int_equal(t->nent, orig->nent + 2); /* only 0xB levels 1 and 2 */
	check_cache(t, 0, 1, 1, 1, 32);
	check_cache(t, 1, 2, 1, 1, 64);
	check_cache(t, 2, 3, 2, 1, 1024);
	check_cache(t, 3, 3, 3, 2, 32768);
	assert_int_equal(get(t, 0x8000001d, 2)->edx, 2);
	assert_int_equal(get(t, 0x8000001d, 3)->edx, 1);
	assert_memory_equal(get(t, 0x8000001d, 4), get(orig, 0x8000001d, 4),
			    sizeof(struct kvm_cpuid_entry2));
	assert_int_equal(get(t, 0x80000001, 0)->ecx & TOPOEXT, TOPOEXT);
	free(t);
	free(orig);
}

static void test_no_room(void **state)
{
	(void)state;
	struct cpu_topology topo = cpu_topology_make(2, true);
	struct kvm_cpuid2 *t = make_amd_kvm(), *orig = dup_table(t);
	unsigned nent = t->nent;
	assert_int_equal(cpuid_normalize(t, nent + CPUID_NORMALIZE_ADDS - 1, 0, &topo), -ENOSPC);
	assert_int_equal(cpuid_normalize(t, nent - 1, 0, &topo), -ENOSPC);
	assert_memory_equal(t, orig, TABLE_BYTES);
	assert_int_equal(cpuid_normalize(t, nent + CPUID_NORMALIZE_ADDS, 0, &topo), 0);
	assert_true(t->nent <= nent + CPUID_NORMALIZE_ADDS);
	free(t);
	free(orig);
}

static void test_intel_no_amd_leaves(void **state)
{
	(void)state;
	/* Intel as KVM reports it (0xB and 0x1F level 0 only): levels 1-2 are added, and no
	 * AMD leaf, TOPOEXT or extended-leaf change appears. */
	struct kvm_cpuid2 *t = new_table();
	add(t, 0, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69);
	add(t, 1, 0, 0, L1_EAX, L1_EBX_LOW, L1_ECX, L1_EDX_NO_HTT);
	add(t, 0xb, 0, SIG, 0, 0, 0, 0);
	add(t, 0x1f, 0, SIG, 0, 0, 0, 0);
	add(t, 0x80000000, 0, 0, 0x80000008, 0, 0, 0);
	add(t, 0x80000001, 0, 0, 0, 0, 0x121, 0x2c100800);
	struct kvm_cpuid2 *orig = dup_table(t);
	struct cpu_topology topo = cpu_topology_make(4, true);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(cpuid_normalize(t, TABLE_MAX, i, &topo), 0);
		check_unique(t);
		assert_int_equal(t->nent, orig->nent + 4);
		check_ext_topology(t, 0xb, i, 4, 2);
		check_ext_topology(t, 0x1f, i, 4, 2);
		assert_memory_equal(get(t, 0x80000000, 0), get(orig, 0x80000000, 0),
				    sizeof(struct kvm_cpuid_entry2));
		assert_memory_equal(get(t, 0x80000001, 0), get(orig, 0x80000001, 0),
				    sizeof(struct kvm_cpuid_entry2));
		assert_null(cpuid_find(t, 0x8000001d, 0));
		assert_null(cpuid_find(t, 0x8000001e, 0));
	}
	free(t);
	free(orig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_topology_make),
	    cmocka_unit_test(test_intel),
	    cmocka_unit_test(test_amd),
	    cmocka_unit_test(test_hygon_is_amd),
	    cmocka_unit_test(test_intel_vendor_not_amd),
	    cmocka_unit_test(test_three_vcpus_smt_rejected),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_sparse_tables),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_all_vcpus_distinct),
	    cmocka_unit_test(test_xsave_components_follow_features),
	    cmocka_unit_test(test_amd_topoext_added),
	    cmocka_unit_test(test_amd_leaves_absent),
	    cmocka_unit_test(test_amd_host_caches_adjusted),
	    cmocka_unit_test(test_no_room),
	    cmocka_unit_test(test_intel_no_amd_leaves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
