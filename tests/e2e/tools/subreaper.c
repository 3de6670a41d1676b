/* subreaper: runs a command as a child subreaper (PR_SET_CHILD_SUBREAPER) and reports how
 * every process below it ended. For the jailer e2e cases: with --new-pid-ns kiln-jailer exits
 * as soon as kiln runs, and kiln, pid 1 of its own pid namespace, is then reparented here, so
 * its exit status stays visible to the test.
 *
 *   subreaper [-o FILE] CMD [ARG]...
 *
 * One line per reaped process, written to FILE (appended; default stderr) as it is reaped:
 *   child <pid> exit <code>      the command itself
 *   reaped <pid> exit <code>     any other descendant
 * with "signal <n>" instead of "exit <code>" for a process killed by a signal. Exits, once no
 * descendant is left, with the command's status (128 + n for a signal), 127 if it could not
 * be run, 125 on a usage or setup error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(int fd, const char *who, pid_t pid, int status)
{
	if (WIFSIGNALED(status)) {
		dprintf(fd, "%s %d signal %d\n", who, (int)pid, WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	dprintf(fd, "%s %d exit %d\n", who, (int)pid, WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	int out = STDERR_FILENO, argi = 1;
	if (argc > 2 && strcmp(argv[1], "-o") == 0) {
		out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (out < 0) {
			fprintf(stderr, "subreaper: %s: %s\n", argv[2], strerror(errno));
			return 125;
		}
		argi = 3;
	}
	if (argi >= argc) {
		fprintf(stderr, "usage: subreaper [-o FILE] CMD [ARG]...\n");
		return 125;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "subreaper: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return 125;
	}
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "subreaper: fork: %s\n", strerror(errno));
		return 125;
	}
	if (child == 0) {
		execvp(argv[argi], argv + argi);
		fprintf(stderr, "subreaper: %s: %s\n", argv[argi], strerror(errno));
		_exit(127);
	}
	int rc = 125, status;
	for (;;) {
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: nothing left below us */
		}
		if (pid == child)
			rc = report(out, "child", pid, status);
		else
			report(out, "reaped", pid, status);
	}
	return rc;
}
