/* The vCPU threads: KVM_RUN in a loop, each exit dispatched to the I/O buses or turned into
 * a VM exit reason. */
#include "seccomp/seccomp.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>

static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t size = run->io.size;
	uint64_t total = (uint64_t)size * run->io.count;
	/* The data area is KVM's, but never index past the mapping on its word. */
	if (size == 0 || size > 8 || run->io.data_offset > v->run_size ||
	    total > v->run_size - run->io.data_offset)
		return;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus_write(&v->vm->pio, run->io.port, data, size);
		else
			bus_read(&v->vm->pio, run->io.port, data, size);
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data))
		return;
	if (run->mmio.is_write)
		bus_write(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	else
		bus_read(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
}

static int vcpu_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(&v->vm->exit, VM_EXIT_POWEROFF);
		return 1;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(&v->vm->exit, VM_EXIT_REBOOT);
		return 1;
	default:
		log_err("vCPU %u: system event %u", v->index, v->run->system_event.type);
		vm_request_exit(&v->vm->exit, VM_EXIT_ERROR);
		return 1;
	}
}

static void vcpu_count(struct vcpu *v, unsigned which)
{
	atomic_fetch_add_explicit(&v->counts[which], 1, memory_order_relaxed);
}

/* Notes an exit for the state lines (vcpu_log_state) and the metrics. */
static void vcpu_count_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	v->nr_exits++;
	if (run->exit_reason == KVM_EXIT_IO) {
		v->last_io_exit = KVM_EXIT_IO;
		v->last_io_write = run->io.direction == KVM_EXIT_IO_OUT;
		v->last_io_addr = run->io.port;
		vcpu_count(v, v->last_io_write ? VCPU_EXIT_IO_OUT : VCPU_EXIT_IO_IN);
	} else if (run->exit_reason == KVM_EXIT_MMIO) {
		v->last_io_exit = KVM_EXIT_MMIO;
		v->last_io_write = run->mmio.is_write;
		v->last_io_addr = run->mmio.phys_addr;
		vcpu_count(v, v->last_io_write ? VCPU_EXIT_MMIO_WRITE : VCPU_EXIT_MMIO_READ);
	}
}

int vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	vcpu_count_exit(v);
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(v);
		return 0;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v);
		return 0;
	case KVM_EXIT_HLT:
		/* Only seen where the irqchip does not keep HLT in the kernel (PVM); the next
		 * KVM_RUN waits for an interrupt there. */
		return 0;
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault: the guest crashed (Linux resets through the i8042 or ACPI). */
		vcpu_log_state(v, LOG_ERROR, "triple fault");
		vm_request_exit(&v->vm->exit, VM_EXIT_TRIPLE_FAULT);
		return 1;
	case KVM_EXIT_SYSTEM_EVENT:
		return vcpu_system_event(v);
	case KVM_EXIT_INTERNAL_ERROR:
		log_err("vCPU %u: KVM internal error, suberror %u", v->index,
			run->internal.suberror);
		vcpu_log_state(v, LOG_ERROR, "state");
		break;
	case KVM_EXIT_FAIL_ENTRY:
		log_err("vCPU %u: KVM entry failed, reason 0x%llx", v->index,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_log_state(v, LOG_ERROR, "state");
		break;
	default:
		log_err("vCPU %u: unexpected KVM exit %u", v->index, run->exit_reason);
		break;
	}
	vcpu_count(v, VCPU_FAILURES);
	vm_request_exit(&v->vm->exit, VM_EXIT_ERROR);
	return 1;
}

/* Test builds (-DKILN_TEST_HOOKS): KILN_TEST_FAIL_KVM_RUN=1 makes vCPU 0's first KVM_RUN
 * fail with EFAULT, so tests can watch how kiln ends on a KVM error. */
static bool test_fail_kvm_run(const struct vcpu *v)
{
#ifdef KILN_TEST_HOOKS
	const char *env = getenv("KILN_TEST_FAIL_KVM_RUN");
	return v->index == 0 && env && strcmp(env, "1") == 0;
#else
	(void)v;
	return false;
#endif
}

/* The kick protocol (as QEMU's): a requester sets its flag (`stopping`, dump_requested),
 * then immediate_exit, then sends SIGUSR1. The vCPU clears immediate_exit each time KVM_RUN
 * returns and only then reads the flags, and sets immediate_exit again before KVM_RUN if a
 * request arrived meanwhile: so no request is lost, whenever the signal lands, and
 * immediate_exit never stays set without a request to serve. */
static int vcpu_kvm_run(struct vcpu *v, bool fail_run)
{
	if (atomic_load(&v->dump_requested) || atomic_load(&v->vm->pause_requested))
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	int rc = fail_run ? (errno = EFAULT, -1) : ioctl(v->fd, KVM_RUN, 0);
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	return rc;
}

/* Waits, out of KVM_RUN, while the VM is paused. */
static void vcpu_park(struct vcpu *v)
{
	struct vm *vm = v->vm;
	pthread_mutex_lock(&vm->pause_mu);
	vm->nr_parked++;
	pthread_cond_broadcast(&vm->pause_cv);
	while (atomic_load(&vm->pause_requested) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->pause_cv, &vm->pause_mu);
	vm->nr_parked--;
	pthread_mutex_unlock(&vm->pause_mu);
}

/* KVM_RUN until the VM stops, or is asked to end: a guest that powered off or reset keeps
 * running its next instructions otherwise until vcpu_stop_all() kicks it out. */
static void vcpu_run_loop(struct vcpu *v)
{
	bool fail_run = test_fail_kvm_run(v);
	while (!atomic_load(&v->vm->stopping) && atomic_load(&v->vm->exit.reason) == VM_RUNNING) {
		if (vcpu_kvm_run(v, fail_run) < 0) {
			if (errno != EINTR && errno != EAGAIN) {
				log_err("vCPU %u: KVM_RUN: %s", v->index, strerror(errno));
				vcpu_count(v, VCPU_FAILURES);
				vm_request_exit(&v->vm->exit, VM_EXIT_ERROR);
				break;
			}
			/* Any pending I/O was completed first: the state is consistent. */
			if (atomic_exchange(&v->dump_requested, false))
				vcpu_log_state(v, LOG_WARN, "state");
		} else if (vcpu_handle_exit(v)) {
			break;
		} else if (atomic_load(&v->vm->pause_requested)) {
			/* KVM finishes an exit (an IN's data into RAX, an MMIO read, a string
			 * I/O's next step) only on the next KVM_RUN: enter once more with
			 * immediate_exit set so a paused vCPU's registers, which a snapshot
			 * saves, are complete. */
			vcpu_kvm_run(v, fail_run);
		}
		if (atomic_load(&v->vm->pause_requested))
			vcpu_park(v);
	}
	/* A dump requested just before the VM stopped (SIGTERM) is still owed. */
	if (atomic_exchange(&v->dump_requested, false))
		vcpu_log_state(v, LOG_WARN, "state");
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	/* As Firecracker names its vCPU threads ("fc_vcpu N"), for top -H and the benches;
	 * before the filter, which has no prctl. */
	char name[16];
	snprintf(name, sizeof(name), "kiln_vcpu %u", v->index);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	if (v->index == 0 && v->vm->start_cpus_set)
		sched_setaffinity(0, sizeof(v->vm->start_cpus), &v->vm->start_cpus);
	if (v->vm->seccomp) {
		int err = seccomp_install(SECCOMP_ROLE_VCPU);
		if (err) {
			log_err("vCPU %u: seccomp: %s", v->index, strerror(-err));
			vm_request_exit(&v->vm->exit, VM_EXIT_ERROR);
			return NULL;
		}
		seccomp_test_hook(SECCOMP_ROLE_VCPU);
	}
	vcpu_run_loop(v);
	return NULL;
}

/* Pins the calling thread to the CPU it runs on, the process's mask saved in
 * vm->start_cpus first, so that the thread it creates next (vCPU 0's) starts on this CPU,
 * which is awake, not on an idle one the scheduler would have to wake: on a nested host
 * that wake-up took up to a millisecond between the last setup step and the guest's first
 * instruction (bench/startup). The caller undoes it after pthread_create() with
 * vcpu_unpin_self(), the new thread restores its mask first thing, so both may run anywhere
 * again at once. False (nothing
 * changed) if the masks cannot be read or set. */
static bool vcpu_pin_self(struct vm *vm)
{
	int cpu = sched_getcpu();
	if (cpu < 0 || sched_getaffinity(0, sizeof(vm->start_cpus), &vm->start_cpus) < 0)
		return false;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	vm->start_cpus_set = sched_setaffinity(0, sizeof(one), &one) == 0;
	return vm->start_cpus_set;
}

/* Undoes vcpu_pin_self() for the calling thread. When vCPU 0's thread was created (move),
 * this thread first moves to another CPU of the saved mask, if there is one, so that vCPU 0
 * runs on the CPU it was pinned to at once, not after the rest of this thread's setup (its
 * seccomp filter, the event loop); this thread then pays the other CPU's wake-up. */
static void vcpu_unpin_self(struct vm *vm, bool move)
{
	cpu_set_t others = vm->start_cpus;
	int cpu = sched_getcpu();
	if (move && cpu >= 0) {
		CPU_CLR(cpu, &others);
		if (CPU_COUNT(&others) > 0)
			sched_setaffinity(0, sizeof(others), &others);
	}
	sched_setaffinity(0, sizeof(vm->start_cpus), &vm->start_cpus);
}

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_start_all(struct vm *vm)
{
	struct sigaction sa = {.sa_handler = vcpu_kick_handler};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		return -errno;
	pthread_mutex_init(&vm->pause_mu, NULL);
	pthread_cond_init(&vm->pause_cv, NULL);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpu[i];
		bool pinned = i == 0 && vcpu_pin_self(vm);
		int err = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (pinned)
			vcpu_unpin_self(vm, !err);
		if (err)
			return -err;
		v->thread_started = true;
	}
	return 0;
}

void vcpu_request_state_dump(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpu[i];
		if (!v->thread_started)
			continue;
		/* The flag before immediate_exit: see vcpu_kvm_run(). */
		atomic_store(&v->dump_requested, true);
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, SIGUSR1);
	}
}

/* Kicks every started vCPU out of KVM_RUN (the protocol of vcpu_kvm_run()). */
static void vcpu_kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpu[i];
		if (!v->thread_started)
			continue;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, SIGUSR1);
	}
}

int vcpu_pause_all(struct vm *vm)
{
	unsigned started = 0;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		started += vm->vcpu[i].thread_started;
	atomic_store(&vm->pause_requested, true);
	vcpu_kick_all(vm);
	pthread_mutex_lock(&vm->pause_mu);
	/* A vCPU that ends instead (guest reset meanwhile) never parks: give up then, and
	 * after VCPU_PAUSE_TIMEOUT_MS in any case, rather than hang the VMM thread. */
	for (unsigned waited = 0;
	     vm->nr_parked < started && atomic_load(&vm->exit.reason) == VM_RUNNING &&
	     waited < VCPU_PAUSE_TIMEOUT_MS;
	     waited += 50) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&vm->pause_cv, &vm->pause_mu, &ts);
	}
	bool all = vm->nr_parked >= started;
	pthread_mutex_unlock(&vm->pause_mu);
	if (all)
		return 0;
	return atomic_load(&vm->exit.reason) == VM_RUNNING ? -ETIMEDOUT : -ESHUTDOWN;
}

void vcpu_resume_all(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_mu);
	atomic_store(&vm->pause_requested, false);
	pthread_cond_broadcast(&vm->pause_cv);
	pthread_mutex_unlock(&vm->pause_mu);
}

void vcpu_stop_all(struct vm *vm)
{
	atomic_store(&vm->stopping, true);
	if (vm->nr_vcpus && vm->vcpu[0].thread_started) {
		pthread_mutex_lock(&vm->pause_mu);
		pthread_cond_broadcast(&vm->pause_cv); /* parked vCPUs see `stopping` */
		pthread_mutex_unlock(&vm->pause_mu);
	}
	vcpu_kick_all(vm); /* immediate_exit first: a vCPU about to enter KVM_RUN returns */
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpu[i];
		if (v->thread_started)
			pthread_join(v->thread, NULL);
		v->thread_started = false;
	}
}
