#include "vmm/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one process-wide setting: written once in setup before any thread starts, read-only
 * afterwards, so it needs no lock. */
static struct log_cfg log_sink = {.fd = 2, .level = LOG_WARN, .show_level = 1};

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_setup(int fd, enum log_level level, int show_level, int show_origin)
{
	log_sink = (struct log_cfg){
	    .fd = fd, .level = level, .show_level = show_level, .show_origin = show_origin};
}

void log_msg(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
	if (lvl > log_sink.level)
		return;
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "kiln: ");
	if (log_sink.show_level)
		n += snprintf(buf + n, sizeof(buf) - n, "[%s] ", level_names[lvl]);
	if (log_sink.show_origin)
		n += snprintf(buf + n, sizeof(buf) - n, "%s:%d: ", file, line);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	n = (m < 0 || (size_t)(n + m) >= sizeof(buf) - 1) ? (int)sizeof(buf) - 2 : n + m;
	buf[n++] = '\n';
	/* One write per line so lines from several threads never interleave. */
	ssize_t rc = write(log_sink.fd, buf, n);
	(void)rc;
}

uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int log_ratelimit_ok(struct log_ratelimit *rl, uint64_t interval_ns)
{
	uint64_t now = monotonic_ns();
	if (rl->last_ns && now - rl->last_ns < interval_ns) {
		rl->suppressed++;
		return 0;
	}
	rl->last_ns = now;
	return 1;
}

_Noreturn void die(int code, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	dprintf(2, "kiln: %s\n", buf);
	exit(code);
}
