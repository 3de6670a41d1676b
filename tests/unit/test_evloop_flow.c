/* The event loop following the guest's traffic: the flow devices report, its bounds, the
 * thresholds (with hysteresis) at which the loop's thread switches between SCHED_OTHER and
 * SCHED_BATCH, and the real policy switch on a thread of its own. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/evloop.h"

/* A fake policy setter: records the calls, fails when told to. */
static struct {
	int calls;
	bool last;
	int fail;
} fake;

static int fake_set_batch(bool batch)
{
	fake.calls++;
	fake.last = batch;
	return fake.fail;
}

static int loop_setup(void **state)
{
	static struct evloop loop;
	fake.calls = 0;
	fake.fail = 0;
	assert_int_equal(evloop_init(&loop), 0);
	*state = &loop;
	return 0;
}

static int loop_teardown(void **state)
{
	evloop_destroy(*state);
	return 0;
}

static int64_t flow(struct evloop *loop)
{
	return atomic_load(&loop->flow);
}

static void test_flow_sums_and_bounds(void **state)
{
	struct evloop *loop = *state;
	assert_int_equal(flow(loop), 0);
	evloop_note_flow(NULL, 1000, 0); /* a device on no loop: nobody to tell */
	evloop_note_flow(loop, 1000, 0);
	evloop_note_flow(loop, 0, 300);
	evloop_note_flow(loop, 50, 20);
	assert_int_equal(flow(loop), 730);
	/* A long stream one way saturates: the same bound undoes it the other way. */
	evloop_note_flow(loop, UINT64_MAX, 0);
	assert_int_equal(flow(loop), EVLOOP_FLOW_MAX);
	for (int i = 0; i < 10; i++)
		evloop_note_flow(loop, EVLOOP_FLOW_MAX, 0);
	assert_int_equal(flow(loop), EVLOOP_FLOW_MAX);
	evloop_note_flow(loop, 0, 3 * (uint64_t)EVLOOP_FLOW_MAX); /* bounded per report too */
	assert_int_equal(flow(loop), 0);
	evloop_note_flow(loop, 0, 3 * (uint64_t)EVLOOP_FLOW_MAX);
	assert_int_equal(flow(loop), -EVLOOP_FLOW_MAX);
	evloop_note_flow(loop, EVLOOP_FLOW_MAX, 0);
	assert_int_equal(flow(loop), 0);
}

static void test_policy_follows_flow(void **state)
{
	struct evloop *loop = *state;
	/* Not following: the flow is kept, nothing is switched. */
	evloop_note_flow(loop, EVLOOP_FLOW_MAX, 0);
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(fake.calls, 0);
	assert_false(loop->batch);
	evloop_note_flow(loop, 0, EVLOOP_FLOW_MAX);

	evloop_follow_flow(loop, fake_set_batch);
	evloop_note_flow(loop, EVLOOP_FLOW_BATCH - 1, 0);
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(fake.calls, 0);
	evloop_note_flow(loop, 1, 0);
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(fake.calls, 1);
	assert_true(fake.last);
	assert_true(loop->batch);
	/* Hysteresis: replies below the threshold keep it, as long as the flow stays above 0. */
	evloop_note_flow(loop, 0, EVLOOP_FLOW_BATCH - 1);
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(fake.calls, 1);
	assert_true(loop->batch);
	evloop_note_flow(loop, 0, 1);
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(fake.calls, 2);
	assert_false(fake.last);
	assert_false(loop->batch);
	/* A host->guest stream stays SCHED_OTHER. */
	evloop_note_flow(loop, 0, EVLOOP_FLOW_MAX);
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(fake.calls, 2);
}

static void test_policy_failure_stops_following(void **state)
{
	struct evloop *loop = *state;
	evloop_follow_flow(loop, fake_set_batch);
	fake.fail = -EPERM;
	evloop_note_flow(loop, EVLOOP_FLOW_MAX, 0);
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(fake.calls, 1);
	assert_false(loop->batch);
	assert_null(loop->set_batch);
	/* Not tried again on every wake-up. */
	fake.fail = 0;
	assert_int_equal(evloop_run_once(loop, 0), 0);
	assert_int_equal(fake.calls, 1);
	assert_false(loop->batch);
}

/* Two threads reporting at once lose no update. */
static void *note_many(void *arg)
{
	struct evloop *loop = arg;
	for (int i = 0; i < 100000; i++)
		evloop_note_flow(loop, 5, 0);
	return NULL;
}

static void test_flow_from_threads(void **state)
{
	struct evloop *loop = *state;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, note_many, loop), 0);
	for (int i = 0; i < 100000; i++)
		evloop_note_flow(loop, 0, 3);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(flow(loop), 200000);
}

static int policy_of(pid_t tid)
{
	return (int)syscall(SYS_sched_getscheduler, tid);
}

static void *switch_own_policy(void *arg)
{
	int *got = arg;
	got[0] = evloop_thread_batch(true);
	got[1] = policy_of(0);
	got[2] = evloop_thread_batch(false);
	got[3] = policy_of(0);
	got[4] = evloop_thread_batch(true); /* left so: the creator must not be affected */
	return NULL;
}

static void test_thread_batch_is_per_thread(void **state)
{
	(void)state;
	int got[5];
	pthread_t t;
	assert_int_equal(policy_of(0), SCHED_OTHER);
	assert_int_equal(pthread_create(&t, NULL, switch_own_policy, got), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(got[0], 0);
	assert_int_equal(got[1], SCHED_BATCH);
	assert_int_equal(got[2], 0);
	assert_int_equal(got[3], SCHED_OTHER);
	assert_int_equal(got[4], 0);
	assert_int_equal(policy_of(0), SCHED_OTHER);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, loop_setup, loop_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_flow_sums_and_bounds),
	    T(test_policy_follows_flow),
	    T(test_policy_failure_stops_following),
	    T(test_flow_from_threads),
	    cmocka_unit_test(test_thread_batch_is_per_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
