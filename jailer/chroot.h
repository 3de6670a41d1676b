/* kiln-jailer filesystem jail: <chroot base>/<exec name>/<id>/root, the copy of kiln in it,
 * a private mount namespace pivoted into it, and the device nodes kiln needs. */
#ifndef KILN_JAILER_CHROOT_H
#define KILN_JAILER_CHROOT_H

#include "jailer/jail.h"

#include <sys/types.h>

/* Fills j->exec_path (the canonical --exec-file, which must be a regular file),
 * j->exec_name, j->jail_dir and j->root. Bad user input: returns -errno with j->detail
 * naming the flag. */
int jail_resolve_paths(struct jail *j);

/* Refuses a jail that a previous run used: <root>/<exec name>.pid or <root>/dev/kvm exists
 * (-EEXIST, j->detail says what to remove). A jail dir with only user-staged files (kernel,
 * drives, config) is fine. */
int jail_check_unused(struct jail *j);

/* mkdir -p <jail_dir> (0755, root) and <root> (0700, owned by --uid/--gid, also when it
 * existed); opens j->root_fd. Returns 0 or -errno with j->detail set. */
int jail_make_dirs(struct jail *j);

/* Copies the exec file to <root>/<exec name> (mode 0755, owned by root; a new inode renamed
 * over any old one, never written through a link) and checks that it can be exec'd there
 * (noexec mounts). Returns 0 or -errno with j->detail set. */
int jail_copy_exec(struct jail *j);

/* Opens /dev/null when --daemonize is set and j->host_root_fd (for the undo list), then
 * unshare(CLONE_NEWNS), makes every mount a recursive slave so nothing propagates back to
 * the host, and bind-mounts <root> on itself (pivot_root needs a mount point). Returns 0 or
 * -errno with j->detail set. */
int jail_enter_mount_ns(struct jail *j);

/* pivot_root into <root> with put_old inside it, then detaches and removes put_old and
 * changes directory to the new "/". Where "/" is the initial ramfs (pivot_root: EINVAL),
 * as runc's no-pivot mode: detaches every other mount of the namespace, moves the <root>
 * bind mount onto "/" (MS_MOVE) and chroots into it, saying so on stderr in one line.
 * Returns 0 or -errno with j->detail set. */
int jail_pivot_root(struct jail *j);

/* Inside the jail: /dev, /dev/net and /run (0700, --uid/--gid) and the character devices
 * /dev/kvm (10:232), /dev/net/tun (10:200), /dev/urandom (1:9), mode 0600 and owned by
 * --uid/--gid, as Firecracker does. Returns 0 or -errno with j->detail set. */
int jail_make_devices(struct jail *j);

/* Inside the jail: writes pid to /<exec name>.pid, which must not exist. Returns 0 or
 * -errno with j->detail set. */
int jail_write_pid_file(struct jail *j, pid_t pid);

#endif
