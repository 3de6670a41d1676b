/* The file-system side of the configuration: the checks on referenced files and reading a
 * config file; the parsing itself is in config.c. */
#include "vmm/config.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- file system checks -------------------------------------------------------------------- */

/* Copies a user string for a one-line message: control characters become '?'. */
static const char *printable(const char *s, char *buf, size_t size)
{
	size_t n = 0;
	for (; s[n] && n < size - 1; n++)
		buf[n] = (unsigned char)s[n] < ' ' || s[n] == 0x7f ? '?' : s[n];
	buf[n] = '\0';
	if (s[n] && size > 4)
		memcpy(buf + size - 4, "...", 4);
	return buf;
}

static int file_error(char *err, size_t errlen, const char *key, const char *path, const char *what)
{
	char shown[256];
	if (err && errlen)
		snprintf(err, errlen, "%s: %s: %s", key, printable(path, shown, sizeof(shown)),
			 what);
	return -EINVAL;
}

int config_check_file(const char *key, const char *path, int mode, bool allow_blk, char *err,
		      size_t errlen)
{
	struct stat st;
	if (!path)
		return file_error(err, errlen, key, "", "missing");
	if (stat(path, &st) < 0)
		return file_error(err, errlen, key, path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !(allow_blk && S_ISBLK(st.st_mode)))
		return file_error(err, errlen, key, path,
				  allow_blk ? "not a regular file or block device"
					    : "not a regular file");
	if (access(path, mode) < 0)
		return file_error(err, errlen, key, path, strerror(errno));
	return 0;
}

int config_check_boot(const struct boot_cfg *b, char *err, size_t errlen)
{
	int rc = config_check_file("boot-source.kernel_image_path", b->kernel_image_path, R_OK,
				   false, err, errlen);
	if (rc == 0 && b->initrd_path)
		rc = config_check_file("boot-source.initrd_path", b->initrd_path, R_OK, false, err,
				       errlen);
	return rc;
}

int config_check_drive(const struct drive_cfg *d, unsigned index, char *err, size_t errlen)
{
	char key[64];
	snprintf(key, sizeof(key), "drives[%u].path_on_host", index);
	return config_check_file(key, d->path_on_host, d->is_read_only ? R_OK : R_OK | W_OK, true,
				 err, errlen);
}

int config_check_net(const struct net_cfg *n, unsigned index, char *err, size_t errlen)
{
	/* kiln never creates a TAP (TUNSETIFF would): the host must have made it. */
	if (if_nametoindex(n->host_dev_name))
		return 0;
	snprintf(err, errlen,
		 "network-interfaces[%u].host_dev_name: %s: no such network device (create the "
		 "TAP first)",
		 index, n->host_dev_name);
	return -EINVAL;
}

int config_check_files(const struct kiln_config *cfg, char *err, size_t errlen)
{
	int rc = config_check_boot(&cfg->boot, err, errlen);
	for (unsigned i = 0; i < cfg->nr_drives && rc == 0; i++)
		rc = config_check_drive(&cfg->drives[i], i, err, errlen);
	for (unsigned i = 0; i < cfg->nr_nets && rc == 0; i++)
		rc = config_check_net(&cfg->nets[i], i, err, errlen);
	return rc;
}

/* Reads all of path into a new buffer, refusing more than CONFIG_MAX_FILE_BYTES. */
static int read_config_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	char too_large[48], shown[256];
	const char *why = too_large;
	struct stat st;
	size_t n = 0;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(too_large, sizeof(too_large), "larger than %d bytes", CONFIG_MAX_FILE_BYTES);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail_errno;
	if (S_ISREG(st.st_mode) && st.st_size > CONFIG_MAX_FILE_BYTES)
		goto fail;
	buf = malloc(CONFIG_MAX_FILE_BYTES + 1);
	if (!buf)
		goto fail_errno;
	/* Not only regular files: a pipe (bash's <(...)) works too. */
	while (n <= CONFIG_MAX_FILE_BYTES) {
		ssize_t r = read(fd, buf + n, CONFIG_MAX_FILE_BYTES + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail_errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CONFIG_MAX_FILE_BYTES)
		goto fail;
	close(fd);
	*out = buf;
	*len = n;
	return 0;
fail_errno:
	why = strerror(errno);
fail:
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", printable(path, shown, sizeof(shown)), why);
	free(buf);
	if (fd >= 0)
		close(fd);
	return -EINVAL;
}

int config_load(const char *path, struct kiln_config *cfg, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	memset(cfg, 0, sizeof(*cfg));
	int rc = read_config_file(path, &buf, &len, err, errlen);
	if (rc == 0)
		rc = config_parse(buf, len, cfg, err, errlen);
	free(buf);
	if (rc == 0) {
		rc = config_check_files(cfg, err, errlen);
		if (rc)
			config_free(cfg);
	}
	return rc;
}
