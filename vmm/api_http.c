/* The API's HTTP connections and thread. Parsing is http-parser's; this file bounds what it
 * accepts, routes complete requests and writes the responses. */
#include "vmm/api_http.h"
#include "seccomp/seccomp.h"
#include "vmm/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- http-parser callbacks: collect the request, enforce the bounds ---------------------- */

static struct api_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int on_message_begin(http_parser *p)
{
	struct api_conn *c = conn_of(p);
	c->url_len = c->body_len = c->header_bytes = c->field_len = c->expect_len = 0;
	c->nr_headers = 0;
	c->in_value = c->complete = false;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = conn_of(p);
	if (len >= sizeof(c->url) - c->url_len) {
		c->too_large = true;
		return 1;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	return 0;
}

static int count_header_bytes(struct api_conn *c, size_t len)
{
	if (len > API_HEADER_BYTES_MAX - c->header_bytes) {
		c->too_large = true;
		return 1;
	}
	c->header_bytes += len;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = conn_of(p);
	(void)at;
	/* A field may arrive in pieces: a new header starts after a value (or first). */
	if (c->in_value || c->nr_headers == 0) {
		c->nr_headers++;
		c->field_len = 0;
	}
	c->in_value = false;
	/* Only Expect matters; longer names just overflow the check. */
	if (c->field_len <= sizeof(c->field) && len <= sizeof(c->field) - c->field_len)
		memcpy(c->field + c->field_len, at, len);
	c->field_len += len;
	if (c->nr_headers > API_MAX_HEADERS) {
		c->too_large = true;
		return 1;
	}
	return count_header_bytes(c, len);
}

static bool is_expect(const struct api_conn *c)
{
	return c->field_len == 6 && !strncasecmp(c->field, "expect", 6);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = conn_of(p);
	c->in_value = true;
	if (is_expect(c) && c->expect_len <= sizeof(c->expect) &&
	    len <= sizeof(c->expect) - c->expect_len)
		memcpy(c->expect + c->expect_len, at, len);
	if (is_expect(c))
		c->expect_len += len;
	return count_header_bytes(c, len);
}

static int on_headers_complete(http_parser *p)
{
	struct api_conn *c = conn_of(p);
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->srv->max_payload) {
		c->too_large = true;
		return -1;
	}
	/* curl asks before a body over 1 KiB; answering saves it a second's wait. */
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (c->expect_len == 12 && !strncasecmp(c->expect, "100-continue", 12) &&
	    c->srv->send(c, cont, sizeof(cont) - 1) < 0)
		return -1;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = conn_of(p);
	if (len > c->srv->max_payload - c->body_len) {
		c->too_large = true;
		return 1;
	}
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct api_conn *c = conn_of(p);
	c->complete = true;
	http_parser_pause(p, 1); /* one request at a time: answered before the next is read */
	return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- responses ----------------------------------------------------------------------------- */

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	default:
		return "Internal Server Error";
	}
}

static int send_response(struct api_conn *c, int status, const char *body, size_t len,
			 bool keep_alive)
{
	char head[256];
	int n;
	if (status == 204)
		n = snprintf(head, sizeof(head), "HTTP/1.1 204 %s\r\nServer: kiln\r\n%s\r\n",
			     reason_phrase(204), keep_alive ? "" : "Connection: close\r\n");
	else
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d %s\r\nServer: kiln\r\nContent-Type: application/json\r\n"
			     "Content-Length: %zu\r\n%s\r\n",
			     status, reason_phrase(status), len,
			     keep_alive ? "" : "Connection: close\r\n");
	int rc = c->srv->send(c, head, (size_t)n);
	if (rc == 0 && status != 204 && len)
		rc = c->srv->send(c, body, len);
	return rc;
}

static int send_fault(struct api_conn *c, const char *msg)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"fault_message\":\"%s\"}", msg);
	send_response(c, 400, body, (size_t)n, false);
	return -1;
}

static enum api_method method_of(const http_parser *p)
{
	switch (p->method) {
	case HTTP_GET:
		return API_GET;
	case HTTP_PUT:
		return API_PUT;
	case HTTP_PATCH:
		return API_PATCH;
	default:
		return API_OTHER;
	}
}

/* Routes the complete request in c and answers it; -1 when the connection must close. */
static int serve_request(struct api_conn *c)
{
	struct api_response r = {.body = c->srv->resp_body};
	c->url[c->url_len] = '\0';
	/* The path without a query; an absolute-form target keeps only its path. */
	char *path = c->url;
	if (strncmp(path, "http://", 7) == 0 && strchr(path + 7, '/'))
		path = strchr(path + 7, '/');
	else if (strncmp(path, "http://", 7) == 0)
		strcpy(path, "/");
	path[strcspn(path, "?#")] = '\0';
	api_handle(c->srv->api, method_of(&c->parser), path, c->body, c->body_len, &r);
	bool keep = http_should_keep_alive(&c->parser);
	if (send_response(c, r.status, r.body, r.len, keep) < 0 || !keep)
		return -1;
	return 0;
}

int api_conn_input(struct api_conn *c, const char *data, size_t len)
{
	size_t off = 0;
	c->last_ns = monotonic_ns();
	while (off < len) {
		c->mid_request = true;
		off += http_parser_execute(&c->parser, &settings, data + off, len - off);
		if (c->complete) {
			c->complete = c->mid_request = false;
			if (serve_request(c) < 0)
				return -1;
			http_parser_pause(&c->parser, 0);
			continue;
		}
		if (c->too_large)
			return send_fault(c, "Request too large.");
		if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
			return send_fault(c, "Malformed HTTP request.");
	}
	return 0;
}

/* ---- connections ---------------------------------------------------------------------------- */

static int send_fd(struct api_conn *c, const char *buf, size_t len)
{
	while (len) {
		/* Responses are small next to a socket buffer: a client that does not read
		 * them is dropped rather than waited for. */
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

void api_conn_init(struct api_server *s, struct api_conn *c, int fd)
{
	c->fd = fd;
	c->srv = s;
	c->body = malloc(s->max_payload ? s->max_payload : 1);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->url_len = c->body_len = 0;
	c->complete = c->too_large = c->mid_request = false;
	c->last_ns = monotonic_ns();
}

void api_conn_close(struct api_conn *c)
{
	free(c->body);
	c->body = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* The one process-wide cleanup besides the log sink: die() during setup exits without
 * unwinding, and the socket file must not outlive kiln on any path. */
static char unlink_at_exit_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void unlink_socket_at_exit(void)
{
	if (unlink_at_exit_path[0])
		unlink(unlink_at_exit_path);
}

int api_server_open(struct api_server *s, const char *path, size_t max_payload, struct api *api,
		    char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	memset(s, 0, sizeof(*s));
	s->listen_fd = s->epfd = s->wake_efd = -1;
	for (unsigned i = 0; i < API_MAX_CONNS; i++)
		s->conns[i].fd = -1;
	s->api = api;
	s->max_payload = max_payload;
	s->send = send_fd;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--api-sock: %.200s: longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) == 0) {
		snprintf(err, errlen, "--api-sock: %.200s: already exists (remove it first)", path);
		return -EEXIST;
	}
	strcpy(sa.sun_path, path);
	s->resp_body = malloc(API_RESPONSE_MAX);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (!s->resp_body || s->listen_fd < 0 ||
	    bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	strcpy(s->sock_path, path);
	if (!unlink_at_exit_path[0])
		atexit(unlink_socket_at_exit);
	strcpy(unlink_at_exit_path, path);
	if (listen(s->listen_fd, API_MAX_CONNS) < 0)
		goto fail;
	return 0;
fail:;
	int rc = -errno;
	snprintf(err, errlen, "--api-sock: %.200s: %s", path, strerror(errno));
	api_server_close(s);
	return rc;
}

/* A free slot, or the one idle the longest (a client holding every slot must not lock the
 * others out). */
static struct api_conn *conn_slot(struct api_server *s)
{
	struct api_conn *oldest = &s->conns[0];
	for (unsigned i = 0; i < API_MAX_CONNS; i++) {
		if (s->conns[i].fd < 0)
			return &s->conns[i];
		if (s->conns[i].last_ns < oldest->last_ns)
			oldest = &s->conns[i];
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, oldest->fd, NULL);
	api_conn_close(oldest);
	return oldest;
}

static void accept_clients(struct api_server *s)
{
	int fd;
	while ((fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		struct api_conn *c = conn_slot(s);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		api_conn_init(s, c, fd);
		if (!c->body || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			api_conn_close(c);
	}
}

static void drop_conn(struct api_server *s, struct api_conn *c)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	api_conn_close(c);
}

static void read_client(struct api_server *s, struct api_conn *c)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || api_conn_input(c, buf, (size_t)n) < 0)
			return drop_conn(s, c);
	}
}

/* Drops clients that stopped in the middle of a request. */
static void drop_stalled(struct api_server *s)
{
	uint64_t now = monotonic_ns();
	for (unsigned i = 0; i < API_MAX_CONNS; i++) {
		struct api_conn *c = &s->conns[i];
		if (c->fd >= 0 && c->mid_request && now - c->last_ns > API_STALL_MS * 1000000ULL)
			drop_conn(s, c);
	}
}

static void load_filter(struct api_server *s)
{
	if (!s->seccomp || s->seccomp_loaded || atomic_load(&s->api->state) == API_NOT_STARTED)
		return;
	int err = seccomp_install(SECCOMP_ROLE_API);
	if (err)
		log_err("api: seccomp: %s", strerror(-err));
	else
		seccomp_test_hook(SECCOMP_ROLE_API);
	s->seccomp_loaded = true;
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;
	struct epoll_event evs[API_MAX_CONNS + 2];
	prctl(PR_SET_NAME, "kiln_api", 0, 0, 0); /* Firecracker's is "fc_api" */
	while (!atomic_load(&s->stop)) {
		load_filter(s);
		int n = epoll_wait(s->epfd, evs, API_MAX_CONNS + 2, 1000);
		for (int i = 0; i < n && !atomic_load(&s->stop); i++) {
			if (evs[i].data.ptr == s)
				accept_clients(s);
			else if (evs[i].data.ptr)
				read_client(s, evs[i].data.ptr);
		}
		drop_stalled(s);
	}
	return NULL;
}

int api_server_start(struct api_server *s, bool seccomp)
{
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = s};
	struct epoll_event wev = {.events = EPOLLIN, .data.ptr = NULL};
	s->seccomp = seccomp;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epfd < 0 || s->wake_efd < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &lev) < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_efd, &wev) < 0)
		return -errno;
	int err = pthread_create(&s->thread, NULL, api_thread, s);
	if (err)
		return -err;
	s->thread_started = true;
	return 0;
}

void api_server_close(struct api_server *s)
{
	if (s->thread_started) {
		uint64_t one = 1;
		atomic_store(&s->stop, true);
		ssize_t rc = write(s->wake_efd, &one, sizeof(one));
		(void)rc;
		pthread_join(s->thread, NULL);
		s->thread_started = false;
	}
	for (unsigned i = 0; i < API_MAX_CONNS; i++)
		if (s->conns[i].fd >= 0)
			api_conn_close(&s->conns[i]);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake_efd >= 0)
		close(s->wake_efd);
	s->listen_fd = s->epfd = s->wake_efd = -1;
	if (s->sock_path[0])
		unlink(s->sock_path);
	s->sock_path[0] = '\0';
	free(s->resp_body);
	s->resp_body = NULL;
}
