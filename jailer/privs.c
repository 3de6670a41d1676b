/* kiln-jailer process hygiene and privileges. The order of the privilege steps matters:
 * the bounding set can only be emptied while CAP_SETPCAP is effective (before the ids
 * change), and the ids must change before the last capabilities go. */
#include "jailer/privs.h"

#include <cap-ng.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* The fallback for kernels before 5.9: every fd listed in /proc/self/fd above 2. */
static int close_fds_by_proc(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name || fd <= 2 || fd == self)
			continue;
		close((int)fd);
	}
	closedir(d);
	return 0;
}

int jail_close_fds(struct jail *j)
{
	jail_detail(j, "close the inherited file descriptors above 2");
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0) {
		int err = errno == ENOSYS ? close_fds_by_proc() : -errno;
		if (err)
			return err;
	}
	/* A closed 0, 1 or 2 would be reused by the next open and then lost at exec. */
	jail_detail(j, "open /dev/null for a closed stdin, stdout or stderr");
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int null_fd = open("/dev/null", O_RDWR);
		if (null_fd < 0)
			return -errno;
		if (null_fd != fd)
			close(null_fd); /* cannot happen: open returns the lowest free fd */
	}
	return 0;
}

int jail_clear_env(struct jail *j)
{
	jail_detail(j, "clearenv");
	return clearenv() == 0 ? 0 : -ENOMEM;
}

int jail_join_netns(struct jail *j)
{
	if (!j->a.netns)
		return 0;
	jail_detail(j, "--netns %s", j->a.netns);
	int fd = open(j->a.netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
	if (err)
		jail_detail(j, "--netns %s: setns(CLONE_NEWNET)", j->a.netns);
	close(fd);
	return err;
}

static int set_limit(struct jail *j, int resource, const char *name, uint64_t value)
{
	struct rlimit rl = {.rlim_cur = value, .rlim_max = value};
	if (setrlimit(resource, &rl) == 0)
		return 0;
	jail_detail(j, "--resource-limit %s=%llu", name, (unsigned long long)value);
	return -errno;
}

int jail_set_rlimits(struct jail *j)
{
	int err = 0;
	if (j->a.has_fsize)
		err = set_limit(j, RLIMIT_FSIZE, "fsize", j->a.fsize);
	return err ? err : set_limit(j, RLIMIT_NOFILE, "no-file", j->a.no_file);
}

/* -EPERM when any capability is left in the bounding or ambient set; hint ends the detail. */
static int check_sets_empty(struct jail *j, const char *hint)
{
	for (int cap = 0;; cap++) {
		int in_bounding = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (in_bounding < 0)
			return 0; /* EINVAL: past the kernel's last capability */
		int ambient = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
		if (in_bounding > 0 || ambient > 0) {
			jail_detail(j, "capability %d is still in the %s set%s", cap,
				    in_bounding > 0 ? "bounding" : "ambient", hint);
			return -EPERM;
		}
	}
}

int jail_drop_bounding_set(struct jail *j)
{
	jail_detail(j, "empty the capability bounding set");
	capng_clear(CAPNG_SELECT_BOTH);
	errno = 0;
	if (capng_apply(CAPNG_SELECT_BOUNDS) < 0)
		return errno ? -errno : -EPERM;
	jail_detail(j, "clear the ambient capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	/* libcap-ng quietly skips the bounding set without CAP_SETPCAP: check. */
	return check_sets_empty(j, " (CAP_SETPCAP is needed: run as root with all capabilities)");
}

int jail_change_ids(struct jail *j)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	uint32_t uid = j->a.uid, gid = j->a.gid;
	jail_detail(j, "setgroups(0)");
	if (setgroups(0, NULL) < 0)
		return -errno;
	jail_detail(j, "setresgid(%u)", gid);
	if (setresgid(gid, gid, gid) < 0)
		return -errno;
	jail_detail(j, "setresuid(%u)", uid);
	if (setresuid(uid, uid, uid) < 0)
		return -errno;
	j->can_undo = false;
	jail_detail(j, "the ids did not change to %u:%u", uid, gid);
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid ||
	    getgroups(0, NULL) != 0)
		return -EPERM;
	return 0;
}

int jail_drop_caps(struct jail *j)
{
	jail_detail(j, "clear the effective, permitted and inheritable capabilities");
	capng_clear(CAPNG_SELECT_BOTH);
	capng_setpid(0); /* this process, also in a child forked after the library's init */
	errno = 0;
	if (capng_apply(CAPNG_SELECT_CAPS) < 0)
		return errno ? -errno : -EPERM;
	jail_detail(j, "read back the capabilities");
	errno = 0;
	if (capng_get_caps_process() < 0)
		return errno ? -errno : -EIO;
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE) {
		jail_detail(j, "capabilities are left after dropping them");
		return -EPERM;
	}
	return check_sets_empty(j, "");
}

int jail_set_no_new_privs(struct jail *j)
{
	jail_detail(j, "prctl(PR_SET_NO_NEW_PRIVS)");
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}
