/* The Uffd memory backend: snap_uffd_attach's handshake byte for byte (Firecracker's
 * GuestRegionUffdMapping JSON, the uffd over SCM_RIGHTS, the connection kept open), its
 * errors, and guest memory served by kiln-uffd-handler, also to a Firecracker-style peer
 * (older JSON forms, connection closed after the handshake) and refusing bad handshakes and
 * faults outside the mappings. Skipped where userfaultfd is not permitted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
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

/* Starts kiln-uffd-handler on sock and memfile with its stderr into err_fd; returns once
 * sock is there (the handler puts it in place once it listens). */
static pid_t start_handler(const char *sock, const char *memfile, int err_fd)
{
	char bin[256];
	char *argv[] = {(char *)tool_path("kiln-uffd-handler", bin, sizeof(bin)), (char *)sock,
			(char *)memfile, NULL};
	pid_t pid = spawn(argv, err_fd);
	assert_true(pid > 0);
	struct stat st;
	for (int i = 0; i < 1000 && stat(sock, &st) < 0; i++)
		nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
	if (stat(sock, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("%s did not create %s", bin, sock);
	}
	return pid;
}

/* The lines in the file at fd (printed). */
static int count_lines(int fd)
{
	char out[2048];
	ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	int lines = 0;
	for (char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	if (lines)
		print_message("  handler: %s", out);
	return lines;
}

/* The VMM side in a forked child: kiln restoring a TWO_REGION_RAM guest from the handler at
 * sock, then reading it. Exits 0 when every page holds what fill_guest() wrote, 3 when one
 * does not, 4 when attaching fails. */
static void kiln_vmm(const char *sock)
{
	test_child_begin();
	alarm(20);
	struct guest_mem gm;
	int uffd;
	char err[256];
	if (guest_mem_init(&gm, TWO_REGION_RAM) || snap_uffd_attach(&gm, sock, &uffd, err, 256))
		_exit(4);
	uint8_t page[PAGE];
	for (size_t i = 0; i < NR_FILLED; i++)
		if (gm_read(&gm, filled[i].gpa, page, PAGE) || !page_matches(page, filled[i].seed))
			_exit(3);
	if (gm_read(&gm, 0x500000, page, PAGE) || !page_matches(page, 0))
		_exit(3);
	put_page(&gm, HIGH + 0x4000, 9); /* a first touch that writes */
	if (gm_read(&gm, HIGH + 0x4000, page, PAGE) || !page_matches(page, 9))
		_exit(3);
	_exit(0);
}

static void test_handler_serves_kiln(void **state)
{
	(void)state;
	skip_without_uffd();
	char mem_path[64], sock[64], err_path[64];
	struct guest_mem gm;
	assert_int_equal(guest_mem_init(&gm, TWO_REGION_RAM), 0);
	fill_guest(&gm);
	int mem = temp_file(mem_path);
	assert_int_equal(snap_mem_write_full(&gm, mem), 0);
	guest_mem_free(&gm);
	socket_path(sock);
	int err_fd = temp_file(err_path);
	pid_t handler = start_handler(sock, mem_path, err_fd);
	pid_t vmm = fork();
	if (vmm == 0)
		kiln_vmm(sock);
	int status = wait_for(vmm, 30);
	assert_true(status >= 0 && WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The VMM is gone: the handler ends by itself, successfully. */
	status = wait_for(handler, 10);
	assert_true(status >= 0 && WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_lines(err_fd), 0);
	close(err_fd);
	close(mem);
	unlink(err_path);
	unlink(mem_path);
}

#define MEM_PAGES 4 /* the small memory file: page i of seed i + 1 */
#define REG_PAGES 2 /* the raw VMM's region */

/* Sends json with fd attached, in one message. */
static int send_json_fd(int sock, const char *json, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {.iov_base = (void *)json, .iov_len = strlen(json)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)strlen(json) ? 0 : -1;
}

/* What raw_vmm() does after the handshake. */
enum raw_act {
	READ_PAGES,  /* reads page i for i < nr and checks it holds seeds[i] */
	WAIT_KILLED, /* waits for the handler to kill it */
	REMOVE,	     /* a balloon: page 0 read, madvise(MADV_DONTNEED)d, then reads as zeros */
	ALREADY,     /* two faults on page 0 wait for the (stopped) handler */
	RACING,	     /* a fault and a remove event wait for the (stopped) handler */
};

struct raw_case {
	const char *json; /* the handshake; %llu: the region's address (given twice) */
	bool hang_up;	  /* close the connection right after it (older Firecrackers) */
	enum raw_act act;
	size_t nr;
	unsigned seeds[REG_PAGES];
};

/* REMOVE: page 0 comes from the file, then madvise() removes it (UFFD_EVENT_REMOVE, which
 * waits for the handler to read it): from then on it must read as zeros. */
static bool act_remove(uint8_t *mem)
{
	if (!page_matches(mem, 1) || madvise(mem, PAGE, MADV_DONTNEED))
		return false;
	return page_matches(mem, 0) && page_matches(mem + PAGE, 2);
}

static void *touch_page(void *page)
{
	return (void *)(uintptr_t)page_matches(page, 1);
}

/* ALREADY: with the handler stopped, two threads fault on page 0 and wait. The handler,
 * resumed, reads both faults, serves the first (which wakes both threads) and finds the page
 * there for the second (EEXIST), which is no error: it goes on serving (page 1). */
static bool act_already(uint8_t *mem, int conn)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) || kill(cred.pid, SIGSTOP))
		return false;
	pthread_t t[2];
	void *ok[2] = {NULL, NULL};
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, touch_page, mem))
			return false;
	nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL); /* both wait */
	kill(cred.pid, SIGCONT);
	for (int i = 0; i < 2; i++)
		if (pthread_join(t[i], &ok[i]) || !ok[i])
			return false;
	return page_matches(mem + PAGE, 2);
}

static void *touch_page1(void *mem)
{
	return (void *)(uintptr_t)page_matches((uint8_t *)mem + PAGE, 2);
}

static void *remove_page0(void *mem)
{
	return (void *)(uintptr_t)(madvise(mem, PAGE, MADV_DONTNEED) == 0);
}

/* RACING: with the handler stopped, a fault on page 1 waits, then madvise() removes page 0
 * (UFFD_EVENT_REMOVE). The handler, resumed, reads both; copying page 1 right after the
 * remove event was read finds the mm still changing (EAGAIN) until the madvise() ends: the
 * fault must be retried, not dropped or taken for an error. */
static bool act_racing(uint8_t *mem, int conn)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) || kill(cred.pid, SIGSTOP))
		return false;
	pthread_t t[2];
	void *ok[2] = {NULL, NULL};
	void *(*fn[2])(void *) = {touch_page1, remove_page0};
	for (int i = 0; i < 2; i++) {
		if (pthread_create(&t[i], NULL, fn[i], mem))
			return false;
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
	}
	kill(cred.pid, SIGCONT);
	for (int i = 0; i < 2; i++)
		if (pthread_join(t[i], &ok[i]) || !ok[i])
			return false;
	return page_matches(mem, 0);
}

/* The VMM side in a forked child, as Firecracker does it: REG_PAGES anonymous pages
 * registered with a uffd (remove events on), the handshake c->json sent to the handler at
 * sock, then c->act. Exits 0 when all went as expected, 3 when not, 4 on setup errors. */
static void raw_vmm(const char *sock, const struct raw_case *c)
{
	test_child_begin();
	alarm(20);
	uint8_t *mem = mmap(NULL, REG_PAGES * PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int uffd = uffd_create();
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
	struct uffdio_register reg = {.range = {(uintptr_t)mem, REG_PAGES * PAGE},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (mem == MAP_FAILED || uffd < 0 || ioctl(uffd, UFFDIO_API, &api) ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg))
		_exit(4);
	char json[512];
	unsigned long long base = (uintptr_t)mem;
	snprintf(json, sizeof(json), c->json, base, base);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) || send_json_fd(s, json, uffd))
		_exit(4);
	if (c->act == ALREADY || c->act == RACING)
		_exit((c->act == ALREADY ? act_already(mem, s) : act_racing(mem, s)) ? 0 : 3);
	if (c->hang_up)
		close(s);
	if (c->act == REMOVE)
		_exit(act_remove(mem) ? 0 : 3);
	for (size_t i = 0; i < c->nr; i++)
		if (!page_matches(mem + i * PAGE, c->seeds[i]))
			_exit(3);
	if (c->act == WAIT_KILLED)
		pause();
	_exit(0);
}

/* Runs kiln-uffd-handler against raw_vmm(c): the VMM's and the handler's wait statuses,
 * and the handler's stderr lines. */
static void run_raw(const struct raw_case *c, int *vmm_status, int *handler_status, int *err_lines)
{
	char mem_path[64], sock[64], err_path[64];
	int mem = temp_file(mem_path);
	uint8_t page[PAGE];
	for (unsigned i = 0; i < MEM_PAGES; i++) {
		fill_page(page, i + 1);
		assert_int_equal(pwrite(mem, page, PAGE, (off_t)(i * PAGE)), (ssize_t)PAGE);
	}
	socket_path(sock);
	int err_fd = temp_file(err_path);
	pid_t handler = start_handler(sock, mem_path, err_fd);
	pid_t vmm = fork();
	if (vmm == 0)
		raw_vmm(sock, c);
	*vmm_status = wait_for(vmm, 30);
	*handler_status = wait_for(handler, 10);
	*err_lines = count_lines(err_fd);
	close(err_fd);
	close(mem);
	unlink(err_path);
	unlink(mem_path);
}

/* The VMM exited 0 and the handler after it, 0, silently. */
static void expect_served(const struct raw_case *c, size_t i)
{
	int vmm, handler, lines;
	run_raw(c, &vmm, &handler, &lines);
	if (vmm < 0 || !WIFEXITED(vmm) || WEXITSTATUS(vmm) != 0 || handler < 0 ||
	    !WIFEXITED(handler) || WEXITSTATUS(handler) != 0)
		fail_msg("case %zu: vmm status %#x, handler status %#x", i, vmm, handler);
	assert_int_equal(lines, 0);
}

/* Firecracker's handshake as its releases wrote it: page_size and page_size_kib, only
 * page_size_kib, no page size; fields in any order, unknown ones skipped; the connection
 * kept open or closed right after. */
static void test_handler_serves_firecracker_forms(void **state)
{
	(void)state;
	skip_without_uffd();
	static const struct raw_case forms[] = {
	    {"[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":4096,\"page_size\":4096,"
	     "\"page_size_kib\":4096}]",
	     false,
	     READ_PAGES,
	     2,
	     {2, 3}},
	    {"[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":8192,\"page_size_kib\":"
	     "4096}]",
	     true,
	     READ_PAGES,
	     2,
	     {3, 4}},
	    {"[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":0}]",
	     true,
	     READ_PAGES,
	     2,
	     {1, 2}},
	    {"[ {\"offset\":4096, \"future\":{\"a\":[1,{\"b\":\"c\"}]}, \"size\":8192,"
	     "\"base_host_virt_addr\":%llu, \"page_size\":4096} ]",
	     false,
	     READ_PAGES,
	     2,
	     {2, 3}},
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		expect_served(&forms[i], i);
}

/* Pages a balloon removed are served as zeros; a fault whose page is already there
 * (EEXIST) is no error, one behind a remove event (EAGAIN) is retried. */
static void test_handler_remove_and_eexist(void **state)
{
	(void)state;
	skip_without_uffd();
	static const struct raw_case cases[] = {
	    {"[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":0}]", false, REMOVE, 0, {0}},
	    {"[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":0}]", false, ALREADY, 0, {0}},
	    {"[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":0}]", false, RACING, 0, {0}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_served(&cases[i], i);
}

/* A bad handshake, or a fault outside every mapping: the handler says so in one line, kills
 * the VMM (which would hang for ever) and exits 1. */
static void test_handler_refuses(void **state)
{
	(void)state;
	skip_without_uffd();
	static const char *const bad[] = {
	    "hello",
	    "[]",
	    "{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":0}",
	    "[{\"base_host_virt_addr\":%llu,\"offset\":0}]",
	    "[{\"base_host_virt_addr\":%llu,\"size\":0,\"offset\":0}]",
	    "[{\"base_host_virt_addr\":%llu,\"size\":-8192,\"offset\":0}]",
	    "[{\"base_host_virt_addr\":%llu,\"size\":4097,\"offset\":0}]",
	    "[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":12288}]",
	    "[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":18446744073709551616}]",
	    "[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":0,\"page_size\":1000}]",
	    "[{\"base_host_virt_addr\":18446744073709547520,\"size\":8192,\"offset\":0}]",
	    ("[{\"base_host_virt_addr\":%llu,\"size\":8192,\"offset\":0},"
	     "{\"base_host_virt_addr\":%llu,\"size\":4096,\"offset\":0}]"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 1; i++) {
		/* The last run: the mapping covers page 0 of the two registered pages. */
		bool outside = i == sizeof(bad) / sizeof(bad[0]);
		struct raw_case c = {
		    .json = outside ? "[{\"base_host_virt_addr\":%llu,\"size\":4096,\"offset\":0}]"
				    : bad[i],
		    .act = outside ? READ_PAGES : WAIT_KILLED,
		    .nr = outside ? 2 : 0,
		    .seeds = {1, 2},
		};
		int vmm, handler, lines;
		run_raw(&c, &vmm, &handler, &lines);
		if (vmm < 0 || !WIFSIGNALED(vmm) || WTERMSIG(vmm) != SIGKILL || handler < 0 ||
		    !WIFEXITED(handler) || WEXITSTATUS(handler) != 1)
			fail_msg("case %zu: vmm status %#x, handler status %#x", i, vmm, handler);
		assert_int_equal(lines, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_attach_sends_firecracker_handshake),
	    cmocka_unit_test(test_attach_errors),
	    cmocka_unit_test(test_mappings_json_bounds),
	    cmocka_unit_test(test_handler_serves_kiln),
	    cmocka_unit_test(test_handler_serves_firecracker_forms),
	    cmocka_unit_test(test_handler_remove_and_eexist),
	    cmocka_unit_test(test_handler_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
