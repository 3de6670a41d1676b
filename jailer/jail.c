/* kiln-jailer run state: error details, the undo list and small file helpers. */
#include "jailer/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

void jail_init(struct jail *j, const struct jail_args *a)
{
	memset(j, 0, sizeof(*j));
	j->a = *a;
	j->host_root_fd = -1;
	j->root_fd = -1;
	j->dev_null_fd = -1;
	j->status_fd = -1;
	j->can_undo = true;
}

void jail_detail(struct jail *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->detail, sizeof(j->detail), fmt, ap);
	va_end(ap);
}

int jail_path(struct jail *j, char out[PATH_MAX], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX) {
		jail_detail(j, "%.200s...", out);
		return -ENAMETOOLONG;
	}
	return 0;
}

int jail_undo_push(struct jail *j, enum undo_kind kind, const char *path)
{
	if (j->nr_undo == j->undo_cap) {
		int cap = j->undo_cap ? j->undo_cap * 2 : 16;
		struct undo_item *u = realloc(j->undo, (size_t)cap * sizeof(*u));
		if (!u)
			return -ENOMEM;
		j->undo = u;
		j->undo_cap = cap;
	}
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	j->undo[j->nr_undo++] = (struct undo_item){kind, copy};
	return 0;
}

/* Moves this process back to the cgroup it came from: "0" means the writer itself. */
static void undo_cgroup_leave(int dirfd, const char *rel)
{
	int fd = openat(dirfd, rel, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "0", 1) < 0) {
		/* nothing more to try: the rmdir after this reports nothing either */
	}
	close(fd);
}

static void undo_one(int dirfd, const struct undo_item *u)
{
	/* Relative to the host's "/" so that this still works after pivot_root. */
	const char *rel = dirfd == AT_FDCWD ? u->path : u->path + 1;
	if (u->kind == UNDO_UNLINK)
		unlinkat(dirfd, rel, 0);
	else if (u->kind == UNDO_RMDIR)
		unlinkat(dirfd, rel, AT_REMOVEDIR);
	else if (u->kind == UNDO_CGROUP_LEAVE)
		undo_cgroup_leave(dirfd, rel);
	else
		umount2(u->path, MNT_DETACH); /* gone after pivot_root: ENOENT */
}

void jail_undo_run(struct jail *j)
{
	int dirfd = j->host_root_fd >= 0 ? j->host_root_fd : AT_FDCWD;
	for (int i = j->nr_undo - 1; i >= 0; i--) {
		if (j->can_undo)
			undo_one(dirfd, &j->undo[i]);
		free(j->undo[i].path);
	}
	free(j->undo);
	j->undo = NULL;
	j->nr_undo = j->undo_cap = 0;
}

/* Creates one directory of a mkdir -p walk, or checks that an existing one is a directory. */
static int mkdir_one(struct jail *j, const char *path, mode_t mode)
{
	struct stat st;
	if (mkdir(path, mode) == 0) {
		int err = jail_undo_push(j, UNDO_RMDIR, path);
		if (!err && chmod(path, mode) < 0)
			err = -errno;
		if (err)
			jail_detail(j, "mkdir %s", path);
		return err;
	}
	int err = -errno;
	if (err == -EEXIST && lstat(path, &st) == 0)
		err = S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (err)
		jail_detail(j, "mkdir %s", path);
	return err;
}

int jail_mkdir_p(struct jail *j, const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	int err = jail_path(j, buf, "%s", path);
	if (err)
		return err;
	size_t len = strlen(buf);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		err = mkdir_one(j, buf, mode);
		*p = '/';
		if (err)
			return err;
	}
	return mkdir_one(j, buf, mode);
}

int jail_write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t len = strlen(s);
	ssize_t n = write(fd, s, len);
	int err = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
	close(fd);
	return err;
}

int jail_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return (int)n;
}

/* Field 5 of a mountinfo line is the mount point; the filesystem type follows " - ". */
bool jail_root_is_rootfs(const char *mountinfo)
{
	bool rootfs = false;
	for (const char *line = mountinfo; line && *line;) {
		const char *end = strchr(line, '\n'), *p = line;
		size_t len = end ? (size_t)(end - line) : strlen(line);
		for (int field = 1; field < 5 && p < line + len; field++) {
			const char *sp = memchr(p, ' ', line + len - p);
			p = sp ? sp + 1 : line + len;
		}
		const char *sep = memmem(line, len, " - ", 3);
		if (p + 2 <= line + len && p[0] == '/' && p[1] == ' ' && sep)
			rootfs = len - (sep + 3 - line) >= 7 && !memcmp(sep + 3, "rootfs ", 7);
		line = end ? end + 1 : NULL;
	}
	return rootfs;
}
