/* bench/startup: how fast kiln starts and how much memory it needs besides guest RAM.
 *
 * Runs build/kiln with the tiny guest (tests/guest/tiny) on this host's /dev/kvm:
 *  - 'p' runs: exec -> first guest byte on the console (the guest's first instruction
 *    writes it, so this bounds exec -> first KVM_RUN from above), and exec -> exit;
 *  - one 'w' run: while the guest waits, kiln's resident memory from /proc/PID/smaps,
 *    split into guest RAM (the mapping of mem_size_mib) and everything else.
 * Prints figures only; no thresholds. Usage: startup KILN TINY_GUEST [RUNS] */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kiln_run.h"

#define MEM_MIB 128

static void write_config(const char *path, const char *tiny, char action)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fprintf(f,
		"{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"%c\"},"
		"\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":%d}}\n",
		tiny, action, MEM_MIB);
	fclose(f);
}

static void timed_runs(const char *kiln, const char *cfg, int runs)
{
	char *argv[] = {(char *)kiln, "--no-api", "--config-file", (char *)cfg, NULL};
	double *first = calloc(runs, sizeof(double)), *total = calloc(runs, sizeof(double));
	long maxrss = 0;
	for (int i = 0; i < runs; i++) {
		int out, status;
		struct rusage ru;
		double t0 = now_ms();
		pid_t pid = spawn_kiln(argv, &out);
		if (wait_first_byte(out) < 0) {
			fprintf(stderr, "startup: kiln printed nothing\n");
			exit(1);
		}
		first[i] = now_ms() - t0;
		wait4(pid, &status, 0, &ru);
		total[i] = now_ms() - t0;
		close(out);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "startup: kiln failed (status %d)\n", status);
			exit(1);
		}
		if (ru.ru_maxrss > maxrss)
			maxrss = ru.ru_maxrss;
	}
	qsort(first, runs, sizeof(double), cmp_double);
	qsort(total, runs, sizeof(double), cmp_double);
	printf("exec -> first guest output (bounds first KVM_RUN): median %.3f ms, min %.3f ms, "
	       "max %.3f ms (%d runs)\n",
	       first[runs / 2], first[0], first[runs - 1], runs);
	printf("exec -> guest powered off and kiln exited:          median %.3f ms, min %.3f ms\n",
	       total[runs / 2], total[0]);
	printf("peak RSS (ru_maxrss, incl. touched guest RAM):      %ld KiB\n", maxrss);
	free(first);
	free(total);
}

/* Sums Rss over smaps, separating the guest RAM mapping (the one at least MEM_MIB big). */
static void rss_split(pid_t pid, long *guest_kb, long *other_kb, long *hwm_kb)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "r");
	long size_kb = 0, rss;
	*guest_kb = *other_kb = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Size: %ld kB", &size_kb) == 1)
			continue;
		if (sscanf(line, "Rss: %ld kB", &rss) == 1)
			*(size_kb >= MEM_MIB * 1024 ? guest_kb : other_kb) += rss;
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "VmHWM: %ld kB", hwm_kb);
	if (f)
		fclose(f);
}

static void memory_run(const char *kiln, const char *cfg)
{
	char *argv[] = {(char *)kiln, "--no-api", "--config-file", (char *)cfg, NULL};
	int out, status;
	pid_t pid = spawn_kiln(argv, &out);
	if (wait_first_byte(out) < 0) {
		fprintf(stderr, "startup: kiln printed nothing\n");
		exit(1);
	}
	usleep(100000);
	long guest, other, hwm = 0;
	rss_split(pid, &guest, &other, &hwm);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	close(out);
	printf("kiln RSS while the guest runs: %ld KiB excluding guest RAM "
	       "(guest RAM resident: %ld KiB, VmHWM %ld KiB)\n",
	       other, guest, hwm);
	printf("peak RSS excluding guest RAM: %ld KiB\n", hwm - guest);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s KILN TINY_GUEST [RUNS]\n", argv[0]);
		return 2;
	}
	int runs = argc > 3 ? atoi(argv[3]) : 50;
	char cfg_p[] = "/tmp/kiln-bench-p.json", cfg_w[] = "/tmp/kiln-bench-w.json";
	write_config(cfg_p, argv[2], 'p');
	write_config(cfg_w, argv[2], 'w');
	printf("== bench/startup: %s, tiny guest, 1 vCPU, %d MiB\n", argv[1], MEM_MIB);
	timed_runs(argv[1], cfg_p, runs);
	memory_run(argv[1], cfg_w);
	unlink(cfg_p);
	unlink(cfg_w);
	return 0;
}
