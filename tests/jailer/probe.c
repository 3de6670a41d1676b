/* A static test program that kiln-jailer execs in place of kiln: prints what the jail looks
 * like from inside (there is no /proc in the jail: syscalls only), then "READY" and waits
 * for SIGTERM so that tests/jailer/run.sh can inspect /proc/<pid>/ from the host. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

extern char **environ;

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void print_caps(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0) {
		printf("capeff=error\n");
		return;
	}
	printf("capeff=%08x%08x capprm=%08x%08x capinh=%08x%08x\n", d[1].effective, d[0].effective,
	       d[1].permitted, d[0].permitted, d[1].inheritable, d[0].inheritable);
	int bounding = 0;
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		bounding += prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1;
	printf("capbnd_count=%d\n", bounding);
}

static void print_root(void)
{
	DIR *d = opendir("/");
	struct dirent *e;
	printf("root:");
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			printf(" %s", e->d_name);
	printf("\n");
	if (d)
		closedir(d);
}

static void print_dev(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		printf("dev %s missing\n", path);
		return;
	}
	printf("dev %s %c %u:%u %u:%u %04o\n", path, S_ISCHR(st.st_mode) ? 'c' : '?',
	       major(st.st_rdev), minor(st.st_rdev), st.st_uid, st.st_gid, st.st_mode & 07777);
}

static void print_limits(void)
{
	struct rlimit nofile, fsize;
	getrlimit(RLIMIT_NOFILE, &nofile);
	getrlimit(RLIMIT_FSIZE, &fsize);
	printf("nofile=%llu/%llu fsize=%lld/%lld\n", (unsigned long long)nofile.rlim_cur,
	       (unsigned long long)nofile.rlim_max,
	       fsize.rlim_cur == RLIM_INFINITY ? -1LL : (long long)fsize.rlim_cur,
	       fsize.rlim_max == RLIM_INFINITY ? -1LL : (long long)fsize.rlim_max);
}

int main(int argc, char **argv)
{
	int envc = 0, open_fds = 0;
	while (environ && environ[envc])
		envc++;
	for (int fd = 3; fd < 1024; fd++)
		open_fds += fcntl(fd, F_GETFD) >= 0;
	printf("uid=%d euid=%d gid=%d egid=%d groups=%d pid=%d\n", (int)getuid(), (int)geteuid(),
	       (int)getgid(), (int)getegid(), getgroups(0, NULL), (int)getpid());
	print_caps();
	printf("nnp=%d seccomp=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
	       prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
	print_root();
	print_dev("/dev/kvm");
	print_dev("/dev/net/tun");
	print_dev("/dev/urandom");
	print_limits();
	printf("envc=%d open_fds=%d argc=%d args:", envc, open_fds, argc);
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\nREADY\n");
	fflush(stdout);
	signal(SIGTERM, on_term);
	for (;;)
		pause();
}
