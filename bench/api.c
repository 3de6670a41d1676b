/* bench/api: what the REST API costs. Runs build/kiln with the tiny guest on this host's
 * /dev/kvm and prints:
 *  - GET / requests per second on one keep-alive connection, and with a new connection per
 *    request;
 *  - InstanceStart sent -> first guest byte on the console (the tiny guest's first
 *    instruction writes it), median of RUNS;
 *  - a --config-file start (exec -> first guest byte) with --no-api and with the API on,
 *    medians of RUNS each: the API thread and socket must add nothing measurable.
 * Prints figures only; no thresholds. Usage: api KILN TINY_GUEST [RUNS] */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kiln_run.h"

static void get_rate(const char *kiln, const char *sock)
{
	char *argv[] = {(char *)kiln, "--api-sock", (char *)sock, NULL};
	int out;
	unlink(sock);
	pid_t pid = spawn_kiln(argv, &out);
	int fd = connect_sock(sock);
	int n = 20000;
	double t0 = now_ms();
	for (int i = 0; i < n; i++)
		if (request(fd, "GET", "/", NULL) != 200)
			die("GET / failed");
	double keep = n / ((now_ms() - t0) / 1e3);
	close(fd);
	n = 2000;
	t0 = now_ms();
	for (int i = 0; i < n; i++) {
		fd = connect_sock(sock);
		if (request(fd, "GET", "/", NULL) != 200)
			die("GET / failed");
		close(fd);
	}
	double fresh = n / ((now_ms() - t0) / 1e3);
	stop_kiln(pid, out, SIGTERM);
	printf("api: GET / %.0f requests/s keep-alive, %.0f requests/s new connection each\n", keep,
	       fresh);
}

static double start_latency(const char *kiln, const char *tiny, const char *sock)
{
	char *argv[] = {(char *)kiln, "--api-sock", (char *)sock, NULL};
	char body[512];
	int out;
	unlink(sock);
	pid_t pid = spawn_kiln(argv, &out);
	int fd = connect_sock(sock);
	snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\",\"boot_args\":\"w\"}", tiny);
	if (request(fd, "PUT", "/boot-source", body) != 204 ||
	    request(fd, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}") != 204)
		die("configuring kiln through the API failed");
	const char *act = "{\"action_type\":\"InstanceStart\"}";
	char start[256];
	snprintf(start, sizeof(start), "PUT /actions HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(act), act);
	double t0 = now_ms();
	if (write(fd, start, strlen(start)) != (ssize_t)strlen(start) || wait_first_byte(out))
		die("no guest output after InstanceStart");
	double ms = now_ms() - t0;
	close(fd);
	stop_kiln(pid, out, SIGTERM);
	return ms;
}

static double config_file_start(const char *kiln, const char *cfg, const char *sock)
{
	char *noapi[] = {(char *)kiln, "--no-api", "--config-file", (char *)cfg, NULL};
	char *api[] = {(char *)kiln,	"--api-sock", (char *)sock,
		       "--config-file", (char *)cfg,  NULL};
	int out;
	if (sock) /* unlink() is declared nonnull: the test below would go too */
		unlink(sock);
	double t0 = now_ms();
	pid_t pid = spawn_kiln(sock ? api : noapi, &out);
	if (wait_first_byte(out))
		die("no guest output from a --config-file start");
	double ms = now_ms() - t0;
	stop_kiln(pid, out, SIGTERM);
	return ms;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: api KILN TINY_GUEST [RUNS]\n");
		return 2;
	}
	int runs = argc > 3 ? atoi(argv[3]) : 30;
	char sock[64], cfg[64];
	snprintf(sock, sizeof(sock), "/tmp/kiln-bench-api.%d.sock", (int)getpid());
	snprintf(cfg, sizeof(cfg), "/tmp/kiln-bench-api.%d.json", (int)getpid());
	FILE *f = fopen(cfg, "w");
	if (!f)
		return 1;
	fprintf(f, "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"w\"}}\n",
		argv[2]);
	fclose(f);
	get_rate(argv[1], sock);
	double *v = calloc(runs, sizeof(double)), *w = calloc(runs, sizeof(double));
	for (int i = 0; i < runs; i++)
		v[i] = start_latency(argv[1], argv[2], sock);
	printf("api: InstanceStart sent -> first guest byte: median %.2f ms (%d runs)\n",
	       median(v, runs), runs);
	for (int i = 0; i < runs; i++) {
		v[i] = config_file_start(argv[1], cfg, NULL);
		w[i] = config_file_start(argv[1], cfg, sock);
	}
	printf("api: --config-file exec -> first guest byte: median %.2f ms --no-api, "
	       "%.2f ms with the API (%d runs each)\n",
	       median(v, runs), median(w, runs), runs);
	unlink(cfg);
	unlink(sock);
	return 0;
}
