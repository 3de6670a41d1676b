/* A guest vCPU rewrites a descriptor while the device walks it: every field must be loaded
 * from shared memory exactly once, with atomic loads. Plain (glibc) build: the popped
 * segment always matches one consistent descriptor copy. Under ThreadSanitizer (make tsan)
 * a plain memcpy of the descriptor is reported as a data race and the test fails. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/unit/virtio_test_ring.h"

#define RAM (1ULL << 20)
#define BUF_GPA TRING_DATA_GPA
#define ROUNDS 200000

struct mutator {
	uint8_t *desc; /* descriptor 0 in guest memory */
	atomic_bool stop;
};

/* The "vCPU": flips descriptor 0 between a valid buffer and one far outside RAM. */
static void *mutate(void *arg)
{
	struct mutator *m = arg;
	uint64_t good = BUF_GPA, bad = RAM * 16;
	for (uint64_t i = 0; !atomic_load(&m->stop); i++) {
		uint64_t addr = i & 1 ? bad : good;
		uint64_t len_flags = (uint64_t)(64 + (i & 0xff)); /* flags 0, next 0 */
		__atomic_store_n((uint64_t *)m->desc, addr, __ATOMIC_RELAXED);
		__atomic_store_n((uint64_t *)m->desc + 1, len_flags, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* What a driver does after DEVICE_NEEDS_RESET: the same rings, set up again. */
static void requeue(struct tring *r)
{
	virtq_reset(&r->q);
	r->q.num = r->size;
	r->q.desc_gpa = r->desc_gpa;
	r->q.avail_gpa = r->avail_gpa;
	r->q.used_gpa = r->used_gpa;
	assert_int_equal(virtq_setup(&r->q, &r->gm, 0), 0);
	r->avail_idx = 0;
	tring_put16(r, r->avail_gpa + 2, 0);
}

static void test_descriptor_rewritten_while_popped(void **state)
{
	(void)state;
	struct tring r = {0};
	tring_init(&r, RAM, 8, 0);
	tring_desc(&r, 0, BUF_GPA, 64, 0, 0);
	struct mutator m = {.desc = tring_host(&r, r.desc_gpa, 16)};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, mutate, &m), 0);
	unsigned ok = 0, refused = 0;
	for (int i = 0; i < ROUNDS; i++) {
		struct virtq_seg seg;
		struct virtq_chain c;
		tring_publish(&r, 0);
		int err = virtq_pop(&r.q, &seg, 1, &c);
		if (err) {
			/* Outside RAM: the queue is broken, as after a real guest's doing. */
			assert_int_equal(err, -EFAULT);
			refused++;
			requeue(&r);
			continue;
		}
		ok++;
		/* The segment is the one descriptor copy the checks saw. */
		assert_ptr_equal(seg.host, gm_ptr(&r.gm, BUF_GPA, seg.len));
		assert_true(seg.len >= 64 && seg.len < 64 + 256);
		assert_int_equal(virtq_push_used(&r.q, c.head, 0), 0);
	}
	atomic_store(&m.stop, true);
	pthread_join(t, NULL);
	print_message("%u popped, %u refused\n", ok, refused);
	tring_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_descriptor_rewritten_while_popped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
