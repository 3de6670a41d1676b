/* bench/snapshot: what a snapshot costs and what restoring from one gives a FaaS host. Runs
 * build/kiln with the tiny guest ('c': it counts on its console) on this host's /dev/kvm:
 *  - PUT /snapshot/create of the paused guest, and PUT /snapshot/load (resume_vm) into a new
 *    kiln, for a 128 MiB and a 2 GiB guest: a load maps the memory file and must not grow
 *    with the guest's size;
 *  - exec of `kiln --no-api --restore-from` -> the restored guest's first console byte;
 *  - 10 clones of one 256 MiB snapshot running at once: PSS and RSS per clone
 *    (/proc/PID/smaps_rollup), the page cache's copy of the memory file shared among them.
 * Medians of RUNS. Figures only, no thresholds. Usage: snapshot KILN TINY_GUEST [RUNS] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln_run.h"

#define CLONES 10

/* Boots the tiny guest with mib of RAM, pauses it and snapshots it into dir/<mib>.{state,mem};
 * returns the create request's milliseconds. */
static double make_snapshot(const char *kiln, const char *tiny, const char *dir, int mib)
{
	char cfg[256], sock[100], body[1024], json[512];
	snprintf(cfg, sizeof(cfg), "%s/%d.json", dir, mib);
	snprintf(sock, sizeof(sock), "%s/%d.sock", dir, mib);
	FILE *f = fopen(cfg, "w");
	if (!f)
		die("cannot write the config");
	snprintf(json, sizeof(json),
		 "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"c\"},"
		 "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":%d}}\n",
		 tiny, mib);
	fputs(json, f);
	fclose(f);
	char *argv[] = {(char *)kiln, "--api-sock", sock, "--config-file", cfg, NULL};
	int out;
	unlink(sock);
	pid_t pid = spawn_kiln(argv, &out);
	if (wait_first_byte(out))
		die("the guest printed nothing");
	usleep(200000);
	int fd = connect_sock(sock);
	if (request(fd, "PATCH", "/vm", "{\"state\":\"Paused\"}") != 204)
		die("pause failed");
	snprintf(body, sizeof(body),
		 "{\"snapshot_path\":\"%s/%d.state\",\"mem_file_path\":\"%s/%d.mem\"}", dir, mib,
		 dir, mib);
	double t0 = now_ms();
	if (request(fd, "PUT", "/snapshot/create", body) != 204)
		die("PUT /snapshot/create failed");
	double ms = now_ms() - t0;
	close(fd);
	stop_kiln(pid, out, SIGKILL);
	return ms;
}

/* PUT /snapshot/load of dir/<mib> into a new kiln -> 204, and -> the first console byte. */
static void load_once(const char *kiln, const char *dir, int mib, double *api_ms, double *out_ms)
{
	char sock[100], body[1024];
	snprintf(sock, sizeof(sock), "%s/load.sock", dir);
	unlink(sock);
	char *argv[] = {(char *)kiln, "--api-sock", sock, NULL};
	int out;
	pid_t pid = spawn_kiln(argv, &out);
	int fd = connect_sock(sock);
	snprintf(body, sizeof(body),
		 "{\"snapshot_path\":\"%s/%d.state\",\"mem_backend\":{\"backend_type\":\"File\","
		 "\"backend_path\":\"%s/%d.mem\"},\"resume_vm\":true}",
		 dir, mib, dir, mib);
	double t0 = now_ms();
	if (request(fd, "PUT", "/snapshot/load", body) != 204)
		die("PUT /snapshot/load failed");
	*api_ms = now_ms() - t0;
	if (wait_first_byte(out))
		die("the restored guest printed nothing");
	*out_ms = now_ms() - t0;
	close(fd);
	stop_kiln(pid, out, SIGKILL);
}

/* exec of kiln --restore-from -> the restored guest's first console byte; the pid stays. */
static double restore_from(const char *kiln, const char *dir, int mib, pid_t *pid, int *out)
{
	char state[256], mem[256];
	snprintf(state, sizeof(state), "%s/%d.state", dir, mib);
	snprintf(mem, sizeof(mem), "%s/%d.mem", dir, mib);
	char *argv[] = {(char *)kiln, "--no-api", "--restore-from", state, "--mem-file", mem, NULL};
	double t0 = now_ms();
	*pid = spawn_kiln(argv, out);
	if (wait_first_byte(*out))
		die("the restored guest printed nothing");
	return now_ms() - t0;
}

/* Pss and Rss of pid in KiB, from smaps_rollup. */
static void pss_rss(pid_t pid, long *pss, long *rss)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(path, "r");
	*pss = *rss = -1;
	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "Pss: %ld kB", pss);
		sscanf(line, "Rss: %ld kB", rss);
	}
	if (f)
		fclose(f);
}

static void sizes(const char *kiln, const char *tiny, const char *dir, int runs)
{
	static const int mibs[] = {128, 2048};
	for (unsigned s = 0; s < 2; s++) {
		double *create = calloc(runs, sizeof(double)), *load = calloc(runs, sizeof(double)),
		       *first = calloc(runs, sizeof(double)), *exec_first = calloc(runs, sizeof(double));
		for (int i = 0; i < runs; i++) {
			create[i] = make_snapshot(kiln, tiny, dir, mibs[s]);
			load_once(kiln, dir, mibs[s], &load[i], &first[i]);
			pid_t pid;
			int out;
			exec_first[i] = restore_from(kiln, dir, mibs[s], &pid, &out);
			stop_kiln(pid, out, SIGKILL);
		}
		printf("snapshot: %4d MiB guest: create %.2f ms, load (PUT -> 204) %.2f ms, PUT -> "
		       "first guest byte %.2f ms, exec of --restore-from -> first guest byte %.2f ms "
		       "(medians of %d)\n",
		       mibs[s], median(create, runs), median(load, runs), median(first, runs),
		       median(exec_first, runs), runs);
		free(create), free(load), free(first), free(exec_first);
	}
}

static void clones(const char *kiln, const char *tiny, const char *dir)
{
	pid_t pid[CLONES];
	int out[CLONES];
	long pss_sum = 0, rss_sum = 0;
	make_snapshot(kiln, tiny, dir, 256);
	for (int i = 0; i < CLONES; i++)
		restore_from(kiln, dir, 256, &pid[i], &out[i]);
	usleep(500000);
	for (int i = 0; i < CLONES; i++) {
		long pss, rss;
		pss_rss(pid[i], &pss, &rss);
		if (pss < 0)
			die("cannot read smaps_rollup");
		pss_sum += pss;
		rss_sum += rss;
	}
	for (int i = 0; i < CLONES; i++)
		stop_kiln(pid[i], out[i], SIGKILL);
	printf("snapshot: %d clones of one 256 MiB snapshot running: PSS %ld KiB, RSS %ld KiB "
	       "per clone (mean)\n",
	       CLONES, pss_sum / CLONES, rss_sum / CLONES);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die("usage: snapshot KILN TINY_GUEST [RUNS]");
	int runs = argc > 3 ? atoi(argv[3]) : 10;
	char dir[] = "/tmp/kiln-bench-snap.XXXXXX";
	if (runs < 1 || !mkdtemp(dir))
		die("bad RUNS or no temporary directory");
	sizes(argv[1], argv[2], dir, runs);
	clones(argv[1], argv[2], dir);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
