/* kiln-jailer filesystem jail: directories, the copy of kiln, mount namespace, pivot_root and
 * device nodes. Before pivot_root, paths are host paths; after it, jail paths. On a host whose
 * root is the initial ramfs, the jail is moved onto "/" and chrooted into instead. */
#include "jailer/chroot.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define OLD_ROOT "old_root"

int jail_resolve_paths(struct jail *j)
{
	struct stat st;
	if (!realpath(j->a.exec_file, j->exec_path) || stat(j->exec_path, &st) < 0) {
		jail_detail(j, "--exec-file: %s", j->a.exec_file);
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		jail_detail(j, "--exec-file: %s: not a regular file", j->a.exec_file);
		return -EINVAL;
	}
	j->exec_name = jail_basename(j->exec_path);
	int err = jail_path(j, j->jail_dir, "%s/%s/%s", j->a.chroot_base, j->exec_name, j->a.id);
	if (!err)
		err = jail_path(j, j->root, "%s/root", j->jail_dir);
	if (err)
		jail_detail(j, "--chroot-base-dir: %s: the jail path is too long",
			    j->a.chroot_base);
	return err;
}

int jail_check_unused(struct jail *j)
{
	char pid_file[PATH_MAX], kvm[PATH_MAX];
	struct stat st;
	int err = jail_path(j, pid_file, "%s/%s.pid", j->root, j->exec_name);
	if (!err)
		err = jail_path(j, kvm, "%s/dev/kvm", j->root);
	if (err)
		return err;
	const char *used = lstat(pid_file, &st) == 0 ? pid_file : lstat(kvm, &st) == 0 ? kvm : NULL;
	if (!used)
		return 0;
	jail_detail(j, "%s exists: a previous run used this jail; remove %s to reuse id %s", used,
		    j->jail_dir, j->a.id);
	return -EEXIST;
}

int jail_make_dirs(struct jail *j)
{
	int err = jail_mkdir_p(j, j->jail_dir, 0755);
	if (!err)
		err = jail_mkdir_p(j, j->root, 0700);
	if (err)
		return err;
	j->root_fd = open(j->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (j->root_fd < 0 || fchmod(j->root_fd, 0700) < 0 ||
	    fchown(j->root_fd, j->a.uid, j->a.gid) < 0) {
		jail_detail(j, "%s", j->root);
		return -errno;
	}
	return 0;
}

static int copy_fd(int from, int to)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(from, buf, sizeof(buf));
		if (n <= 0)
			return n < 0 ? -errno : 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, buf + off, (size_t)(n - off));
			if (w < 0)
				return -errno;
			off += w;
		}
	}
}

/* Writes the copy under a fresh name in the jail root; returns 0 or -errno. */
static int write_copy(struct jail *j, const char *tmp)
{
	int src = open(j->exec_path, O_RDONLY | O_CLOEXEC);
	if (src < 0) {
		jail_detail(j, "open %s", j->exec_path);
		return -errno;
	}
	int dst =
	    openat(j->root_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	int err = dst < 0 ? -errno : copy_fd(src, dst);
	if (!err && (fchown(dst, 0, 0) < 0 || fchmod(dst, 0755) < 0))
		err = -errno;
	if (dst >= 0 && close(dst) < 0 && !err)
		err = -errno;
	close(src);
	if (err)
		jail_detail(j, "copy %s to %s/%s", j->exec_path, j->root, tmp);
	return err;
}

int jail_copy_exec(struct jail *j)
{
	char tmp[NAME_MAX + 1], final[PATH_MAX];
	struct stat st;
	snprintf(tmp, sizeof(tmp), ".%.200s.kiln-jailer-%d", j->exec_name, (int)getpid());
	int err = jail_path(j, final, "%s/%s", j->root, j->exec_name);
	if (err || (err = write_copy(j, tmp))) {
		unlinkat(j->root_fd, tmp, 0);
		return err;
	}
	bool existed = fstatat(j->root_fd, j->exec_name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (!existed && (err = jail_undo_push(j, UNDO_UNLINK, final)))
		jail_detail(j, "%s", final);
	if (!err && renameat(j->root_fd, tmp, j->root_fd, j->exec_name) < 0) {
		err = -errno;
		jail_detail(j, "rename %s/%s to %s", j->root, tmp, final);
	}
	if (err) {
		unlinkat(j->root_fd, tmp, 0);
		return err;
	}
	/* Catches a noexec mount now, while the jail can still be removed. */
	if (faccessat(j->root_fd, j->exec_name, X_OK, AT_EACCESS) < 0) {
		jail_detail(j, "%s is not executable (noexec mount?)", final);
		return -errno;
	}
	return 0;
}

int jail_enter_mount_ns(struct jail *j)
{
	if (j->a.daemonize) {
		j->dev_null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (j->dev_null_fd < 0) {
			jail_detail(j, "open /dev/null");
			return -errno;
		}
	}
	/* The undo list reaches the host's files through this after pivot_root. */
	j->host_root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (j->host_root_fd < 0) {
		jail_detail(j, "open /");
		return -errno;
	}
	if (unshare(CLONE_NEWNS) < 0) {
		jail_detail(j, "unshare(CLONE_NEWNS)");
		return -errno;
	}
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
		jail_detail(j, "make / a recursive slave mount");
		return -errno;
	}
	if (mount(j->root, j->root, NULL, MS_BIND | MS_REC, NULL) < 0) {
		jail_detail(j, "bind-mount %s on itself", j->root);
		return -errno;
	}
	/* Until pivot_root the bind mount keeps <root> busy for the undo's rmdir. */
	int err = jail_undo_push(j, UNDO_UMOUNT, j->root);
	if (err)
		jail_detail(j, "%s", j->root);
	return err;
}

/* Every mount but "/" and the jail's, as pivot_root's detaching of the old root would:
 * nothing of the host stays in the namespace. Children first (listed after parents). */
static void detach_other_mounts(const char *root)
{
	static char info[1 << 16];
	static char *mp[1024];
	int n = 0;
	if (jail_read_file("/proc/self/mountinfo", info, sizeof(info)) < 0)
		return;
	for (char *line = info, *next; line && *line && n < 1024; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *f = line;
		for (int field = 1; field < 5 && f; field++)
			f = strchr(f, ' ') ? strchr(f, ' ') + 1 : NULL;
		if (f && strchr(f, ' '))
			*strchr(f, ' ') = '\0';
		if (f)
			mp[n++] = f;
	}
	size_t rlen = strlen(root);
	while (n-- > 0) {
		bool in_jail = !strncmp(mp[n], root, rlen) && (!mp[n][rlen] || mp[n][rlen] == '/');
		if (strcmp(mp[n], "/") && !in_jail)
			umount2(mp[n], MNT_DETACH); /* gone with its parent already: fine */
	}
}

/* pivot_root cannot take the initial ramfs away (EINVAL): like runc's no-pivot mode, move
 * the jail's bind mount over "/" and chroot into it. Called with the jail as cwd. */
static int move_root(struct jail *j)
{
	fprintf(stderr,
		"kiln-jailer: / is the initial ramfs, where pivot_root fails: moving %s "
		"onto / and chroot into it instead\n",
		j->root);
	detach_other_mounts(j->root);
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) {
		jail_detail(j, "move %s onto /", j->root);
		return -errno;
	}
	if (chroot(".") < 0 || chdir("/") < 0) {
		jail_detail(j, "chroot %s", j->root);
		return -errno;
	}
	return 0;
}

static bool root_is_initramfs(void)
{
	static char info[1 << 16];
	return jail_read_file("/proc/self/mountinfo", info, sizeof(info)) >= 0 &&
	       jail_root_is_rootfs(info);
}

int jail_pivot_root(struct jail *j)
{
	char put_old[PATH_MAX];
	int err = jail_path(j, put_old, "%s/%s", j->root, OLD_ROOT);
	if (err)
		return err;
	/* By path, not root_fd: the working directory must be on the new bind mount. */
	if (chdir(j->root) < 0) {
		jail_detail(j, "chdir %s", j->root);
		return -errno;
	}
	if (mkdir(OLD_ROOT, 0700) < 0) {
		jail_detail(j, "mkdir %s", put_old);
		return -errno;
	}
	if ((err = jail_undo_push(j, UNDO_RMDIR, put_old)))
		return err;
	if (syscall(SYS_pivot_root, ".", OLD_ROOT) < 0) {
		err = -errno;
		if (err != -EINVAL || !root_is_initramfs()) {
			jail_detail(j, "pivot_root(%s, %s)", j->root, put_old);
			return err;
		}
		if (rmdir(OLD_ROOT) < 0 || (err = move_root(j)))
			return err ? err : -errno;
	} else if (chdir("/") < 0 || umount2("/" OLD_ROOT, MNT_DETACH) < 0 ||
		   rmdir("/" OLD_ROOT) < 0) {
		jail_detail(j, "detach and remove the old root at /%s", OLD_ROOT);
		return -errno;
	}
	close(j->root_fd);
	j->root_fd = -1;
	return 0;
}

/* Records the host path of a jail path for undo. */
static int push_jail_path(struct jail *j, enum undo_kind kind, const char *in_jail)
{
	char host[PATH_MAX];
	int err = jail_path(j, host, "%s%s", j->root, in_jail);
	return err ? err : jail_undo_push(j, kind, host);
}

/* A directory kiln may write to: never through a link left in the jail by a previous run. */
static int make_jail_dir(struct jail *j, const char *path)
{
	int err = 0;
	if (mkdir(path, 0700) == 0)
		err = push_jail_path(j, UNDO_RMDIR, path);
	else if (errno != EEXIST)
		err = -errno;
	int fd = err ? -1 : open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (!err && (fd < 0 || fchmod(fd, 0700) < 0 || fchown(fd, j->a.uid, j->a.gid) < 0))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		jail_detail(j, "mkdir %s (in the jail)", path);
	return err;
}

static int make_device(struct jail *j, const char *path, unsigned int major, unsigned int minor)
{
	if (mknod(path, S_IFCHR | 0600, makedev(major, minor)) < 0) {
		jail_detail(j, "mknod %s c %u %u (in the jail)", path, major, minor);
		return -errno;
	}
	int err = push_jail_path(j, UNDO_UNLINK, path);
	if (!err && lchown(path, j->a.uid, j->a.gid) < 0)
		err = -errno;
	if (err)
		jail_detail(j, "chown %s (in the jail)", path);
	return err;
}

int jail_make_devices(struct jail *j)
{
	static const char *const dirs[] = {"/dev", "/dev/net", "/run"};
	static const struct {
		const char *path;
		unsigned int major, minor;
	} devs[] = {{"/dev/kvm", 10, 232}, {"/dev/net/tun", 10, 200}, {"/dev/urandom", 1, 9}};
	int err = 0;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !err; i++)
		err = make_jail_dir(j, dirs[i]);
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]) && !err; i++)
		err = make_device(j, devs[i].path, devs[i].major, devs[i].minor);
	return err;
}

int jail_write_pid_file(struct jail *j, pid_t pid)
{
	char path[PATH_MAX], text[32];
	int err = jail_path(j, path, "/%s.pid", j->exec_name);
	if (err)
		return err;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		jail_detail(j, "create %s (in the jail)", path);
		return -errno;
	}
	err = push_jail_path(j, UNDO_UNLINK, path);
	int len = snprintf(text, sizeof(text), "%d", (int)pid);
	ssize_t n = err ? 0 : write(fd, text, (size_t)len);
	if (!err && n != len)
		err = n < 0 ? -errno : -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (err)
		jail_detail(j, "write %s (in the jail)", path);
	return err;
}
