#include "vmm/kvm_stats.h"
#include "vmm/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *const kvm_stat_names[KVM_STAT_NR] = {
    [KVM_STAT_EXITS] = "exits",
    [KVM_STAT_IO_EXITS] = "io_exits",
    [KVM_STAT_MMIO_EXITS] = "mmio_exits",
    [KVM_STAT_HALT_EXITS] = "halt_exits",
    [KVM_STAT_HALT_WAKEUP] = "halt_wakeup",
    [KVM_STAT_IRQ_EXITS] = "irq_exits",
    [KVM_STAT_IRQ_WINDOW_EXITS] = "irq_window_exits",
    [KVM_STAT_SIGNAL_EXITS] = "signal_exits",
    [KVM_STAT_IRQ_INJECTIONS] = "irq_injections",
    [KVM_STAT_INSN_EMULATION] = "insn_emulation",
    [KVM_STAT_REMOTE_TLB_FLUSH] = "remote_tlb_flush",
};

/* A descriptor without its name: what precedes the name in the file. */
#define DESC_FIXED offsetof(struct kvm_stats_desc, name)

const char *kvm_stat_name(unsigned i)
{
	return i < KVM_STAT_NR ? kvm_stat_names[i] : NULL;
}

static int kvm_stats_check_header(const struct kvm_stats_header *h)
{
	if (h->name_size == 0 || h->name_size > KVM_STATS_NAME_MAX ||
	    h->num_desc > KVM_STATS_DESC_MAX)
		return -EINVAL;
	if (h->desc_offset < sizeof(*h) || h->data_offset < sizeof(*h))
		return -EINVAL;
	return 0;
}

/* Notes one descriptor (at d, name_size bytes of name after it) if kiln reports it. */
static int kvm_stats_take_desc(const uint8_t *d, uint32_t name_size, uint32_t data_offset,
			       struct kvm_stats_file *out)
{
	struct kvm_stats_desc desc;
	memcpy(&desc, d, DESC_FIXED);
	const char *name = (const char *)d + DESC_FIXED;
	if (!memchr(name, 0, name_size))
		return -EINVAL;
	uint32_t type = desc.flags & KVM_STATS_TYPE_MASK;
	if (type != KVM_STATS_TYPE_CUMULATIVE || desc.size != 1)
		return 0;
	for (unsigned i = 0; i < KVM_STAT_NR; i++) {
		if (strcmp(name, kvm_stat_names[i]) || out->off[i])
			continue;
		/* Both u32: the sum cannot wrap a u64. */
		out->off[i] = (uint64_t)data_offset + desc.offset;
	}
	return 0;
}

int kvm_stats_parse(int fd, struct kvm_stats_file *out)
{
	struct kvm_stats_header h;
	*out = (struct kvm_stats_file){.fd = fd};
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -EIO;
	int err = kvm_stats_check_header(&h);
	if (err)
		return err;
	size_t desc_size = DESC_FIXED + h.name_size;
	size_t total = desc_size * h.num_desc; /* at most 4096 * 272 bytes */
	uint8_t *descs = malloc(total ? total : 1);
	if (!descs)
		return -ENOMEM;
	if (pread(fd, descs, total, h.desc_offset) != (ssize_t)total)
		err = -EIO;
	for (uint32_t i = 0; !err && i < h.num_desc; i++)
		err = kvm_stats_take_desc(descs + i * desc_size, h.name_size, h.data_offset, out);
	free(descs);
	/* Each value must be readable where its descriptor says: the data block is in bounds. */
	for (unsigned i = 0; !err && i < KVM_STAT_NR; i++) {
		uint64_t v;
		if (out->off[i] && pread(fd, &v, sizeof(v), (off_t)out->off[i]) != sizeof(v))
			err = -EINVAL;
	}
	if (err)
		memset(out->off, 0, sizeof(out->off));
	return err;
}

/* Opens one stats fd (from a VM or vCPU fd) into ks's next slot. */
static void kvm_stats_add(struct kvm_stats *ks, int owner_fd, const char *what, bool *warned)
{
	int fd = ioctl(owner_fd, KVM_GET_STATS_FD, 0);
	int err = fd < 0 ? -errno : kvm_stats_parse(fd, &ks->file[ks->nr]);
	if (!err) {
		ks->nr++;
		return;
	}
	if (fd >= 0)
		close(fd);
	if (!*warned)
		log_warn("KVM stats of the %s: %s; left out of the metrics", what, strerror(-err));
	*warned = true;
}

unsigned kvm_stats_open(struct kvm_stats *ks, const struct vm *vm)
{
	bool warned = false;
	ks->nr = 0;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0)
		return 0;
	kvm_stats_add(ks, vm->vm_fd, "VM", &warned);
	for (unsigned i = 0; i < vm->nr_vcpus && ks->nr < KVM_STATS_MAX_FDS; i++)
		kvm_stats_add(ks, vm->vcpu[i].fd, "vCPU", &warned);
	return ks->nr;
}

int kvm_stats_read(const struct kvm_stats *ks, uint64_t sum[KVM_STAT_NR], uint32_t *present)
{
	int err = 0;
	memset(sum, 0, KVM_STAT_NR * sizeof(sum[0]));
	*present = 0;
	for (unsigned f = 0; f < ks->nr; f++) {
		for (unsigned i = 0; i < KVM_STAT_NR; i++) {
			uint64_t v;
			if (!ks->file[f].off[i])
				continue;
			if (pread(ks->file[f].fd, &v, sizeof(v), (off_t)ks->file[f].off[i]) !=
			    (ssize_t)sizeof(v)) {
				err = -EIO;
				continue;
			}
			sum[i] += v;
			*present |= 1u << i;
		}
	}
	return err;
}

void kvm_stats_close(struct kvm_stats *ks)
{
	for (unsigned f = 0; f < ks->nr; f++)
		close(ks->file[f].fd);
	ks->nr = 0;
}
