#include "seccomp/seccomp.h"
#include "vmm/log.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_SECCOMP /* glibc keeps it in asm-generic/siginfo.h only */
#define SYS_SECCOMP 1
#endif

/* Two exceptions to "no mutable globals", both because a signal handler gets no context
 * pointer: the role of each thread (thread-local, written once by seccomp_install on that
 * thread), and the flag that lets only the first faulting thread print its line. */
static _Thread_local int thread_role = -1;
static atomic_int sigsys_taken;

int seccomp_install(enum seccomp_role role)
{
	if ((unsigned)role >= SECCOMP_ROLE_COUNT || !seccomp_filters[role].len)
		return -EINVAL;
	struct sock_fprog prog = {
	    .len = seccomp_filters[role].len,
	    .filter = (struct sock_filter *)seccomp_filters[role].insns,
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	int prev = thread_role;
	thread_role = role; /* before the filter: the first trap may follow at once */
	/* No SECCOMP_FILTER_FLAG_TSYNC: every thread loads the filter of its own role. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		thread_role = prev;
		return -errno;
	}
	return 0;
}

/* Appends s to buf at *n, truncating at cap. */
static void put_str(char *buf, size_t cap, size_t *n, const char *s)
{
	while (*s && *n < cap)
		buf[(*n)++] = *s++;
}

static void put_num(char *buf, size_t cap, size_t *n, long long v)
{
	char digits[24];
	size_t d = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		digits[d++] = (char)('0' + u % 10);
	while ((u /= 10) && d < sizeof(digits));
	if (v < 0 && *n < cap)
		buf[(*n)++] = '-';
	while (d && *n < cap)
		buf[(*n)++] = digits[--d];
}

/* Async-signal-safe: no stdio, no locks, only write(2), gettid(2) and exit_group(2), which
 * every role allows. */
static void sigsys_handler(int sig, siginfo_t *info, void *uctx)
{
	(void)sig;
	(void)uctx;
	if (atomic_exchange(&sigsys_taken, 1)) {
		for (;;) /* another thread is printing and exiting: wait for exit_group */
			;
	}
	long nr = info->si_code == SYS_SECCOMP ? info->si_syscall : -1;
	const char *name = nr >= 0 && (unsigned long)nr < seccomp_nr_syscall_names
			       ? seccomp_syscall_names[nr]
			       : NULL;
	char line[160];
	const size_t cap = sizeof(line) - 1; /* room for the newline */
	size_t n = 0;
	put_str(line, cap, &n, "kiln: seccomp: thread ");
	put_num(line, cap, &n, syscall(SYS_gettid));
	put_str(line, cap, &n, " role ");
	put_str(line, cap, &n, seccomp_role_name(thread_role));
	put_str(line, cap, &n, " made forbidden syscall ");
	put_num(line, cap, &n, nr);
	put_str(line, cap, &n, " (");
	put_str(line, cap, &n, name ? name : "unknown");
	put_str(line, cap, &n, ")");
	line[n++] = '\n';
	ssize_t rc = write(STDERR_FILENO, line, n);
	(void)rc;
	/* exit_group directly: a sanitizer's _exit interceptor would run more syscalls. */
	syscall(SYS_exit_group, KILN_EXIT_SECCOMP);
	for (;;)
		;
}

int seccomp_setup_sigsys(void)
{
	struct sigaction sa = {.sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO};
	sigfillset(&sa.sa_mask); /* nothing may run on top of the handler */
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

#ifdef KILN_TEST_HOOKS
/* Test builds only: latched before any filter, read-only afterwards. */
static const char *test_forbidden_role;

__attribute__((constructor)) static void seccomp_test_hook_init(void)
{
	test_forbidden_role = getenv("KILN_TEST_FORBIDDEN");
}

void seccomp_test_hook(enum seccomp_role role)
{
	if (test_forbidden_role && strcmp(test_forbidden_role, seccomp_role_name(role)) == 0)
		syscall(SYS_getppid); /* in no role's allow-list */
}
#else
void seccomp_test_hook(enum seccomp_role role)
{
	(void)role;
}
#endif
