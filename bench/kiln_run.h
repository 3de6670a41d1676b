/* What bench/startup and bench/api share: a clock, sorting for medians, and running kiln
 * with its console on a pipe. Header-only: each bench is one C file (startup is static). */
#ifndef KILN_BENCH_KILN_RUN_H
#define KILN_BENCH_KILN_RUN_H

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static inline double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts v in place and returns its median. */
static inline double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* Starts kiln with argv (NULL-terminated, argv[0] is kiln) and stdout on a pipe; returns its
 * pid and the read end in *out. kiln's own lines (its exit reason, the SIGTERM state dump)
 * are not figures: stderr goes to /dev/null. */
static inline pid_t spawn_kiln(char *const argv[], int *out)
{
	int p[2];
	if (pipe(p) < 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(p[1], 1);
		if (null >= 0)
			dup2(null, 2);
		close(p[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	*out = p[0];
	return pid;
}

/* 0 once the guest's first console byte arrived on fd, -1 after 10 s without one. */
static inline int wait_first_byte(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;
	return poll(&pfd, 1, 10000) == 1 && read(fd, &c, 1) == 1 ? 0 : -1;
}

#endif
