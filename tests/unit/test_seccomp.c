/* The seccomp filters kiln embeds match seccomp/rules.h: a classic-BPF interpreter runs the
 * generated programs on struct seccomp_data inputs and its verdicts are compared with the
 * table's, for every syscall number, both roles, allowed and forbidden argument values, and
 * other ABIs. Then real filters in forked children (the test process stays unfiltered): the
 * SIGSYS line and exit code 148, allowed syscalls passing, i386 and x32 syscalls killing. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "seccomp/rules.h"
#include "seccomp/seccomp.h"
#include "tests/unit/test_child.h"
#include "vmm/log.h"

#define NR_MAX 450
#define X32_BIT 0x40000000u
#define ACTION(ret) ((ret)&SECCOMP_RET_ACTION_FULL)
#define BAD_INSN 0xdeadu /* interpreter verdict for a program it cannot run */

/* ---- a classic-BPF interpreter for seccomp programs ---------------------------------- */

static uint32_t load_word(const struct seccomp_data *d, uint32_t off, bool *ok)
{
	uint32_t w = 0;
	if (off % 4 || off > sizeof(*d) - 4) {
		*ok = false;
		return 0;
	}
	memcpy(&w, (const uint8_t *)d + off, 4);
	return w;
}

static bool alu(uint16_t op, uint32_t *a, uint32_t v)
{
	switch (op) {
	case BPF_ADD:
		*a += v;
		break;
	case BPF_SUB:
		*a -= v;
		break;
	case BPF_MUL:
		*a *= v;
		break;
	case BPF_DIV:
		if (!v)
			return false;
		*a /= v;
		break;
	case BPF_AND:
		*a &= v;
		break;
	case BPF_OR:
		*a |= v;
		break;
	case BPF_XOR:
		*a ^= v;
		break;
	case BPF_LSH:
		*a = v < 32 ? *a << v : 0;
		break;
	case BPF_RSH:
		*a = v < 32 ? *a >> v : 0;
		break;
	case BPF_NEG:
		*a = -*a;
		break;
	default:
		return false;
	}
	return true;
}

static bool jump_taken(uint16_t op, uint32_t a, uint32_t v, bool *ok)
{
	switch (op) {
	case BPF_JEQ:
		return a == v;
	case BPF_JGT:
		return a > v;
	case BPF_JGE:
		return a >= v;
	case BPF_JSET:
		return (a & v) != 0;
	default:
		*ok = false;
		return false;
	}
}

/* Runs prog like the kernel does (forward jumps only, must end in a return). */
static uint32_t bpf_run(const struct seccomp_bpf *prog, const struct seccomp_data *d)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};
	bool ok = true;
	for (unsigned pc = 0; ok && pc < prog->len; pc++) {
		const struct sock_filter *i = &prog->insns[pc];
		uint32_t src = BPF_SRC(i->code) == BPF_X ? x : i->k;
		switch (BPF_CLASS(i->code)) {
		case BPF_LD:
			if (i->code == (BPF_LD | BPF_W | BPF_ABS))
				a = load_word(d, i->k, &ok);
			else if (i->code == (BPF_LD | BPF_IMM))
				a = i->k;
			else if (i->code == (BPF_LD | BPF_MEM) && i->k < BPF_MEMWORDS)
				a = mem[i->k];
			else
				ok = false;
			break;
		case BPF_LDX:
			if (i->code == (BPF_LDX | BPF_IMM))
				x = i->k;
			else if (i->code == (BPF_LDX | BPF_MEM) && i->k < BPF_MEMWORDS)
				x = mem[i->k];
			else
				ok = false;
			break;
		case BPF_ST:
		case BPF_STX:
			if (i->k >= BPF_MEMWORDS)
				return BAD_INSN;
			mem[i->k] = BPF_CLASS(i->code) == BPF_ST ? a : x;
			break;
		case BPF_ALU:
			ok = alu(BPF_OP(i->code), &a, src);
			break;
		case BPF_JMP:
			if (BPF_OP(i->code) == BPF_JA)
				pc += i->k;
			else
				pc += jump_taken(BPF_OP(i->code), a, src, &ok) ? i->jt : i->jf;
			break;
		case BPF_RET:
			return BPF_RVAL(i->code) == BPF_A ? a : i->k;
		case BPF_MISC:
			if (BPF_MISCOP(i->code) == BPF_TAX)
				x = a;
			else
				a = x;
			break;
		}
	}
	return BAD_INSN;
}

/* ---- the table's own verdict ------------------------------------------------------------ */

static bool rule_matches(const struct seccomp_rule *r, const struct seccomp_data *d)
{
	if (r->nr != d->nr)
		return false;
	for (unsigned i = 0; i < SECCOMP_RULE_MAX_ARGS; i++) {
		const struct seccomp_arg_cond *c = &r->cond[i];
		if (c->used && (d->args[c->arg] & c->mask) != c->value)
			return false;
	}
	return true;
}

static uint32_t table_verdict(int role, const struct seccomp_data *d)
{
	if (d->arch != AUDIT_ARCH_X86_64)
		return SECCOMP_RET_KILL_PROCESS;
	for (size_t i = 0; i < SECCOMP_NR_RULES; i++)
		if ((seccomp_rules[i].roles & (1u << role)) && rule_matches(&seccomp_rules[i], d))
			return SECCOMP_RET_ALLOW;
	return SECCOMP_RET_TRAP;
}

static struct seccomp_data data_of(int nr)
{
	return (struct seccomp_data){
	    .nr = nr, .arch = AUDIT_ARCH_X86_64, .instruction_pointer = 0x401000};
}

static uint32_t filter_verdict(int role, const struct seccomp_data *d)
{
	uint32_t ret = bpf_run(&seccomp_filters[role], d);
	assert_int_not_equal(ret, BAD_INSN);
	return ACTION(ret);
}

static void expect_same(int role, const struct seccomp_data *d)
{
	uint32_t want = table_verdict(role, d), got = filter_verdict(role, d);
	if (want != got)
		fail_msg("role %s, syscall %d, args %#llx %#llx %#llx %#llx: filter %#x, table %#x",
			 seccomp_role_name(role), d->nr, (unsigned long long)d->args[0],
			 (unsigned long long)d->args[1], (unsigned long long)d->args[2],
			 (unsigned long long)d->args[3], got, want);
}

/* An argument vector meeting every condition of r. */
static struct seccomp_data satisfying(const struct seccomp_rule *r)
{
	struct seccomp_data d = data_of(r->nr);
	for (unsigned i = 0; i < SECCOMP_RULE_MAX_ARGS; i++)
		if (r->cond[i].used)
			d.args[r->cond[i].arg] = r->cond[i].value;
	return d;
}

/* ---- the generated filters against the table --------------------------------------------- */

static void test_every_syscall_matches_table(void **state)
{
	(void)state;
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
		for (int nr = 0; nr <= NR_MAX; nr++) {
			struct seccomp_data d = data_of(nr);
			expect_same(role, &d);
			memset(d.args, 0xff, sizeof(d.args));
			expect_same(role, &d);
		}
	}
}

/* Around every condition: the value, each single-bit change inside the mask, bits outside it
 * (an int argument's upper half is ignored, as by the kernel), and all ones. */
static void test_argument_conditions_match_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < SECCOMP_NR_RULES; i++) {
		const struct seccomp_rule *r = &seccomp_rules[i];
		for (unsigned c = 0; c < SECCOMP_RULE_MAX_ARGS && r->cond[c].used; c++) {
			const struct seccomp_arg_cond *cond = &r->cond[c];
			uint64_t variants[67] = {~0ULL, cond->value | ~cond->mask};
			unsigned n = 2;
			for (unsigned bit = 0; bit < 64; bit++)
				variants[n++] = cond->value ^ (1ULL << bit);
			for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
				struct seccomp_data d = satisfying(r);
				expect_same(role, &d);
				for (unsigned v = 0; v < n; v++) {
					d.args[cond->arg] = variants[v];
					expect_same(role, &d);
				}
			}
		}
	}
}

/* Each entry allows its syscall in its roles; a restricted one also refuses some value. */
static void test_entries_allowed_and_restricted(void **state)
{
	(void)state;
	for (size_t i = 0; i < SECCOMP_NR_RULES; i++) {
		const struct seccomp_rule *r = &seccomp_rules[i];
		for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
			if (!(r->roles & (1u << role)))
				continue;
			struct seccomp_data d = satisfying(r);
			assert_int_equal(filter_verdict(role, &d), SECCOMP_RET_ALLOW);
			if (!r->cond[0].used)
				continue;
			bool refused = false;
			for (unsigned bit = 0; bit < 64 && !refused; bit++) {
				if (!(r->cond[0].mask >> bit & 1))
					continue;
				d.args[r->cond[0].arg] = r->cond[0].value ^ (1ULL << bit);
				refused = table_verdict(role, &d) == SECCOMP_RET_TRAP;
			}
			if (!refused)
				fail_msg("%s in role %s: no argument value is refused", r->name,
					 seccomp_role_name(role));
			assert_int_equal(filter_verdict(role, &d), SECCOMP_RET_TRAP);
		}
	}
}

static void test_other_abis_killed(void **state)
{
	(void)state;
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
		for (int nr = 0; nr <= NR_MAX; nr++) {
			struct seccomp_data d = data_of(nr);
			d.arch = AUDIT_ARCH_I386;
			assert_int_equal(filter_verdict(role, &d), SECCOMP_RET_KILL_PROCESS);
			d = data_of((int)(nr | X32_BIT));
			assert_int_equal(filter_verdict(role, &d), SECCOMP_RET_KILL_PROCESS);
		}
	}
}

static void test_default_is_trap(void **state)
{
	(void)state;
	static const int never[] = {__NR_execve, __NR_execveat, __NR_open,  __NR_openat,
				    __NR_ptrace, __NR_getppid,	__NR_fork,  __NR_clone,
				    __NR_kill,	 __NR_mprotect, __NR_prctl, __NR_seccomp};
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
		for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
			struct seccomp_data d = data_of(never[i]);
			assert_int_equal(bpf_run(&seccomp_filters[role], &d), SECCOMP_RET_TRAP);
		}
	}
}

/* Policy the table must keep, whatever gets added. */
static void test_policy_invariants(void **state)
{
	(void)state;
	struct seccomp_data d = data_of(__NR_ioctl);
	d.args[1] = KVM_RUN;
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VCPU, &d), SECCOMP_RET_ALLOW);
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_TRAP);
	d.args[1] = KVM_CREATE_VCPU; /* setup ioctls are over once the filters load */
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_TRAP);
	/* A vCPU logs its own state (triple fault, hang dump); the VMM thread reads the paused
	 * vCPUs' for a snapshot. */
	static const unsigned long vcpu_state_ioctls[] = {KVM_GET_REGS, KVM_GET_SREGS,
							  KVM_GET_VCPU_EVENTS};
	for (size_t i = 0; i < sizeof(vcpu_state_ioctls) / sizeof(vcpu_state_ioctls[0]); i++) {
		d.args[1] = vcpu_state_ioctls[i];
		assert_int_equal(filter_verdict(SECCOMP_ROLE_VCPU, &d), SECCOMP_RET_ALLOW);
		assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_ALLOW);
		assert_int_equal(filter_verdict(SECCOMP_ROLE_API, &d), SECCOMP_RET_TRAP);
	}
	/* The rest of a snapshot: the VMM thread only. */
	static const unsigned long snapshot_ioctls[] = {KVM_GET_XSAVE, KVM_GET_LAPIC,
							KVM_GET_MSRS,  KVM_GET_IRQCHIP,
							KVM_GET_CLOCK, KVM_GET_DIRTY_LOG};
	for (size_t i = 0; i < sizeof(snapshot_ioctls) / sizeof(snapshot_ioctls[0]); i++) {
		d.args[1] = snapshot_ioctls[i];
		assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_ALLOW);
		assert_int_equal(filter_verdict(SECCOMP_ROLE_VCPU, &d), SECCOMP_RET_TRAP);
	}
	/* Reading is enough: no role may set a vCPU's or the VM's state once running. */
	static const unsigned long setters[] = {KVM_SET_REGS,  KVM_SET_SREGS,	KVM_SET_MSRS,
						KVM_SET_LAPIC, KVM_SET_IRQCHIP, KVM_SET_CLOCK};
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++)
		for (size_t i = 0; i < sizeof(setters) / sizeof(setters[0]); i++) {
			d.args[1] = setters[i];
			assert_int_equal(filter_verdict(role, &d), SECCOMP_RET_TRAP);
		}
	/* The VMM thread creates snapshot files only with O_TRUNC, write-only. */
	d = data_of(__NR_open);
	d.args[1] = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | 0100000;
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_ALLOW);
	assert_int_equal(filter_verdict(SECCOMP_ROLE_API, &d), SECCOMP_RET_TRAP);
	d.args[1] = O_RDWR | O_CREAT | O_CLOEXEC | 0100000;
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_TRAP);
	d = data_of(__NR_mmap);
	d.args[2] = PROT_READ | PROT_WRITE | PROT_EXEC;
	d.args[3] = MAP_PRIVATE | MAP_ANONYMOUS;
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_TRAP);
	/* KVM's stats are read by the metrics flush on the VMM thread only. */
	d = data_of(__NR_pread64);
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_ALLOW);
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VCPU, &d), SECCOMP_RET_TRAP);
	assert_int_equal(filter_verdict(SECCOMP_ROLE_API, &d), SECCOMP_RET_TRAP);
	d = data_of(__NR_socket);
	d.args[0] = AF_INET;
	assert_int_equal(filter_verdict(SECCOMP_ROLE_VMM, &d), SECCOMP_RET_TRAP);
	static const int handler_needs[] = {__NR_write, __NR_gettid, __NR_exit_group,
					    __NR_rt_sigreturn};
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
		for (size_t i = 0; i < sizeof(handler_needs) / sizeof(handler_needs[0]); i++) {
			d = data_of(handler_needs[i]);
			assert_int_equal(filter_verdict(role, &d), SECCOMP_RET_ALLOW);
		}
	}
}

static void test_install_rejects_unknown_role(void **state)
{
	(void)state;
	assert_int_equal(seccomp_install(SECCOMP_ROLE_COUNT), -EINVAL);
	assert_int_equal(seccomp_install((enum seccomp_role) - 1), -EINVAL);
}

static void test_syscall_names(void **state)
{
	(void)state;
	assert_true(seccomp_nr_syscall_names > __NR_getppid);
	assert_string_equal(seccomp_syscall_names[__NR_getppid], "getppid");
	assert_string_equal(seccomp_syscall_names[__NR_ioctl], "ioctl");
}

/* ---- real filters, in forked children --------------------------------------------------- */

struct child {
	int status;
	pid_t pid;
	char err[512];
};

/* Runs fn(role) in a child with stderr on a pipe and no core dumps; fills *c. */
static void run_child(void (*fn)(int role), int role, struct child *c)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		test_child_begin();
		struct rlimit none = {0, 0};
		setrlimit(RLIMIT_CORE, &none);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		fn(role);
		syscall(SYS_exit_group, 99);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(c->err) - 1 && (r = read(p[0], c->err + n, sizeof(c->err) - 1 - n)) > 0)
		n += r;
	c->err[n] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(c->pid, &c->status, 0), c->pid);
}

static void filter_self(int role)
{
	if (seccomp_setup_sigsys() || seccomp_install(role))
		syscall(SYS_exit_group, 90);
}

static void child_forbidden(int role)
{
	filter_self(role);
	syscall(SYS_getppid);
	syscall(SYS_exit_group, 91);
}

static void child_allowed(int role)
{
	filter_self(role);
	ssize_t rc = write(STDERR_FILENO, "still here\n", 11);
	(void)rc;
	syscall(SYS_gettid);
	syscall(SYS_exit_group, 0);
}

static long i386_getpid(void)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

static void child_i386(int role)
{
	if (role >= 0)
		filter_self(role);
	syscall(SYS_exit_group, i386_getpid() == syscall(SYS_getpid) ? 0 : 1);
}

static void child_x32(int role)
{
	filter_self(role);
	syscall(__NR_getpid | X32_BIT);
	syscall(SYS_exit_group, 92);
}

static void test_forbidden_syscall_prints_and_exits_148(void **state)
{
	(void)state;
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
		struct child c;
		run_child(child_forbidden, role, &c);
		char want[200];
		snprintf(want, sizeof(want),
			 "kiln: seccomp: thread %d role %s made forbidden syscall %d (getppid)\n",
			 (int)c.pid, seccomp_role_name(role), __NR_getppid);
		assert_true(WIFEXITED(c.status));
		assert_int_equal(WEXITSTATUS(c.status), KILN_EXIT_SECCOMP);
		assert_string_equal(c.err, want);
	}
}

static void test_allowed_syscalls_pass(void **state)
{
	(void)state;
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
		struct child c;
		run_child(child_allowed, role, &c);
		assert_string_equal(c.err, "still here\n");
		assert_true(WIFEXITED(c.status));
		assert_int_equal(WEXITSTATUS(c.status), 0);
	}
}

static void test_i386_abi_kills(void **state)
{
	(void)state;
	struct child c;
	run_child(child_i386, -1, &c);
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
		skip(); /* no IA32 emulation in this kernel: int 0x80 cannot reach seccomp */
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
		run_child(child_i386, role, &c);
		assert_true(WIFSIGNALED(c.status));
		assert_int_equal(WTERMSIG(c.status), SIGSYS);
		assert_string_equal(c.err, ""); /* killed outright: the handler never ran */
	}
}

static void test_x32_abi_kills(void **state)
{
	(void)state;
	for (int role = 0; role < SECCOMP_ROLE_COUNT; role++) {
		struct child c;
		run_child(child_x32, role, &c);
		assert_true(WIFSIGNALED(c.status));
		assert_int_equal(WTERMSIG(c.status), SIGSYS);
		assert_string_equal(c.err, "");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_syscall_matches_table),
	    cmocka_unit_test(test_argument_conditions_match_table),
	    cmocka_unit_test(test_entries_allowed_and_restricted),
	    cmocka_unit_test(test_other_abis_killed),
	    cmocka_unit_test(test_default_is_trap),
	    cmocka_unit_test(test_policy_invariants),
	    cmocka_unit_test(test_install_rejects_unknown_role),
	    cmocka_unit_test(test_syscall_names),
	    cmocka_unit_test(test_forbidden_syscall_prints_and_exits_148),
	    cmocka_unit_test(test_allowed_syscalls_pass),
	    cmocka_unit_test(test_i386_abi_kills),
	    cmocka_unit_test(test_x32_abi_kills),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
