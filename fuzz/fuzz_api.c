/* libFuzzer harness for the API: raw bytes from a client go through http-parser, the bounds
 * and the router, on one connection, delivered in chunks whose sizes the input picks (so
 * requests split anywhere are covered). Any input must give well-formed HTTP responses and
 * never crash, leak or read out of bounds. The fake VMM accepts every op, so post-boot
 * paths are reached too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/api_fake_vmm.h"
#include "vmm/api_http.h"

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
	struct fake_vmm vmm = {0};
	struct api api = {.cfg = &cfg, .id = "fuzz", .ops = &fake_vmm_ops, .ctx = &vmm};
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
