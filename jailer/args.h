/* kiln-jailer command line: Firecracker's jailer flags, parsed and validated without touching
 * the system, so every check is unit-testable. */
#ifndef KILN_JAILER_ARGS_H
#define KILN_JAILER_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JAIL_ID_MAX 64
#define JAIL_MAX_CGROUPS 64
#define JAIL_DEFAULT_CHROOT_BASE "/srv/jailer"
#define JAIL_DEFAULT_NO_FILE 2048 /* Firecracker's default RLIMIT_NOFILE */

/* One --cgroup FILE=VALUE. The strings point into argv, which must outlive the struct. */
struct jail_cgroup_arg {
	const char *file; /* "<controller>.<name>", not NUL-terminated: file_len bytes */
	int file_len;
	int ctrl_len;	   /* length of the "<controller>" prefix of file */
	const char *value; /* NUL-terminated, non-empty */
};

struct jail_args {
	const char *id;
	const char *exec_file; /* absolute */
	uint32_t uid, gid;
	const char *chroot_base; /* absolute; JAIL_DEFAULT_CHROOT_BASE when not given */
	const char *netns;	 /* absolute, or NULL: stay in the caller's network namespace */
	bool new_pid_ns;
	bool daemonize;
	int cgroup_version;	   /* 1 (default) or 2 */
	const char *parent_cgroup; /* relative path, or NULL: the exec file's name */
	struct jail_cgroup_arg cgroups[JAIL_MAX_CGROUPS];
	int nr_cgroups;
	bool has_fsize;
	uint64_t fsize;		/* RLIMIT_FSIZE when has_fsize */
	uint64_t no_file;	/* RLIMIT_NOFILE, JAIL_DEFAULT_NO_FILE when not given */
	char *const *kiln_args; /* the arguments after "--", passed to kiln unchanged */
	int nr_kiln_args;
	bool help;
	bool version;
};

/* Parses argv[1..argc-1] into *a (argv[0] is skipped). Accepts "--flag value" and
 * "--flag=value"; everything after "--" goes to kiln. Returns 0, or -EINVAL with one line
 * naming the flag and the bad value in err (control characters replaced by '?'). When
 * --help or --version is given the other checks are skipped and a->help / a->version set. */
int jail_args_parse(int argc, char *const argv[], struct jail_args *a, char *err, size_t errlen);

/* True for 1..JAIL_ID_MAX characters of ASCII letters, digits and '-'. */
bool jail_id_valid(const char *id);

/* Parses a decimal uid/gid: digits only, below 2^32 - 1 ((uid_t)-1 means "unchanged" to the
 * kernel). Returns 0 or -EINVAL. */
int jail_parse_id_number(const char *s, uint32_t *out);

/* Parses FILE=VALUE of --cgroup into *cg: exactly one '=', a non-empty value, FILE of the
 * form <controller>.<name> with a controller of [A-Za-z0-9_] and no '/' or ".." anywhere.
 * Returns 0 or -EINVAL. */
int jail_parse_cgroup(const char *spec, struct jail_cgroup_arg *cg);

/* True for a relative cgroup path (nested "a/b" allowed) without empty, "." or ".."
 * components. */
bool jail_parent_cgroup_valid(const char *path);

/* The last component of an absolute path: "/usr/bin/kiln" -> "kiln"; "" if it ends in '/'. */
const char *jail_basename(const char *path);

#endif
