/* Snapshot create and restore for a kiln process (kiln_snapshot.h). */
#include "vmm/kiln_snapshot.h"
#include "vmm/kiln.h"
#include "vmm/log.h"
#include "vmm/snapshot_kvm.h"
#include "vmm/snapshot_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_JSON_MAX (256 * 1024)

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fill_meta(const struct kiln *k, bool diff, struct snap_meta *m)
{
	const struct guest_mem *gm = &k->vm.mem;
	memset(m, 0, sizeof(*m));
	snprintf(m->kiln_version, sizeof(m->kiln_version), "%s", KILN_VERSION);
	m->ram_size = gm->ram_size;
	m->created_unix_ms = now_ms();
	m->nr_regions = gm->nr_regions;
	for (unsigned i = 0; i < gm->nr_regions && i < 2; i++) {
		m->region_gpa[i] = gm->region[i].gpa;
		m->region_size[i] = gm->region[i].size;
	}
	m->nr_vcpus = k->vm.nr_vcpus;
	m->nr_devices = k->virtio.nr;
	m->diff = diff;
}

/* Every section of the state file, in the order restore reads them. */
static int save_sections(struct kiln *k, bool diff, struct snap_writer *w, char *err, size_t errlen)
{
	struct snap_meta meta;
	char *json = malloc(CONFIG_JSON_MAX);
	int n = json ? config_to_json(&k->cfg, json, CONFIG_JSON_MAX) : -ENOMEM;
	int rc = n < 0 ? n : 0;
	fill_meta(k, diff, &meta);
	if (!rc)
		rc = snap_put(w, SNAP_SEC_META, 0, &meta, sizeof(meta));
	if (!rc)
		rc = snap_put(w, SNAP_SEC_CONFIG, 0, json, (size_t)n);
	free(json);
	if (rc) {
		snprintf(err, errlen, "the configuration: %s", strerror(-rc));
		return rc;
	}
	/* The devices first: saving finishes the disk requests still queued, which writes
	 * guest memory and may interrupt the guest; KVM's interrupt state comes after. */
	if ((rc = serial_save(&k->serial, w)) || (rc = i8042_save(&k->i8042, w)) ||
	    (rc = acpi_pm_save(&k->pm, w)) || (rc = virtio_set_save(&k->virtio, w))) {
		snprintf(err, errlen, "device state: %s", strerror(-rc));
		return rc;
	}
	if ((rc = snap_kvm_save(&k->vm, w, err, errlen)))
		return rc;
	return w->err;
}

static int create_file(const char *path, const char *key, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		snprintf(err, errlen, "%s: %s: %s", key, path, strerror(errno));
	return fd < 0 ? -errno : fd;
}

int kiln_snapshot_create(struct kiln *k, const struct snapshot_create_params *p, char *err,
			 size_t errlen)
{
	struct snap_writer w;
	int sfd = -1, mfd = -1, rc;
	if (p->diff && !k->cfg.machine.track_dirty_pages) {
		snprintf(err, errlen, "snapshot_type: Diff needs machine-config.track_dirty_pages");
		return -EINVAL;
	}
	snap_writer_init(&w);
	if ((rc = save_sections(k, p->diff, &w, err, errlen)))
		goto out;
	if ((sfd = create_file(p->snapshot_path, "snapshot_path", err, errlen)) < 0 ||
	    (mfd = create_file(p->mem_file_path, "mem_file_path", err, errlen)) < 0) {
		rc = sfd < 0 ? sfd : mfd;
		goto out;
	}
	if ((rc = snap_writer_finish(&w, sfd))) {
		snprintf(err, errlen, "snapshot_path: %s: %s", p->snapshot_path, strerror(-rc));
		goto out;
	}
	rc = p->diff ? snap_mem_write_diff(&k->vm.mem, k->vm.vm_fd, mfd)
		     : snap_mem_write_full(&k->vm.mem, mfd);
	if (!rc && !p->diff && k->cfg.machine.track_dirty_pages)
		rc = snap_mem_reset_dirty(&k->vm.mem, k->vm.vm_fd);
	if (rc)
		snprintf(err, errlen, "mem_file_path: %s: %s", p->mem_file_path, strerror(-rc));
out:
	snap_writer_free(&w);
	if (sfd >= 0)
		close(sfd);
	if (mfd >= 0)
		close(mfd);
	if (rc && sfd >= 0)
		unlink(p->snapshot_path);
	if (rc && mfd >= 0)
		unlink(p->mem_file_path);
	return rc;
}

/* The meta section, bounded before anything is built from it. */
static int check_meta(const struct snap_reader *r, struct snap_meta *m, char *err, size_t errlen)
{
	if (snap_get(r, SNAP_SEC_META, 0, m, sizeof(*m)))
		return snap_fail(err, errlen, -EINVAL, "no meta section of the right size");
	m->kiln_version[sizeof(m->kiln_version) - 1] = '\0';
	if (m->nr_vcpus < 1 || m->nr_vcpus > LAYOUT_MAX_VCPUS || m->nr_regions < 1 ||
	    m->nr_regions > 2 || !m->ram_size || (m->ram_size & 0xfff) ||
	    m->ram_size > GUEST_MEM_MAX_BYTES)
		return snap_fail(err, errlen, -EINVAL,
				 "meta: %u vCPUs, %u regions, %llu bytes of RAM: out of range",
				 m->nr_vcpus, m->nr_regions, (unsigned long long)m->ram_size);
	if (snap_count(r, SNAP_SEC_VCPU) != m->nr_vcpus ||
	    snap_count(r, SNAP_SEC_VIRTIO) != m->nr_devices)
		return snap_fail(err, errlen, -EINVAL,
				 "meta: the vCPU or device sections do not match");
	return 0;
}

/* The snapshot's configuration with the load's overrides and the logger and metrics of
 * `cur`; every file and TAP it names checked. */
static int restore_config(const struct snap_reader *r, const struct snap_meta *m,
			  const struct snapshot_load_params *p, struct kiln_config *cur,
			  struct kiln_config *cfg, char *err, size_t errlen)
{
	size_t len;
	const char *json = snap_find(r, SNAP_SEC_CONFIG, 0, &len);
	char sub[400];
	if (!json)
		return snap_fail(err, errlen, -EINVAL, "no configuration section");
	if (config_parse(json, len, cfg, sub, sizeof(sub)))
		return snap_fail(err, errlen, -EINVAL, "its configuration: %s", sub);
	int rc = -EINVAL;
	if (cfg->machine.mem_size_mib << 20 != m->ram_size ||
	    cfg->machine.vcpu_count != m->nr_vcpus) {
		snprintf(err, errlen, "its configuration does not match its meta section");
		goto fail;
	}
	if ((rc = snapshot_apply_overrides(p, cfg, err, errlen)))
		goto fail;
	for (unsigned i = 0; !rc && i < cfg->nr_drives; i++)
		rc = config_check_drive(&cfg->drives[i], i, err, errlen);
	for (unsigned i = 0; !rc && i < cfg->nr_nets; i++)
		rc = config_check_net(&cfg->nets[i], i, err, errlen);
	if (!rc && cfg->vsock.present && access(cfg->vsock.uds_path, F_OK) == 0)
		rc = snap_fail(err, errlen, -EEXIST,
			       "vsock.uds_path: %s: exists (remove it or use vsock_override)",
			       cfg->vsock.uds_path);
	if (rc)
		goto fail;
	/* The logger and metrics are this process's, configured before the load. */
	struct logger_cfg lg = cfg->logger;
	struct metrics_cfg mc = cfg->metrics;
	cfg->logger = cur->logger;
	cfg->metrics = cur->metrics;
	cur->logger = lg;
	cur->metrics = mc;
	return 0;
fail:
	config_free(cfg);
	return rc;
}

/* Guest RAM from the memory file (File) or the page-fault handler (Uffd), laid out as the
 * snapshot's was. */
static int map_memory(struct guest_mem *gm, struct kiln_restore *rs, char *err, size_t errlen)
{
	const struct snapshot_load_params *p = &rs->params;
	const char *key = "mem_backend.backend_path";
	uint64_t ram = rs->meta.ram_size;
	struct stat st;
	int rc;
	if (p->uffd) {
		if ((rc = guest_mem_init(gm, ram)))
			return snap_fail(err, errlen, rc, "%s: cannot map %llu bytes: %s", key,
					 (unsigned long long)ram, strerror(-rc));
		if ((rc = snap_uffd_attach(gm, p->mem_path, &rs->uffd, err, errlen)))
			goto fail;
	} else {
		rs->mem_fd = open(p->mem_path, O_RDONLY | O_CLOEXEC);
		if (rs->mem_fd < 0 || fstat(rs->mem_fd, &st))
			return snap_fail(err, errlen, -errno, "%s: %s: %s", key, p->mem_path,
					 strerror(errno));
		if ((uint64_t)st.st_size < ram)
			return snap_fail(
			    err, errlen, -EINVAL,
			    "%s: %s: %llu bytes, shorter than the snapshot's %llu of RAM", key,
			    p->mem_path, (unsigned long long)st.st_size, (unsigned long long)ram);
		if ((rc = guest_mem_init_file(gm, ram, rs->mem_fd)))
			return snap_fail(err, errlen, rc, "%s: %s: %s", key, p->mem_path,
					 strerror(-rc));
	}
	for (unsigned i = 0; i < gm->nr_regions; i++)
		if (gm->nr_regions != rs->meta.nr_regions ||
		    gm->region[i].gpa != rs->meta.region_gpa[i] ||
		    gm->region[i].size != rs->meta.region_size[i]) {
			rc = snap_fail(err, errlen, -EINVAL,
				       "meta: the RAM regions are not kiln's layout");
			goto fail;
		}
	return 0;
fail:
	guest_mem_free(gm);
	return rc;
}

static void restore_free(struct kiln_restore *rs)
{
	free(rs->reader);
	free(rs->buf);
	if (rs->mem_fd >= 0)
		close(rs->mem_fd);
	if (rs->uffd >= 0)
		close(rs->uffd);
	snapshot_load_free(&rs->params);
	free(rs);
}

int kiln_snapshot_prepare(struct kiln *k, struct snapshot_load_params *p, char *err, size_t errlen)
{
	struct kiln_restore *rs = calloc(1, sizeof(*rs));
	struct kiln_config cfg;
	char sub[400];
	int rc = -ENOMEM;
	if (!rs || !(rs->reader = malloc(sizeof(*rs->reader)))) {
		free(rs);
		return snap_fail(err, errlen, rc, "out of memory");
	}
	rs->mem_fd = rs->uffd = -1;
	rs->start_ns = monotonic_ns();
	rs->params = *p;
	memset(p, 0, sizeof(*p));
	if ((rc = snap_read_file(rs->params.snapshot_path, &rs->buf, &rs->len, sub, sizeof(sub)))) {
		snap_fail(err, errlen, rc, "snapshot_path: %s", sub);
		goto out;
	}
	if ((rc = snap_parse(rs->reader, rs->buf, rs->len, sub, sizeof(sub))) ||
	    (rc = check_meta(rs->reader, &rs->meta, sub, sizeof(sub)))) {
		snap_fail(err, errlen, rc, "snapshot_path: %s: %s", rs->params.snapshot_path, sub);
		goto out;
	}
	if ((rc = map_memory(&k->vm.mem, rs, err, errlen)))
		goto out;
	if ((rc = restore_config(rs->reader, &rs->meta, &rs->params, &k->cfg, &cfg, err, errlen))) {
		guest_mem_free(&k->vm.mem);
		goto out;
	}
	config_free(&k->cfg); /* the snapshot's logger and metrics, swapped in */
	k->cfg = cfg;
	k->restore = rs;
	k->images_loaded = true;
	return 0;
out:
	*p = rs->params; /* the caller's again */
	memset(&rs->params, 0, sizeof(rs->params));
	restore_free(rs);
	return rc;
}

/* The state file is not needed once restored (the memory mapping and uffd stay). */
static void release_state_file(struct kiln *k)
{
	if (!k->restore)
		return;
	free(k->restore->reader);
	free(k->restore->buf);
	k->restore->reader = NULL;
	k->restore->buf = NULL;
}

int kiln_snapshot_restore_state(struct kiln *k, char *err, size_t errlen)
{
	const struct snap_reader *r = k->restore->reader;
	char sub[400];
	int rc = snap_kvm_restore(&k->vm, r, sub, sizeof(sub));
	if (rc)
		return snap_fail(err, errlen, rc, "snapshot_path: %s: %s",
				 k->restore->params.snapshot_path, sub);
	if ((rc = serial_restore(&k->serial, r, sub, sizeof(sub))) ||
	    (rc = i8042_restore(&k->i8042, r, sub, sizeof(sub))) ||
	    (rc = acpi_pm_restore(&k->pm, r, sub, sizeof(sub))) ||
	    (rc = virtio_set_restore(&k->virtio, r, sub, sizeof(sub))))
		return snap_fail(err, errlen, rc, "snapshot_path: %s: %s",
				 k->restore->params.snapshot_path, sub);
	virtio_set_after_restore(&k->virtio);
	release_state_file(k);
	if (!k->restore->params.resume_vm) {
		atomic_store(&k->vm.pause_requested, true); /* parks before its first KVM_RUN */
		k->paused = true;
	}
	return 0;
}

int kiln_snapshot_describe_buf(const uint8_t *buf, size_t len, FILE *out, char *err, size_t errlen)
{
	struct snap_meta m;
	struct snap_reader *r = malloc(sizeof(*r));
	int rc = r ? 0 : -ENOMEM;
	if (rc) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	if ((rc = snap_parse(r, buf, len, err, errlen)) || (rc = check_meta(r, &m, err, errlen)))
		goto out;
	fprintf(out, "kiln snapshot, format %u.%u, written by kiln %s at %llu ms (Unix time)\n",
		r->major, r->minor, m.kiln_version, (unsigned long long)m.created_unix_ms);
	fprintf(out, "type: %s\nvCPUs: %u\nRAM: %llu MiB in %u region(s)\nvirtio devices: %u\n",
		m.diff ? "Diff" : "Full", m.nr_vcpus, (unsigned long long)(m.ram_size >> 20),
		m.nr_regions, m.nr_devices);
	for (unsigned i = 0; i < r->nr; i++)
		fprintf(out, "section %s %u: %zu bytes\n", snap_tag_name(r->sec[i].tag),
			r->sec[i].index, r->sec[i].len);
	size_t clen;
	const char *json = snap_find(r, SNAP_SEC_CONFIG, 0, &clen);
	/* printed only when it parses: its bytes are as the file has them */
	struct kiln_config cfg;
	if (json && config_parse(json, clen, &cfg, NULL, 0) == 0) {
		fprintf(out, "configuration: %.*s\n", (int)clen, json);
		config_free(&cfg);
	}
out:
	free(r);
	return rc;
}

int kiln_snapshot_describe(const char *path, FILE *out, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len;
	char sub[400];
	int rc = snap_read_file(path, &buf, &len, err, errlen);
	if (rc)
		return rc;
	if ((rc = kiln_snapshot_describe_buf(buf, len, out, sub, sizeof(sub))))
		snprintf(err, errlen, "%s: %s", path, sub);
	free(buf);
	return rc;
}
