/* kiln-jailer cgroups: find the hierarchies in /proc/self/mountinfo, create
 * <mount>/<parent>/<id>, write the --cgroup files and move the jailer in. */
#include "jailer/cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where one controller's (v1) or the unified (v2) hierarchy puts this jail. */
struct cg_place {
	const char *ctrl; /* v1: the controller, ctrl_len bytes; v2: unused */
	int ctrl_len;
	char mnt[PATH_MAX];  /* mount point of the hierarchy */
	char dir[PATH_MAX];  /* <mnt>/<parent>/<id> */
	char home[PATH_MAX]; /* cgroup.procs or tasks of the cgroup this process started in */
};

/* True when the comma-separated list holds the word w[0..n). */
static bool list_has(const char *list, const char *w, size_t n)
{
	for (const char *p = list; *p;) {
		const char *end = strchrnul(p, ',');
		if ((size_t)(end - p) == n && !strncmp(p, w, n))
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
}

bool jail_mountinfo_cgroup(char *line, int version, const char *ctrl, size_t ctrl_len, char **mnt,
			   char **root)
{
	char *fields[5], *save = NULL, *sep = strstr(line, " - ");
	if (!sep)
		return false;
	*sep = '\0';
	char *p = line;
	for (int i = 0; i < 5; i++)
		if (!(fields[i] = strtok_r(i ? NULL : p, " ", &save)))
			return false;
	char *rest = sep + 3, *save2 = NULL;
	char *fstype = strtok_r(rest, " ", &save2);
	char *source = strtok_r(NULL, " ", &save2);
	char *opts = strtok_r(NULL, " \n", &save2);
	if (!fstype || !source || !opts)
		return false;
	if (version == 2 ? strcmp(fstype, "cgroup2") != 0
			 : strcmp(fstype, "cgroup") != 0 || !list_has(opts, ctrl, ctrl_len))
		return false;
	unescape(fields[3]);
	unescape(fields[4]);
	*root = fields[3];
	*mnt = fields[4];
	return true;
}

bool jail_proc_cgroup_line(char *line, int version, const char *ctrl, size_t ctrl_len, char **path)
{
	char *c1 = strchr(line, ':');
	char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2)
		return false;
	*c1 = *c2 = '\0';
	char *nl = strchr(c2 + 1, '\n');
	if (nl)
		*nl = '\0';
	bool match = version == 2 ? !strcmp(line, "0") && !c1[1] : list_has(c1 + 1, ctrl, ctrl_len);
	if (match)
		*path = c2 + 1;
	return match;
}

/* Fills p->mnt and mroot (the mount's root inside the hierarchy) from mountinfo. */
static int find_mount(struct jail *j, int version, struct cg_place *p, char mroot[PATH_MAX])
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *mnt, *root;
	size_t cap = 0;
	int err = -ENOENT;
	while (f && err == -ENOENT && getline(&line, &cap, f) > 0)
		if (jail_mountinfo_cgroup(line, version, p->ctrl, (size_t)p->ctrl_len, &mnt,
					  &root) &&
		    !(err = jail_path(j, p->mnt, "%s", mnt)))
			err = jail_path(j, mroot, "%s", root);
	if (f)
		fclose(f);
	free(line);
	if (err == -ENOENT && version == 2)
		jail_detail(j, "no cgroup2 mount in /proc/self/mountinfo");
	else if (err == -ENOENT)
		jail_detail(j,
			    "no cgroup mount with controller %.*s in /proc/self/mountinfo "
			    "(--cgroup-version 2 for the unified hierarchy)",
			    p->ctrl_len, p->ctrl);
	return err;
}

/* Fills p->home: the procs/tasks file of the cgroup this process is in now. */
static int find_home(struct jail *j, int version, struct cg_place *p, const char *mroot)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char *line = NULL, *path;
	size_t cap = 0, rl = strlen(mroot);
	int err = -ENOENT;
	while (f && err == -ENOENT && getline(&line, &cap, f) > 0) {
		if (!jail_proc_cgroup_line(line, version, p->ctrl, (size_t)p->ctrl_len, &path))
			continue;
		if (rl > 1 && !strncmp(path, mroot, rl)) /* a mount of a sub-hierarchy */
			path += rl;
		err = jail_path(j, p->home, "%s/%s/%s", p->mnt, path,
				version == 2 ? "cgroup.procs" : "tasks");
	}
	if (f)
		fclose(f);
	free(line);
	if (err == -ENOENT)
		jail_detail(j, "this process has no %s line in /proc/self/cgroup",
			    version == 2 ? "cgroup2" : "cgroup");
	return err;
}

static int locate(struct jail *j, int version, struct cg_place *p)
{
	char mroot[PATH_MAX];
	int err = find_mount(j, version, p, mroot);
	return err ? err : find_home(j, version, p, mroot);
}

typedef int (*level_fn)(struct jail *j, const char *dir, const char *parent, const void *arg);

/* Calls fn for <mnt>/<first component of rel>, then the first two, ... up to <mnt>/<rel>,
 * each with the directory above it. */
static int walk_down(struct jail *j, const char *mnt, const char *rel, level_fn fn, const void *arg)
{
	char path[PATH_MAX], parent[PATH_MAX];
	int err = jail_path(j, path, "%s/%s", mnt, rel);
	if (err)
		return err;
	snprintf(parent, sizeof(parent), "%s", mnt);
	for (char *p = path + strlen(mnt) + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		err = fn(j, path, parent, arg);
		memcpy(parent, path, strlen(path) + 1);
		*p = c;
		if (err || !c)
			return err;
	}
}

static int write_in(struct jail *j, const char *dir, const char *file, int file_len,
		    const char *value)
{
	char path[PATH_MAX];
	int err = jail_path(j, path, "%s/%.*s", dir, file_len, file);
	if (!err && (err = jail_write_file(path, value)))
		jail_detail(j, "write \"%s\" to %s", value, path);
	return err;
}

/* v2: enables the controller in the subtree_control of the level above dir. */
static int enable_above(struct jail *j, const char *dir, const char *parent, const void *arg)
{
	const struct jail_cgroup_arg *cg = arg;
	char plus[64];
	(void)dir;
	snprintf(plus, sizeof(plus), "+%.*s", cg->ctrl_len, cg->file);
	int err = write_in(j, parent, "cgroup.subtree_control", 22, plus);
	if (err)
		jail_detail(j, "enable %s in %s/cgroup.subtree_control", plus, parent);
	return err;
}

/* Copies parent/file into dir/file when dir/file is empty. */
static int inherit_one(struct jail *j, const char *dir, const char *parent, const char *file)
{
	char mine[PATH_MAX], theirs[PATH_MAX], value[4096];
	int n = jail_path(j, mine, "%s/%s", dir, file);
	if (n || (n = jail_path(j, theirs, "%s/%s", parent, file)))
		return n;
	if ((n = jail_read_file(mine, value, sizeof(value))) != 0) {
		if (n < 0)
			jail_detail(j, "read %s", mine);
		return n < 0 ? n : 0;
	}
	if ((n = jail_read_file(theirs, value, sizeof(value))) < 0) {
		jail_detail(j, "read %s", theirs);
		return n;
	}
	return write_in(j, dir, file, (int)strlen(file), value);
}

/* v1 cpuset: a new cpuset starts with empty cpus and mems, which no task may join. */
static int inherit_cpuset(struct jail *j, const char *dir, const char *parent, const void *arg)
{
	(void)arg;
	int err = inherit_one(j, dir, parent, "cpuset.cpus");
	return err ? err : inherit_one(j, dir, parent, "cpuset.mems");
}

static const char *parent_cgroup(const struct jail *j)
{
	return j->a.parent_cgroup ? j->a.parent_cgroup : j->exec_name;
}

/* Creates p->dir (recorded for undo) under p->mnt. */
static int make_dir(struct jail *j, struct cg_place *p)
{
	int err = jail_path(j, p->dir, "%s/%s/%s", p->mnt, parent_cgroup(j), j->a.id);
	return err ? err : jail_mkdir_p(j, p->dir, 0755);
}

/* Moves this process into dir, recording the way back first. */
static int attach(struct jail *j, const struct cg_place *p, const char *procs_file)
{
	int err = jail_undo_push(j, UNDO_CGROUP_LEAVE, p->home);
	if (err) {
		jail_detail(j, "%s", p->dir);
		return err;
	}
	return write_in(j, p->dir, procs_file, (int)strlen(procs_file), "0");
}

static bool first_with_controller(const struct jail_args *a, int i)
{
	const struct jail_cgroup_arg *c = &a->cgroups[i];
	for (int k = 0; k < i; k++)
		if (a->cgroups[k].ctrl_len == c->ctrl_len &&
		    !strncmp(a->cgroups[k].file, c->file, (size_t)c->ctrl_len))
			return false;
	return true;
}

/* Firecracker: without --cgroup files, v2 only moves the process into an existing parent. */
static int join_parent_v2(struct jail *j, struct cg_place *p)
{
	struct stat st;
	int err = jail_path(j, p->dir, "%s/%s", p->mnt, parent_cgroup(j));
	if (err || stat(p->dir, &st) < 0)
		return err;
	return attach(j, p, "cgroup.procs");
}

static int setup_v2(struct jail *j, struct cg_place *p)
{
	const struct jail_args *a = &j->a;
	int err = locate(j, 2, p);
	if (err || !a->nr_cgroups)
		return err ? err : join_parent_v2(j, p);
	if ((err = make_dir(j, p)))
		return err;
	char rel[PATH_MAX];
	if ((err = jail_path(j, rel, "%s/%s", parent_cgroup(j), a->id)))
		return err;
	for (int i = 0; i < a->nr_cgroups && !err; i++) {
		const struct jail_cgroup_arg *c = &a->cgroups[i];
		bool core = c->ctrl_len == 6 && !strncmp(c->file, "cgroup", 6);
		if (!core && first_with_controller(a, i))
			err = walk_down(j, p->mnt, rel, enable_above, c);
	}
	for (int i = 0; i < a->nr_cgroups && !err; i++)
		err = write_in(j, p->dir, a->cgroups[i].file, a->cgroups[i].file_len,
			       a->cgroups[i].value);
	return err ? err : attach(j, p, "cgroup.procs");
}

/* v1: one place per controller, in the order the controllers first appear. */
static int setup_v1(struct jail *j, struct cg_place *places)
{
	const struct jail_args *a = &j->a;
	int n = 0, err = 0;
	for (int i = 0; i < a->nr_cgroups && !err; i++) {
		if (!first_with_controller(a, i))
			continue;
		struct cg_place *p = &places[n++];
		p->ctrl = a->cgroups[i].file;
		p->ctrl_len = a->cgroups[i].ctrl_len;
		char rel[PATH_MAX];
		err = locate(j, 1, p);
		if (!err)
			err = make_dir(j, p);
		if (!err)
			err = jail_path(j, rel, "%s/%s", parent_cgroup(j), a->id);
		if (!err && p->ctrl_len == 6 && !strncmp(p->ctrl, "cpuset", 6))
			err = walk_down(j, p->mnt, rel, inherit_cpuset, NULL);
	}
	for (int i = 0; i < a->nr_cgroups && !err; i++) {
		const struct jail_cgroup_arg *c = &a->cgroups[i];
		int k = 0;
		while (places[k].ctrl_len != c->ctrl_len ||
		       strncmp(places[k].ctrl, c->file, (size_t)c->ctrl_len))
			k++;
		err = write_in(j, places[k].dir, c->file, c->file_len, c->value);
	}
	for (int k = 0; k < n && !err; k++)
		err = attach(j, &places[k], "tasks");
	return err;
}

int jail_setup_cgroups(struct jail *j)
{
	if (j->a.cgroup_version == 1 && !j->a.nr_cgroups)
		return 0;
	int n = j->a.nr_cgroups ? j->a.nr_cgroups : 1;
	struct cg_place *places = calloc((size_t)n, sizeof(*places));
	if (!places) {
		jail_detail(j, "cgroup paths");
		return -ENOMEM;
	}
	int err = j->a.cgroup_version == 2 ? setup_v2(j, places) : setup_v1(j, places);
	free(places);
	return err;
}
