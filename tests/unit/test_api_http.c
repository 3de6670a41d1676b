/* Tests for the API's HTTP side: requests fed in pieces, keep-alive and pipelining, the
 * bounds (URL, headers, body), garbage, and the server thread on a real socket: several
 * clients, a stalled one that must not block the next, the socket file's life. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/api_fake_vmm.h"
#include "vmm/api_http.h"

struct env {
	struct kiln_config cfg;
	struct fake_vmm vmm; /* fails every op: no VM in these tests */
	struct api api;
	struct api_server srv;
	struct api_conn conn;
	char out[65536];
	size_t out_len;
	char sock[64];
};

static int capture(struct api_conn *c, const char *buf, size_t len)
{
	struct env *e = c->srv->send_ctx;
	if (len > sizeof(e->out) - 1 - e->out_len)
		return -1;
	memcpy(e->out + e->out_len, buf, len);
	e->out_len += len;
	e->out[e->out_len] = '\0';
	return 0;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	config_init(&e->cfg);
	e->vmm.fail = -EINVAL;
	e->api = (struct api){.cfg = &e->cfg, .id = "t", .ops = &fake_vmm_ops, .ctx = &e->vmm};
	e->srv.api = &e->api;
	e->srv.max_payload = 128;
	e->srv.send = capture;
	e->srv.send_ctx = e;
	e->srv.resp_body = malloc(API_RESPONSE_MAX);
	api_conn_init(&e->srv, &e->conn, -1);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	api_conn_close(&e->conn);
	free(e->srv.resp_body);
	config_free(&e->cfg);
	free(e);
	return 0;
}

static int feed(struct env *e, const char *s)
{
	return api_conn_input(&e->conn, s, strlen(s));
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_one_request(void **state)
{
	struct env *e = *state;
	assert_int_equal(feed(e, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), 0);
	assert_non_null(strstr(e->out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(e->out, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(e->out, "\r\n\r\n{\"id\":\"t\",\"state\":\"Not started\""));
	const char *cl = strstr(e->out, "Content-Length: ");
	assert_non_null(cl);
	assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(strstr(e->out, "\r\n\r\n") + 4));
}

/* Byte by byte, then several requests in one read (pipelined), on one connection. */
static void test_pieces_and_pipelining(void **state)
{
	struct env *e = *state;
	const char *r =
	    "PUT /machine-config HTTP/1.1\r\nContent-Length: 17\r\n\r\n{\"vcpu_count\":2}\n";
	for (size_t i = 0; r[i]; i++)
		assert_int_equal(api_conn_input(&e->conn, r + i, 1), 0);
	assert_non_null(strstr(e->out, "HTTP/1.1 204 No Content\r\n"));
	assert_int_equal(e->cfg.machine.vcpu_count, 2);
	e->out_len = 0;
	assert_int_equal(feed(e, "GET /version HTTP/1.1\r\n\r\nGET /machine-config HTTP/1.1\r\n\r\n"
				 "GET /nope HTTP/1.1\r\n\r\n"),
			 0);
	assert_int_equal(count(e->out, "HTTP/1.1 200 OK"), 2);
	assert_int_equal(count(e->out, "HTTP/1.1 400 Bad Request"), 1);
	assert_non_null(strstr(e->out, "\"vcpu_count\":2"));
}

/* Expect: 100-continue gets its interim answer before the body is sent. */
static void test_expect_continue(void **state)
{
	struct env *e = *state;
	assert_int_equal(feed(e, "PUT /machine-config HTTP/1.1\r\nEXPECT: 100-Continue\r\n"
				 "Content-Length: 16\r\n\r\n"),
			 0);
	assert_string_equal(e->out, "HTTP/1.1 100 Continue\r\n\r\n");
	assert_int_equal(feed(e, "{\"vcpu_count\":4}"), 0);
	assert_non_null(strstr(e->out, "HTTP/1.1 204 No Content"));
	assert_int_equal(e->cfg.machine.vcpu_count, 4);
	/* Long names and values split into pieces: no overrun, no answer. */
	e->out_len = 0;
	const char *split = "PUT /machine-config HTTP/1.1\r\nX-A-Very-Long-Header-Name: "
			    "a-long-value-in-pieces\r\nExpect: 100-continue-but-longer\r\n"
			    "Content-Length: 16\r\n\r\n{\"vcpu_count\":2}";
	for (size_t i = 0; split[i]; i++)
		assert_int_equal(api_conn_input(&e->conn, split + i, 1), 0);
	assert_null(strstr(e->out, "100 Continue"));
	assert_non_null(strstr(e->out, "204 No Content"));
	/* Not for other headers or values. */
	e->out_len = 0;
	e->out[0] = '\0';
	assert_int_equal(feed(e, "PUT /machine-config HTTP/1.1\r\nExpectX: 100-continue\r\n"
				 "Expect: something\r\nContent-Length: 16\r\n\r\n"),
			 0);
	assert_int_equal(e->out_len, 0);
}

static void test_connection_close(void **state)
{
	struct env *e = *state;
	assert_int_equal(feed(e, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), -1);
	assert_non_null(strstr(e->out, "Connection: close\r\n"));
	e->out_len = 0;
	api_conn_close(&e->conn);
	api_conn_init(&e->srv, &e->conn, -1);
	assert_int_equal(feed(e, "GET / HTTP/1.0\r\n\r\n"), -1); /* 1.0: no keep-alive */
	assert_non_null(strstr(e->out, "200 OK"));
}

static void expect_400_close(struct env *e, const char *req)
{
	e->out_len = 0;
	e->out[0] = '\0';
	api_conn_close(&e->conn);
	api_conn_init(&e->srv, &e->conn, -1);
	int rc = api_conn_input(&e->conn, req, strlen(req));
	if (rc != -1 || !strstr(e->out, "HTTP/1.1 400 Bad Request\r\n") ||
	    !strstr(e->out, "Connection: close"))
		fail_msg("'%.60s': rc %d, response '%s'", req, rc, e->out);
}

static void test_garbage_and_bounds(void **state)
{
	struct env *e = *state;
	static char big[16384];
	expect_400_close(e, "garbage\r\n\r\n");
	expect_400_close(e, "GET / HTTP/9.x\r\n\r\n");
	expect_400_close(e, "GET / HTTP/1.1\r\nBad Header\r\n\r\n");
	/* A body over the limit, announced or chunked. */
	expect_400_close(e, "PUT /logger HTTP/1.1\r\nContent-Length: 129\r\n\r\n");
	snprintf(big, sizeof(big),
		 "PUT /logger HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "200\r\n%0512d\r\n0\r\n\r\n",
		 0);
	expect_400_close(e, big);
	/* A URL over API_URL_MAX. */
	memset(big, 0, sizeof(big));
	strcpy(big, "GET /");
	memset(big + 5, 'a', API_URL_MAX + 10);
	strcat(big, " HTTP/1.1\r\n\r\n");
	expect_400_close(e, big);
	/* Too many headers, and too many header bytes. */
	memset(big, 0, sizeof(big));
	strcpy(big, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= API_MAX_HEADERS; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "X-%d: y\r\n", i);
	strcat(big, "\r\n");
	expect_400_close(e, big);
	memset(big, 0, sizeof(big));
	strcpy(big, "GET / HTTP/1.1\r\nX: ");
	memset(big + strlen(big), 'v', API_HEADER_BYTES_MAX);
	strcat(big, "\r\n\r\n");
	expect_400_close(e, big);
	/* Exactly at the limits is fine. */
	e->srv.max_payload = 128;
	api_conn_close(&e->conn);
	api_conn_init(&e->srv, &e->conn, -1);
	e->out_len = 0;
	snprintf(big, sizeof(big), "PUT /x HTTP/1.1\r\nContent-Length: 128\r\n\r\n%0128d", 0);
	assert_int_equal(feed(e, big), 0);
	assert_non_null(strstr(e->out, "Invalid request method and/or path: PUT /x."));
}

static void test_paths(void **state)
{
	struct env *e = *state;
	assert_int_equal(feed(e, "GET /version?x=1 HTTP/1.1\r\n\r\n"), 0);
	assert_non_null(strstr(e->out, "firecracker_version"));
	e->out_len = 0;
	assert_int_equal(feed(e, "GET http://localhost/version HTTP/1.1\r\n\r\n"), 0);
	assert_non_null(strstr(e->out, "firecracker_version"));
	e->out_len = 0;
	assert_int_equal(feed(e, "GET http://localhost HTTP/1.1\r\n\r\n"), 0);
	assert_non_null(strstr(e->out, "\"state\":\"Not started\""));
	e->out_len = 0;
	assert_int_equal(feed(e, "DELETE / HTTP/1.1\r\n\r\n"), 0);
	assert_non_null(strstr(e->out, "405 Method Not Allowed"));
}

/* ---- the server on a real socket ---------------------------------------------------------- */

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Sends req and reads until the response holds `until` (or 5 s pass). */
static void roundtrip(int fd, const char *req, const char *until, char *buf, size_t cap)
{
	size_t n = 0;
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	buf[0] = '\0';
	while (!strstr(buf, until)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, 5000), 1);
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		assert_true(r > 0);
		n += (size_t)r;
		buf[n] = '\0';
	}
}

static void test_server(void **state)
{
	struct env *e = *state;
	char err[256], buf[4096];
	snprintf(e->sock, sizeof(e->sock), "/tmp/kiln-api-test.%d.sock", (int)getpid());
	unlink(e->sock);
	struct api_server *s = calloc(1, sizeof(*s));
	assert_int_equal(api_server_open(s, e->sock, 1024, &e->api, err, sizeof(err)), 0);
	/* An existing file is refused, naming the path. */
	struct api_server *s2 = calloc(1, sizeof(*s2));
	assert_int_equal(api_server_open(s2, e->sock, 1024, &e->api, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, e->sock));
	assert_non_null(strstr(err, "already exists"));
	free(s2);
	assert_int_equal(api_server_start(s, false), 0);
	/* A client that stalls mid-request does not block the next ones. */
	int stalled = connect_to(e->sock);
	assert_int_equal(write(stalled, "GET / HT", 8), 8);
	for (int i = 0; i < 3; i++) {
		int fd = connect_to(e->sock);
		roundtrip(fd, "GET / HTTP/1.1\r\n\r\n", "}", buf, sizeof(buf));
		assert_non_null(strstr(buf, "Not started"));
		roundtrip(fd, "GET /version HTTP/1.1\r\n\r\n", "}", buf, sizeof(buf));
		close(fd);
	}
	/* More clients than slots: the newest are served, the idlest dropped. */
	int fds[API_MAX_CONNS + 2];
	for (int i = 0; i < API_MAX_CONNS + 2; i++)
		fds[i] = connect_to(e->sock);
	roundtrip(fds[API_MAX_CONNS + 1], "GET / HTTP/1.1\r\n\r\n", "}", buf, sizeof(buf));
	for (int i = 0; i < API_MAX_CONNS + 2; i++)
		close(fds[i]);
	/* The stalled client is dropped after API_STALL_MS. */
	struct pollfd p = {.fd = stalled, .events = POLLIN};
	assert_int_equal(poll(&p, 1, API_STALL_MS + 2000), 1);
	assert_int_equal(read(stalled, buf, sizeof(buf)), 0);
	close(stalled);
	api_server_close(s);
	struct stat st;
	assert_int_equal(stat(e->sock, &st), -1); /* removed */
	free(s);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_one_request),     T(test_pieces_and_pipelining), T(test_connection_close),
	    T(test_expect_continue), T(test_garbage_and_bounds),    T(test_paths),
	    T(test_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
