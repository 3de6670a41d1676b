/* uds-tool: the host side of kiln's vsock in the e2e tests (Firecracker's hybrid model:
 * AF_UNIX sockets, "CONNECT <port>\n" / "OK <port>\n"). Built static with musl-gcc; see
 * stream.h for the transfer modes.
 *
 *   uds-tool connect PATH PORT MODE [ARGS]  CONNECT through kiln's uds_path to guest PORT,
 *                                           then MODE; retried for up to RETRY_S seconds
 *                                           while kiln or the guest listener is not there
 *   uds-tool listen PATH MODE [ARGS]        one guest-initiated connection on PATH (the
 *                                           <uds_path>_<port> socket), then MODE
 *   uds-tool loop PATH PORT COUNT [BYTES]   COUNT times: CONNECT, echo BYTES (default 4096),
 *                                           close: "looped COUNT"
 * The listener is created before anything else is printed ("uds-tool: listening on PATH")
 * and removed at exit. */
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "stream.h"

#define RETRY_S 60

static struct sockaddr_un unix_addr(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "error: %s: path too long\n", path);
		exit(2);
	}
	memcpy(sa.sun_path, path, strlen(path));
	return sa;
}

/* One CONNECT attempt: the connected fd with "OK <n>\n" read, or -1 to retry. */
static int try_connect(const char *path, unsigned port)
{
	struct sockaddr_un sa = unix_addr(path);
	char line[40];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die_errno("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto retry;
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	write_all(fd, (const uint8_t *)line, n);
	/* Byte by byte: what follows the newline is the guest's data. */
	for (n = 0; n < (int)sizeof(line) - 1; n++) {
		if (read(fd, line + n, 1) != 1)
			goto retry;
		if (line[n] == '\n')
			break;
	}
	line[n] = '\0';
	unsigned long local;
	if (sscanf(line, "OK %lu", &local) != 1) {
		fprintf(stderr, "error: kiln answered \"%s\" instead of OK <port>\n", line);
		exit(1);
	}
	return fd;
retry:
	close(fd);
	return -1;
}

static int handshake(const char *path, unsigned port)
{
	time_t deadline = time(NULL) + RETRY_S;
	for (;;) {
		int fd = try_connect(path, port);
		if (fd >= 0)
			return fd;
		if (time(NULL) > deadline) {
			fprintf(stderr, "error: no CONNECT %u through %s within %d s\n", port, path,
				RETRY_S);
			exit(1);
		}
		usleep(100000);
	}
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = unix_addr(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die_errno("socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		die_errno(path);
	printf("uds-tool: listening on %s\n", path);
	fflush(stdout);
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: uds-tool connect PATH PORT MODE [ARGS] | listen PATH MODE [ARGS]"
			" | loop PATH PORT COUNT [BYTES]\n"
			"modes: send BYTES [SEED], recv, echo BYTES [SEED], serve-echo\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "connect")) {
		int fd = handshake(argv[2], parse_u64(argv[3]));
		if (run_mode(fd, argc - 4, argv + 4) < 0)
			usage();
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "listen")) {
		int lfd = listen_at(argv[2]);
		int fd;
		while ((fd = accept(lfd, NULL, NULL)) < 0 && errno == EINTR)
			;
		if (fd < 0)
			die_errno("accept");
		close(lfd);
		unlink(argv[2]);
		if (run_mode(fd, argc - 3, argv + 3) < 0)
			usage();
		return 0;
	}
	if (argc >= 5 && !strcmp(argv[1], "loop")) {
		uint64_t count = parse_u64(argv[4]), bytes = argc > 5 ? parse_u64(argv[5]) : 4096;
		for (uint64_t i = 0; i < count; i++) {
			echo_check(handshake(argv[2], parse_u64(argv[3])), bytes, i + 1);
		}
		printf("looped %llu\n", (unsigned long long)count);
		return 0;
	}
	usage();
}
