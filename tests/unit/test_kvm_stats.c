/* KVM's binary stats: synthetic stats files in memfds (header, id, descriptors, data as the
 * kernel lays them out), the counters found by name, summed over files, malformed headers and
 * descriptors refused; and the real thing when this host's KVM has it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/kvm_stats.h"
#include "vmm/log.h"

#define NAME_SIZE 48 /* KVM's KVM_STATS_NAME_SIZE */
#define DESC_SIZE (offsetof(struct kvm_stats_desc, name) + NAME_SIZE)
#define ID_OFF sizeof(struct kvm_stats_header)
#define DESC_OFF (ID_OFF + 48)

struct stat_spec {
	const char *name;
	uint32_t flags;
	uint16_t size; /* u64 items */
	uint64_t value;
};

static uint64_t data_off(unsigned n)
{
	return DESC_OFF + (uint64_t)n * DESC_SIZE;
}

/* A memfd laid out as KVM's stats file for specs[0..n). */
static int make_stats(const struct stat_spec *specs, unsigned n)
{
	int fd = memfd_create("kvm-stats", MFD_CLOEXEC);
	assert_true(fd >= 0);
	struct kvm_stats_header h = {.name_size = NAME_SIZE,
				     .num_desc = n,
				     .id_offset = ID_OFF,
				     .desc_offset = DESC_OFF,
				     .data_offset = data_off(n)};
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), sizeof(h));
	assert_int_equal(pwrite(fd, "kvm-12345", 10, ID_OFF), 10);
	uint32_t item = 0;
	for (unsigned i = 0; i < n; i++) {
		uint8_t d[DESC_SIZE] = {0};
		struct kvm_stats_desc desc = {
		    .flags = specs[i].flags, .size = specs[i].size, .offset = item * 8};
		memcpy(d, &desc, offsetof(struct kvm_stats_desc, name));
		strncpy((char *)d + offsetof(struct kvm_stats_desc, name), specs[i].name,
			NAME_SIZE - 1);
		assert_int_equal(pwrite(fd, d, DESC_SIZE, DESC_OFF + i * DESC_SIZE), DESC_SIZE);
		for (unsigned k = 0; k < specs[i].size; k++) {
			uint64_t v = specs[i].value + k;
			off_t at = (off_t)(data_off(n) + (item + k) * 8);
			assert_int_equal(pwrite(fd, &v, 8, at), 8);
		}
		item += specs[i].size;
	}
	return fd;
}

static void put_u32(int fd, off_t at, uint32_t v)
{
	assert_int_equal(pwrite(fd, &v, 4, at), 4);
}

#define HIST (KVM_STATS_TYPE_LINEAR_HIST | KVM_STATS_UNIT_SECONDS)

static const struct stat_spec vcpu_like[] = {
    {"halt_wait_hist", HIST, 32, 1000}, /* a histogram first: its data spans 32 items */
    {"exits", 0, 1, 10},
    {"pf_taken", 0, 1, 77},	 /* not reported */
    {"halt_exits", HIST, 32, 5}, /* a histogram under a reported name: left out */
    {"io_exits", 0, 1, 4},
    {"irq_injections", KVM_STATS_TYPE_INSTANT, 1, 3}, /* not cumulative: left out */
    {"exits", 0, 1, 99},			      /* a second "exits": the first wins */
    {"mmio_exits", 0, 1, 2},
};
#define N_VCPU_LIKE (sizeof(vcpu_like) / sizeof(vcpu_like[0]))

static void test_parse_finds_counters(void **state)
{
	(void)state;
	int fd = make_stats(vcpu_like, N_VCPU_LIKE);
	struct kvm_stats_file f;
	assert_int_equal(kvm_stats_parse(fd, &f), 0);
	assert_int_equal(f.fd, fd);
	uint64_t base = data_off(N_VCPU_LIKE);
	assert_int_equal(f.off[KVM_STAT_EXITS], base + 32 * 8);
	assert_int_equal(f.off[KVM_STAT_IO_EXITS], base + (32 + 1 + 1 + 32) * 8);
	assert_int_equal(f.off[KVM_STAT_MMIO_EXITS], base + (32 + 1 + 1 + 32 + 1 + 1 + 1) * 8);
	assert_int_equal(f.off[KVM_STAT_HALT_EXITS], 0);
	assert_int_equal(f.off[KVM_STAT_IRQ_INJECTIONS], 0);
	assert_int_equal(f.off[KVM_STAT_REMOTE_TLB_FLUSH], 0);

	struct kvm_stats ks = {.nr = 1};
	ks.file[0] = f;
	uint64_t sum[KVM_STAT_NR];
	uint32_t present;
	assert_int_equal(kvm_stats_read(&ks, sum, &present), 0);
	assert_int_equal(present, (1u << KVM_STAT_EXITS) | (1u << KVM_STAT_IO_EXITS) |
				      (1u << KVM_STAT_MMIO_EXITS));
	assert_int_equal(sum[KVM_STAT_EXITS], 10);
	assert_int_equal(sum[KVM_STAT_IO_EXITS], 4);
	assert_int_equal(sum[KVM_STAT_MMIO_EXITS], 2);
	/* Values are read anew each time. */
	uint64_t more = 25;
	assert_int_equal(pwrite(fd, &more, 8, (off_t)f.off[KVM_STAT_EXITS]), 8);
	assert_int_equal(kvm_stats_read(&ks, sum, &present), 0);
	assert_int_equal(sum[KVM_STAT_EXITS], 25);
	kvm_stats_close(&ks);
	assert_int_equal(ks.nr, 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed */
}

/* Summed over the VM's file and each vCPU's; a counter only the VM has is present too. */
static void test_read_sums_files(void **state)
{
	(void)state;
	static const struct stat_spec vm[] = {{"remote_tlb_flush", 0, 1, 6}};
	static const struct stat_spec v0[] = {{"exits", 0, 1, 100}, {"halt_exits", 0, 1, 7}};
	static const struct stat_spec v1[] = {{"halt_exits", 0, 1, 3}, {"exits", 0, 1, 50}};
	struct kvm_stats ks = {.nr = 3};
	assert_int_equal(kvm_stats_parse(make_stats(vm, 1), &ks.file[0]), 0);
	assert_int_equal(kvm_stats_parse(make_stats(v0, 2), &ks.file[1]), 0);
	assert_int_equal(kvm_stats_parse(make_stats(v1, 2), &ks.file[2]), 0);
	uint64_t sum[KVM_STAT_NR];
	uint32_t present;
	assert_int_equal(kvm_stats_read(&ks, sum, &present), 0);
	assert_int_equal(present, (1u << KVM_STAT_EXITS) | (1u << KVM_STAT_HALT_EXITS) |
				      (1u << KVM_STAT_REMOTE_TLB_FLUSH));
	assert_int_equal(sum[KVM_STAT_EXITS], 150);
	assert_int_equal(sum[KVM_STAT_HALT_EXITS], 10);
	assert_int_equal(sum[KVM_STAT_REMOTE_TLB_FLUSH], 6);
	/* A file cut short after setup: -EIO, the rest still summed. */
	assert_int_equal(ftruncate(ks.file[2].fd, DESC_OFF), 0);
	assert_int_equal(kvm_stats_read(&ks, sum, &present), -EIO);
	assert_int_equal(sum[KVM_STAT_EXITS], 100);
	kvm_stats_close(&ks);
}

/* parse_broken(patch_offset, value): a valid file with one u32 overwritten. */
static int parse_patched(off_t at, uint32_t v)
{
	int fd = make_stats(vcpu_like, N_VCPU_LIKE);
	struct kvm_stats_file f;
	put_u32(fd, at, v);
	int err = kvm_stats_parse(fd, &f);
	for (unsigned i = 0; err && i < KVM_STAT_NR; i++)
		assert_int_equal(f.off[i], 0); /* nothing half-found */
	close(fd);
	return err;
}

#define HDR(field) offsetof(struct kvm_stats_header, field)
#define DESC(i, field) (DESC_OFF + (i)*DESC_SIZE + offsetof(struct kvm_stats_desc, field))

static void test_malformed(void **state)
{
	(void)state;
	struct kvm_stats_file f;
	int fd = memfd_create("short", MFD_CLOEXEC);
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_int_equal(kvm_stats_parse(fd, &f), -EIO); /* no whole header */
	close(fd);
	assert_int_equal(parse_patched(HDR(name_size), 0), -EINVAL);
	assert_int_equal(parse_patched(HDR(name_size), KVM_STATS_NAME_MAX + 1), -EINVAL);
	assert_int_equal(parse_patched(HDR(name_size), UINT32_MAX), -EINVAL);
	assert_int_equal(parse_patched(HDR(num_desc), KVM_STATS_DESC_MAX + 1), -EINVAL);
	assert_int_equal(parse_patched(HDR(num_desc), UINT32_MAX), -EINVAL);
	assert_int_equal(parse_patched(HDR(num_desc), N_VCPU_LIKE + 1000), -EIO); /* past EOF */
	assert_int_equal(parse_patched(HDR(desc_offset), 0), -EINVAL); /* over the header */
	assert_int_equal(parse_patched(HDR(desc_offset), UINT32_MAX), -EIO);
	assert_int_equal(parse_patched(HDR(data_offset), 8), -EINVAL);
	assert_int_equal(parse_patched(HDR(data_offset), UINT32_MAX), -EINVAL);
	assert_int_equal(parse_patched(DESC(1, offset), UINT32_MAX), -EINVAL); /* exits' value */
	assert_int_equal(parse_patched(DESC(1, offset), 4096), -EINVAL);
	/* A name filling its whole field, without a NUL. */
	fd = make_stats(vcpu_like, N_VCPU_LIKE);
	char full[NAME_SIZE];
	memset(full, 'x', sizeof(full));
	assert_int_equal(pwrite(fd, full, NAME_SIZE, DESC(2, name)), NAME_SIZE);
	assert_int_equal(kvm_stats_parse(fd, &f), -EINVAL);
	close(fd);
	/* Descriptors the header claims none of: fine, nothing found. */
	assert_int_equal(parse_patched(HDR(num_desc), 0), 0);
}

/* Without KVM_CAP_BINARY_STATS_FD (here: no KVM at all) nothing is opened. */
static void test_open_without_binary_stats(void **state)
{
	(void)state;
	struct vm vm = {.kvm_fd = -1, .vm_fd = -1};
	struct kvm_stats ks = {.nr = 7};
	assert_int_equal(kvm_stats_open(&ks, &vm), 0);
	assert_int_equal(ks.nr, 0);
	assert_null(kvm_stat_name(KVM_STAT_NR));
	assert_string_equal(kvm_stat_name(KVM_STAT_EXITS), "exits");
}

/* This host's KVM, when it has binary stats: the VM's file and a vCPU's, with "exits". */
static void test_open_real_kvm(void **state)
{
	(void)state;
	struct vm vm = {.vm_fd = -1};
	vm.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm.kvm_fd < 0 || ioctl(vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0 ||
	    (vm.vm_fd = ioctl(vm.kvm_fd, KVM_CREATE_VM, 0)) < 0) {
		if (vm.kvm_fd >= 0)
			close(vm.kvm_fd);
		skip();
	}
	vm.vcpu[0].fd = ioctl(vm.vm_fd, KVM_CREATE_VCPU, 0);
	assert_true(vm.vcpu[0].fd >= 0);
	vm.nr_vcpus = 1;
	struct kvm_stats ks;
	assert_int_equal(kvm_stats_open(&ks, &vm), 2);
	uint64_t sum[KVM_STAT_NR];
	uint32_t present;
	assert_int_equal(kvm_stats_read(&ks, sum, &present), 0);
	assert_true(present & (1u << KVM_STAT_EXITS));
	assert_int_equal(ks.file[1].off[KVM_STAT_REMOTE_TLB_FLUSH], 0); /* a VM counter */
	kvm_stats_close(&ks);
	close(vm.vcpu[0].fd);
	close(vm.vm_fd);
	close(vm.kvm_fd);
}

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_finds_counters),
	    cmocka_unit_test(test_read_sums_files),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_open_without_binary_stats),
	    cmocka_unit_test(test_open_real_kvm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
