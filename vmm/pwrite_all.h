/* One write of a whole buffer at an offset, for the snapshot files (state, memory) and
 * kiln-rebase-snap. Header-only: the tool is built without kiln's objects. */
#ifndef KILN_PWRITE_ALL_H
#define KILN_PWRITE_ALL_H

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

/* Writes buf[0, len) at off, through short writes and EINTR. 0 or -errno (-EIO when the
 * file takes nothing). */
static inline int pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

#endif
