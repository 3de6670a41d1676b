#include "virtio/ratelimit.h"
#include "vmm/log.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000ULL
#define NS_PER_S 1000000000ULL

typedef unsigned __int128 u128;

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t clamp64(u128 v)
{
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

void rl_bucket_init(struct rl_bucket *b, const struct token_bucket_cfg *cfg, uint64_t now_ns)
{
	memset(b, 0, sizeof(*b));
	b->last_ns = now_ns;
	if (!cfg || !cfg->present || !cfg->size || !cfg->refill_time_ms)
		return;
	b->size = cfg->size;
	b->refill_ns = clamp64((u128)cfg->refill_time_ms * NS_PER_MS);
	b->burst = cfg->one_time_burst;
	b->budget = cfg->size;
}

void rl_bucket_refill(struct rl_bucket *b, uint64_t now_ns)
{
	if (!b->size || now_ns <= b->last_ns)
		return;
	/* elapsed * size < 2^128 - 2^65, so adding carry (< 2^64) cannot wrap. */
	u128 earned = (u128)(now_ns - b->last_ns) * b->size + b->carry;
	b->last_ns = now_ns;
	uint64_t add = clamp64(earned / b->refill_ns);
	b->carry = (uint64_t)(earned % b->refill_ns);
	uint64_t repay = add < b->debt ? add : b->debt;
	b->debt -= repay;
	add -= repay;
	b->budget = add >= b->size - b->budget ? b->size : b->budget + add;
	/* A full bucket stops earning: no fraction of a token is kept for later. */
	if (b->budget == b->size)
		b->carry = 0;
}

bool rl_bucket_can_take(const struct rl_bucket *b, uint64_t tokens)
{
	if (!b->size)
		return true;
	if (b->debt)
		return false;
	/* A full bucket admits anything: over-sized requests pass and leave debt. */
	return tokens <= sat_add(b->burst, b->budget) || b->budget == b->size;
}

void rl_bucket_take(struct rl_bucket *b, uint64_t tokens)
{
	if (!b->size)
		return;
	uint64_t t = tokens < b->burst ? tokens : b->burst;
	b->burst -= t;
	tokens -= t;
	t = tokens < b->budget ? tokens : b->budget;
	b->budget -= t;
	tokens -= t;
	b->debt = sat_add(b->debt, tokens);
}

uint64_t rl_bucket_wait_ns(const struct rl_bucket *b, uint64_t tokens)
{
	if (rl_bucket_can_take(b, tokens))
		return 0;
	/* Budget the request needs once the burst is spent (never more than a full bucket). */
	uint64_t target = tokens > b->burst ? tokens - b->burst : 0;
	if (target > b->size)
		target = b->size;
	uint64_t missing = sat_add(b->debt, target > b->budget ? target - b->budget : 0);
	/* carry < refill_ns <= missing * refill_ns since missing >= 1 here. */
	u128 work = (u128)missing * b->refill_ns - b->carry;
	return clamp64((work + b->size - 1) / b->size);
}

int ratelimit_init(struct ratelimit *rl, const struct rate_limiter_cfg *cfg)
{
	memset(rl, 0, sizeof(*rl));
	rl->timer_fd = -1;
	uint64_t now = monotonic_ns();
	bool present = cfg && cfg->present;
	rl_bucket_init(&rl->bw, present ? &cfg->bandwidth : NULL, now);
	rl_bucket_init(&rl->ops, present ? &cfg->ops : NULL, now);
	/* Even for a limiter that does not limit (yet): PATCH may make it limit later. */
	rl->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	return rl->timer_fd < 0 ? -errno : 0;
}

void ratelimit_destroy(struct ratelimit *rl)
{
	if (rl->timer_fd >= 0)
		close(rl->timer_fd);
	rl->timer_fd = -1;
	rl->blocked = false;
}

bool ratelimit_active(const struct ratelimit *rl)
{
	return rl->bw.size || rl->ops.size;
}

bool ratelimit_try(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns,
		   uint64_t *wait_ns)
{
	rl_bucket_refill(&rl->bw, now_ns);
	rl_bucket_refill(&rl->ops, now_ns);
	if (rl_bucket_can_take(&rl->bw, bytes) && rl_bucket_can_take(&rl->ops, ops)) {
		rl_bucket_take(&rl->bw, bytes);
		rl_bucket_take(&rl->ops, ops);
		return true;
	}
	uint64_t w_bw = rl_bucket_wait_ns(&rl->bw, bytes);
	uint64_t w_ops = rl_bucket_wait_ns(&rl->ops, ops);
	uint64_t w = w_bw > w_ops ? w_bw : w_ops;
	*wait_ns = w ? w : 1;
	return false;
}

static int arm_timer(int fd, uint64_t ns)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)}};
	return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int ratelimit_update(struct ratelimit *rl, const struct rate_limiter_cfg *cfg)
{
	uint64_t now = monotonic_ns();
	if (cfg->bandwidth.present)
		rl_bucket_init(&rl->bw, &cfg->bandwidth, now);
	if (cfg->ops.present)
		rl_bucket_init(&rl->ops, &cfg->ops, now);
	/* A refused request waits for the timer: retry it soon, against the new buckets. */
	if (rl->blocked && rl->timer_fd >= 0)
		return arm_timer(rl->timer_fd, RL_MIN_WAIT_NS);
	return 0;
}

bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops)
{
	if (!ratelimit_active(rl))
		return true;
	if (rl->blocked) {
		rl->throttled++;
		return false;
	}
	uint64_t wait;
	if (ratelimit_try(rl, bytes, ops, monotonic_ns(), &wait))
		return true;
	rl->throttled++;
	/* A wait beyond what time_t holds is forever in practice; cap it at a century. */
	const uint64_t max_wait = 100ULL * 365 * 24 * 3600 * NS_PER_S;
	wait = wait < RL_MIN_WAIT_NS ? RL_MIN_WAIT_NS : wait > max_wait ? max_wait : wait;
	/* settime only fails for a bad fd or value, and both are valid here. */
	int err = arm_timer(rl->timer_fd, wait);
	(void)err;
	rl->blocked = true;
	return false;
}

void ratelimit_timer_fired(struct ratelimit *rl)
{
	uint64_t expirations;
	if (rl->timer_fd >= 0) {
		ssize_t n = read(rl->timer_fd, &expirations, sizeof(expirations));
		(void)n; /* EAGAIN: already drained */
	}
	rl->blocked = false;
}
