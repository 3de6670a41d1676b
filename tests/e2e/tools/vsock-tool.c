/* vsock-tool: the e2e guest's AF_VSOCK client and server (busybox has neither).
 * Built static with musl-gcc; see stream.h for the transfer modes.
 *
 *   vsock-tool listen PORT MODE [ARGS]       one connection on PORT, then MODE
 *   vsock-tool listen PORT serve-loop COUNT  COUNT connections one after another, each
 *                                            echoed until EOF: "served COUNT connections"
 *   vsock-tool connect CID PORT MODE [ARGS]  connect to CID:PORT, then MODE
 * Prints "vsock-tool: listening on PORT" once it listens (the host side may wait for it). */
#include <linux/vm_sockets.h>

#include "stream.h"

static int vsock_listen(unsigned port)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die_errno("socket(AF_VSOCK) (vsock modules loaded?)");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		die_errno("bind/listen");
	printf("vsock-tool: listening on %u\n", port);
	fflush(stdout);
	return fd;
}

static int accept_one(int lfd)
{
	int fd;
	while ((fd = accept(lfd, NULL, NULL)) < 0 && errno == EINTR)
		;
	if (fd < 0)
		die_errno("accept");
	return fd;
}

static int vsock_connect(unsigned cid, unsigned port)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die_errno("socket(AF_VSOCK) (vsock modules loaded?)");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die_errno("connect");
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: vsock-tool listen PORT MODE [ARGS] | listen PORT serve-loop COUNT"
			" | connect CID PORT MODE [ARGS]\n"
			"modes: send BYTES [SEED], recv, echo BYTES [SEED], serve-echo\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "listen") && !strcmp(argv[3], "serve-loop")) {
		int lfd = vsock_listen(parse_u64(argv[2]));
		uint64_t count = parse_u64(argv[4]), bytes = 0;
		for (uint64_t i = 0; i < count; i++)
			bytes += serve_echo(accept_one(lfd));
		printf("served %llu connections, %llu bytes\n", (unsigned long long)count,
		       (unsigned long long)bytes);
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "listen")) {
		int lfd = vsock_listen(parse_u64(argv[2]));
		int fd = accept_one(lfd);
		close(lfd);
		if (run_mode(fd, argc - 3, argv + 3) < 0)
			usage();
		return 0;
	}
	if (argc >= 5 && !strcmp(argv[1], "connect")) {
		int fd = vsock_connect(parse_u64(argv[2]), parse_u64(argv[3]));
		if (run_mode(fd, argc - 4, argv + 4) < 0)
			usage();
		return 0;
	}
	usage();
}
