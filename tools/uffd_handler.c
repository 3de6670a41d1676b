/* kiln-uffd-handler SOCKET MEMFILE: an example page-fault handler for the Uffd memory backend
 * (mem_backend.backend_type "Uffd") of kiln, and of Firecracker, whose handshake kiln sends.
 *
 * Listens on the Unix stream socket SOCKET and accepts one connection, on which the VMM sends
 * in one message the JSON array of its guest memory regions
 *   [{"base_host_virt_addr":H,"size":S,"offset":O,"page_size":P,...},...]
 * with its userfaultfd attached (SCM_RIGHTS). Then serves every page fault in a region by
 * copying (UFFDIO_COPY) the page from MEMFILE at O + (fault address - H), rounded down to
 * the page, and a page that madvise() removed (UFFD_EVENT_REMOVE) as zeros. Ends with exit
 * code 0 when the VMM is gone: its pidfd (from SO_PEERCRED) polls readable, or on kernels
 * without pidfds, the connection hangs up (kiln and recent Firecrackers keep it open until
 * they exit). Exit 2 for bad arguments or files; 1 when the handshake is bad or
 * serving fails, after SIGKILLing the VMM, which could only hang otherwise (as
 * Firecracker's example handlers do). One line on stderr for each. */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define NAME "kiln-uffd-handler"
#define MAX_MAPPINGS 32
#define MAX_TOKENS 1024
#define MAX_HANDSHAKE 65536
#define MAX_DEFERRED 4096 /* faults waiting for a pending remove event to be read */

struct mapping {
	uint64_t base, size, offset, page_size;
	uint64_t *removed; /* one bit per page madvise() removed; NULL until one is */
};

struct handler {
	struct mapping map[MAX_MAPPINGS];
	unsigned nr;
	const uint8_t *mem; /* MEMFILE, mapped read-only */
	uint64_t mem_len;
	const uint8_t *zeros; /* one page of the largest page size, for removed pages */
	int uffd;
	int conn;   /* the VMM's connection, -1 once it hung up */
	pid_t peer; /* the VMM (SO_PEERCRED), 0 if unknown */
	int pidfd;  /* the VMM's pidfd, -1 if none */
	uint64_t deferred[MAX_DEFERRED];
	unsigned nr_deferred;
};

/* Listens on path and accepts one connection (then the path is removed). The socket is
 * bound under a temporary name and renamed to path once it listens (never over an existing
 * file), so that a VMM that connects as soon as path appears is never refused. The fd, or -1 with a
 * line printed. */
static int accept_one(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		fprintf(stderr, NAME ": %s: socket path too long\n", path);
		return -1;
	}
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool bound = ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	/* link() then unlink(): a rename that never replaces a file (musl has no renameat2) */
	if (!bound || listen(ls, 1) < 0 || link(sa.sun_path, path) < 0) {
		fprintf(stderr, NAME ": %s: %s\n", path, strerror(errno));
		if (bound)
			unlink(sa.sun_path);
		if (ls >= 0)
			close(ls);
		return -1;
	}
	unlink(sa.sun_path);
	int conn;
	while ((conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (conn < 0)
		fprintf(stderr, NAME ": %s: accept: %s\n", path, strerror(errno));
	close(ls);
	unlink(path);
	return conn;
}

/* Keeps the first descriptor of an SCM_RIGHTS message in *fd (when none yet), closes the
 * rest. */
static void take_fds(struct msghdr *msg, int *fd)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
}

/* Reads the handshake: JSON text into buf (NUL-terminated) until it parses whole, and the
 * uffd. Its length, or -1 with a line printed. */
static int recv_handshake(int conn, char *buf, size_t cap, int *uffd, jsmntok_t *tok)
{
	size_t len = 0;
	*uffd = -1;
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(4 * sizeof(int))];
		} ctl;
		struct iovec iov = {.iov_base = buf + len, .iov_len = cap - 1 - len};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl)};
		ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || len + (size_t)n >= cap - 1) {
			fprintf(stderr, NAME ": handshake: %s\n",
				n < 0	 ? strerror(errno)
				: n == 0 ? "connection closed"
					 : "too long");
			return -1;
		}
		take_fds(&msg, uffd);
		len += (size_t)n;
		buf[len] = '\0';
		jsmn_parser p;
		jsmn_init(&p);
		if (jsmn_parse(&p, buf, len, tok, MAX_TOKENS) != JSMN_ERROR_PART)
			break;
	}
	if (*uffd < 0) {
		fprintf(stderr, NAME ": handshake: no userfaultfd came with the mappings\n");
		return -1;
	}
	return (int)len;
}

/* A JSON non-negative integer that fits 64 bits: 0 with *v, or -1. */
static int json_u64(const char *js, const jsmntok_t *t, uint64_t *v)
{
	if (t->type != JSMN_PRIMITIVE || t->end <= t->start || t->end - t->start > 20)
		return -1;
	*v = 0;
	for (int i = t->start; i < t->end; i++) {
		unsigned d = (unsigned)(js[i] - '0');
		if (d > 9 || *v > (UINT64_MAX - d) / 10)
			return -1;
		*v = *v * 10 + d;
	}
	return 0;
}

static bool json_key(const char *js, const jsmntok_t *t, const char *key)
{
	size_t n = strlen(key);
	return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
	       !memcmp(js + t->start, key, n);
}

/* Index of the token after the subtree at tok[i]. */
static int json_skip(const jsmntok_t *tok, int ntok, int i)
{
	int j = i + 1;
	while (j < ntok && tok[j].start < tok[i].end)
		j++;
	return j;
}

/* One GuestRegionUffdMapping object at tok[i] into m; unknown keys are skipped. The index
 * after it, or -1. */
static int parse_mapping(const char *js, const jsmntok_t *tok, int ntok, int i, struct mapping *m)
{
	uint64_t kib = 0, seen = 0;
	if (tok[i].type != JSMN_OBJECT)
		return -1;
	int keys = tok[i].size, j = i + 1;
	for (int k = 0; k < keys && j + 1 < ntok; k++, j = json_skip(tok, ntok, j + 1)) {
		static const char *const names[] = {"base_host_virt_addr", "size", "offset",
						    "page_size", "page_size_kib"};
		uint64_t *dst[] = {&m->base, &m->size, &m->offset, &m->page_size, &kib};
		for (unsigned f = 0; f < 5; f++) {
			if (!json_key(js, &tok[j], names[f]))
				continue;
			if (json_u64(js, &tok[j + 1], dst[f]) < 0)
				return -1;
			seen |= 1u << f;
		}
	}
	if ((seen & 7) != 7)
		return -1; /* base_host_virt_addr, size and offset are required */
	/* Older Firecrackers send only page_size_kib (bytes despite its name), the oldest no
	 * page size at all (4 KiB pages). */
	if (!(seen & 8))
		m->page_size = seen & 16 ? kib : 4096;
	return j;
}

/* The mappings of the handshake json[0, len) into h. 0 or -1 with a line printed. */
static int parse_mappings(struct handler *h, const char *json, size_t len, jsmntok_t *tok)
{
	jsmn_parser p;
	jsmn_init(&p);
	int ntok = jsmn_parse(&p, json, len, tok, MAX_TOKENS);
	if (ntok < 1 || tok[0].type != JSMN_ARRAY || tok[0].size < 1 ||
	    tok[0].size > MAX_MAPPINGS) {
		fprintf(stderr, NAME ": handshake: not a JSON array of 1 to %d mappings: %.200s\n",
			MAX_MAPPINGS, json);
		return -1;
	}
	int i = 1;
	for (h->nr = 0; h->nr < (unsigned)tok[0].size; h->nr++) {
		i = i < ntok ? parse_mapping(json, tok, ntok, i, &h->map[h->nr]) : -1;
		if (i < 0) {
			fprintf(stderr,
				NAME ": handshake: mapping %u is not a valid "
				     "GuestRegionUffdMapping: %.200s\n",
				h->nr, json);
			return -1;
		}
	}
	return 0;
}

/* Every mapping: whole pages of a power-of-two page size, inside MEMFILE, no two
 * overlapping. 0 or -1 with a line printed. */
static int check_mappings(const struct handler *h)
{
	for (unsigned i = 0; i < h->nr; i++) {
		const struct mapping *m = &h->map[i];
		uint64_t ps = m->page_size;
		const char *why = NULL;
		if (ps < 4096 || (ps & (ps - 1)) || ps > (1ULL << 30))
			why = "page_size is not a power of two from 4096 to 1 GiB";
		else if (!m->size)
			why = "size is 0";
		else if ((m->base | m->size) & (ps - 1))
			why = "base_host_virt_addr or size is not a whole number of pages";
		else if (m->base > UINT64_MAX - m->size)
			why = "base_host_virt_addr + size is past the end of the address space";
		else if (m->offset > h->mem_len || m->size > h->mem_len - m->offset)
			why = "offset + size is past the end of MEMFILE";
		for (unsigned k = 0; k < i && !why; k++)
			if (m->base < h->map[k].base + h->map[k].size &&
			    h->map[k].base < m->base + m->size)
				why = "it overlaps another mapping";
		if (why) {
			fprintf(stderr, NAME ": handshake: mapping %u: %s\n", i, why);
			return -1;
		}
	}
	return 0;
}

static struct mapping *find_mapping(struct handler *h, uint64_t addr)
{
	for (unsigned i = 0; i < h->nr; i++)
		if (addr >= h->map[i].base && addr - h->map[i].base < h->map[i].size)
			return &h->map[i];
	return NULL;
}

/* Records [start, end) as removed: its pages are served as zeros from now on. 0 or -1. */
static int mark_removed(struct handler *h, uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < h->nr; i++) {
		struct mapping *m = &h->map[i];
		uint64_t lo = start > m->base ? start : m->base;
		uint64_t hi = end - m->base < m->size ? end : m->base + m->size;
		if (end <= m->base || lo >= hi)
			continue;
		uint64_t pages = m->size / m->page_size;
		if (!m->removed && !(m->removed = calloc((pages + 63) / 64, sizeof(uint64_t))))
			return -1;
		for (uint64_t p = (lo - m->base) / m->page_size; p * m->page_size < hi - m->base;
		     p++)
			m->removed[p / 64] |= 1ULL << (p % 64);
	}
	return 0;
}

/* Serves the fault at addr. 0 when served (or no longer needed), 1 when the VMM is gone,
 * -EAGAIN when a remove event must be read first, other -errno to give up. */
static int serve_fault(struct handler *h, uint64_t addr)
{
	struct mapping *m = find_mapping(h, addr);
	if (!m) {
		fprintf(stderr, NAME ": page fault at 0x%llx outside every mapping\n",
			(unsigned long long)addr);
		return -EFAULT;
	}
	uint64_t dst = addr & ~(m->page_size - 1), page = (dst - m->base) / m->page_size;
	bool removed = m->removed && (m->removed[page / 64] >> (page % 64)) & 1;
	struct uffdio_copy copy = {
	    .dst = dst,
	    .src = (uintptr_t)(removed ? h->zeros : h->mem + m->offset + (dst - m->base)),
	    .len = m->page_size,
	};
	if (ioctl(h->uffd, UFFDIO_COPY, &copy) == 0)
		return 0;
	switch (errno) {
	case EEXIST: /* another fault on the page was served first */
	case ENOENT: /* the range was unmapped meanwhile */
		return 0;
	case ESRCH: /* the VMM's memory is gone: it exited */
		return 1;
	case EAGAIN:
		return -EAGAIN;
	default:
		fprintf(stderr, NAME ": UFFDIO_COPY at 0x%llx: %s\n", (unsigned long long)dst,
			strerror(errno));
		return -errno;
	}
}

/* Prints what failed with err; returns err. */
static int failed(const char *what, int err)
{
	fprintf(stderr, NAME ": %s: %s\n", what, strerror(-err));
	return err;
}

/* Serves the deferred faults; those still blocked stay. 0, 1 when the VMM is gone, -errno. */
static int serve_deferred(struct handler *h)
{
	unsigned kept = 0;
	for (unsigned i = 0; i < h->nr_deferred; i++) {
		int rc = serve_fault(h, h->deferred[i]);
		if (rc == -EAGAIN)
			h->deferred[kept++] = h->deferred[i];
		else if (rc)
			return rc;
	}
	h->nr_deferred = kept;
	return 0;
}

/* Reads every pending uffd event: faults queue up, removes are recorded; then serves the
 * queue. 0, 1 when the VMM is gone, or -errno. */
static int serve_events(struct handler *h)
{
	struct uffd_msg msgs[64];
	while (h->nr_deferred + 64 <= MAX_DEFERRED) {
		ssize_t n = read(h->uffd, msgs, sizeof(msgs));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return n < 0 ? failed("reading the userfaultfd", -errno) : 1;
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			const struct uffd_msg *m = &msgs[i];
			if (m->event == UFFD_EVENT_PAGEFAULT)
				h->deferred[h->nr_deferred++] = m->arg.pagefault.address;
			else if (m->event == UFFD_EVENT_REMOVE &&
				 mark_removed(h, m->arg.remove.start, m->arg.remove.end) < 0)
				return failed("recording removed pages", -ENOMEM);
			/* UFFD_EVENT_UNMAP: the range is gone, nothing will fault there. */
		}
	}
	return serve_deferred(h);
}

/* The connection hung up or sent something (nothing is expected after the handshake). 1
 * when it is the VMM's end, else 0. */
static int conn_event(struct handler *h, short revents)
{
	char junk[256];
	bool hup = revents & (POLLHUP | POLLRDHUP | POLLERR);
	if (!hup && (revents & POLLIN) && read(h->conn, junk, sizeof(junk)) == 0)
		hup = true;
	if (!hup)
		return 0;
	/* Older Firecrackers close it right after the handshake: with the VMM's pidfd the
	 * hang-up only ends the watch on it. */
	close(h->conn);
	h->conn = -1;
	return h->pidfd < 0;
}

/* Serves until the VMM is gone (its pidfd polls readable, or without one, the connection
 * hangs up). 0, or -errno to give up (a line printed). */
static int serve(struct handler *h)
{
	for (;;) {
		struct pollfd p[3] = {{.fd = h->uffd, .events = POLLIN},
				      {.fd = h->pidfd, .events = POLLIN},
				      {.fd = h->conn, .events = POLLIN | POLLRDHUP}};
		/* Faults blocked behind an unread remove event are retried soon. */
		int n = poll(p, 3, h->nr_deferred ? 1 : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return failed("poll", -errno);
		if (p[0].revents & POLLERR)
			return failed("the userfaultfd", -EBADF); /* not set up with UFFDIO_API */
		int rc = serve_events(h);
		if (rc)
			return rc > 0 ? 0 : rc;
		if (p[1].revents)
			return 0;
		if (p[2].revents && conn_event(h, p[2].revents))
			return 0;
	}
}

/* Maps MEMFILE read-only into h. 0 or -1 with a line printed. */
static int map_memfile(struct handler *h, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		fprintf(stderr, NAME ": %s: %s\n", path,
			fd < 0 || errno ? strerror(errno) : "not a non-empty regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	h->mem_len = (uint64_t)st.st_size;
	void *mem = mmap(NULL, h->mem_len, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	close(fd);
	if (mem == MAP_FAILED) {
		fprintf(stderr, NAME ": %s: mmap: %s\n", path, strerror(errno));
		return -1;
	}
	h->mem = mem;
	return 0;
}

/* The handshake: mappings checked, the zero page allocated. 0 or -1 with a line printed. */
static int setup(struct handler *h)
{
	static const size_t tok_bytes = MAX_TOKENS * sizeof(jsmntok_t);
	char *json = malloc(MAX_HANDSHAKE);
	jsmntok_t *tok = malloc(tok_bytes);
	int rc = json && tok ? recv_handshake(h->conn, json, MAX_HANDSHAKE, &h->uffd, tok) : -1;
	/* Polling a blocking uffd reports POLLERR: it is read without blocking here. */
	if (rc >= 0 && fcntl(h->uffd, F_SETFL, fcntl(h->uffd, F_GETFL) | O_NONBLOCK) < 0)
		rc = -1;
	if (rc >= 0)
		rc = parse_mappings(h, json, (size_t)rc, tok);
	if (rc >= 0)
		rc = check_mappings(h);
	uint64_t largest = 0;
	for (unsigned i = 0; rc >= 0 && i < h->nr; i++)
		largest = h->map[i].page_size > largest ? h->map[i].page_size : largest;
	if (rc >= 0 && !(h->zeros = calloc(1, largest)))
		rc = -1;
	free(json);
	free(tok);
	return rc < 0 ? -1 : 0;
}

/* The peer's pid and pidfd into h (each left unknown when the kernel cannot tell). */
static void watch_peer(struct handler *h)
{
	struct ucred cred = {0};
	socklen_t cred_len = sizeof(cred);
	if (getsockopt(h->conn, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0)
		h->peer = cred.pid;
	if (h->peer > 0)
		h->pidfd = (int)syscall(SYS_pidfd_open, h->peer, 0);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: " NAME " SOCKET MEMFILE\n");
		return 2;
	}
	struct handler h = {.uffd = -1, .conn = -1, .pidfd = -1};
	if (map_memfile(&h, argv[2]) < 0 || (h.conn = accept_one(argv[1])) < 0)
		return 2;
	watch_peer(&h);
	int rc = setup(&h);
	if (rc == 0)
		rc = serve(&h); /* each failure prints its own line */
	/* Without its pages the VMM would hang for ever. Through the pidfd when there is one: the
	 * pid cannot have been reused for another process then. */
	if (rc != 0 && h.pidfd >= 0)
		syscall(SYS_pidfd_send_signal, h.pidfd, SIGKILL, NULL, 0);
	else if (rc != 0 && h.peer > 0)
		kill(h.peer, SIGKILL);
	return rc == 0 ? 0 : 1;
}
