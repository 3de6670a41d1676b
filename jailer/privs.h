/* kiln-jailer process hygiene and privileges: inherited fds and environment, network
 * namespace, resource limits, ids, capabilities (libcap-ng) and no_new_privs. */
#ifndef KILN_JAILER_PRIVS_H
#define KILN_JAILER_PRIVS_H

#include "jailer/jail.h"

/* Closes every fd above 2 (close_range, else a /proc/self/fd walk) and opens /dev/null on
 * any of 0, 1 and 2 that is closed. Returns 0 or -errno. */
int jail_close_fds(struct jail *j);

/* Empties the environment (clearenv). Returns 0 or -errno. */
int jail_clear_env(struct jail *j);

/* With --netns, joins the network namespace of that file (setns(CLONE_NEWNET)). Returns 0
 * or -errno with j->detail set. */
int jail_join_netns(struct jail *j);

/* RLIMIT_NOFILE (soft = hard = --resource-limit no-file, default 2048) and, when given,
 * RLIMIT_FSIZE (fsize). Returns 0 or -errno with j->detail set. */
int jail_set_rlimits(struct jail *j);

/* While still root: empties the capability bounding set and the ambient set (libcap-ng;
 * needs CAP_SETPCAP, which is why it comes before the id change). Returns 0 or -errno. */
int jail_drop_bounding_set(struct jail *j);

/* setgroups(0), setresgid(--gid), setresuid(--uid), then checks the result. Clears
 * j->can_undo: from here on the run cannot remove what it created. Returns 0 or -errno. */
int jail_change_ids(struct jail *j);

/* Clears the effective, permitted and inheritable sets (libcap-ng) and checks that no
 * capability is left in any of the five sets. Returns 0 or -errno with j->detail set. */
int jail_drop_caps(struct jail *j);

/* prctl(PR_SET_NO_NEW_PRIVS, 1). Returns 0 or -errno. */
int jail_set_no_new_privs(struct jail *j);

#endif
