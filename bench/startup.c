/* bench/startup: how fast kiln starts next to the floor, and how much memory it needs besides
 * guest RAM.
 *
 * Runs build/kiln and bench/floor (floor.c: only the KVM ioctls any VMM needs for the same
 * tiny guest, tests/guest/tiny) on this host's /dev/kvm, alternating, RUNS each:
 *  - 'p' runs: exec -> first guest byte on stdout (the guest's first instruction writes it,
 *    so this bounds exec -> first KVM_RUN from above), and exec -> exit after the guest
 *    powered off; medians, and the ratios kiln/floor;
 *  - one 'w' run each: while the guest waits, the resident memory from /proc/PID/smaps,
 *    split into guest RAM (the mapping of mem_size_mib) and everything else: Rss (with the
 *    binary's text), Private_Dirty (which counts a binary's page-cache pages while they are
 *    dirty, just after a build) and Anonymous (the process's own heap, stacks, data).
 * Prints figures only; no thresholds.
 * Usage: startup KILN TINY_GUEST [RUNS [FLOOR]] (FLOOR: default `floor` next to startup). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kiln_run.h"

#define MEM_MIB 128 /* floor.c maps the same */

/* One program under test: how to start it in either guest mode, and its samples. */
struct subject {
	const char *name;
	char *argv_p[6]; /* the guest prints, then powers off */
	char *argv_w[6]; /* the guest prints, then waits */
	double *first, *total;
	long maxrss_kb;
};

/* kiln's config for the tiny guest in mode `action` ('p' or 'w'), MEM_MIB of RAM. */
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

/* Run i of s: exec -> first guest byte and exec -> exit; dies if it fails. */
static void timed_run(struct subject *s, int i)
{
	int out, status;
	struct rusage ru;
	double t0 = now_ms();
	pid_t pid = spawn_kiln(s->argv_p, &out);
	if (wait_first_byte(out) < 0) {
		fprintf(stderr, "startup: %s printed nothing\n", s->name);
		exit(1);
	}
	s->first[i] = now_ms() - t0;
	wait4(pid, &status, 0, &ru);
	s->total[i] = now_ms() - t0;
	close(out);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "startup: %s failed (status %d)\n", s->name, status);
		exit(1);
	}
	if (ru.ru_maxrss > s->maxrss_kb)
		s->maxrss_kb = ru.ru_maxrss;
}

/* kiln and the floor alternating, which one goes first swapped every round. */
static void timed_runs(struct subject *kiln, struct subject *floor, int runs)
{
	for (int i = 0; i < runs; i++) {
		timed_run(i % 2 ? floor : kiln, i);
		timed_run(i % 2 ? kiln : floor, i);
	}
	double kf = median(kiln->first, runs), kt = median(kiln->total, runs);
	double ff = median(floor->first, runs), ft = median(floor->total, runs);
	printf("exec -> first guest output (bounds first KVM_RUN), median of %d, alternating:\n",
	       runs);
	printf("  kiln  %7.3f ms (min %.3f, max %.3f)\n", kf, kiln->first[0],
	       kiln->first[runs - 1]);
	printf("  floor %7.3f ms (min %.3f, max %.3f)\n", ff, floor->first[0],
	       floor->first[runs - 1]);
	printf("  kiln/floor %.2f\n", kf / ff);
	printf("exec -> guest powered off and the process exited, median:\n");
	printf("  kiln  %7.3f ms (min %.3f)\n  floor %7.3f ms (min %.3f)\n  kiln/floor %.2f\n",
	       kt, kiln->total[0], ft, floor->total[0], kt / ft);
	printf("peak RSS (ru_maxrss, incl. touched guest RAM): kiln %ld KiB, floor %ld KiB\n",
	       kiln->maxrss_kb, floor->maxrss_kb);
}

/* Resident memory of pid from smaps, split at the guest RAM: the mapping of MEM_MIB or
 * more, and the read-write one just before it that ends where it starts (kiln maps its
 * first 2 MiB apart, without huge pages). */
struct rss {
	long guest_kb, other_kb, other_dirty_kb, other_anon_kb, hwm_kb;
};

#define MAX_VMAS 256

/* One mapping of smaps: its range, whether writable, and its resident counts in KiB. */
struct vma {
	unsigned long start, end;
	bool rw;
	long rss_kb, dirty_kb, anon_kb;
};

/* Reads up to MAX_VMAS mappings of pid's smaps into v; returns how many. */
static int read_vmas(pid_t pid, struct vma *v)
{
	char path[64], line[512], perms[8];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "r");
	int n = -1;
	long kb;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && n + 1 < MAX_VMAS) {
			v[++n] = (struct vma){.start = a, .end = b, .rw = !strncmp(perms, "rw", 2)};
		} else if (n >= 0 && sscanf(line, "Rss: %ld kB", &kb) == 1) {
			v[n].rss_kb = kb;
		} else if (n >= 0 && sscanf(line, "Private_Dirty: %ld kB", &kb) == 1) {
			v[n].dirty_kb = kb;
		} else if (n >= 0 && sscanf(line, "Anonymous: %ld kB", &kb) == 1) {
			v[n].anon_kb = kb;
		}
	}
	if (f)
		fclose(f);
	return n + 1;
}

/* Fills r from /proc/pid/smaps and VmHWM from /proc/pid/status. */
static void rss_split(pid_t pid, struct rss *r)
{
	struct vma *v = calloc(MAX_VMAS, sizeof(*v));
	int n = v ? read_vmas(pid, v) : 0;
	*r = (struct rss){0};
	for (int i = 0; i < n; i++) {
		bool big = v[i].end - v[i].start >= (unsigned long)MEM_MIB << 20;
		bool head = i + 1 < n && v[i].rw && v[i].end == v[i + 1].start &&
			    v[i + 1].end - v[i + 1].start >= (unsigned long)MEM_MIB << 19;
		if (big || head) {
			r->guest_kb += v[i].rss_kb;
			continue;
		}
		r->other_kb += v[i].rss_kb;
		r->other_dirty_kb += v[i].dirty_kb;
		r->other_anon_kb += v[i].anon_kb;
	}
	free(v);
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "VmHWM: %ld kB", &r->hwm_kb);
	if (f)
		fclose(f);
}

/* Starts s with the waiting guest, prints its memory once the guest printed, ends it. */
static void memory_run(struct subject *s)
{
	int out;
	pid_t pid = spawn_kiln(s->argv_w, &out);
	if (wait_first_byte(out) < 0) {
		fprintf(stderr, "startup: %s printed nothing\n", s->name);
		exit(1);
	}
	usleep(100000);
	struct rss r;
	rss_split(pid, &r);
	stop_kiln(pid, out, SIGTERM);
	printf("  %-5s Rss %4ld KiB, Private_Dirty %4ld KiB, Anonymous %4ld KiB; guest RAM "
	       "resident %ld KiB; peak (VmHWM - guest RAM) %ld KiB\n",
	       s->name, r.other_kb, r.other_dirty_kb, r.other_anon_kb, r.guest_kb,
	       r.hwm_kb - r.guest_kb);
}

/* The floor binary: argv[4], or `floor` in startup's own directory, written to buf. */
static char *floor_path(int argc, char **argv, char *buf, size_t len)
{
	if (argc > 4)
		return argv[4];
	char self[4096];
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(buf, len, "%s/floor", dirname(self));
	return buf;
}

/* kiln and the floor: the timed runs, then the memory of each. */
int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s KILN TINY_GUEST [RUNS [FLOOR]]\n", argv[0]);
		return 2;
	}
	int runs = argc > 3 ? atoi(argv[3]) : 50;
	if (runs < 1)
		runs = 1;
	char cfg_p[] = "/tmp/kiln-bench-p.json", cfg_w[] = "/tmp/kiln-bench-w.json";
	write_config(cfg_p, argv[2], 'p');
	write_config(cfg_w, argv[2], 'w');
	char floor_buf[4200];
	char *floor_bin = floor_path(argc, argv, floor_buf, sizeof(floor_buf));
	struct subject kiln = {
	    .name = "kiln",
	    .argv_p = {argv[1], "--no-api", "--config-file", cfg_p, NULL},
	    .argv_w = {argv[1], "--no-api", "--config-file", cfg_w, NULL},
	    .first = calloc(runs, sizeof(double)),
	    .total = calloc(runs, sizeof(double))};
	struct subject floor = {.name = "floor",
				.argv_p = {floor_bin, argv[2], "p", NULL},
				.argv_w = {floor_bin, argv[2], "w", NULL},
				.first = calloc(runs, sizeof(double)),
				.total = calloc(runs, sizeof(double))};
	if (!kiln.first || !kiln.total || !floor.first || !floor.total)
		die("out of memory");
	printf("== bench/startup: %s vs %s, tiny guest, 1 vCPU, %d MiB\n", argv[1], floor_bin,
	       MEM_MIB);
	timed_runs(&kiln, &floor, runs);
	printf("resident memory while the guest waits, without guest RAM (smaps):\n");
	memory_run(&kiln);
	memory_run(&floor);
	unlink(cfg_p);
	unlink(cfg_w);
	return 0;
}
