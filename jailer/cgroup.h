/* kiln-jailer cgroups: one cgroup per jail under --parent-cgroup, v1 or v2. */
#ifndef KILN_JAILER_CGROUP_H
#define KILN_JAILER_CGROUP_H

#include "jailer/jail.h"

#include <stdbool.h>
#include <stddef.h>

/* The cgroup step. v2: creates <cgroup2 mount>/<parent>/<id>, enables each controller named
 * by the --cgroup files in cgroup.subtree_control from the mount down to <parent>, writes the
 * files and moves this process in (cgroup.procs). With no --cgroup files, joins
 * <mount>/<parent> if it exists, like Firecracker. v1: for each controller, creates
 * <mount of that controller>/<parent>/<id>, copies empty cpuset.cpus/cpuset.mems from the
 * level above when cpuset is used, writes the files, then writes "0" to each tasks file.
 * Mounts come from /proc/self/mountinfo. Everything created is on the undo list, including a
 * move back to the original cgroup. Returns 0 or -errno with j->detail set. */
int jail_setup_cgroups(struct jail *j);

/* Parses one /proc/self/mountinfo line (modified in place). True when it is a cgroup2 mount
 * (version 2) or a cgroup v1 mount whose super options list the controller ctrl[0..ctrl_len)
 * (version 1); *mnt and *root then point at the unescaped mount point and mount root. */
bool jail_mountinfo_cgroup(char *line, int version, const char *ctrl, size_t ctrl_len, char **mnt,
			   char **root);

/* Parses one /proc/self/cgroup line (modified in place). True when it describes the v2
 * hierarchy (version 2) or the v1 hierarchy holding ctrl (version 1); *path then points at
 * the cgroup path. */
bool jail_proc_cgroup_line(char *line, int version, const char *ctrl, size_t ctrl_len, char **path);

#endif
