/* The Uffd memory backend: snap_uffd_attach's handshake byte for byte (Firecracker's
 * GuestRegionUffdMapping JSON, the uffd over SCM_RIGHTS, the connection kept open) and its
 * errors. Skipped where userfaultfd is not permitted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "tests/unit/snap_mem_test.h"
#include "vmm/snapshot_mem.h"

/* A userfaultfd as kiln makes one (the syscall, else /dev/userfaultfd), or -1. */
static int uffd_create(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -1;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd;
}

static void skip_without_uffd(void)
{
	int fd = uffd_create();
	if (fd < 0)
		skip(); /* userfaultfd refused to this user (vm.unprivileged_userfaultfd) */
	close(fd);
}

/* A fresh path for a socket in $TMPDIR. */
static void socket_path(char path[64])
{
	int fd = temp_file(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 1), 0);
	return s;
}

static unsigned open_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_attach_sends_firecracker_handshake(void **state)
{
	(void)state;
	skip_without_uffd();
	char path[64], json[1024], want[1024];
	socket_path(path);
	int ls = listen_at(path);
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, TWO_REGION_RAM), 0);
	int uffd = -1;
	char err[256] = "";
	assert_int_equal(snap_uffd_attach(&gm, path, &uffd, err, sizeof(err)), 0);
	assert_true(uffd >= 0);
	int conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(conn >= 0);
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = json, .iov_len = sizeof(json) - 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl)};
	ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	assert_true(n > 0);
	json[n] = '\0';
	/* serde_json's compact output of Firecracker's Vec<GuestRegionUffdMapping>. */
	snprintf(want, sizeof(want),
		 "[{\"base_host_virt_addr\":%llu,\"size\":3489660928,\"offset\":0,\"page_size\":"
		 "4096,\"page_size_kib\":4096},{\"base_host_virt_addr\":%llu,\"size\":8388608,"
		 "\"offset\":3489660928,\"page_size\":4096,\"page_size_kib\":4096}]",
		 (unsigned long long)(uintptr_t)gm.region[0].host,
		 (unsigned long long)(uintptr_t)gm.region[1].host);
	assert_string_equal(json, want);
	/* One descriptor, a userfaultfd, in that one message. */
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	assert_non_null(c);
	assert_int_equal(c->cmsg_type, SCM_RIGHTS);
	assert_int_equal(c->cmsg_len, CMSG_LEN(sizeof(int)));
	assert_null(CMSG_NXTHDR(&msg, c));
	int got;
	memcpy(&got, CMSG_DATA(c), sizeof(int));
	char link[64], target[64] = "";
	snprintf(link, sizeof(link), "/proc/self/fd/%d", got);
	assert_true(readlink(link, target, sizeof(target) - 1) > 0);
	assert_string_equal(target, "anon_inode:[userfaultfd]");
	/* kiln keeps its end open, as Firecracker does: no hang-up. */
	struct pollfd p = {.fd = conn, .events = POLLIN | POLLRDHUP};
	assert_int_equal(poll(&p, 1, 0), 0);
	close(got);
	close(conn);
	close(ls);
	unlink(path);
	guest_mem_free(&gm);
	close(uffd);
}

/* Expects snap_uffd_attach to fail with rc and an error line starting with want; gm stays
 * plain memory (touching it does not wait for a handler) and no descriptor is left open. */
static void expect_attach_error(struct guest_mem *gm, const char *path, int rc, const char *want)
{
	unsigned fds = open_fds();
	int uffd = -1;
	char err[256] = "";
	assert_int_equal(snap_uffd_attach(gm, path, &uffd, err, sizeof(err)), rc);
	assert_int_equal(uffd, -1);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error \"%s\", expected \"%s...\"", err, want);
	assert_null(strchr(err, '\n'));
	assert_int_equal(open_fds(), fds);
	alarm(10); /* a region left registered would hang here */
	put_page(gm, 0x2000, 5);
	uint8_t page[PAGE];
	assert_int_equal(gm_read(gm, 0x2000, page, PAGE), 0);
	assert_true(page_matches(page, 5));
	alarm(0);
}

static void test_attach_errors(void **state)
{
	(void)state;
	skip_without_uffd();
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, 16 * MIB), 0);
	expect_attach_error(&gm, "/nonexistent/uffd.sock", -ENOENT,
			    "mem_backend.backend_path: /nonexistent/uffd.sock: connect: No such "
			    "file or directory");
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	expect_attach_error(&gm, longp, -ENAMETOOLONG, "mem_backend.backend_path: aaa");
	expect_attach_error(&gm, NULL, -EINVAL, "mem_backend.backend_path: missing");
	char path[64];
	int f = temp_file(path); /* a regular file, not a listening socket */
	expect_attach_error(&gm, path, -ECONNREFUSED, "mem_backend.backend_path: /");
	guest_mem_free(&gm);
	/* The memory must be anonymous: a file mapping cannot be registered. */
	assert_int_equal(ftruncate(f, (off_t)(16 * MIB)), 0);
	assert_int_equal(guest_mem_init_file(&gm, 16 * MIB, f), 0);
	char sock[64];
	socket_path(sock);
	int ls = listen_at(sock);
	unsigned fds = open_fds();
	int uffd = -1;
	char err[256] = "";
	assert_int_equal(snap_uffd_attach(&gm, sock, &uffd, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ": UFFDIO_REGISTER: "));
	assert_int_equal(open_fds(), fds);
	guest_mem_free(&gm);
	close(ls);
	unlink(sock);
	close(f);
	unlink(path);
}

static void test_mappings_json_bounds(void **state)
{
	(void)state;
	struct guest_mem gm;
	char buf[512];
	assert_int_equal(guest_mem_init(&gm, 16 * MIB), 0);
	int n = snap_uffd_mappings_json(&gm, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_int_equal(snap_uffd_mappings_json(&gm, buf, (size_t)n + 1), n);
	assert_int_equal(snap_uffd_mappings_json(&gm, buf, (size_t)n), -ENOSPC);
	assert_int_equal(snap_uffd_mappings_json(&gm, buf, 0), -ENOSPC);
	guest_mem_free(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_attach_sends_firecracker_handshake),
	    cmocka_unit_test(test_attach_errors),
	    cmocka_unit_test(test_mappings_json_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
