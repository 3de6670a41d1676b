#include "vmm/api_call.h"
#include "virtio/blk.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int api_call_init(struct api_call *c)
{
	memset(c, 0, sizeof(*c));
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->efd < 0)
		return -errno;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->done_cv, NULL);
	return 0;
}

void api_call_destroy(struct api_call *c)
{
	if (c->efd >= 0)
		close(c->efd);
	c->efd = -1;
}

int api_call_run(struct api_call *c, enum api_call_op op, char *err, size_t errlen)
{
	uint64_t one = 1;
	pthread_mutex_lock(&c->mu);
	if (!c->closed) {
		c->op = op;
		c->done = false;
		c->err[0] = '\0';
		ssize_t rc = write(c->efd, &one, sizeof(one));
		(void)rc;
	}
	while (!c->closed && !c->done)
		pthread_cond_wait(&c->done_cv, &c->mu);
	int result = c->done ? c->result : -ESHUTDOWN;
	snprintf(err, errlen, "%s", c->done ? c->err : "the VM is stopping");
	c->done = false;
	pthread_mutex_unlock(&c->mu);
	return result;
}

enum api_call_op api_call_take(struct api_call *c)
{
	uint64_t cnt;
	ssize_t rc = read(c->efd, &cnt, sizeof(cnt));
	(void)rc;
	pthread_mutex_lock(&c->mu);
	enum api_call_op op = c->done ? API_CALL_NONE : c->op;
	pthread_mutex_unlock(&c->mu);
	return op;
}

void api_call_reply(struct api_call *c, int result, const char *err)
{
	pthread_mutex_lock(&c->mu);
	c->result = result;
	snprintf(c->err, sizeof(c->err), "%s", err ? err : "");
	c->op = API_CALL_NONE;
	c->done = true;
	pthread_cond_broadcast(&c->done_cv);
	pthread_mutex_unlock(&c->mu);
}

void api_call_close(struct api_call *c)
{
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	pthread_cond_broadcast(&c->done_cv);
	pthread_mutex_unlock(&c->mu);
}

/* ---- the router's VMM ops, as calls to the VMM thread (ctx: struct api_call) ----------- */

static int call_start(void *ctx, char *err, size_t errlen)
{
	return api_call_run(ctx, API_CALL_START, err, errlen);
}

static int call_pause(void *ctx, bool pause, char *err, size_t errlen)
{
	return api_call_run(ctx, pause ? API_CALL_PAUSE : API_CALL_RESUME, err, errlen);
}

static int call_ctrl_alt_del(void *ctx, char *err, size_t errlen)
{
	return api_call_run(ctx, API_CALL_CTRL_ALT_DEL, err, errlen);
}

static int call_flush_metrics(void *ctx, char *err, size_t errlen)
{
	return api_call_run(ctx, API_CALL_FLUSH_METRICS, err, errlen);
}

/* The file is opened here, on the API thread, whose filter allows just that. */
static int call_patch_drive(void *ctx, const struct drive_cfg *d, char *err, size_t errlen)
{
	struct api_call *c = ctx;
	int fd;
	uint64_t bytes;
	int rc = virtio_blk_open_backing(d, &fd, &bytes, err, errlen);
	if (rc)
		return rc;
	snprintf(c->drive_id, sizeof(c->drive_id), "%s", d->id);
	c->fd = fd;
	c->bytes = bytes;
	rc = api_call_run(c, API_CALL_PATCH_DRIVE, err, errlen);
	if (rc) /* not taken: the VMM thread closes it only once it swapped it in */
		close(fd);
	return rc;
}

static int call_patch_limiter(void *ctx, const char *id, bool is_net,
			      const struct config_patch *what, char *err, size_t errlen)
{
	struct api_call *c = ctx;
	snprintf(c->drive_id, sizeof(c->drive_id), "%s", id);
	c->is_net = is_net;
	memcpy(c->limiter, what->limiter, sizeof(c->limiter));
	return api_call_run(c, API_CALL_PATCH_LIMITER, err, errlen);
}

static int call_snapshot_create(void *ctx, const struct snapshot_create_params *p, char *err,
				size_t errlen)
{
	struct api_call *c = ctx;
	c->snapshot = (void *)p;
	return api_call_run(c, API_CALL_SNAPSHOT_CREATE, err, errlen);
}

static int call_snapshot_load(void *ctx, struct snapshot_load_params *p, char *err, size_t errlen)
{
	struct api_call *c = ctx;
	c->snapshot = p;
	return api_call_run(c, API_CALL_SNAPSHOT_LOAD, err, errlen);
}

const struct api_vmm_ops api_call_ops = {
    .start = call_start,
    .pause = call_pause,
    .ctrl_alt_del = call_ctrl_alt_del,
    .flush_metrics = call_flush_metrics,
    .patch_drive = call_patch_drive,
    .patch_limiter = call_patch_limiter,
    .snapshot_create = call_snapshot_create,
    .snapshot_load = call_snapshot_load,
};
