/* vcpu_state_format: the exact line a triple fault or a hang dump logs, every exception
 * variant, the widest values fitting VCPU_STATE_MAX, and a short buffer; vcpu_log_state on
 * a vCPU whose registers cannot be read. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/log.h"
#include "vmm/vcpu.h"

struct state {
	struct kvm_regs r;
	struct kvm_sregs s;
	struct kvm_vcpu_events e;
};

/* The tiny guest's long-mode state at a divide-by-zero with an empty IDT. */
static void tiny_guest_state(struct state *st)
{
	memset(st, 0, sizeof(*st));
	st->r.rip = 0x100060;
	st->r.rsp = 0x8ff0;
	st->r.rflags = 0x10046;
	st->s.cr0 = 0x80050033;
	st->s.cr2 = 0xdead000;
	st->s.cr3 = 0x9000;
	st->s.cr4 = 0x20;
	st->s.efer = 0x500;
	st->s.cs = (struct kvm_segment){.selector = 0x8, .base = 0, .limit = 0xffffffff};
	st->s.ss = (struct kvm_segment){.selector = 0x10, .base = 0x1000, .limit = 0xfffff};
	st->s.gdt = (struct kvm_dtable){.base = 0x500, .limit = 0x1f};
	st->s.idt = (struct kvm_dtable){.base = 0, .limit = 0};
}

static const char *fmt(const struct state *st)
{
	static char line[VCPU_STATE_MAX];
	int n = vcpu_state_format(line, sizeof(line), &st->r, &st->s, &st->e);
	assert_int_equal(n, (int)strlen(line));
	return line;
}

static void test_exact_line(void **state)
{
	(void)state;
	struct state st;
	tiny_guest_state(&st);
	assert_string_equal(fmt(&st),
			    "RIP=0x100060 RSP=0x8ff0 RFLAGS=0x10046 CR0=0x80050033 CR2=0xdead000 "
			    "CR3=0x9000 CR4=0x20 EFER=0x500 CS=0x8/0x0/0xffffffff "
			    "SS=0x10/0x1000/0xfffff GDTR=0x500/0x1f IDTR=0x0/0x0 exception=none");
}

/* The state KVM on AMD leaves after a triple fault (the reset vector) is told apart from a
 * crashed guest's real state. */
static void test_init_state(void **state)
{
	(void)state;
	struct state st;
	tiny_guest_state(&st);
	assert_false(vcpu_state_is_init(&st.r, &st.s));
	st.r.rip = 0xfff0;
	st.s.cr0 = 0x60000010;
	st.s.cs = (struct kvm_segment){.selector = 0xf000, .base = 0xffff0000, .limit = 0xffff};
	assert_true(vcpu_state_is_init(&st.r, &st.s));
	st.s.cr0 |= 1; /* protected mode: not a reset vCPU */
	assert_false(vcpu_state_is_init(&st.r, &st.s));
}

static void test_exceptions(void **state)
{
	(void)state;
	struct state st;
	tiny_guest_state(&st);
	st.e.exception.pending = 1;
	st.e.exception.nr = 14;
	st.e.exception.has_error_code = 1;
	st.e.exception.error_code = 0x2;
	assert_non_null(strstr(fmt(&st), " IDTR=0x0/0x0 exception=pending nr=14 error_code=0x2"));
	st.e.exception.pending = 0;
	st.e.exception.injected = 1;
	st.e.exception.nr = 0;
	st.e.exception.has_error_code = 0;
	const char *line = fmt(&st);
	const char *tail = " exception=injected nr=0 error_code=none";
	assert_string_equal(line + strlen(line) - strlen(tail), tail);
}

static void test_widest_fits(void **state)
{
	(void)state;
	struct state st;
	memset(&st, 0xff, sizeof(st));
	st.e.exception.nr = 255;
	char line[VCPU_STATE_MAX];
	int n = vcpu_state_format(line, sizeof(line), &st.r, &st.s, &st.e);
	assert_true(n > 0);
	assert_int_equal(n, (int)strlen(line));
	/* With "kiln: [ERROR] <file>:<line>: vCPU 31 triple fault: " it still fits one log
	 * line (512 bytes). */
	assert_true(n + 64 < 512);
}

static void test_short_buffer(void **state)
{
	(void)state;
	struct state st;
	tiny_guest_state(&st);
	char line[32];
	assert_int_equal(vcpu_state_format(line, sizeof(line), &st.r, &st.s, &st.e), -ENOSPC);
	assert_int_equal(strlen(line), sizeof(line) - 1);
	assert_int_equal(strncmp(line, "RIP=0x100060 RSP=0x8ff0 RFLAGS=", 31), 0);
	assert_int_equal(vcpu_state_format(line, 0, &st.r, &st.s, &st.e), -ENOSPC);
}

/* Without a vCPU fd the line names the ioctl that failed instead of the registers. */
static void test_log_unavailable(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	log_setup(p[1], LOG_WARN, 1, 0);
	struct vcpu v = {.index = 3, .fd = -1};
	vcpu_log_state(&v, LOG_WARN, "state");
	log_setup(2, LOG_OFF, 0, 0);
	char buf[256] = {0};
	assert_true(read(p[0], buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "kiln: [WARN] vCPU 3 state: registers unavailable: KVM_GET_REGS: "
				 "Bad file descriptor\n");
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	log_setup(2, LOG_OFF, 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_line),	    cmocka_unit_test(test_exceptions),
	    cmocka_unit_test(test_widest_fits),	    cmocka_unit_test(test_short_buffer),
	    cmocka_unit_test(test_log_unavailable), cmocka_unit_test(test_init_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
