/* How the API thread asks the VMM (main) thread to act: one call at a time, through an
 * eventfd the VMM's event loop watches and a condition variable the caller waits on. The
 * VMM thread owns the VM; the API thread never touches it directly. */
#ifndef KILN_API_CALL_H
#define KILN_API_CALL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/api.h"

enum api_call_op {
	API_CALL_NONE = 0,
	API_CALL_START,
	API_CALL_PAUSE,
	API_CALL_RESUME,
	API_CALL_CTRL_ALT_DEL,
	API_CALL_FLUSH_METRICS,
	API_CALL_PATCH_DRIVE,	/* drive_id, fd, bytes */
	API_CALL_PATCH_LIMITER, /* drive_id (a drive's or an interface's id), is_net, limiter */
	API_CALL_SNAPSHOT_CREATE, /* snapshot: a const struct snapshot_create_params */
	API_CALL_SNAPSHOT_LOAD,	  /* snapshot: a struct snapshot_load_params, moved on success */
};

struct api_call {
	pthread_mutex_t mu;
	pthread_cond_t done_cv;
	int efd;	     /* readable while a call waits for the VMM thread */
	enum api_call_op op; /* the pending call, API_CALL_NONE if none */
	bool done;
	bool closed; /* the VMM thread is gone: every call fails */
	int result;
	char err[256];
	/* API_CALL_PATCH_DRIVE: the new backing file, opened by the API thread. */
	char drive_id[CONFIG_ID_MAX + 1];
	int fd;
	uint64_t bytes;
	/* API_CALL_PATCH_LIMITER: the buckets to replace (drives: [0]; interfaces: rx, tx). */
	bool is_net;
	struct rate_limiter_cfg limiter[2];
	/* API_CALL_SNAPSHOT_*: the request's parameters, the caller's until it returns. */
	void *snapshot;
};

/* 0 or -errno. */
int api_call_init(struct api_call *c);
void api_call_destroy(struct api_call *c);

/* API thread: posts op and waits for the VMM thread's api_call_reply(). Returns its result
 * (0 or -errno with one line in err), or -ESHUTDOWN once api_call_close() was called. */
int api_call_run(struct api_call *c, enum api_call_op op, char *err, size_t errlen);

/* VMM thread, when efd is readable: the pending op (API_CALL_NONE if none). */
enum api_call_op api_call_take(struct api_call *c);

/* VMM thread: ends the pending call with result (0 or -errno) and err (may be NULL). */
void api_call_reply(struct api_call *c, int result, const char *err);

/* VMM thread, before it stops serving: fails the pending call and every later one. */
void api_call_close(struct api_call *c);

/* The router's ops (api.h) as calls through an api_call passed as their ctx. */
extern const struct api_vmm_ops api_call_ops;

#endif
