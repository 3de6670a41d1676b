/* kiln-jailer: the state one jailer run carries from step to step, the exit code of every
 * step, and the undo list that removes what a failed run created on the host. */
#ifndef KILN_JAILER_JAIL_H
#define KILN_JAILER_JAIL_H

#include "jailer/args.h"

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

/* One exit code per step (docs/jailer.md has the table). 0: kiln was exec'd; 2: bad
 * arguments, nothing done. The others do not overlap kiln's own exit codes (0, 1, 2, 148). */
enum jail_exit {
	JAIL_EXIT_OK = 0,
	JAIL_EXIT_USAGE = 2,
	JAIL_EXIT_CLOSE_FDS = 10,
	JAIL_EXIT_CLEAR_ENV = 11,
	JAIL_EXIT_BOUNDING_SET = 12,
	JAIL_EXIT_IN_USE = 13,
	JAIL_EXIT_JAIL_DIR = 14,
	JAIL_EXIT_COPY_EXEC = 15,
	JAIL_EXIT_NETNS = 16,
	JAIL_EXIT_RLIMITS = 17,
	JAIL_EXIT_CGROUP = 18,
	JAIL_EXIT_MOUNT_NS = 19,
	JAIL_EXIT_PIVOT_ROOT = 20,
	JAIL_EXIT_DEVICES = 21,
	JAIL_EXIT_SPAWN = 22,
	JAIL_EXIT_PID_FILE = 23,
	JAIL_EXIT_DAEMONIZE = 24,
	JAIL_EXIT_IDS = 25,
	JAIL_EXIT_CAPS = 26,
	JAIL_EXIT_NO_NEW_PRIVS = 27,
	JAIL_EXIT_EXEC = 28,
};

enum undo_kind {
	UNDO_UNLINK,	   /* a file this run created */
	UNDO_RMDIR,	   /* a directory (or cgroup) this run created */
	UNDO_CGROUP_LEAVE, /* write "0" to this cgroup.procs/tasks file: move back out */
	UNDO_UMOUNT,	   /* detach this mount in the jailer's own mount namespace */
};

struct undo_item {
	enum undo_kind kind;
	char *path; /* absolute host path */
};

struct jail {
	struct jail_args a;
	char exec_path[PATH_MAX]; /* the canonical --exec-file */
	const char *exec_name;	  /* its last component: names the jail dir and the copy */
	char jail_dir[PATH_MAX];  /* <chroot base>/<exec name>/<id> */
	char root[PATH_MAX];	  /* <jail_dir>/root: "/" for kiln */
	int host_root_fd;	  /* the host's "/", to undo after pivot_root */
	int root_fd;		  /* the jail root on the host, before pivot_root */
	int dev_null_fd;	  /* opened before pivot_root for --daemonize */
	int status_fd;		  /* in a forked child: where failures go to the parent; else -1 */
	pid_t child;		  /* in the parent of a fork: the child that execs kiln; else 0 */
	bool forked;		  /* this is that child */
	bool can_undo;		  /* false once the ids changed: nothing can be removed any more */
	struct undo_item *undo;
	int nr_undo;
	int undo_cap;
	char detail[PATH_MAX + 256]; /* what the failing step was doing: path, value */
};

/* Initialises *j for a run with the parsed arguments a; no system calls. */
void jail_init(struct jail *j, const struct jail_args *a);

/* Records what the failing step was doing, printed before strerror. Returns nothing. */
__attribute__((format(printf, 2, 3))) void jail_detail(struct jail *j, const char *fmt, ...);

/* Appends an undo item for path (copied). Returns 0 or -ENOMEM. */
int jail_undo_push(struct jail *j, enum undo_kind kind, const char *path);

/* Whether /proc/self/mountinfo text says the current "/" is the kernel's initial rootfs
 * (an initramfs root, where pivot_root fails with EINVAL): the last mount on "/" has
 * filesystem type "rootfs". Pure. */
bool jail_root_is_rootfs(const char *mountinfo);

/* Performs the undo list in reverse order through j->host_root_fd, ignoring errors (a
 * missing file is already undone), then empties it. Needs the privileges of the run. */
void jail_undo_run(struct jail *j);

/* mkdir -p of an absolute host path; each directory it creates gets mode `mode` and an
 * UNDO_RMDIR item. An existing component must be a directory. Returns 0 or -errno with
 * j->detail set. */
int jail_mkdir_p(struct jail *j, const char *path, mode_t mode);

/* Writes the string s to an existing file (cgroup files, the pid file). Returns 0 or
 * -errno (short writes are -EIO). */
int jail_write_file(const char *path, const char *s);

/* Reads at most len-1 bytes of a file into buf, NUL-terminated, trailing newline removed.
 * Returns the length or -errno. */
int jail_read_file(const char *path, char *buf, size_t len);

/* snprintf into a PATH_MAX buffer; returns 0 or -ENAMETOOLONG with j->detail set. */
__attribute__((format(printf, 3, 4))) int jail_path(struct jail *j, char out[PATH_MAX],
						    const char *fmt, ...);

#endif
