/* A fake VMM behind the API router (struct api_vmm_ops) for the router's unit tests, the
 * HTTP tests and the API fuzzer: it counts each op, records its arguments, and fails the
 * ops with `fail` (0: every op succeeds). Header-only; include it once per program. */
#ifndef KILN_TESTS_API_FAKE_VMM_H
#define KILN_TESTS_API_FAKE_VMM_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vmm/api.h"

struct fake_vmm {
	int starts, pauses, resumes, cads, flushes, patches, limiters, creates, loads;
	char patched[128];
	char limited[64]; /* "<id> net=<0|1> rx/bw=<size> tx/ops=<size>" of the last limiter op */
	char snapshot[256]; /* the last snapshot op's "<snapshot_path> <mem path> <details>" */
	int fail;	    /* the next op fails with this */
};

static int fake_result(struct fake_vmm *f, char *err, size_t errlen)
{
	if (!f->fail)
		return 0;
	snprintf(err, errlen, "fake failure");
	return f->fail;
}

static int fake_start(void *ctx, char *err, size_t errlen)
{
	struct fake_vmm *f = ctx;
	f->starts++;
	return fake_result(f, err, errlen);
}

static int fake_pause(void *ctx, bool pause, char *err, size_t errlen)
{
	struct fake_vmm *f = ctx;
	if (pause)
		f->pauses++;
	else
		f->resumes++;
	return fake_result(f, err, errlen);
}

static int fake_cad(void *ctx, char *err, size_t errlen)
{
	struct fake_vmm *f = ctx;
	f->cads++;
	return fake_result(f, err, errlen);
}

static int fake_flush(void *ctx, char *err, size_t errlen)
{
	struct fake_vmm *f = ctx;
	f->flushes++;
	return fake_result(f, err, errlen);
}

static int fake_patch(void *ctx, const struct drive_cfg *d, char *err, size_t errlen)
{
	struct fake_vmm *f = ctx;
	f->patches++;
	snprintf(f->patched, sizeof(f->patched), "%s", d->path_on_host);
	return fake_result(f, err, errlen);
}

static int fake_limiter(void *ctx, const char *id, bool is_net, const struct config_patch *w,
			char *err, size_t errlen)
{
	struct fake_vmm *f = ctx;
	f->limiters++;
	const struct token_bucket_cfg *a = &w->limiter[0].bandwidth;
	const struct token_bucket_cfg *b = is_net ? &w->limiter[1].bandwidth : &w->limiter[0].ops;
	snprintf(f->limited, sizeof(f->limited), "%s net=%d %llu %llu", id, is_net,
		 (unsigned long long)a->size, (unsigned long long)b->size);
	return fake_result(f, err, errlen);
}

static int fake_snapshot_create(void *ctx, const struct snapshot_create_params *p, char *err,
				size_t errlen)
{
	struct fake_vmm *f = ctx;
	f->creates++;
	snprintf(f->snapshot, sizeof(f->snapshot), "%s %s %s", p->snapshot_path,
		 p->mem_file_path, p->diff ? "Diff" : "Full");
	return fake_result(f, err, errlen);
}

/* Takes p on success, as the real op does. */
static int fake_snapshot_load(void *ctx, struct snapshot_load_params *p, char *err, size_t errlen)
{
	struct fake_vmm *f = ctx;
	f->loads++;
	snprintf(f->snapshot, sizeof(f->snapshot), "%s %s %s resume=%d dirty=%d nets=%u%s%s%s",
		 p->snapshot_path, p->mem_path, p->uffd ? "Uffd" : "File", p->resume_vm,
		 p->track_dirty_pages, p->nr_net, p->nr_net ? " " : "",
		 p->nr_net ? p->net[0].host_dev_name : "",
		 p->vsock_uds_path ? " vsock" : "");
	int rc = fake_result(f, err, errlen);
	if (!rc)
		snapshot_load_free(p);
	return rc;
}

static const struct api_vmm_ops fake_vmm_ops = {
    .start = fake_start,
    .pause = fake_pause,
    .ctrl_alt_del = fake_cad,
    .flush_metrics = fake_flush,
    .patch_drive = fake_patch,
    .patch_limiter = fake_limiter,
    .snapshot_create = fake_snapshot_create,
    .snapshot_load = fake_snapshot_load,
};

#endif
