/* The Uffd memory backend: guest RAM registered with a userfaultfd that an external
 * page-fault handler serves, handed over with Firecracker's handshake. */
#include "vmm/snapshot_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define KEY "mem_backend.backend_path"

/* Appends to buf[*used, len). 0, or -ENOSPC when it does not fit. */
static int appendf(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *used)
		return -ENOSPC;
	*used += (size_t)n;
	return 0;
}

int snap_uffd_mappings_json(const struct guest_mem *gm, char *buf, size_t len)
{
	size_t used = 0;
	uint64_t offset = 0;
	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	int err = appendf(buf, len, &used, "[");
	for (unsigned i = 0; i < gm->nr_regions && !err; i++) {
		const struct gm_region *r = &gm->region[i];
		/* serde_json's compact form of Firecracker's GuestRegionUffdMapping, in its
		 * field order; page_size_kib is its deprecated twin of page_size (bytes). */
		err = appendf(buf, len, &used,
			      "%s{\"base_host_virt_addr\":%" PRIu64 ",\"size\":%" PRIu64
			      ",\"offset\":%" PRIu64 ",\"page_size\":%llu,\"page_size_kib\":%llu}",
			      i ? "," : "", (uint64_t)(uintptr_t)r->host, r->size, offset,
			      SNAP_PAGE_SIZE, SNAP_PAGE_SIZE);
		offset += r->size;
	}
	if (!err)
		err = appendf(buf, len, &used, "]");
	return err ? err : (int)used;
}

/* A new userfaultfd, O_CLOEXEC | O_NONBLOCK, able to take the kernel's own faults (KVM's).
 * The fd or -errno. */
static int uffd_create(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 || (errno != EPERM && errno != ENOSYS))
		return fd >= 0 ? fd : -errno;
	int err = -errno;
	/* Linux 6.1+: access to /dev/userfaultfd grants what vm.unprivileged_userfaultfd=0
	 * refuses to the syscall (Firecracker's jailer exposes it in the jail). */
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return err;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		err = -errno;
	close(dev);
	return fd >= 0 ? fd : err;
}

/* UFFDIO_API, then every region registered for missing pages. 0 or -errno; *step names the
 * ioctl that failed. */
static int uffd_register(int uffd, const struct guest_mem *gm, const char **step)
{
	/* Firecracker asks for remove events (madvise(MADV_DONTNEED) of guest RAM) so that its
	 * handlers can tell them apart; kiln asks for the same features. */
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
	*step = "UFFDIO_API";
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return -errno;
	*step = "UFFDIO_REGISTER";
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		struct uffdio_register reg = {
		    .range = {.start = (uintptr_t)gm->region[i].host, .len = gm->region[i].size},
		    .mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
			return -errno;
		if (!(reg.ioctls & (1ULL << _UFFDIO_COPY)))
			return -EOPNOTSUPP;
	}
	return 0;
}

/* Sends json with fd attached in one sendmsg (the rest, if the socket took only part, in
 * plain sends). 0 or -errno. */
static int send_with_fd(int sock, const char *json, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {.iov_base = (void *)json, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	while (n >= 0 && (size_t)n < len) {
		ssize_t m = send(sock, json + n, len - (size_t)n, MSG_NOSIGNAL);
		if (m < 0 && errno == EINTR)
			continue;
		n = m < 0 ? -1 : n + m;
	}
	return n < 0 ? -errno : 0;
}

/* Connects to path and sends the handshake. The connected socket or -errno; *step names
 * the call that failed. */
static int uffd_handshake(const struct guest_mem *gm, const char *path, int uffd, const char **step)
{
	char json[512];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	*step = "socket path";
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int len = snap_uffd_mappings_json(gm, json, sizeof(json));
	if (len < 0)
		return len;
	*step = "socket";
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	*step = "connect";
	int err = connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	if (!err) {
		*step = "sendmsg";
		err = send_with_fd(sock, json, (size_t)len, uffd);
	}
	if (err) {
		close(sock);
		return err;
	}
	return sock;
}

int snap_uffd_attach(struct guest_mem *gm, const char *sock_path, int *uffd_out, char *err,
		     size_t errlen)
{
	const char *step = "userfaultfd";
	if (!sock_path || !sock_path[0]) {
		if (err && errlen)
			snprintf(err, errlen, KEY ": missing");
		return -EINVAL;
	}
	int uffd = uffd_create();
	int rc = uffd < 0 ? uffd : uffd_register(uffd, gm, &step);
	int sock = rc < 0 ? rc : uffd_handshake(gm, sock_path, uffd, &step);
	if (sock < 0) {
		char shown[128];
		size_t n = 0;
		for (; sock_path[n] && n < sizeof(shown) - 1; n++)
			shown[n] = (unsigned char)sock_path[n] < ' ' ? '?' : sock_path[n];
		shown[n] = '\0';
		if (err && errlen)
			snprintf(err, errlen, KEY ": %s: %s: %s", shown, step, strerror(-sock));
		/* Closing the only uffd unregisters the regions: gm is plain memory again. */
		if (uffd >= 0)
			close(uffd);
		return sock;
	}
	/* Left open on purpose until kiln exits, as Firecracker leaves it (it forgets the
	 * stream): a handler that polls it sees the hang-up when the VMM is gone, and one
	 * that reads the mappings late still finds them ahead of the end of the stream. */
	*uffd_out = uffd;
	return 0;
}
