/* The event loop's scheduling policy: evloop_thread_batch() puts the calling thread, and
 * only it, at SCHED_BATCH (kiln calls it on the loop's thread once the vCPU threads exist,
 * so they stay SCHED_OTHER), and the threads it creates afterwards inherit it. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/evloop.h"

static int policy_of(pid_t tid)
{
	return (int)syscall(SYS_sched_getscheduler, tid);
}

static void *report_policy(void *arg)
{
	*(int *)arg = policy_of(0);
	return NULL;
}

/* A thread that switches itself, then creates one: that one starts at SCHED_BATCH too. */
static void *switch_own_policy(void *arg)
{
	int *got = arg;
	got[0] = policy_of(0);
	got[1] = evloop_thread_batch();
	got[2] = policy_of(0);
	pthread_t t;
	got[3] = pthread_create(&t, NULL, report_policy, &got[4]);
	if (!got[3])
		got[3] = pthread_join(t, NULL);
	return NULL;
}

static void test_thread_batch_is_per_thread(void **state)
{
	(void)state;
	int got[5] = {-1, -1, -1, -1, -1};
	pthread_t t;
	assert_int_equal(policy_of(0), SCHED_OTHER);
	assert_int_equal(pthread_create(&t, NULL, switch_own_policy, got), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(got[0], SCHED_OTHER);
	assert_int_equal(got[1], 0);
	assert_int_equal(got[2], SCHED_BATCH);
	assert_int_equal(got[3], 0);
	assert_int_equal(got[4], SCHED_BATCH);
	/* The creator (kiln's vCPU threads are created before the switch) is not affected. */
	assert_int_equal(policy_of(0), SCHED_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_thread_batch_is_per_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
