/* kiln-jailer command line parsing and validation: pure, no system calls. */
#include "jailer/args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct perr {
	char *buf;
	size_t len;
};

/* Formats one error line into e and returns -EINVAL. */
__attribute__((format(printf, 2, 3))) static int bad(struct perr *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (e->len)
		vsnprintf(e->buf, e->len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ASCII only: isalnum() would follow the locale. */
static bool ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool jail_id_valid(const char *id)
{
	size_t n = 0;
	for (const char *p = id; *p; p++, n++)
		if (!(ascii_alnum(*p) || *p == '-') || n >= JAIL_ID_MAX)
			return false;
	return n > 0;
}

int jail_parse_id_number(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v >= UINT32_MAX)
			return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* Decimal u64 without sign or spaces. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int jail_parse_cgroup(const char *spec, struct jail_cgroup_arg *cg)
{
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec || !eq[1] || strchr(eq + 1, '='))
		return -EINVAL;
	int len = (int)(eq - spec);
	const char *dot = memchr(spec, '.', (size_t)len);
	if (!dot || dot == spec || dot == eq - 1)
		return -EINVAL;
	for (const char *p = spec; p < dot; p++)
		if (!(ascii_alnum(*p) || *p == '_'))
			return -EINVAL;
	for (const char *p = dot; p < eq; p++)
		if (*p == '/' || (p + 1 < eq && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
	cg->file = spec;
	cg->file_len = len;
	cg->ctrl_len = (int)(dot - spec);
	cg->value = eq + 1;
	return 0;
}

bool jail_parent_cgroup_valid(const char *path)
{
	if (!*path || *path == '/')
		return false;
	const char *p = path;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!*end)
			break;
		p = end + 1;
		if (!*p)
			return false; /* trailing '/' */
	}
	return true;
}

const char *jail_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static int set_path(const char **dst, const char *flag, const char *v, struct perr *e)
{
	if (v[0] != '/')
		return bad(e, "--%s: \"%s\": must be an absolute path", flag, v);
	*dst = v;
	return 0;
}

static int set_resource_limit(struct jail_args *a, const char *v, struct perr *e)
{
	const char *eq = strchr(v, '=');
	uint64_t n;
	if (!eq || parse_u64(eq + 1, &n) < 0)
		return bad(e, "--resource-limit: \"%s\": expected fsize=N or no-file=N", v);
	size_t len = (size_t)(eq - v);
	if (len == 5 && !strncmp(v, "fsize", 5)) {
		a->has_fsize = true;
		a->fsize = n;
	} else if (len == 7 && !strncmp(v, "no-file", 7)) {
		a->no_file = n;
	} else {
		return bad(e, "--resource-limit: \"%s\": unknown resource (fsize, no-file)", v);
	}
	return 0;
}

enum opt_id {
	O_ID,
	O_EXEC_FILE,
	O_UID,
	O_GID,
	O_CHROOT_BASE,
	O_NETNS,
	O_NEW_PID_NS,
	O_DAEMONIZE,
	O_CGROUP_VERSION,
	O_CGROUP,
	O_PARENT_CGROUP,
	O_RESOURCE_LIMIT,
	O_HELP,
	O_VERSION,
	O_COUNT
};

struct opt {
	const char *name;
	bool takes_value;
	bool repeatable;
};

static const struct opt opts[O_COUNT] = {
    [O_ID] = {"id", true, false},
    [O_EXEC_FILE] = {"exec-file", true, false},
    [O_UID] = {"uid", true, false},
    [O_GID] = {"gid", true, false},
    [O_CHROOT_BASE] = {"chroot-base-dir", true, false},
    [O_NETNS] = {"netns", true, false},
    [O_NEW_PID_NS] = {"new-pid-ns", false, false},
    [O_DAEMONIZE] = {"daemonize", false, false},
    [O_CGROUP_VERSION] = {"cgroup-version", true, false},
    [O_CGROUP] = {"cgroup", true, true},
    [O_PARENT_CGROUP] = {"parent-cgroup", true, false},
    [O_RESOURCE_LIMIT] = {"resource-limit", true, true},
    [O_HELP] = {"help", false, false},
    [O_VERSION] = {"version", false, false},
};

static int apply_cgroup(struct jail_args *a, const char *v, struct perr *e)
{
	if (a->nr_cgroups >= JAIL_MAX_CGROUPS)
		return bad(e, "--cgroup: more than %d given", JAIL_MAX_CGROUPS);
	if (jail_parse_cgroup(v, &a->cgroups[a->nr_cgroups]) < 0)
		return bad(e,
			   "--cgroup: \"%s\": expected <controller>.<name>=<value> without '/' "
			   "or '..' in the file name",
			   v);
	a->nr_cgroups++;
	return 0;
}

static int apply_id_number(uint32_t *dst, const char *flag, const char *v, struct perr *e)
{
	if (jail_parse_id_number(v, dst) < 0)
		return bad(e, "--%s: \"%s\": expected a decimal number below 4294967295", flag, v);
	return 0;
}

static int apply(struct jail_args *a, enum opt_id o, const char *v, struct perr *e)
{
	switch (o) {
	case O_ID:
		if (!jail_id_valid(v))
			return bad(e,
				   "--id: \"%s\": must be 1-%d characters of A-Z, a-z, 0-9 and '-'",
				   v, JAIL_ID_MAX);
		a->id = v;
		return 0;
	case O_EXEC_FILE:
		return set_path(&a->exec_file, "exec-file", v, e);
	case O_UID:
		return apply_id_number(&a->uid, "uid", v, e);
	case O_GID:
		return apply_id_number(&a->gid, "gid", v, e);
	case O_CHROOT_BASE:
		return set_path(&a->chroot_base, "chroot-base-dir", v, e);
	case O_NETNS:
		return set_path(&a->netns, "netns", v, e);
	case O_NEW_PID_NS:
		a->new_pid_ns = true;
		return 0;
	case O_DAEMONIZE:
		a->daemonize = true;
		return 0;
	case O_CGROUP_VERSION:
		if (strcmp(v, "1") && strcmp(v, "2"))
			return bad(e, "--cgroup-version: \"%s\": must be 1 or 2", v);
		a->cgroup_version = v[0] - '0';
		return 0;
	case O_CGROUP:
		return apply_cgroup(a, v, e);
	case O_PARENT_CGROUP:
		if (!jail_parent_cgroup_valid(v))
			return bad(e,
				   "--parent-cgroup: \"%s\": must be a relative path without '.' "
				   "or '..' components",
				   v);
		a->parent_cgroup = v;
		return 0;
	case O_RESOURCE_LIMIT:
		return set_resource_limit(a, v, e);
	case O_HELP:
		a->help = true;
		return 0;
	case O_VERSION:
		a->version = true;
		return 0;
	case O_COUNT:
		break;
	}
	return bad(e, "internal: unknown option");
}

/* Finds "--name" or "--name=value" in the option table; *inline_value gets the text after
 * '=' or NULL. Returns the option or O_COUNT. */
static enum opt_id lookup(const char *arg, const char **inline_value)
{
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	*inline_value = eq ? eq + 1 : NULL;
	for (int i = 0; i < O_COUNT; i++)
		if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
			return (enum opt_id)i;
	return O_COUNT;
}

/* Walks argv, applying each option and marking it in seen[]; stops after "--". */
static int parse_options(int argc, char *const argv[], struct jail_args *a, bool seen[O_COUNT],
			 struct perr *e)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *arg = argv[i], *v;
		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		if (strncmp(arg, "--", 2))
			return bad(e,
				   "\"%s\": unexpected argument (kiln's own arguments go after --)",
				   arg);
		enum opt_id o = lookup(arg, &v);
		if (o == O_COUNT)
			return bad(e, "%s: unknown option (see --help)", arg);
		if (seen[o] && !opts[o].repeatable)
			return bad(e, "--%s: given more than once", opts[o].name);
		seen[o] = true;
		if (!opts[o].takes_value && v)
			return bad(e, "--%s: takes no value", opts[o].name);
		if (opts[o].takes_value && !v) {
			if (i + 1 >= argc)
				return bad(e, "--%s: missing value", opts[o].name);
			v = argv[++i];
		}
		int err = apply(a, o, v ? v : "", e);
		if (err)
			return err;
	}
	a->kiln_args = argv + i;
	a->nr_kiln_args = argc > i ? argc - i : 0;
	return 0;
}

/* Replaces control characters so that the message stays one printable line. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static int check_required(const bool seen[O_COUNT], struct perr *e)
{
	static const enum opt_id required[] = {O_ID, O_EXEC_FILE, O_UID, O_GID};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!seen[required[i]])
			return bad(e, "--%s is required (see --help)", opts[required[i]].name);
	return 0;
}

int jail_args_parse(int argc, char *const argv[], struct jail_args *a, char *err, size_t errlen)
{
	struct perr e = {err, errlen};
	bool seen[O_COUNT] = {false};
	memset(a, 0, sizeof(*a));
	a->chroot_base = JAIL_DEFAULT_CHROOT_BASE;
	a->cgroup_version = 1;
	a->no_file = JAIL_DEFAULT_NO_FILE;
	if (errlen)
		err[0] = '\0';
	int ret = parse_options(argc, argv, a, seen, &e);
	if (!ret && !a->help && !a->version)
		ret = check_required(seen, &e);
	if (!ret && !a->help && !a->version && !jail_basename(a->exec_file)[0])
		ret = bad(&e, "--exec-file: \"%s\": names a directory", a->exec_file);
	if (ret && errlen)
		sanitize(err);
	return ret;
}
