#!/bin/sh
# vsock-bulk: 16 MiB from a host client to a guest listener (port 5002), then 16 MiB from a
# guest client to a host listener (<uds_path>_5003); both arrive intact (same sha256 on
# both ends) through kiln's credit-based flow control.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/vsock.inc
. "$E2E_CASES/vsock.inc"
bytes=16777216
# 32 MiB through two levels of virtualization under TCG (L1 mode) takes about 15 s.
E2E_KILN_TIMEOUT=$((E2E_KILN_TIMEOUT * 2))
"$UDS_TOOL" listen "${uds}_5003" recv > from-guest.out 2>&1 &
receiver=$!
wait_for_socket "${uds}_5003"
"$UDS_TOOL" connect "$uds" 5002 send "$bytes" 7 > to-guest.out 2>&1 &
sender=$!
run_kiln vsock-bulk.json
host_wait "$sender" to-guest.out
host_wait "$receiver" from-guest.out
sent=$(tail -n 1 to-guest.out)
received=$(tail -n 1 from-guest.out)
guest_result vsock-bulk-in
guest_in=$gres
guest_result vsock-bulk-out
guest_out=$gres
echo "host sent:     $sent"
echo "guest got:     $guest_in"
echo "guest sent:    $guest_out"
echo "host received: $received"
[ "${sent#sent }" = "${guest_in#received }" ] || fail "host -> guest: $sent, guest $guest_in"
[ "${guest_out#sent }" = "${received#received }" ] ||
	fail "guest -> host: $guest_out, host $received"
case $sent in "sent $bytes sha256="*) ;; *) fail "host sent: $sent" ;; esac
case $received in "received $bytes sha256="*) ;; *) fail "host received: $received" ;; esac
expect_uds_removed
expect_end poweroff
pass
