#!/bin/sh
# net-transfer: the guest's virtio-net interface on a host TAP (10.77.0.1/24) pings the
# host, sends it 64 MiB over TCP (busybox nc, host listener on port 5001), then fetches
# 64 MiB from it (port 5002); the sha256 on both ends must match.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/net.inc
. "$E2E_CASES/net.inc"
bytes=67108864
tap_up kiln-nt0 10.77.0.1/24
cd "$E2E_WORK" || fail "cd $E2E_WORK"
rm -f net-in.fifo from-guest.bin to-guest.bin
head -c "$bytes" /dev/urandom > to-guest.bin || fail "cannot write to-guest.bin"
want=$(sha256sum < to-guest.bin | cut -d' ' -f1)
# The listener's stdin must never reach EOF (busybox nc would quit): a FIFO opened rw.
mkfifo net-in.fifo
nc -l -p 5001 > from-guest.bin <> net-in.fifo &
listener=$!
nc -l -p 5002 < to-guest.bin &
server=$!
run_kiln net-transfer.json
kill "$listener" "$server" 2> /dev/null
expect_console "KILN-E2E: net-up"
tx=$(net_result net-tx)
rx=$(net_result net-rx)
got=$(sha256sum < from-guest.bin | cut -d' ' -f1)
echo "guest -> host: guest sent $tx; host got $(wc -c < from-guest.bin) bytes sha256=$got"
echo "host -> guest: host sent $bytes bytes sha256=$want; guest got $rx"
case $tx in "$bytes sha256=$got "*) ;; *) fail "guest -> host: guest sent '$tx', host got sha256=$got" ;; esac
case $rx in "sha256=$want "*) ;; *) fail "host -> guest: host sent sha256=$want, guest got '$rx'" ;; esac
rm -f from-guest.bin to-guest.bin net-in.fifo
expect_exit 0
pass
