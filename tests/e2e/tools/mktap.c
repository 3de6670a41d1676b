/* mktap: creates or deletes a persistent TAP device, for the e2e test hosts (busybox's ip
 * has no `tuntap`). Addresses and link state are then set with `ip`.
 *   mktap NAME      creates NAME (IFF_TAP | IFF_NO_PI, persistent, owned by root)
 *   mktap -d NAME   deletes it
 * Exits 0, or 1 with one line on stderr. Built static with musl by
 * tests/e2e/fixtures/net.sh. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *name, const char *what)
{
	fprintf(stderr, "mktap: %s: %s: %s\n", name, what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	int del = argc == 3 && strcmp(argv[1], "-d") == 0;
	if (argc != 2 + del) {
		fprintf(stderr, "usage: mktap [-d] NAME\n");
		return 1;
	}
	const char *name = argv[1 + del];
	if (strlen(name) >= IFNAMSIZ) {
		fprintf(stderr, "mktap: %s: name longer than %d bytes\n", name, IFNAMSIZ - 1);
		return 1;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail("/dev/net/tun", "open");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return fail(name, "TUNSETIFF");
	if (ioctl(fd, TUNSETPERSIST, del ? 0 : 1) < 0)
		return fail(name, "TUNSETPERSIST");
	close(fd);
	return 0;
}
