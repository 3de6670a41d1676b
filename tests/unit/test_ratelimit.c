#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/timerfd.h>

#include <cmocka.h>

#include "virtio/ratelimit.h"
#include "vmm/log.h"

#define MS 1000000ULL

static struct token_bucket_cfg bucket(uint64_t size, uint64_t burst, uint64_t refill_ms)
{
	return (struct token_bucket_cfg){
	    .present = true, .size = size, .one_time_burst = burst, .refill_time_ms = refill_ms};
}

static void test_refill_over_time(void **state)
{
	(void)state;
	struct token_bucket_cfg cfg = bucket(1000, 0, 1000); /* 1 token per ms */
	struct rl_bucket b;
	rl_bucket_init(&b, &cfg, 0);
	assert_int_equal(b.budget, 1000); /* starts full */
	assert_true(rl_bucket_can_take(&b, 1000));
	rl_bucket_take(&b, 1000);
	assert_int_equal(b.budget, 0);
	assert_false(rl_bucket_can_take(&b, 1));
	assert_int_equal(rl_bucket_wait_ns(&b, 1), MS);
	assert_int_equal(rl_bucket_wait_ns(&b, 10), 10 * MS);
	rl_bucket_refill(&b, MS / 2);
	assert_int_equal(b.budget, 0);
	rl_bucket_refill(&b, MS);
	assert_int_equal(b.budget, 1); /* the half token earned before was kept */
	rl_bucket_refill(&b, 500 * MS);
	assert_int_equal(b.budget, 500);
	assert_int_equal(rl_bucket_wait_ns(&b, 600), 100 * MS);
	rl_bucket_refill(&b, 5000 * MS);
	assert_int_equal(b.budget, 1000); /* never above size */
	assert_int_equal(b.carry, 0);
}

static void test_fractional_rate_is_exact(void **state)
{
	(void)state;
	struct token_bucket_cfg cfg = bucket(3, 0, 10); /* 0.3 tokens per ms */
	struct rl_bucket b;
	rl_bucket_init(&b, &cfg, 0);
	rl_bucket_take(&b, 3);
	for (uint64_t t = 1; t <= 10; t++)
		rl_bucket_refill(&b, t * MS);
	assert_int_equal(b.budget, 3);
	/* Time going backwards (or standing still) earns nothing. */
	rl_bucket_take(&b, 3);
	rl_bucket_refill(&b, 5 * MS);
	rl_bucket_refill(&b, 10 * MS);
	assert_int_equal(b.budget, 0);
}

static void test_one_time_burst(void **state)
{
	(void)state;
	struct token_bucket_cfg cfg = bucket(100, 50, 100);
	struct rl_bucket b;
	rl_bucket_init(&b, &cfg, 0);
	assert_true(rl_bucket_can_take(&b, 150));
	rl_bucket_take(&b, 30);
	assert_int_equal(b.burst, 20); /* burst goes first */
	assert_int_equal(b.budget, 100);
	rl_bucket_take(&b, 40);
	assert_int_equal(b.burst, 0);
	assert_int_equal(b.budget, 80);
	assert_true(rl_bucket_can_take(&b, 80));
	assert_false(rl_bucket_can_take(&b, 81)); /* not full: 80 is all there is */
	rl_bucket_refill(&b, 1000 * MS);
	assert_int_equal(b.burst, 0); /* never refilled */
	assert_int_equal(b.budget, 100);
}

static void test_over_consumption(void **state)
{
	(void)state;
	struct token_bucket_cfg cfg = bucket(100, 0, 100); /* 1 token per ms */
	struct rl_bucket b;
	rl_bucket_init(&b, &cfg, 0);
	rl_bucket_take(&b, 1);
	/* Larger than the bucket: refused until the bucket is full again... */
	assert_false(rl_bucket_can_take(&b, 350));
	assert_int_equal(rl_bucket_wait_ns(&b, 350), MS);
	rl_bucket_refill(&b, MS);
	/* ...then admitted whole, leaving debt. */
	assert_true(rl_bucket_can_take(&b, 350));
	rl_bucket_take(&b, 350);
	assert_int_equal(b.budget, 0);
	assert_int_equal(b.debt, 250);
	assert_false(rl_bucket_can_take(&b, 1));
	assert_int_equal(rl_bucket_wait_ns(&b, 1), 251 * MS);
	rl_bucket_refill(&b, 251 * MS);
	assert_int_equal(b.debt, 0);
	assert_int_equal(b.budget, 0);
	rl_bucket_refill(&b, 252 * MS);
	assert_true(rl_bucket_can_take(&b, 1));
}

static void test_disabled_buckets(void **state)
{
	(void)state;
	struct token_bucket_cfg zero = bucket(0, 10, 100), no_time = bucket(10, 0, 0);
	struct rl_bucket b;
	rl_bucket_init(&b, &zero, 0);
	assert_true(rl_bucket_can_take(&b, UINT64_MAX));
	rl_bucket_take(&b, UINT64_MAX);
	assert_int_equal(rl_bucket_wait_ns(&b, UINT64_MAX), 0);
	rl_bucket_init(&b, &no_time, 0);
	assert_true(rl_bucket_can_take(&b, UINT64_MAX));

	struct ratelimit rl;
	assert_int_equal(ratelimit_init(&rl, NULL), 0);
	assert_false(ratelimit_active(&rl));
	assert_true(rl.timer_fd >= 0); /* for a later ratelimit_update() */
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_consume(&rl, UINT64_MAX, UINT64_MAX));
	ratelimit_destroy(&rl);
	struct rate_limiter_cfg cfg = {.present = true, .bandwidth = zero};
	assert_int_equal(ratelimit_init(&rl, &cfg), 0);
	assert_false(ratelimit_active(&rl));
	ratelimit_destroy(&rl);
	ratelimit_destroy(&rl);
}

static void test_huge_values(void **state)
{
	(void)state;
	struct token_bucket_cfg cfg = bucket(UINT64_MAX, UINT64_MAX, UINT64_MAX / MS);
	struct rl_bucket b;
	rl_bucket_init(&b, &cfg, 0);
	rl_bucket_take(&b, UINT64_MAX);
	rl_bucket_take(&b, UINT64_MAX);
	rl_bucket_take(&b, UINT64_MAX);
	assert_int_equal(b.debt, UINT64_MAX); /* saturated, not wrapped */
	/* Saturated debt is repaid in one refill_time at the (huge) rate. */
	assert_int_equal(rl_bucket_wait_ns(&b, UINT64_MAX), b.refill_ns);
	rl_bucket_refill(&b, UINT64_MAX);
	assert_true(b.budget <= b.size);

	struct token_bucket_cfg fast = bucket(UINT64_MAX, 0, 1);
	rl_bucket_init(&b, &fast, 0);
	rl_bucket_take(&b, UINT64_MAX);
	rl_bucket_refill(&b, UINT64_MAX); /* elapsed * size near 2^128 */
	assert_int_equal(b.budget, UINT64_MAX);
	assert_int_equal(b.debt, 0);

	struct token_bucket_cfg slow = bucket(1, 0, UINT64_MAX / MS);
	rl_bucket_init(&b, &slow, 0);
	rl_bucket_take(&b, UINT64_MAX);
	assert_true(rl_bucket_wait_ns(&b, 1) == UINT64_MAX);
}

static void test_both_buckets_or_nothing(void **state)
{
	(void)state;
	struct rate_limiter_cfg cfg = {
	    .present = true, .bandwidth = bucket(1000, 0, 1000), .ops = bucket(2, 0, 1000)};
	struct ratelimit rl;
	assert_int_equal(ratelimit_init(&rl, &cfg), 0);
	assert_true(ratelimit_active(&rl));
	uint64_t now = rl.bw.last_ns, wait = 0;
	assert_true(ratelimit_try(&rl, 100, 1, now, &wait));
	assert_true(ratelimit_try(&rl, 100, 1, now, &wait));
	/* The ops bucket refuses: the bytes are not taken either. */
	assert_false(ratelimit_try(&rl, 100, 1, now, &wait));
	assert_int_equal(rl.bw.budget, 800);
	assert_int_equal(wait, 500 * MS); /* one op per 500 ms */
	assert_false(ratelimit_try(&rl, 900, 1, now + 500 * MS - 1, &wait));
	assert_true(ratelimit_try(&rl, 900, 1, now + 500 * MS, &wait)); /* 800 + 500 capped */
	assert_int_equal(rl.bw.budget, 100);
	ratelimit_destroy(&rl);
}

/* The time left on rl's timer, read between t0 (taken before the consume that armed it)
 * and *t1. An expired one-shot timer reads 0. */
static uint64_t timer_left(const struct ratelimit *rl, uint64_t *t1)
{
	struct itimerspec its;
	assert_int_equal(timerfd_gettime(rl->timer_fd, &its), 0);
	*t1 = monotonic_ns();
	assert_int_equal(its.it_interval.tv_sec, 0);
	assert_int_equal(its.it_interval.tv_nsec, 0);
	return (uint64_t)its.it_value.tv_sec * 1000000000ULL + (uint64_t)its.it_value.tv_nsec;
}

static void test_timer_arming(void **state)
{
	(void)state;
	/* 1000 bytes per 20 ms: 500 bytes more wait 10 ms. */
	struct rate_limiter_cfg cfg = {.present = true, .bandwidth = bucket(1000, 0, 20)};
	struct ratelimit rl;
	assert_int_equal(ratelimit_init(&rl, &cfg), 0);
	assert_true(rl.timer_fd >= 0);
	uint64_t t0 = monotonic_ns(), t1;
	assert_true(ratelimit_consume(&rl, 1000, 1));
	assert_false(rl.blocked);
	assert_false(ratelimit_consume(&rl, 500, 1));
	assert_true(rl.blocked);
	assert_int_equal(rl.throttled, 1);
	/* Armed for the 10 ms of refill still missing when it was refused: whatever time this
	 * process lost to the scheduler since t0 is all the timer may have run down. */
	uint64_t left = timer_left(&rl, &t1);
	assert_true(left <= 10 * MS);
	assert_true(left + (t1 - t0) >= 10 * MS);
	/* Blocked: refused without looking at the buckets, even for a single byte. */
	assert_false(ratelimit_consume(&rl, 1, 0));
	assert_int_equal(rl.throttled, 2);
	struct pollfd p = {.fd = rl.timer_fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 1000), 1);
	ratelimit_timer_fired(&rl);
	assert_false(rl.blocked);
	assert_int_equal(poll(&p, 1, 0), 0); /* drained */
	assert_true(ratelimit_consume(&rl, 500, 1));
	ratelimit_timer_fired(&rl); /* spurious: harmless */
	ratelimit_destroy(&rl);
}

static void test_update(void **state)
{
	(void)state;
	struct ratelimit rl;
	assert_int_equal(ratelimit_init(&rl, NULL), 0);
	struct rate_limiter_cfg upd = {.present = true, .bandwidth = bucket(1000, 0, 60000)};
	assert_int_equal(ratelimit_update(&rl, &upd), 0);
	assert_true(ratelimit_active(&rl));
	assert_true(ratelimit_consume(&rl, 1000, 1));
	assert_false(ratelimit_consume(&rl, 1000, 1)); /* a minute to wait */
	assert_true(rl.blocked);
	/* ops only: bandwidth stays as it is (still empty, still blocked). */
	struct rate_limiter_cfg ops = {.present = true, .ops = bucket(100, 0, 1000)};
	assert_int_equal(ratelimit_update(&rl, &ops), 0);
	assert_int_equal(rl.bw.size, 1000);
	assert_int_equal(rl.bw.budget, 0);
	assert_int_equal(rl.ops.size, 100);
	struct itimerspec its;
	assert_int_equal(timerfd_gettime(rl.timer_fd, &its), 0);
	uint64_t left = its.it_value.tv_sec * 1000000000ULL + its.it_value.tv_nsec;
	assert_true(left > 0 && left <= RL_MIN_WAIT_NS);
	/* A new full bandwidth bucket admits at once once the timer fired. */
	assert_int_equal(ratelimit_update(&rl, &upd), 0);
	struct pollfd p = {.fd = rl.timer_fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 1000), 1);
	ratelimit_timer_fired(&rl);
	assert_true(ratelimit_consume(&rl, 1000, 1));
	/* size 0 disables both. */
	struct rate_limiter_cfg off = {.present = true, .bandwidth = bucket(0, 0, 100),
				       .ops = bucket(0, 0, 100)};
	assert_int_equal(ratelimit_update(&rl, &off), 0);
	assert_false(ratelimit_active(&rl));
	assert_true(ratelimit_consume(&rl, UINT64_MAX, UINT64_MAX));
	ratelimit_destroy(&rl);
}

static void test_minimum_wait(void **state)
{
	(void)state;
	/* 1000 bytes per microsecond: 1000 bytes past an empty bucket wait 1 us, which is
	 * rounded up to RL_MIN_WAIT_NS. */
	struct rate_limiter_cfg cfg = {.present = true, .bandwidth = bucket(1000000, 0, 1)};
	struct ratelimit rl;
	assert_int_equal(ratelimit_init(&rl, &cfg), 0);
	uint64_t t0 = monotonic_ns(), t1;
	assert_true(ratelimit_consume(&rl, 1000000, 1));
	assert_false(ratelimit_consume(&rl, 1000, 1));
	uint64_t left = timer_left(&rl, &t1);
	assert_true(left <= RL_MIN_WAIT_NS);
	/* Unless this process slept through the whole wait, a 1 us timer would show here. */
	assert_true(left + (t1 - t0) >= RL_MIN_WAIT_NS);
	ratelimit_destroy(&rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refill_over_time),
	    cmocka_unit_test(test_fractional_rate_is_exact),
	    cmocka_unit_test(test_one_time_burst),
	    cmocka_unit_test(test_over_consumption),
	    cmocka_unit_test(test_disabled_buckets),
	    cmocka_unit_test(test_huge_values),
	    cmocka_unit_test(test_both_buckets_or_nothing),
	    cmocka_unit_test(test_timer_arming),
	    cmocka_unit_test(test_minimum_wait),
	    cmocka_unit_test(test_update),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
