/* reaper REPORT COMMAND...: runs COMMAND as a child subreaper, so that a process COMMAND
 * leaves behind (kiln, which kiln-jailer --new-pid-ns forks and does not wait for) is
 * reparented here, and writes one line per reaped process to the file REPORT:
 * "<pid> exit <code>" or "<pid> signal <number>". Returns when no descendant is left, with
 * COMMAND's own exit status (128 + signal if it was killed); 125 if it cannot start it.
 * tests/jailer/run.sh uses it to read kiln's exit status. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: reaper REPORT COMMAND...\n");
		return 125;
	}
	FILE *report = fopen(argv[1], "w");
	if (!report || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("reaper");
		return 125;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("reaper: fork");
		return 125;
	}
	if (child == 0) {
		fclose(report);
		execv(argv[2], argv + 2);
		perror("reaper: execv");
		_exit(125);
	}
	int ret = 125, status;
	pid_t pid;
	while ((pid = wait(&status)) > 0 || (pid < 0 && errno == EINTR)) {
		if (pid < 0)
			continue;
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		fprintf(report, "%d %s %d\n", (int)pid, WIFEXITED(status) ? "exit" : "signal",
			WIFEXITED(status) ? code : WTERMSIG(status));
		fflush(report);
		if (pid == child)
			ret = code;
	}
	fclose(report);
	return ret;
}
