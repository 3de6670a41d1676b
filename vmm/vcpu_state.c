/* A vCPU's architectural state as one log line, for triple faults, KVM errors and the
 * SIGUSR2/SIGTERM hang dump. */
#include "vmm/log.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

/* Appends to buf at *n like snprintf; *n may pass cap, which the caller reports. */
static void put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(*n < cap ? buf + *n : NULL, *n < cap ? cap - *n : 0, fmt, ap);
	va_end(ap);
	if (m > 0)
		*n += (size_t)m;
}

static void put_segment(char *buf, size_t cap, size_t *n, const char *name,
			const struct kvm_segment *s)
{
	put(buf, cap, n, " %s=0x%x/0x%llx/0x%x", name, s->selector, (unsigned long long)s->base,
	    s->limit);
}

static void put_exception(char *buf, size_t cap, size_t *n, const struct kvm_vcpu_events *e)
{
	if (!e->exception.injected && !e->exception.pending) {
		put(buf, cap, n, " exception=none");
		return;
	}
	put(buf, cap, n, " exception=%s nr=%u", e->exception.injected ? "injected" : "pending",
	    e->exception.nr);
	if (e->exception.has_error_code)
		put(buf, cap, n, " error_code=0x%x", e->exception.error_code);
	else
		put(buf, cap, n, " error_code=none");
}

int vcpu_state_format(char *buf, size_t len, const struct kvm_regs *r, const struct kvm_sregs *s,
		      const struct kvm_vcpu_events *e)
{
	size_t n = 0;
	if (len)
		buf[0] = '\0';
	put(buf, len, &n, "RIP=0x%llx RSP=0x%llx RFLAGS=0x%llx", (unsigned long long)r->rip,
	    (unsigned long long)r->rsp, (unsigned long long)r->rflags);
	put(buf, len, &n, " CR0=0x%llx CR2=0x%llx CR3=0x%llx CR4=0x%llx EFER=0x%llx",
	    (unsigned long long)s->cr0, (unsigned long long)s->cr2, (unsigned long long)s->cr3,
	    (unsigned long long)s->cr4, (unsigned long long)s->efer);
	put_segment(buf, len, &n, "CS", &s->cs);
	put_segment(buf, len, &n, "SS", &s->ss);
	put(buf, len, &n, " GDTR=0x%llx/0x%x IDTR=0x%llx/0x%x", (unsigned long long)s->gdt.base,
	    s->gdt.limit, (unsigned long long)s->idt.base, s->idt.limit);
	put_exception(buf, len, &n, e);
	return n < len ? (int)n : -ENOSPC;
}

bool vcpu_state_is_init(const struct kvm_regs *r, const struct kvm_sregs *s)
{
	return r->rip == 0xfff0 && s->cs.selector == 0xf000 && s->cs.base == 0xffff0000 &&
	       !(s->cr0 & 1);
}

void vcpu_log_state(struct vcpu *v, enum log_level lvl, const char *what)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_vcpu_events events;
	const char *failed = NULL;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		failed = "KVM_GET_REGS";
	else if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		failed = "KVM_GET_SREGS";
	else if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &events) < 0)
		failed = "KVM_GET_VCPU_EVENTS";
	if (failed) {
		log_msg(lvl, __FILE__, __LINE__, "vCPU %u %s: registers unavailable: %s: %s",
			v->index, what, failed, strerror(errno));
		return;
	}
	char line[VCPU_STATE_MAX];
	if (vcpu_state_format(line, sizeof(line), &regs, &sregs, &events) < 0)
		line[sizeof(line) - 1] = '\0'; /* cannot happen: VCPU_STATE_MAX fits the widest */
	char io[64] = "";
	if (v->last_io_exit)
		snprintf(io, sizeof(io), " last_io=%s-%s@0x%llx",
			 v->last_io_exit == KVM_EXIT_IO ? "pio" : "mmio",
			 v->last_io_write ? "write" : "read", (unsigned long long)v->last_io_addr);
	log_msg(lvl, __FILE__, __LINE__, "vCPU %u %s: %s exits=%llu%s%s", v->index, what, line,
		(unsigned long long)v->nr_exits, io,
		vcpu_state_is_init(&regs, &sregs)
		    ? " (the INIT state: this host's KVM reset the vCPU, as AMD SVM does on a "
		      "triple fault, so the faulting registers are lost)"
		    : "");
}
