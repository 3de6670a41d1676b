/* Shared by the e2e socket tools (vsock-tool in the guest, uds-tool on the test host):
 * SHA-256, a seeded byte stream both ends can regenerate, and the transfer modes run on a
 * connected stream socket. Header-only; static musl builds, no other dependencies.
 *
 * Modes (each prints one result line on stdout, errors go to stderr with exit status 1):
 *   send BYTES [SEED]  writes BYTES of the seeded stream, then closes: "sent N sha256=H"
 *   recv               reads until EOF: "received N sha256=H"
 *   echo BYTES [SEED]  writes the seeded stream while reading it back, checks it byte for
 *                      byte, then closes: "echoed N"
 *   serve-echo         writes back whatever arrives until EOF: "served N" */
#ifndef KILN_E2E_STREAM_H
#define KILN_E2E_STREAM_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 65536

struct sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t buf[64];
	unsigned fill;
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, unsigned n)
{
	return x >> n | x << (32 - n);
}

static void sha256_init(struct sha256 *s)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(s->h, iv, sizeof(iv));
	s->bytes = 0;
	s->fill = 0;
}

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t w[64], v[8];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | p[4 * i + 1] << 16 | p[4 * i + 2] << 8 |
		       p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ w[i - 15] >> 3;
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ w[i - 2] >> 10;
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, s->h, sizeof(v));
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
			      ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha256_k[i] + w[i];
		uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
			      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof(v[0]));
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		s->h[i] += v[i];
}

static void sha256_update(struct sha256 *s, const uint8_t *p, size_t len)
{
	s->bytes += len;
	while (len) {
		size_t k = 64 - s->fill < len ? 64 - s->fill : len;
		memcpy(s->buf + s->fill, p, k);
		s->fill += k;
		p += k;
		len -= k;
		if (s->fill == 64) {
			sha256_block(s, s->buf);
			s->fill = 0;
		}
	}
}

/* The digest as 64 hex digits in out (65 bytes). */
static void sha256_hex(struct sha256 *s, char *out)
{
	uint64_t bits = s->bytes * 8;
	uint8_t pad = 0x80, zero = 0, len[8];
	sha256_update(s, &pad, 1);
	while (s->fill != 56)
		sha256_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		len[i] = bits >> (56 - 8 * i);
	sha256_update(s, len, 8);
	for (int i = 0; i < 8; i++)
		sprintf(out + 8 * i, "%08x", s->h[i]);
}

/* The seeded stream: xorshift64*, byte i of the stream depends only on seed and i. */
struct gen {
	uint64_t x;
	uint64_t word;
	unsigned left;
};

static void gen_init(struct gen *g, uint64_t seed)
{
	g->x = seed * 0x9e3779b97f4a7c15ULL + 1;
	g->left = 0;
}

static void gen_fill(struct gen *g, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!g->left) {
			g->x ^= g->x >> 12;
			g->x ^= g->x << 25;
			g->x ^= g->x >> 27;
			g->word = g->x * 0x2545f4914f6cdd1dULL;
			g->left = 8;
		}
		p[i] = (uint8_t)g->word;
		g->word >>= 8;
		g->left--;
	}
}

static void die_errno(const char *what)
{
	fprintf(stderr, "error: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die_errno("write");
		p += w;
		len -= w;
	}
}

static void mode_send(int fd, uint64_t total, uint64_t seed)
{
	static uint8_t buf[CHUNK];
	struct gen g;
	struct sha256 s;
	char hex[65];
	gen_init(&g, seed);
	sha256_init(&s);
	for (uint64_t done = 0; done < total;) {
		size_t k = total - done < CHUNK ? total - done : CHUNK;
		gen_fill(&g, buf, k);
		sha256_update(&s, buf, k);
		write_all(fd, buf, k);
		done += k;
	}
	sha256_hex(&s, hex);
	close(fd);
	printf("sent %llu sha256=%s\n", (unsigned long long)total, hex);
}

static void mode_recv(int fd)
{
	static uint8_t buf[CHUNK];
	struct sha256 s;
	char hex[65];
	sha256_init(&s);
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die_errno("read");
		if (r == 0)
			break;
		sha256_update(&s, buf, r);
	}
	uint64_t n = s.bytes;
	sha256_hex(&s, hex);
	close(fd);
	printf("received %llu sha256=%s\n", (unsigned long long)n, hex);
}

/* Writes the seeded stream while reading it back (a blocking write could deadlock against
 * a full echo path) and checks every byte; exits on a mismatch. Closes fd. */
static void echo_check(int fd, uint64_t total, uint64_t seed)
{
	static uint8_t out[CHUNK], in[CHUNK], want[CHUNK];
	struct gen tx, rx;
	uint64_t sent = 0, got = 0;
	size_t pending = 0, off = 0;
	gen_init(&tx, seed);
	gen_init(&rx, seed);
	while (got < total) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
		if (poll(&p, 1, 60000) <= 0)
			die_errno("echo: poll (stalled for a minute?)");
		if ((p.revents & POLLOUT) && sent < total) {
			if (!pending) {
				pending = total - sent < CHUNK ? total - sent : CHUNK;
				off = 0;
				gen_fill(&tx, out, pending);
			}
			ssize_t w = send(fd, out + off, pending - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				die_errno("echo: write");
			if (w > 0) {
				off += w;
				sent += w;
				if (off == pending)
					pending = 0;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
			if (r == 0) {
				fprintf(stderr, "error: echo: EOF after %llu of %llu bytes\n",
					(unsigned long long)got, (unsigned long long)total);
				exit(1);
			}
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				die_errno("echo: read");
			if (r > 0) {
				gen_fill(&rx, want, r);
				if (memcmp(in, want, r)) {
					fprintf(stderr, "error: echo: wrong data near byte %llu\n",
						(unsigned long long)got);
					exit(1);
				}
				got += r;
			}
		}
	}
	close(fd);
}

static void mode_echo(int fd, uint64_t total, uint64_t seed)
{
	echo_check(fd, total, seed);
	printf("echoed %llu\n", (unsigned long long)total);
}

static uint64_t serve_echo(int fd)
{
	static uint8_t buf[CHUNK];
	uint64_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		write_all(fd, buf, r);
		n += r;
	}
	close(fd);
	return n;
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "error: %s: not a number\n", s);
		exit(2);
	}
	return v;
}

/* Runs MODE [ARGS] (argv[0] is the mode) on the connected fd. 0, or -1 for a bad mode. */
static int run_mode(int fd, int argc, char **argv)
{
	if (argc < 1)
		return -1;
	uint64_t seed = argc > 2 ? parse_u64(argv[2]) : 1;
	if (!strcmp(argv[0], "send") && argc >= 2)
		mode_send(fd, parse_u64(argv[1]), seed);
	else if (!strcmp(argv[0], "recv"))
		mode_recv(fd);
	else if (!strcmp(argv[0], "echo") && argc >= 2)
		mode_echo(fd, parse_u64(argv[1]), seed);
	else if (!strcmp(argv[0], "serve-echo"))
		printf("served %llu\n", (unsigned long long)serve_echo(fd));
	else
		return -1;
	fflush(stdout);
	return 0;
}

#endif
