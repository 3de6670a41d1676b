#!/bin/sh
# vsock-host-echo: a host client CONNECTs through kiln's uds_path (Firecracker's hybrid
# model) to a guest AF_VSOCK listener on port 5000, gets "OK <port>" and 4 MiB echoed back
# intact; the guest sees it all and the socket file is gone after kiln exits.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/vsock.inc
. "$E2E_CASES/vsock.inc"
"$UDS_TOOL" connect "$uds" 5000 echo 4194304 3 > host.out 2>&1 &
host=$!
run_kiln vsock-host-echo.json
host_wait "$host" host.out
res=$(tail -n 1 host.out)
[ "$res" = "echoed 4194304" ] || fail "host: $res"
guest_result vsock-echo
[ "$gres" = "served 4194304" ] || fail "guest: $gres"
expect_uds_removed
expect_end poweroff
pass
