/* vsq: the host side of the kiln vs QEMU microvm benches (bench/vs-qemu.sh, run in the KVM
 * test host by tests/e2e/l1/stage-vs-qemu.sh). Static, so it runs in L1's busybox world.
 *
 *   vsq recv HOST PORT FILE      connects to HOST:PORT (retrying up to 60 s while refused or
 *                                unreachable), reads until the peer's EOF into FILE
 *   vsq send HOST PORT FILE      connects the same way, sends FILE, half-closes, then waits
 *                                for the peer to close (so all of FILE reached its program);
 *                                prints the sender's TCP view on a second line ("tcpinfo")
 *   vsq ping HOST PORT N SIZE    connects the same way (TCP_NODELAY), then N times sends
 *                                SIZE bytes and waits for the SIZE bytes the peer echoes
 *                                (request/response: one round trip each)
 *   vsq sink PORT FILE           (in the guest) listens on PORT, stores what the first peer
 *                                sends in FILE until its EOF, prints the receiver's TCP
 *                                view ("rcvinfo": its RTT estimate and receive buffer, what
 *                                the window it offered followed), then closes
 *   vsq serve PORT FILE          (in the guest) listens on PORT, sends FILE to the first
 *                                peer, half-closes and waits for its EOF; prints the
 *                                sender's TCP view (TCP_INFO) on one "tcpinfo" line
 *   vsq echo PORT                (in the guest) listens on PORT and writes back what the
 *                                first peer sends (TCP_NODELAY) until its EOF
 *   vsq boot SECS MARKER CONSOLE CMD [ARG...]
 *                                runs CMD with its stdout (the guest's serial console) on a
 *                                pipe copied to the file CONSOLE, killing it after SECS
 *
 * recv and send print "BYTES SECONDS", timed from the established connection to the peer's
 * EOF; ping "N SECONDS", from the established connection to the last echo; boot prints
 * "MARKER_MS EXIT_MS STATUS" (from just before the fork to the first MARKER on the console and to
 * CMD's exit; MARKER_MS is -1 if it never came; STATUS is the exit code, "sigN" or "timeout"). Exit
 * 0 when the measurement was taken, 1 if not (a peer silent for 60 s ends recv and send). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* its tcp_info has the pacing rate */
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/kiln_run.h" /* now_ms */

#define BUF_BYTES (256 * 1024)
#define CONNECT_WAIT_MS 60000
#define MARKER_MAX 128
#define IO_TIMEOUT_S 60
#define PING_MAX_SIZE 65536

static char buf[BUF_BYTES];

/* Prints "vsq: WHAT: <errno text>" (errno as it is) and exits 1. */
static _Noreturn void fail(const char *what)
{
	fprintf(stderr, "vsq: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A TCP connection to host:port, retried every 20 ms while the peer is not listening yet
 * (refused, unreachable, timed out) for up to CONNECT_WAIT_MS; exits 1 after that. */
static int connect_retry(const char *host, const char *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		errno = EINVAL;
		fail(host);
	}
	double deadline = now_ms() + CONNECT_WAIT_MS;
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			fail("socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			/* A peer that stops (its VM killed) must not hold the bench forever. */
			struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			return fd;
		}
		int e = errno;
		close(fd);
		errno = e;
		if ((e != ECONNREFUSED && e != EHOSTUNREACH && e != ENETUNREACH &&
		     e != ETIMEDOUT) ||
		    now_ms() > deadline)
			fail("connect");
		usleep(20000);
	}
}

/* Writes all n bytes of p to fd; exits 1 on an error. */
static void write_all(int fd, const char *p, size_t n, const char *what)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail(what);
		p += w;
		n -= (size_t)w;
	}
}

/* Reads fd until EOF, into out (or discarded when out < 0; out may be fd itself: an echo);
 * returns the bytes read. */
static unsigned long long drain(int fd, int out)
{
	unsigned long long total = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("read from the peer");
		if (r == 0)
			return total;
		total += (unsigned long long)r;
		if (out >= 0)
			write_all(out, buf, (size_t)r,
				  out == fd ? "write to the peer" : "write to the file");
	}
}

/* vsq recv HOST PORT FILE */
static int cmd_recv(char **argv)
{
	int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		fail(argv[2]);
	int fd = connect_retry(argv[0], argv[1]);
	double t0 = now_ms();
	unsigned long long n = drain(fd, out);
	double t1 = now_ms();
	close(fd);
	close(out);
	printf("%llu %.6f\n", n, (t1 - t0) / 1e3);
	return 0;
}

/* TCP_INFO of the sender, sampled after every buffer written and once at the end. */
struct tcp_view {
	double rtt_us, cwnd, pacing;
	unsigned long samples;
	struct tcp_info last;
};

static void tcp_sample(int fd, struct tcp_view *v)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return;
	v->rtt_us += ti.tcpi_rtt;
	v->cwnd += ti.tcpi_snd_cwnd;
	v->pacing += (double)ti.tcpi_pacing_rate;
	v->samples++;
	v->last = ti;
}

/* Prints the sampled view as one "tcpinfo name=value..." line. */
static void print_tcp_view(const struct tcp_view *v)
{
	double k = v->samples ? (double)v->samples : 1;
	/* The sender's busy time and how much of it the receiver's window or the send
	 * buffer held it back: what the transfer waited for. */
	printf("tcpinfo avg_rtt_us=%.0f avg_cwnd=%.1f avg_pacing_MBps=%.1f rtt_us=%u rttvar_us=%u "
	       "cwnd=%u ssthresh=%u mss=%u total_retrans=%u busy_us=%llu rwnd_limited_us=%llu "
	       "sndbuf_limited_us=%llu\n",
	       v->rtt_us / k, v->cwnd / k, v->pacing / k / 1e6, v->last.tcpi_rtt,
	       v->last.tcpi_rttvar, v->last.tcpi_snd_cwnd, v->last.tcpi_snd_ssthresh,
	       v->last.tcpi_snd_mss, v->last.tcpi_total_retrans,
	       (unsigned long long)v->last.tcpi_busy_time,
	       (unsigned long long)v->last.tcpi_rwnd_limited,
	       (unsigned long long)v->last.tcpi_sndbuf_limited);
}

/* Sends in (named name) to fd, half-closes and reads fd until the peer's EOF (so all of it
 * reached the peer's program); samples TCP_INFO into v after every buffer when v is not
 * NULL. Returns the bytes sent; exits 1 on an error. */
static unsigned long long send_file(int in, const char *name, int fd, struct tcp_view *v)
{
	unsigned long long total = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));
		if (r < 0)
			fail(name);
		if (r == 0)
			break;
		write_all(fd, buf, (size_t)r, "write to the peer");
		total += (unsigned long long)r;
		if (v)
			tcp_sample(fd, v);
	}
	if (shutdown(fd, SHUT_WR) < 0)
		fail("shutdown");
	drain(fd, -1);
	return total;
}

/* vsq send HOST PORT FILE */
static int cmd_send(char **argv)
{
	int in = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (in < 0)
		fail(argv[2]);
	int fd = connect_retry(argv[0], argv[1]);
	struct tcp_view v = {0};
	double t0 = now_ms();
	unsigned long long total = send_file(in, argv[2], fd, &v);
	double t1 = now_ms();
	close(fd);
	close(in);
	printf("%llu %.6f\n", total, (t1 - t0) / 1e3);
	print_tcp_view(&v);
	return 0;
}

/* Reads exactly n bytes from fd into p; exits 1 on an error or an early EOF. */
static void read_exact(int fd, char *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			fail("read the echo");
		}
		p += r;
		n -= (size_t)r;
	}
}

/* vsq ping HOST PORT N SIZE */
static int cmd_ping(char **argv)
{
	long n = atol(argv[2]), size = atol(argv[3]);
	int one = 1;
	if (n <= 0 || size <= 0 || size > PING_MAX_SIZE) {
		errno = EINVAL;
		fail("ping N SIZE");
	}
	memset(buf, 'k', (size_t)size);
	int fd = connect_retry(argv[0], argv[1]);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	double t0 = now_ms();
	for (long i = 0; i < n; i++) {
		write_all(fd, buf, (size_t)size, "write to the peer");
		read_exact(fd, buf + PING_MAX_SIZE, (size_t)size);
	}
	double t1 = now_ms();
	close(fd);
	printf("%ld %.6f\n", n, (t1 - t0) / 1e3);
	return 0;
}

/* The first connection to PORT on any address (the listening socket is closed). */
static int accept_one(const char *port)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0)
		fail("listen");
	int fd = accept(ls, NULL, NULL);
	if (fd < 0)
		fail("accept");
	close(ls);
	return fd;
}

/* Prints the receiver's TCP view once the peer's EOF came: its round-trip estimate, the
 * buffer its autotuning grew to and the space it last measured, as one "rcvinfo" line
 * (none if the kernel does not say). */
static void print_rcv_view(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int buf;
	socklen_t blen = sizeof(buf);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, &blen) < 0)
		return;
	printf("rcvinfo guest_rcv_rtt_us=%u guest_rcv_space=%u guest_rcvbuf=%d "
	       "guest_rcv_ssthresh=%u\n",
	       ti.tcpi_rcv_rtt, ti.tcpi_rcv_space, buf, ti.tcpi_rcv_ssthresh);
}

/* vsq sink PORT FILE */
static int cmd_sink(char **argv)
{
	int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		fail(argv[1]);
	int fd = accept_one(argv[0]);
	drain(fd, out);
	print_rcv_view(fd);
	close(fd);
	close(out);
	return 0;
}

/* vsq serve PORT FILE */
static int cmd_serve(char **argv)
{
	int in = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (in < 0)
		fail(argv[1]);
	int fd = accept_one(argv[0]);
	struct tcp_view v = {0};
	send_file(in, argv[1], fd, &v);
	tcp_sample(fd, &v);
	print_tcp_view(&v);
	close(fd);
	close(in);
	return 0;
}

/* vsq echo PORT */
static int cmd_echo(char **argv)
{
	int fd = accept_one(argv[0]), one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	drain(fd, fd); /* what comes in goes straight back */
	close(fd);
	return 0;
}

/* Forks cmd with stdout on a pipe; returns the pid and the read end in *rd. */
static pid_t spawn(char **cmd, int *rd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		fail("pipe");
	pid_t pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		dup2(p[1], 1);
		execvp(cmd[0], cmd);
		fprintf(stderr, "vsq: exec %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	*rd = p[0];
	return pid;
}

/* Whether marker ends in or lies within the bytes seen so far: tail keeps the last
 * mlen - 1 bytes of earlier reads (*tlen of them) so a marker split across reads counts. */
static int seen_marker(const char *marker, char *tail, size_t *tlen, const char *p, size_t n)
{
	size_t mlen = strlen(marker);
	char win[2 * MARKER_MAX];
	while (n) {
		size_t take = n < MARKER_MAX ? n : MARKER_MAX;
		memcpy(win, tail, *tlen);
		memcpy(win + *tlen, p, take);
		size_t wlen = *tlen + take;
		if (memmem(win, wlen, marker, mlen))
			return 1;
		size_t keep = wlen < mlen - 1 ? wlen : mlen - 1;
		memcpy(tail, win + wlen - keep, keep);
		*tlen = keep;
		p += take;
		n -= take;
	}
	return 0;
}

/* Copies the child's console to out until EOF or the deadline; sets *marker_ms when the
 * marker first shows. Returns 0 at EOF, -1 at the deadline. */
static int follow_console(int rd, int out, const char *marker, double t0, double deadline,
			  double *marker_ms)
{
	char tail[MARKER_MAX];
	size_t tlen = 0;
	for (;;) {
		int left = (int)(deadline - now_ms());
		if (left <= 0)
			return -1;
		struct pollfd pfd = {.fd = rd, .events = POLLIN};
		int ready = poll(&pfd, 1, left);
		if (ready < 0 && errno != EINTR)
			fail("poll");
		if (ready <= 0)
			continue;
		ssize_t r = read(rd, buf, sizeof(buf));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return 0;
		if (*marker_ms < 0 && seen_marker(marker, tail, &tlen, buf, (size_t)r))
			*marker_ms = now_ms() - t0;
		write_all(out, buf, (size_t)r, "write to the console file");
	}
}

/* vsq boot SECS MARKER CONSOLE CMD [ARG...] */
static int cmd_boot(char **argv)
{
	double secs = atof(argv[0]);
	const char *marker = argv[1];
	if (!*marker || strlen(marker) >= MARKER_MAX) {
		errno = EINVAL;
		fail("marker");
	}
	int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		fail(argv[2]);
	double marker_ms = -1, t0 = now_ms();
	int rd;
	pid_t pid = spawn(argv + 3, &rd);
	int timed_out = follow_console(rd, out, marker, t0, t0 + secs * 1e3, &marker_ms) < 0;
	if (timed_out)
		kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fail("waitpid");
	double exit_ms = now_ms() - t0;
	close(rd);
	close(out);
	if (timed_out)
		printf("%.1f %.1f timeout\n", marker_ms, exit_ms);
	else if (WIFEXITED(st))
		printf("%.1f %.1f %d\n", marker_ms, exit_ms, WEXITSTATUS(st));
	else
		printf("%.1f %.1f sig%d\n", marker_ms, exit_ms, WTERMSIG(st));
	return timed_out;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && !strcmp(argv[1], "recv"))
		return cmd_recv(argv + 2);
	if (argc == 5 && !strcmp(argv[1], "send"))
		return cmd_send(argv + 2);
	if (argc == 4 && !strcmp(argv[1], "sink"))
		return cmd_sink(argv + 2);
	if (argc == 4 && !strcmp(argv[1], "serve"))
		return cmd_serve(argv + 2);
	if (argc == 6 && !strcmp(argv[1], "ping"))
		return cmd_ping(argv + 2);
	if (argc == 3 && !strcmp(argv[1], "echo"))
		return cmd_echo(argv + 2);
	if (argc >= 6 && !strcmp(argv[1], "boot"))
		return cmd_boot(argv + 2);
	fprintf(stderr, "usage: vsq recv|send HOST PORT FILE\n"
			"       vsq ping HOST PORT N SIZE\n"
			"       vsq sink|serve PORT FILE\n"
			"       vsq echo PORT\n"
			"       vsq boot SECS MARKER CONSOLE CMD [ARG...]\n");
	return 2;
}
