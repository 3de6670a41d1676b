/* The per-role syscall allow-lists: the single source of kiln's seccomp policy.
 * seccomp/gen_filters compiles this table into BPF at build time and
 * tests/unit/test_seccomp.c checks the generated programs against it; nothing else lists
 * syscalls. Included only by those two programs (host builds, x86-64 syscall numbers).
 *
 * One entry is one allow rule: a syscall, the roles it is allowed in, up to two argument
 * conditions that must all hold, and why kiln needs it. Several entries for one syscall
 * allow it if any of them matches. A condition is (args[i] & mask) == value; ARG32 compares
 * the low 32 bits only, as the kernel does for int arguments (musl sign-extends an int
 * ioctl request, so a 64-bit compare would miss requests with bit 31 set).
 *
 * The set is what musl actually issues, seen with `strace -f build/kiln` for the tiny guest
 * in every mode, plus what reading the device code shows the exits can reach: queue work
 * runs on the main thread (ioeventfd kicks reach the event loop), register accesses on the
 * vCPU thread that exited (so device activate/reset run there). The virtio-net and vsock
 * entries come from reading those devices before they were wired into main.c: check them
 * with strace once they are. The api role (the API thread once the VM runs) serves HTTP on
 * connections it accepts, with malloc and the condition variable of its calls to the VMM
 * thread (futex); pre-boot it runs unfiltered, as it checks configured files. Entries come in
 * priority order: the filter tests the first ones first, so keep the hot ones on top. How to add
 * one: docs/seccomp.md. */
#ifndef KILN_SECCOMP_RULES_H
#define KILN_SECCOMP_RULES_H

#include "seccomp/seccomp.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/futex.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#define SECCOMP_RULE_MAX_ARGS 2

/* Role masks. */
#define R_VMM (1u << SECCOMP_ROLE_VMM)
#define R_VCPU (1u << SECCOMP_ROLE_VCPU)
#define R_API (1u << SECCOMP_ROLE_API)
#define R_ALL (R_VMM | R_VCPU)

struct seccomp_arg_cond {
	uint8_t used;
	uint8_t arg; /* 0..5 */
	uint64_t mask;
	uint64_t value; /* allowed when (args[arg] & mask) == value */
};

struct seccomp_rule {
	unsigned roles;
	int nr;
	const char *name;
	struct seccomp_arg_cond cond[SECCOMP_RULE_MAX_ARGS];
	const char *why;
};

/* clang-format off */
#define ARG32(i, v) {1, (i), 0xffffffffULL, (uint32_t)(v)}
#define ARG_MASKED(i, m, v) {1, (i), (m), (v)}

#define ALLOW(roles, sys, why) {(roles), __NR_##sys, #sys, {{0}}, why}
#define ALLOW_IF(roles, sys, c0, why) {(roles), __NR_##sys, #sys, {c0}, why}
#define ALLOW_IF2(roles, sys, c0, c1, why) {(roles), __NR_##sys, #sys, {c0, c1}, why}
/* clang-format on */

/* musl's open() adds O_LARGEFILE, which is 0100000 on x86-64 (glibc, which builds this
 * table, defines it as 0 there). */
#define MUSL_O_LARGEFILE 0100000

/* musl's malloc: anonymous private memory, never executable. */
#define MMAP_FLAGS_MASK (MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS)

static const struct seccomp_rule seccomp_rules[] = {
    /* ---- hot paths ---- */
    ALLOW_IF(R_VCPU, ioctl, ARG32(1, KVM_RUN), "the vCPU loop; only vCPU threads run the guest"),
    ALLOW(R_ALL | R_API, write,
	  "vcpu: 8250 output to stdout, log lines, eventfd signals (VM exit request, console "
	  "FIFO space, virtio irqfd); vmm: log lines, eventfd signals; both: the SIGSYS line"),
    ALLOW(R_VMM | R_API, epoll_pwait, "the device event loop (musl's epoll_wait is epoll_pwait)"),
    ALLOW(R_VMM | R_API, read,
	  "drains eventfds (exit request, ioeventfd kicks and interrupt acknowledgements, "
	  "console space), signalfd, stdin for the console, the rate limiter's timerfd"),
    ALLOW_IF(R_ALL, ioctl, ARG32(1, KVM_IRQ_LINE),
	     "8250 interrupt line: vcpu on register accesses, vmm when console input arrives"),
    ALLOW_IF(R_ALL | R_API, futex, ARG32(1, FUTEX_WAIT_PRIVATE),
	     "contended device mutexes (serial, virtio-mmio), musl's thread-list lock"),
    ALLOW_IF(R_ALL | R_API, futex, ARG32(1, FUTEX_WAKE_PRIVATE), "the other half of the same"),
    ALLOW_IF(R_ALL | R_API, futex, ARG32(1, FUTEX_WAIT),
	     "pthread_join waits on the thread's tid word (shared futex); musl's fallback "
	     "when private futexes return ENOSYS"),
    ALLOW_IF(R_ALL | R_API, futex, ARG32(1, FUTEX_WAKE), "the other half of the same"),
    ALLOW_IF(R_ALL | R_API, futex, ARG32(1, FUTEX_REQUEUE_PRIVATE),
	     "musl's pthread_cond_wait hands woken waiters over to the mutex (pause/resume of "
	     "the vCPUs, the API's calls to the VMM thread)"),
    ALLOW(R_ALL | R_API, clock_gettime,
	  "rate-limited logging and the rate limiter; the vDSO falls back to the syscall when "
	  "the clocksource has no vDSO reader"),

    /* ---- virtio devices: queues are served by the event loop (main thread) ---- */
    ALLOW(R_VMM, preadv, "virtio-blk reads"),
    ALLOW(R_VMM, pwritev, "virtio-blk writes"),
    ALLOW(R_VMM, fdatasync, "virtio-blk flush (cache_type Writeback)"),
    ALLOW(R_VMM, io_uring_enter,
	  "virtio-blk io_engine Async: submit and reap (the ring is set up before the filter)"),
    ALLOW(R_VMM, timerfd_settime,
	  "rate limiters arm their retry timer; vsock arms its handshake/shutdown deadlines"),
    ALLOW(R_VMM, writev, "musl stdio (dprintf of the metrics line); virtio-net TX to the TAP"),
    ALLOW(R_VMM, readv, "virtio-net RX from the TAP"),
    ALLOW(R_VMM, sendmsg, "vsock: data to the host socket; virtio-net TX to a socket backend"),
    ALLOW(R_VMM, recvmsg, "vsock: data from the host socket; virtio-net RX, socket backend"),
    ALLOW(R_VMM, recvfrom, "vsock: musl's recv() (MSG_PEEK at the CONNECT handshake line)"),
    ALLOW(R_API, sendto, "api: HTTP responses (musl's send() is sendto)"),
    ALLOW(R_VMM | R_API, accept4, "vsock: host-initiated connections on the listening socket"),
    ALLOW_IF(R_VMM, socket, ARG32(0, AF_UNIX),
	     "vsock: a guest-initiated connection opens <uds_path>_<port>; AF_UNIX only"),
    ALLOW(R_VMM, connect, "vsock: the same connection"),
    ALLOW(R_VMM, unlink, "vsock: removes its listening socket's path at exit"),

    /* ---- virtio device register accesses on vCPU threads (activate/reset) ---- */
    ALLOW(R_ALL | R_API, epoll_ctl,
	  "vmm: console input pause/resume, devices (un)watching fds; vcpu: net and vsock "
	  "activate/reset (un)watch the TAP, the listener and connections"),
    ALLOW_IF(R_VCPU, ioctl, ARG32(1, TUNSETOFFLOAD),
	     "virtio-net activate/reset: TAP offloads follow the negotiated features"),
    ALLOW(R_ALL | R_API, close, "vmm: teardown, vsock connections; vcpu: vsock reset drops them"),

    /* ---- memory: musl's malloc after setup, teardown ---- */
    ALLOW_IF2(R_VMM | R_API, mmap, ARG_MASKED(2, PROT_EXEC, 0),
	      ARG_MASKED(3, MMAP_FLAGS_MASK, MAP_PRIVATE | MAP_ANONYMOUS),
	      "malloc: anonymous private memory, never PROT_EXEC"),
    ALLOW(R_ALL | R_API, munmap,
	  "free() (vcpu: vsock reset frees connection buffers); vmm teardown unmaps guest "
	  "memory, kvm_run areas, thread stacks"),
    ALLOW_IF(R_ALL | R_API, madvise, ARG32(2, MADV_FREE),
	     "free(): musl's malloc returns freed pages"),
    ALLOW(R_VMM | R_API, brk, "musl's malloc grows its metadata area with brk"),

    /* ---- diagnostics: a vCPU logs its own state (triple fault, KVM error, hang dump) ---- */
    ALLOW_IF(R_ALL, ioctl, ARG32(1, KVM_GET_REGS),
	     "vcpu_log_state: RIP, RSP, RFLAGS; vmm: a snapshot of the paused vCPUs"),
    ALLOW_IF(R_ALL, ioctl, ARG32(1, KVM_GET_SREGS),
	     "vcpu_log_state: control registers, EFER, CS/SS, GDTR/IDTR; vmm: a snapshot"),
    ALLOW_IF(R_ALL, ioctl, ARG32(1, KVM_GET_VCPU_EVENTS),
	     "vcpu_log_state: the pending or injected exception; vmm: a snapshot"),

    /* ---- PUT /snapshot/create, on the VMM thread of the paused VM ---- */
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_XSAVE), "snapshot: a vCPU's FPU/XSAVE state"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_XCRS), "snapshot: a vCPU's XCR0"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_DEBUGREGS), "snapshot: a vCPU's debug registers"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_LAPIC), "snapshot: a vCPU's local APIC"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_MP_STATE), "snapshot: a vCPU's MP state"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_MSRS), "snapshot: a vCPU's MSRs"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_MSR_INDEX_LIST), "snapshot: which MSRs to save"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_IRQCHIP), "snapshot: the PICs and the IOAPIC"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_PIT2), "snapshot: the PIT"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_CLOCK), "snapshot: the KVM clock"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, KVM_GET_DIRTY_LOG),
	     "snapshot Diff: the pages the guest dirtied since the last snapshot"),
    ALLOW_IF(R_VMM, open, ARG32(1, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | MUSL_O_LARGEFILE),
	     "snapshot: creates the state file and the memory file"),
    ALLOW_IF(R_VMM, fcntl, ARG32(1, F_SETFD),
	     "snapshot: musl's open() sets FD_CLOEXEC again (for kernels without O_CLOEXEC)"),
    ALLOW(R_VMM, pwrite64, "snapshot: writes the state file and the memory file's pages"),
    ALLOW(R_VMM, pread64,
	  "metrics: reads KVM's binary stats (the counters' values, from the VM's and vCPUs' "
	  "stats fds opened at setup) on each flush"),
    ALLOW(R_VMM, ftruncate, "snapshot: sizes the memory file (holes where the guest has zeros)"),
    ALLOW(R_VMM, mremap, "snapshot: musl's realloc() grows the state file's buffer"),

    /* ---- the API thread: PATCH /drives opens, locks and sizes the new backing file ---- */
    ALLOW_IF(R_API, open, ARG32(1, O_RDWR | O_CLOEXEC | MUSL_O_LARGEFILE),
	     "PATCH /drives: the new backing file of a read-write drive (never O_CREAT)"),
    ALLOW_IF(R_API, open, ARG32(1, O_RDONLY | O_CLOEXEC | MUSL_O_LARGEFILE),
	     "PATCH /drives: the new backing file of a read-only drive"),
    ALLOW_IF(R_API, fcntl, ARG32(1, F_SETFD),
	     "PATCH /drives: musl's open() sets FD_CLOEXEC again (for kernels without O_CLOEXEC)"),
    ALLOW_IF(R_API, flock, ARG32(1, LOCK_EX | LOCK_NB), "PATCH /drives: the image lock"),
    ALLOW_IF(R_API, flock, ARG32(1, LOCK_SH | LOCK_NB), "PATCH /drives: the same, read-only"),
    ALLOW(R_API, fstat, "PATCH /drives: the new file's type and size"),
    ALLOW_IF(R_API, ioctl, ARG32(1, BLKGETSIZE64), "PATCH /drives: a block device's size"),
    ALLOW(R_API, stat, "PATCH /drives: config_check_drive() stats the new file"),
    ALLOW(R_API, access, "PATCH /drives: config_check_drive() checks read/write access"),

    /* ---- signals, threads, exit ---- */
    ALLOW(R_ALL | R_API, rt_sigprocmask,
	  "vcpu: unblocks the SIGUSR1 kick, musl blocks signals in pthread_exit; vmm: musl "
	  "pthread_kill and pthread_join"),
    ALLOW(R_ALL | R_API, rt_sigreturn, "return from the SIGUSR1 kick handler (and any handler)"),
    ALLOW_IF(R_VMM, tkill, ARG32(1, SIGUSR1),
	     "vcpu_stop_all and the SIGUSR2/SIGTERM state dump kick vCPUs out of KVM_RUN "
	     "(musl pthread_kill is tkill)"),
    ALLOW_IF(R_VMM, ioctl, ARG32(1, TCSETS), "console_stop restores the terminal settings"),
    ALLOW(R_VCPU | R_API, exit, "a vCPU thread ends (pthread_exit)"),
    ALLOW(R_ALL | R_API, gettid, "the SIGSYS handler names the thread"),
    ALLOW(R_ALL | R_API, exit_group, "exit() at the end of main; _exit(148) in the SIGSYS handler"),
};

#define SECCOMP_NR_RULES (sizeof(seccomp_rules) / sizeof(seccomp_rules[0]))

#endif
