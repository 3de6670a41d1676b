/* Firecracker's boot timer: the byte 123 at offset 0 logs Firecracker's Guest-boot-time line
 * once; other values, widths and offsets log nothing; the device stays off the bus where the
 * address is guest RAM. */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/boot_timer.h"
#include "vmm/log.h"

/* The log goes into a non-blocking pipe; drain() returns what it holds. */
static int log_pipe[2];

static int setup(void **state)
{
	(void)state;
	if (pipe2(log_pipe, O_NONBLOCK))
		return -1;
	log_setup(log_pipe[1], LOG_INFO, 0, 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_setup(2, LOG_WARN, 1, 0);
	close(log_pipe[0]);
	close(log_pipe[1]);
	return 0;
}

static size_t drain(char *buf, size_t cap)
{
	ssize_t n = read(log_pipe[0], buf, cap - 1);
	n = n < 0 ? 0 : n;
	buf[n] = 0;
	return (size_t)n;
}

static void write_bytes(struct boot_timer *bt, uint64_t off, const uint8_t *d, uint32_t len)
{
	boot_timer_bus_ops.write(bt, off, d, len);
}

/* Firecracker's format: "{:>6}" pads to six columns, milliseconds are whole. */
static void test_format(void **state)
{
	(void)state;
	char buf[160];
	int n = boot_timer_format(buf, sizeof(buf), 5, 3);
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "Guest-boot-time =      5 us 0 ms,      3 CPU us 0 CPU ms");
	boot_timer_format(buf, sizeof(buf), 1234567, 98765);
	assert_string_equal(buf, "Guest-boot-time = 1234567 us 1234 ms,  98765 CPU us 98 CPU ms");
	assert_int_equal(boot_timer_format(buf, 20, 5, 3), -ENOSPC);
}

static void test_magic_logs_once(void **state)
{
	(void)state;
	struct boot_timer bt;
	char buf[1024];
	boot_timer_start(&bt);
	usleep(1000);
	const uint8_t magic = BOOT_TIMER_MAGIC;
	write_bytes(&bt, 0, &magic, 1);
	size_t n = drain(buf, sizeof(buf));
	regex_t re;
	assert_int_equal(
	    regcomp(&re,
		    "^kiln: Guest-boot-time = +([0-9]+) us ([0-9]+) ms, +[0-9]+ CPU us "
		    "[0-9]+ CPU ms\n$",
		    REG_EXTENDED),
	    0);
	regmatch_t m[3];
	assert_int_equal(regexec(&re, buf, 3, m, 0), 0);
	regfree(&re);
	unsigned long long us = strtoull(buf + m[1].rm_so, NULL, 10);
	unsigned long long ms = strtoull(buf + m[2].rm_so, NULL, 10);
	assert_true(us >= 1000 && us < 10000000);
	assert_int_equal(ms, us / 1000);
	assert_true(n > 0);
	write_bytes(&bt, 0, &magic, 1); /* a second time: nothing more */
	assert_int_equal(drain(buf, sizeof(buf)), 0);
}

static void test_other_writes_ignored(void **state)
{
	(void)state;
	struct boot_timer bt;
	char buf[256];
	boot_timer_start(&bt);
	const uint8_t other = 122, wide[8] = {BOOT_TIMER_MAGIC};
	write_bytes(&bt, 0, &other, 1);
	for (uint32_t len = 2; len <= 8; len *= 2)
		write_bytes(&bt, 0, wide, len); /* 123 in the low byte, but not a byte access */
	write_bytes(&bt, 1, wide, 1);
	write_bytes(&bt, LAYOUT_BOOT_TIMER_SIZE - 1, wide, 1);
	assert_int_equal(drain(buf, sizeof(buf)), 0);
	uint8_t rd[4] = {0xff, 0xff, 0xff, 0xff};
	boot_timer_bus_ops.read(&bt, 0, rd, 4);
	assert_int_equal(rd[0] | rd[1] | rd[2] | rd[3], 0);
	write_bytes(&bt, 0, wide, 1); /* still armed */
	assert_true(drain(buf, sizeof(buf)) > 0);
}

/* Through the bus at Firecracker's address; not there where RAM covers it (> 3 GiB). */
static void test_on_the_bus(void **state)
{
	(void)state;
	struct boot_timer bt;
	struct bus mmio = {0};
	struct guest_mem small = {0};
	char buf[256];
	assert_int_equal(guest_mem_init(&small, 64 << 20), 0);
	boot_timer_start(&bt);
	assert_int_equal(boot_timer_add(&bt, &mmio, &small), 0);
	assert_int_equal(mmio.nr, 1);
	const uint8_t magic = BOOT_TIMER_MAGIC;
	assert_int_equal(bus_write(&mmio, 0xc0000000, &magic, 1), 0);
	assert_non_null(strstr((drain(buf, sizeof(buf)), buf), "Guest-boot-time = "));
	guest_mem_free(&small);

	struct guest_mem big = {0};
	struct bus empty = {0};
	assert_int_equal(guest_mem_init(&big, 4ULL << 30), 0);
	assert_int_equal(boot_timer_add(&bt, &empty, &big), 0);
	assert_int_equal(empty.nr, 0);
	assert_non_null(
	    strstr((drain(buf, sizeof(buf)), buf), "--boot-timer: 0xc0000000 is guest RAM"));
	guest_mem_free(&big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_magic_logs_once),
	    cmocka_unit_test(test_other_writes_ignored),
	    cmocka_unit_test(test_on_the_bus),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
