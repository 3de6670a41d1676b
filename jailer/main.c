/* kiln-jailer: builds a chroot jail, cgroups, namespaces and limits around kiln, drops every
 * privilege and execs kiln inside, like Firecracker's jailer. main() reads top-down: the
 * arguments, then the steps in order; a failing step prints one line, undoes what this run
 * created on the host and exits with its own code (docs/jailer.md). */
#include "jailer/args.h"
#include "jailer/cgroup.h"
#include "jailer/chroot.h"
#include "jailer/jail.h"
#include "jailer/privs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef KILN_VERSION
#define KILN_VERSION "dev"
#endif

struct step {
	const char *name;
	int code;
	int (*run)(struct jail *j);
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kiln-jailer --id ID --exec-file PATH --uid UID --gid GID\n"
		"         [--chroot-base-dir DIR] [--netns PATH] [--new-pid-ns] [--daemonize]\n"
		"         [--cgroup-version 1|2] [--cgroup FILE=VALUE]... [--parent-cgroup PATH]\n"
		"         [--resource-limit fsize=N|no-file=N]... [-- KILN-ARGS...]\n"
		"       kiln-jailer --help | --version\n"
		"Builds <chroot base>/<exec name>/<id>/root (default base %s), copies the exec\n"
		"file into it, applies the network namespace, resource limits and cgroups,\n"
		"pivots into the jail, drops to UID:GID without capabilities and execs\n"
		"/<exec name> --id ID KILN-ARGS with an empty environment.\n",
		JAIL_DEFAULT_CHROOT_BASE);
}

/* Prints (or, in a forked child, sends to the parent) one line, undoes and exits. */
static _Noreturn void fail(struct jail *j, const char *step, int code, int err)
{
	char msg[PIPE_BUF];
	const char *left = !j->can_undo && j->status_fd < 0 && j->nr_undo
			       ? " (the ids changed: nothing could be undone; remove the jail "
				 "dir before reusing the id)"
			       : "";
	int n = snprintf(msg + 1, sizeof(msg) - 2, "kiln-jailer: %s: %s: %s%s", step, j->detail,
			 strerror(-err), left);
	n = n < 0 ? 0 : n > (int)sizeof(msg) - 3 ? (int)sizeof(msg) - 3 : n;
	msg[1 + n] = '\n';
	if (j->status_fd >= 0) {
		msg[0] = (char)code; /* one write below PIPE_BUF: the parent reads it whole */
		ssize_t sent = write(j->status_fd, msg, (size_t)n + 2);
		(void)sent; /* a parent that is gone has nobody to tell */
		_exit(code);
	}
	fwrite(msg + 1, 1, (size_t)n + 1, stderr);
	jail_undo_run(j);
	exit(code);
}

/* The parent of --new-pid-ns/--daemonize: writes the child's pid, then waits until the child
 * has exec'd kiln (the status pipe closes on exec) or reports a failure, which it prints,
 * undoes (the child never undoes) and exits with. */
static _Noreturn void supervise(struct jail *j, pid_t child, int status_fd)
{
	int err = jail_write_pid_file(j, child);
	if (err) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		fail(j, "pid-file", JAIL_EXIT_PID_FILE, err);
	}
	char msg[PIPE_BUF];
	ssize_t n;
	do
		n = read(status_fd, msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	if (n <= 1)
		exit(JAIL_EXIT_OK);
	waitpid(child, NULL, 0);
	fwrite(msg + 1, 1, (size_t)n - 1, stderr);
	jail_undo_run(j);
	exit((unsigned char)msg[0]);
}

/* --new-pid-ns and --daemonize fork once: the child goes on to exec kiln (as pid 1 of a new
 * pid namespace with --new-pid-ns), the parent supervises it. */
static int spawn(struct jail *j)
{
	int fds[2], err;
	if (!j->a.new_pid_ns && !j->a.daemonize)
		return 0;
	jail_detail(j, "pipe");
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	jail_detail(j, "unshare(CLONE_NEWPID)");
	if (j->a.new_pid_ns && unshare(CLONE_NEWPID) < 0)
		goto out_errno;
	jail_detail(j, "fork");
	pid_t pid = fork();
	if (pid < 0)
		goto out_errno;
	if (pid > 0) {
		close(fds[1]);
		supervise(j, pid, fds[0]);
	}
	close(fds[0]);
	j->status_fd = fds[1];
	j->forked = true;
	return 0;
out_errno:
	err = -errno;
	close(fds[0]);
	close(fds[1]);
	return err;
}

/* Without a fork, kiln keeps the jailer's pid, which goes to the pid file. */
static int write_own_pid(struct jail *j)
{
	return j->forked ? 0 : jail_write_pid_file(j, getpid());
}

static int daemonize(struct jail *j)
{
	if (!j->a.daemonize)
		return 0;
	jail_detail(j, "setsid");
	if (setsid() < 0)
		return -errno;
	jail_detail(j, "redirect stdin, stdout and stderr to /dev/null");
	for (int fd = 0; fd <= 2; fd++)
		if (dup2(j->dev_null_fd, fd) < 0)
			return -errno;
	close(j->dev_null_fd);
	j->dev_null_fd = -1;
	return 0;
}

/* execve /<exec name> --id <id> <kiln args> with an empty environment. */
static int exec_kiln(struct jail *j)
{
	char path[PATH_MAX];
	int err = jail_path(j, path, "/%s", j->exec_name);
	char **argv = calloc((size_t)j->a.nr_kiln_args + 4, sizeof(*argv));
	if (err || !argv) {
		jail_detail(j, "arguments for /%s", j->exec_name);
		return err ? err : -ENOMEM;
	}
	argv[0] = path;
	argv[1] = "--id";
	argv[2] = (char *)j->a.id;
	for (int i = 0; i < j->a.nr_kiln_args; i++)
		argv[3 + i] = j->a.kiln_args[i];
	char *envp[] = {NULL};
	execve(path, argv, envp);
	err = -errno;
	jail_detail(j, "execve %s (in the jail)", path);
	free(argv);
	return err;
}

static const struct step steps[] = {
    {"close-fds", JAIL_EXIT_CLOSE_FDS, jail_close_fds},
    {"clear-env", JAIL_EXIT_CLEAR_ENV, jail_clear_env},
    {"bounding-set", JAIL_EXIT_BOUNDING_SET, jail_drop_bounding_set},
    {"jail-in-use", JAIL_EXIT_IN_USE, jail_check_unused},
    {"jail-dir", JAIL_EXIT_JAIL_DIR, jail_make_dirs},
    {"copy-exec", JAIL_EXIT_COPY_EXEC, jail_copy_exec},
    {"netns", JAIL_EXIT_NETNS, jail_join_netns},
    {"rlimits", JAIL_EXIT_RLIMITS, jail_set_rlimits},
    {"cgroup", JAIL_EXIT_CGROUP, jail_setup_cgroups},
    {"mount-ns", JAIL_EXIT_MOUNT_NS, jail_enter_mount_ns},
    {"pivot-root", JAIL_EXIT_PIVOT_ROOT, jail_pivot_root},
    {"devices", JAIL_EXIT_DEVICES, jail_make_devices},
    {"spawn", JAIL_EXIT_SPAWN, spawn},
    {"pid-file", JAIL_EXIT_PID_FILE, write_own_pid},
    {"daemonize", JAIL_EXIT_DAEMONIZE, daemonize},
    {"ids", JAIL_EXIT_IDS, jail_change_ids},
    {"caps", JAIL_EXIT_CAPS, jail_drop_caps},
    {"no-new-privs", JAIL_EXIT_NO_NEW_PRIVS, jail_set_no_new_privs},
    {"exec", JAIL_EXIT_EXEC, exec_kiln},
};

int main(int argc, char **argv)
{
	struct jail_args a;
	char err_line[512];
	if (jail_args_parse(argc, argv, &a, err_line, sizeof(err_line)) < 0) {
		fprintf(stderr, "kiln-jailer: %s\n", err_line);
		return JAIL_EXIT_USAGE;
	}
	if (a.help || a.version) {
		if (a.help)
			usage(stdout);
		else
			printf("kiln-jailer %s\n", KILN_VERSION);
		return JAIL_EXIT_OK;
	}
	struct jail j;
	jail_init(&j, &a);
	int err = jail_resolve_paths(&j);
	if (err) {
		fprintf(stderr, "kiln-jailer: %s%s%s\n", j.detail, err == -EINVAL ? "" : ": ",
			err == -EINVAL ? "" : strerror(-err));
		return JAIL_EXIT_USAGE;
	}
	umask(022);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if ((err = steps[i].run(&j)))
			fail(&j, steps[i].name, steps[i].code, err);
	return JAIL_EXIT_EXEC; /* exec_kiln returns only on failure */
}
