/* What the benches share: a clock, sorting for medians, running kiln with its console on a
 * pipe, and one HTTP request at a time on its API socket. Header-only: each bench is one C file (startup is static). */
#ifndef KILN_BENCH_KILN_RUN_H
#define KILN_BENCH_KILN_RUN_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* A bench's fatal error: "<bench>: <what>", exit 1. */
static inline _Noreturn void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", program_invocation_short_name, what);
	exit(1);
}

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

/* Ends a kiln of spawn_kiln() with sig, reaps it and closes its console pipe. */
static inline void stop_kiln(pid_t pid, int fd, int sig)
{
	kill(pid, sig);
	waitpid(pid, NULL, 0);
	close(fd);
}

/* 0 once the guest's first console byte arrived on fd, -1 after 10 s without one. */
static inline int wait_first_byte(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;
	return poll(&pfd, 1, 10000) == 1 && read(fd, &c, 1) == 1 ? 0 : -1;
}

/* A connection to kiln's API socket at path, retried for 2 s while kiln starts. */
static inline int connect_sock(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < 200; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(10000);
	}
	fprintf(stderr, "bench: cannot connect to %s\n", path);
	exit(1);
}

/* One request, one response read whole (Content-Length or a 204); returns the status. */
static inline int request(int fd, const char *method, const char *path, const char *body)
{
	char buf[4096];
	int n =
	    snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
		     method, path, body ? strlen(body) : 0, body ? body : "");
	if (write(fd, buf, n) != n)
		return -1;
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			return -1;
		got += r;
		buf[got] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		char *cl = strstr(buf, "Content-Length: ");
		size_t want = (end - buf) + 4 + (cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0);
		if (got >= want)
			return atoi(buf + 9);
	}
}

#endif
