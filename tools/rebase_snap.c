/* kiln-rebase-snap --base-file BASE --diff-file DIFF: Firecracker's rebase-snap for kiln's
 * (and Firecracker's) memory files. Copies every data extent of the Diff snapshot's memory
 * file DIFF onto the memory file BASE at the same offset, so that BASE becomes the memory of
 * the Diff snapshot and can be loaded with the Diff's state file. Exit 0 when done, 2 for bad
 * arguments or files (one line on stderr), 1 when copying fails. Holes of DIFF are left
 * alone: its file system must report them (SEEK_DATA/SEEK_HOLE; ext4, xfs, btrfs, tmpfs do),
 * else DIFF is copied whole. */
#include "vmm/pwrite_all.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME "kiln-rebase-snap"
#define COPY_CHUNK (1u << 20)
#define USAGE "usage: " NAME " --base-file BASE --diff-file DIFF"

struct args {
	const char *base;
	const char *diff;
};

/* Takes "--opt VALUE" or "--opt=VALUE" at argv[*i] for option opt into *out. 1 when argv[*i]
 * is that option (advancing *i past its value), 0 when it is another, -1 when the value is
 * missing. */
static int take_option(char **argv, int argc, int *i, const char *opt, const char **out)
{
	size_t n = strlen(opt);
	if (strncmp(argv[*i], opt, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*out = argv[++*i];
	return 1;
}

/* Fills a from argv. 0, 1 for --help, or -1 with a line printed. */
static int parse_args(int argc, char **argv, struct args *a)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
		int rc = take_option(argv, argc, &i, "--base-file", &a->base);
		if (rc == 0)
			rc = take_option(argv, argc, &i, "--diff-file", &a->diff);
		if (rc < 0) {
			fprintf(stderr, NAME ": %s needs a value (" USAGE ")\n", argv[i]);
			return -1;
		}
		if (rc == 0) {
			fprintf(stderr, NAME ": unknown argument '%s' (" USAGE ")\n", argv[i]);
			return -1;
		}
	}
	if (!a->base || !a->diff || !a->base[0] || !a->diff[0]) {
		fprintf(stderr, NAME ": %s is missing (" USAGE ")\n",
			!a->base || !a->base[0] ? "--base-file" : "--diff-file");
		return -1;
	}
	return 0;
}

/* Copies [off, off + len) of from onto to at the same offset. 0 or -errno (-EIO when from
 * ends early). */
static int copy_range(int from, int to, uint64_t off, uint64_t len, uint8_t *buf)
{
	while (len) {
		size_t want = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
		ssize_t n = pread(from, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		int err = pwrite_all(to, buf, (uint64_t)n, off);
		if (err)
			return err;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Copies every data extent of diff_fd onto base_fd. 0 or -errno. */
static int copy_extents(int base_fd, int diff_fd, uint8_t *buf)
{
	off_t off = 0;
	for (;;) {
		off_t data = lseek(diff_fd, off, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno; /* ENXIO: no data past off */
		off_t hole = lseek(diff_fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		int err =
		    copy_range(diff_fd, base_fd, (uint64_t)data, (uint64_t)(hole - data), buf);
		if (err)
			return err;
		off = hole;
	}
}

/* Copies every data extent of diff_fd onto base_fd at the same offset, then fdatasync()s
 * base_fd. 0, -EFBIG when the Diff is larger than the base, or -errno. */
static int rebase(int base_fd, int diff_fd)
{
	struct stat base, diff;
	if (fstat(base_fd, &base) < 0 || fstat(diff_fd, &diff) < 0)
		return -errno;
	if (!S_ISREG(base.st_mode) || !S_ISREG(diff.st_mode))
		return -EINVAL;
	if (diff.st_size > base.st_size)
		return -EFBIG;
	uint8_t *buf = malloc(COPY_CHUNK);
	if (!buf)
		return -ENOMEM;
	int err = copy_extents(base_fd, diff_fd, buf);
	free(buf);
	if (!err && fdatasync(base_fd) < 0)
		err = -errno;
	return err;
}

/* Opens path (a regular file) with flags; the fd, or -1 with a line printed. */
static int open_file(const char *opt, const char *path, int flags)
{
	struct stat st;
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, NAME ": %s %s: %s\n", opt, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, NAME ": %s %s: not a regular file\n", opt, path);
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	int rc = parse_args(argc, argv, &a);
	if (rc != 0) {
		if (rc > 0)
			puts(USAGE);
		return rc > 0 ? 0 : 2;
	}
	int base = open_file("--base-file", a.base, O_RDWR);
	int diff = base < 0 ? -1 : open_file("--diff-file", a.diff, O_RDONLY);
	if (diff < 0) {
		if (base >= 0)
			close(base);
		return 2;
	}
	int exit_code = 0;
	rc = rebase(base, diff);
	if (rc == -EFBIG) {
		fprintf(stderr, NAME ": --diff-file %s is larger than --base-file %s\n", a.diff,
			a.base);
		exit_code = 2;
	} else if (rc < 0) {
		fprintf(stderr, NAME ": copying %s onto %s: %s\n", a.diff, a.base, strerror(-rc));
		exit_code = 1;
	}
	close(diff);
	close(base);
	return exit_code;
}
