/* libFuzzer harness for the API: raw bytes from a client go through http-parser, the bounds
 * and the router, on one connection, delivered in chunks whose sizes the input picks (so
 * requests split anywhere are covered). Any input must give well-formed HTTP responses and
 * never crash, leak or read out of bounds. The fake VMM accepts every op, so post-boot
 * paths are reached too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/api_http.h"

static int fake_ok(void *ctx, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	return 0;
}

static int fake_pause(void *ctx, bool pause, char *err, size_t errlen)
{
	(void)pause;
	return fake_ok(ctx, err, errlen);
}

static int fake_patch(void *ctx, const struct drive_cfg *d, char *err, size_t errlen)
{
	(void)d;
	return fake_ok(ctx, err, errlen);
}

static int fake_limiter(void *ctx, const char *id, bool is_net, const struct config_patch *w,
			char *err, size_t errlen)
{
	(void)id, (void)is_net, (void)w;
	return fake_ok(ctx, err, errlen);
}

static const struct api_vmm_ops ops = {fake_ok, fake_pause, fake_ok,
				       fake_ok, fake_patch, fake_limiter};

/* Every response starts with a status line; the total is bounded. */
static int check_send(struct api_conn *c, const char *buf, size_t len)
{
	size_t *total = c->srv->send_ctx;
	if (*total == 0 && (len < 12 || memcmp(buf, "HTTP/1.1 ", 9)))
		abort();
	*total += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char resp[API_RESPONSE_MAX];
	struct kiln_config cfg;
	struct api api = {.cfg = &cfg, .id = "fuzz", .ops = &ops};
	struct api_server srv = {.api = &api, .max_payload = 512, .resp_body = resp};
	struct api_conn conn;
	size_t total = 0;
	srv.send = check_send;
	srv.send_ctx = &total;
	config_init(&cfg);
	api_conn_init(&srv, &conn, -1);
	/* First byte: chunk size (0: all at once). */
	size_t chunk = size ? data[0] : 0;
	size_t off = size ? 1 : 0;
	while (off < size) {
		size_t n = chunk && chunk < size - off ? chunk : size - off;
		total = 0;
		if (api_conn_input(&conn, (const char *)data + off, n) < 0)
			break;
		off += n;
	}
	api_conn_close(&conn);
	config_free(&cfg);
	return 0;
}
