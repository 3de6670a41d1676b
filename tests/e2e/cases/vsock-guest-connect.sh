#!/bin/sh
# vsock-guest-connect: a guest client connects to CID 2 port 5001; kiln forwards it to the
# host AF_UNIX listener at <uds_path>_5001, which echoes 1 MiB back intact.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/vsock.inc
. "$E2E_CASES/vsock.inc"
"$UDS_TOOL" listen "${uds}_5001" serve-echo > host.out 2>&1 &
host=$!
wait_for_socket "${uds}_5001"
run_kiln vsock-guest-connect.json
guest_result vsock-to-host
[ "$gres" = "echoed 1048576" ] || fail "guest: $gres"
host_wait "$host" host.out
res=$(tail -n 1 host.out)
[ "$res" = "served 1048576" ] || fail "host: $res"
expect_uds_removed
expect_end poweroff
pass
