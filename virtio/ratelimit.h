/* Rate limiting for device I/O with Firecracker's semantics: a bandwidth bucket (bytes) and
 * an ops bucket (requests), each {size, one_time_burst, refill_time}. A bucket starts full,
 * refills continuously at size per refill_time and never above size; one_time_burst is
 * spent first and never refilled. While a request is refused the limiter arms a timerfd
 * (CLOCK_MONOTONIC) that the device watches in the event loop to retry.
 *
 * Requests larger than a bucket: a request is admitted when the tokens are there, or when
 * the bucket is completely full whatever the request's size. The part beyond the bucket
 * becomes debt that is repaid before anything else is admitted, so the long-term rate
 * holds exactly and a frame or block request is never split.
 *
 * The token math (rl_bucket_*, ratelimit_try) takes the time as an argument so it can be
 * tested without a clock. All arithmetic saturates instead of overflowing. */
#ifndef KILN_RATELIMIT_H
#define KILN_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/config.h"

/* A refused request waits at least this long: bounds the timer wake-up rate. */
#define RL_MIN_WAIT_NS 1000000ULL

struct rl_bucket {
	uint64_t size;	    /* 0: the bucket does not limit */
	uint64_t refill_ns; /* time to refill `size` tokens from empty */
	uint64_t burst;	    /* one-time tokens left */
	uint64_t budget;    /* tokens in the bucket, <= size */
	uint64_t debt;	    /* tokens taken beyond the bucket by an over-sized request */
	uint64_t carry;	    /* elapsed_ns * size not yet worth a whole token, < refill_ns */
	uint64_t last_ns;   /* time of the last refill */
};

struct ratelimit {
	struct rl_bucket bw;  /* bytes */
	struct rl_bucket ops; /* requests */
	int timer_fd;	      /* -1 only before ratelimit_init() */
	bool blocked;	      /* a request was refused and the timer has not fired yet */
	uint64_t throttled;   /* requests refused, for metrics */
};

/* A full bucket from cfg (absent, size 0 or refill_time 0: a bucket that never limits),
 * last refilled at now_ns. */
void rl_bucket_init(struct rl_bucket *b, const struct token_bucket_cfg *cfg, uint64_t now_ns);

/* Adds the tokens earned since the last refill (debt first, then budget up to size). A time
 * before the last refill adds nothing. */
void rl_bucket_refill(struct rl_bucket *b, uint64_t now_ns);

/* Whether `tokens` would be admitted now (see the header comment). Pure. */
bool rl_bucket_can_take(const struct rl_bucket *b, uint64_t tokens);

/* Takes `tokens`: burst first, then budget, the rest as debt. Call after can_take. */
void rl_bucket_take(struct rl_bucket *b, uint64_t tokens);

/* Nanoseconds of refill until `tokens` would be admitted (0 if now), saturating. */
uint64_t rl_bucket_wait_ns(const struct rl_bucket *b, uint64_t tokens);

/* The limiter of cfg (NULL or absent: unlimited), with its timerfd (also when unlimited, so
 * that ratelimit_update() can make it limit). 0 or -errno from timerfd_create. */
int ratelimit_init(struct ratelimit *rl, const struct rate_limiter_cfg *cfg);

/* PATCH of a running device's limiter (Firecracker's semantics): each bucket present in
 * cfg is replaced by a new full one (size or refill_time 0: it stops limiting), an absent
 * one is kept as it is. A request refused under the old buckets is retried within
 * RL_MIN_WAIT_NS. 0 or -errno from timerfd_settime. */
int ratelimit_update(struct ratelimit *rl, const struct rate_limiter_cfg *cfg);

/* Closes the timerfd; safe after any ratelimit_init() (even a failed one) and twice. */
void ratelimit_destroy(struct ratelimit *rl);

/* Whether any bucket limits (else every request is admitted and there is no timer). */
bool ratelimit_active(const struct ratelimit *rl);

/* Pure admission at now_ns: refills both buckets, then takes `bytes` and `ops` from them if
 * both admit and returns true; else takes nothing, sets *wait_ns (>= 1) to the time until
 * both would admit and returns false. Ignores `blocked` and the timer. */
bool ratelimit_try(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns,
		   uint64_t *wait_ns);

/* The device's call: false while blocked; else ratelimit_try() on CLOCK_MONOTONIC, and on
 * refusal the timer is armed (at least RL_MIN_WAIT_NS) and the limiter blocks until
 * ratelimit_timer_fired(). The caller keeps the refused request and retries it then. */
bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops);

/* The timerfd became readable: drains it and unblocks the limiter. */
void ratelimit_timer_fired(struct ratelimit *rl);

#endif
