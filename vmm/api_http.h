/* The API's HTTP side: a Unix socket, HTTP/1.1 parsed by nodejs/http-parser (Debian's
 * libhttp-parser, linked statically; see docs/api.md), requests handed to the router
 * (api.h). It runs on its own thread with its own seccomp role (api). Requests, headers and
 * bodies are bounded; connections are kept alive; a client that stalls mid-request is
 * dropped after API_STALL_MS, garbage is answered 400 and the connection closed, and no
 * client can block the VM or another client. */
#ifndef KILN_API_HTTP_H
#define KILN_API_HTTP_H

#include <http_parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/api.h"

#define API_MAX_CONNS 8
#define API_URL_MAX 1024
#define API_MAX_HEADERS 64
#define API_HEADER_BYTES_MAX 8192
#define API_STALL_MS 3000
#define API_DEFAULT_MAX_PAYLOAD 51200

struct api_server;

/* One client connection: its parser and the request being read. */
struct api_conn {
	int fd; /* -1: free slot */
	http_parser parser;
	char url[API_URL_MAX];
	size_t url_len;
	char *body; /* max_payload bytes */
	size_t body_len;
	unsigned nr_headers;
	size_t header_bytes;
	bool in_value; /* the last header callback was a value */
	char field[8]; /* the current header's name, if short (for Expect) */
	size_t field_len;
	char expect[16]; /* the Expect header's value, if short */
	size_t expect_len;
	bool complete;	  /* a whole request is ready */
	bool too_large;	  /* a bound was exceeded: answer 400 and close */
	bool mid_request; /* bytes of an unfinished request were received */
	uint64_t last_ns;
	struct api_server *srv;
};

struct api_server {
	int listen_fd;
	int epfd;
	int wake_efd;
	char sock_path[108];
	size_t max_payload;
	struct api *api;
	struct api_conn conns[API_MAX_CONNS];
	char *resp_body; /* API_RESPONSE_MAX bytes */
	/* Writes a response; tests and the fuzzer capture it. Default: write(2) to c->fd. */
	int (*send)(struct api_conn *c, const char *buf, size_t len);
	void *send_ctx;
	bool seccomp; /* install the api filter once the VM runs */
	bool seccomp_loaded;
	atomic_bool stop;
	pthread_t thread;
	bool thread_started;
};

/* Creates the listening socket at path (an existing file there is an error, as in
 * Firecracker) and arranges for the file to be removed at exit(). max_payload bounds
 * request bodies. 0, or -errno with one line naming the path in err. */
int api_server_open(struct api_server *s, const char *path, size_t max_payload, struct api *api,
		    char *err, size_t errlen);

/* Starts the API thread. Signals must be blocked in the caller (the thread inherits the
 * mask). With `seccomp`, the thread loads the api filter as soon as the VM runs. 0 or
 * -errno. */
int api_server_start(struct api_server *s, bool seccomp);

/* Stops and joins the thread, closes every connection and the socket, removes the file.
 * Safe on a server that was never opened or started. */
void api_server_close(struct api_server *s);

/* Initialises conn slot c for server s (no socket: tests and the fuzzer feed it). */
void api_conn_init(struct api_server *s, struct api_conn *c, int fd);

/* Feeds received bytes to c: each complete request is routed and answered through
 * s->send. Returns 0 to keep the connection, -1 when it must be closed (bad request,
 * bound exceeded, Connection: close, send failure). */
int api_conn_input(struct api_conn *c, const char *data, size_t len);

/* Frees c's buffers and closes its fd (if any); the slot becomes free. */
void api_conn_close(struct api_conn *c);

#endif
