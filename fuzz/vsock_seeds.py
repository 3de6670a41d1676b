#!/usr/bin/env python3
# Writes the seed corpus of fuzz_vsock_pkt (record format: see fuzz/fuzz_vsock_pkt.c):
#   fuzz/vsock_seeds.py fuzz/corpus/fuzz_vsock_pkt
import struct, os, sys
out = sys.argv[1]
def hdr(src_cid=3, dst_cid=2, sp=0, dp=0, ln=0, typ=1, op=1, flags=0, alloc=65536, fwd=0):
    return struct.pack('<QQIIIHHIII', src_cid, dst_cid, sp, dp, ln, typ, op, flags, alloc, fwd)
def tx(pkt, flags=0x3f, split=44, total=None):
    total = len(pkt) if total is None else total
    lit = pkt[:255]
    return bytes([0, flags, split, total & 0xff, total >> 8, len(lit)]) + lit
def rx(n=8, size=63): return bytes([1, n, size])
def cw(k, data): return bytes([2, k, len(data)]) + data
def cend(k, how): return bytes([3, k, how])
def lside(how, data=b''): return bytes([4, how, len(data) // 16]) + data
PUMP = bytes([5])
def time(s): return bytes([6, s])
def reset(how): return bytes([7, how])
seeds = {}
# host-initiated: request, response, data both ways, close, timeout
s = rx(8, 63) + cw(0, b'CONNECT 52\n') + PUMP
s += tx(hdr(op=2, sp=52, dp=0x40000000), flags=0x3f)
s += cw(0, b'hello from host') + PUMP + rx(4, 63)
s += tx(hdr(op=5, sp=52, dp=0x40000000, ln=5) + b'howdy', flags=0x3f)
s += tx(hdr(op=6, fwd=15), flags=0x1f | 8) + tx(hdr(op=7), flags=0x1f | 8)
s += cend(0, 1) + PUMP + cend(0, 2) + time(3) + PUMP
seeds['host_initiated'] = s
# guest-initiated to the listener, data, shutdown
s = rx(8, 63) + tx(hdr(op=1, sp=1, dp=1), flags=0x17) + lside(0)
s += tx(hdr(op=5, ln=4) + b'ping', flags=0x3f) + lside(0) + lside(1, b'p' * 32) + PUMP + rx(8, 1)
s += tx(hdr(op=4, flags=3), flags=0x1f | 8) + PUMP + lside(2) + lside(3)
seeds['guest_initiated'] = s
# guest connect to nobody, and hostile headers
s = rx(16, 255) + tx(hdr(op=1, sp=7, dp=4444), flags=0)
s += tx(hdr(src_cid=9, op=1), flags=0) + tx(hdr(dst_cid=9), flags=0)
s += tx(hdr(op=5, ln=70000), flags=0) + tx(hdr(op=5, ln=500) + b'x' * 100, flags=0)
s += tx(hdr(typ=2), flags=0) + tx(hdr(op=99), flags=0) + tx(hdr(op=0), flags=0)
s += tx(hdr(op=3), flags=0) + tx(b'\x03' * 30, flags=0) + PUMP
seeds['hostile'] = s
# malformed CONNECT lines, silent client, credit lie
s = rx(4, 63) + cw(0, b'FOO 12\n') + cw(1, b'CONNECT 99999999999\n') + cw(2, b'CONN') + PUMP
s += cw(3, b'connect +9\n') + PUMP + tx(hdr(op=2, fwd=100), flags=0x3f | 8) + time(6) + PUMP
seeds['handshakes'] = s
# resets: transport reset with and without an event buffer, driver reset
s = rx(4, 63) + cw(0, b'CONNECT 5\n') + PUMP + reset(0) + reset(4 << 3 | 4) + reset(1) + rx(4, 63) + PUMP
s += cw(1, b'CONNECT 6\n') + PUMP + reset(2) + cw(1, b'data') + PUMP + time(3) + reset(3 | 4 << 5) + reset(1) + PUMP
seeds['resets'] = s
# a 64 KiB RW payload split oddly, rx buffers of a single descriptor
big = hdr(op=5, ln=65000)
s = rx(16, 0x7f) + cw(0, b'CONNECT 1\n') + PUMP + tx(hdr(op=2), flags=0x3f | 8)
s += tx(big, flags=0x1f | 8, split=13, total=44 + 65000) + PUMP
seeds['big_rw'] = s
# guest data piling up in kiln while the host does not read, then drained
s = rx(8, 63) + cw(0, b'CONNECT 1\n') + PUMP + tx(hdr(op=2), flags=0x3f | 8) + PUMP
for _ in range(7):
    s += tx(hdr(op=5, ln=8000), flags=0x3f | 8, total=44 + 8000)
s += PUMP + cend(0, 2) + PUMP + cend(0, 2) + PUMP + tx(hdr(op=4, flags=3), flags=0x1f | 8) + PUMP + cend(0, 2) + PUMP
seeds['buffered'] = s
for name, data in seeds.items():
    open(os.path.join(out, name), 'wb').write(data)
