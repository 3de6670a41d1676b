/* Per-thread seccomp filters. Each kiln thread runs under the allow-list of its role
 * (seccomp/rules.h, the single source), compiled to classic BPF at build time by
 * seccomp/gen_filters into $(BUILD)/seccomp_filters.c; kiln only loads the embedded
 * programs. A forbidden syscall raises SIGSYS (SECCOMP_RET_TRAP): the handler prints one
 * line and exits with KILN_EXIT_SECCOMP. A syscall of another ABI (i386 via int 0x80, x32)
 * kills the process outright. See docs/seccomp.md. */
#ifndef KILN_SECCOMP_H
#define KILN_SECCOMP_H

#include <linux/filter.h>

enum seccomp_role {
	SECCOMP_ROLE_VMM,  /* the main thread: the device event loop, signals, teardown */
	SECCOMP_ROLE_VCPU, /* vCPU threads: KVM_RUN and exit handling */
	SECCOMP_ROLE_API,  /* the API thread once the VM runs: HTTP on its socket */
	SECCOMP_ROLE_COUNT,
};

static inline const char *seccomp_role_name(int role)
{
	return role == SECCOMP_ROLE_VMM	   ? "vmm"
	       : role == SECCOMP_ROLE_VCPU ? "vcpu"
	       : role == SECCOMP_ROLE_API  ? "api"
					   : "?";
}

/* Loads the filter of `role` on the calling thread only (no TSYNC: roles differ per thread):
 * sets PR_SET_NO_NEW_PRIVS, then seccomp(SECCOMP_SET_MODE_FILTER). Threads created
 * afterwards inherit it. 0, -EINVAL for an unknown role, or -errno from the kernel. */
int seccomp_install(enum seccomp_role role);

/* Installs the process-wide SIGSYS handler (SA_SIGINFO) that writes
 * "kiln: seccomp: thread <tid> role <role> made forbidden syscall <nr> (<name>)" to stderr
 * with write(2) and exits with KILN_EXIT_SECCOMP (148). Call once during setup, before the
 * first seccomp_install(). 0 or -errno. */
int seccomp_setup_sigsys(void);

/* Test builds (-DKILN_TEST_HOOKS, build/kiln-testhooks): if the environment variable
 * KILN_TEST_FORBIDDEN named `role` at startup, issues a syscall no role allows (getppid), so
 * tests can watch the SIGSYS path end kiln. Call right after seccomp_install(role). In
 * other builds it does nothing. */
void seccomp_test_hook(enum seccomp_role role);

/* ---- generated at build time ($(BUILD)/seccomp_filters.c) ---------------------------- */

struct seccomp_bpf {
	const struct sock_filter *insns;
	unsigned short len;
};

/* The BPF program of each role. */
extern const struct seccomp_bpf seccomp_filters[SECCOMP_ROLE_COUNT];

/* x86-64 syscall names by number, as libseccomp knows them at build time; NULL if unknown. */
extern const char *const seccomp_syscall_names[];
extern const unsigned seccomp_nr_syscall_names;

#endif
