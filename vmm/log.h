/* Logging: one line per message to stderr (or the configured log file), and die() for
 * setup-time failures. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

#include <stdint.h>

enum log_level { LOG_OFF = -1, LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Exit codes kiln uses. */
#define KILN_EXIT_OK 0
#define KILN_EXIT_ERROR 1     /* VM failed while running (KVM error, unexpected exit) */
#define KILN_EXIT_BADCFG 2    /* bad input: config, command line, files */
#define KILN_EXIT_SECCOMP 148 /* killed by the seccomp SIGSYS path */

struct log_cfg {
	int fd;
	enum log_level level;
	int show_level;
	int show_origin;
};

/* Process-wide log sink; set once during setup, before threads start. */
void log_setup(int fd, enum log_level level, int show_level, int show_origin);

void log_msg(enum log_level lvl, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CLOCK_MONOTONIC in nanoseconds: the one clock for deadlines, rate limits and latencies. */
uint64_t monotonic_ns(void);

/* For guest-triggered events: logs at most one line per `interval_ns` per call site. */
struct log_ratelimit {
	uint64_t last_ns;
	uint64_t suppressed;
};
int log_ratelimit_ok(struct log_ratelimit *rl, uint64_t interval_ns);

#define log_err(...) log_msg(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

/* Setup-time only: prints "kiln: <msg>" and exits with `code`. */
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
