#!/bin/sh
# api-getting-started: Firecracker's getting-started sequence over the REST API with curl
# (logger, boot-source, drives/rootfs, network-interfaces, machine-config, actions
# InstanceStart) boots the stock guest with its root drive (/dev/vda, an ext4 with
# /sbin/init, checked by the guest) and its network (ping over a host TAP). The state reads
# "Not started" -> "Running" -> "Paused" -> "Running"; the guest's once-a-second console
# ticks stop while paused and resume; GET /vm/config is what was sent, before and after the
# start; a config change after the start is 400. PATCH /drives gives the data drive another
# file, which the guest then reads (new size and sha256); PATCH of the drive's and the
# interface's rate limiters is taken and shows in GET /vm/config. SendCtrlAltDel then makes
# the guest reboot: kiln exits 0 and the socket file is gone.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/net.inc
. "$E2E_CASES/net.inc"
# shellcheck source=tests/e2e/cases/api.inc
. "$E2E_CASES/api.inc"
cd "$E2E_WORK" || fail "cd $E2E_WORK"
[ -s "$E2E_DIR/blk-root.ext4" ] || fail "no $E2E_DIR/blk-root.ext4 (tests/e2e/fixtures/blk.sh)"
cp "$E2E_DIR/blk-root.ext4" "$E2E_CASE.vda" || fail "cannot copy the root image"
# Two data disks of different sizes and contents for /dev/vdb: PATCH /drives swaps them.
head -c 1048576 /dev/urandom > "$E2E_CASE.vdb1" || fail "cannot write $E2E_CASE.vdb1"
head -c 3145728 /dev/urandom > "$E2E_CASE.vdb2" || fail "cannot write $E2E_CASE.vdb2"
sha1=$(sha256sum < "$E2E_CASE.vdb1" | cut -d' ' -f1)
sha2=$(sha256sum < "$E2E_CASE.vdb2" | cut -d' ' -f1)
tap_up kiln-api0 10.78.0.1/24
sock=$E2E_WORK/$E2E_CASE.sock
fifo=$E2E_WORK/$E2E_CASE.stdin
rm -f "$sock" "$fifo"
mkfifo "$fifo" || fail "mkfifo $fifo"
"$KILN" --api-sock "$sock" --id e2e-api > "$console" 2> "$stderr_log" <> "$fifo" &
kpid=$!
trap 'kill_dumped $kpid; net_cleanup' EXIT
wait_api_socket "$sock" "$kpid"

ticks() { grep -ac 'KILN-E2E: tick ' "$console"; }

want_state "Not started"
want 204 PUT /logger "{\"log_path\":\"$E2E_WORK/$E2E_CASE.log\",\"level\":\"Info\",\"show_level\":true,\"show_log_origin\":true}"
want 204 PUT /boot-source "{\"kernel_image_path\":\"$E2E_DIR/bzImage\",\"initrd_path\":\"$E2E_DIR/guest-initramfs.cpio.gz\",\"boot_args\":\"console=ttyS0 reboot=k panic=-1 pci=off quiet rdinit=/init i8042.noaux i8042.nomux i8042.dumbkbd kiln.test=api_ticks kiln.net=06:00:0a:4e:00:02,10.78.0.2/24,10.78.0.1\"}"
want 204 PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$E2E_WORK/$E2E_CASE.vda\",\"is_root_device\":true,\"is_read_only\":false}"
want 204 PUT /drives/data "{\"drive_id\":\"data\",\"path_on_host\":\"$E2E_WORK/$E2E_CASE.vdb1\",\"is_root_device\":false}"
want 204 PUT /network-interfaces/net1 '{"iface_id":"net1","guest_mac":"06:00:0a:4e:00:02","host_dev_name":"kiln-api0"}'
want 204 PUT /machine-config '{"vcpu_count":2,"mem_size_mib":256}'
want 200 GET /vm/config
sent=$body
case $sent in
*"\"drive_id\":\"rootfs\",\"path_on_host\":\"$E2E_WORK/$E2E_CASE.vda\",\"is_root_device\":true"*"\"drive_id\":\"data\""*) ;;
*) fail "GET /vm/config lacks the root drive: $sent" ;;
esac
case $sent in
*'"iface_id":"net1","host_dev_name":"kiln-api0","guest_mac":"06:00:0a:4e:00:02"'*) ;;
*) fail "GET /vm/config lacks the interface: $sent" ;;
esac
want 204 PUT /actions '{"action_type":"InstanceStart"}'
want_state Running
wait_console "KILN-E2E: api ticking" 120
expect_console "KILN-E2E: api root /dev/vda has /sbin/init"
expect_console "KILN-E2E: net-up"
want 400 PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$E2E_WORK/$E2E_CASE.vda\",\"is_root_device\":true}"
case $body in *"not supported after starting the microVM"*) ;; *) fail "post-boot PUT: $body" ;; esac
want 200 GET /vm/config
[ "$body" = "$sent" ] || fail "GET /vm/config after the start differs: $body"
wait_console "KILN-E2E: tick 2" 30
want 204 PATCH /vm '{"state":"Paused"}'
want_state Paused
n1=$(ticks)
sleep 4
n2=$(ticks)
[ "$n1" = "$n2" ] || fail "the guest printed ticks while paused ($n1 -> $n2)"
want 204 PATCH /vm '{"state":"Resumed"}'
want_state Running
wait_console "KILN-E2E: tick $((n2 + 1))" 30
echo "paused at $n1 ticks, $(ticks) after resume"
# PATCH /drives: the data drive gets the other file; the guest sees the new size and data.
expect_console "KILN-E2E: api vdb sectors=2048 sha256=$sha1"
want 204 PATCH /drives/data "{\"drive_id\":\"data\",\"path_on_host\":\"$E2E_WORK/$E2E_CASE.vdb2\"}"
want 400 PATCH /drives/data '{"drive_id":"data","path_on_host":"/nonexistent"}'
echo reread > "$fifo"
# The whole line: its start may be on the console before its end (failed 1 run in 12).
wait_console "KILN-E2E: api vdb sectors=6144 sha256=$sha2" 30
want 200 GET /vm/config
case $body in *"$E2E_CASE.vdb2"*) ;; *) fail "GET /vm/config after PATCH: $body" ;; esac
# PATCH rate limiters of the running drive and interface: taken, and shown in the config.
want 204 PATCH /drives/data '{"drive_id":"data","rate_limiter":{"ops":{"size":1000,"refill_time":100}}}'
want 204 PATCH /network-interfaces/net1 '{"iface_id":"net1","tx_rate_limiter":{"bandwidth":{"size":1048576,"refill_time":100}}}'
want 200 GET /vm/config
case $body in *'"tx_rate_limiter":{"bandwidth":{"size":1048576'*) ;; *) fail "GET /vm/config after the limiter PATCH: $body" ;; esac
# Ctrl+Alt+Del on the i8042 keyboard: Linux reboots (reboot=k), kiln exits 0.
want 204 PUT /actions '{"action_type":"SendCtrlAltDel"}'
wait_exit "$kpid" 60
! grep -aq "KILN-E2E: api done" "$console" || fail "the guest's wait ended by itself$(last_marker)"
expect_end reboot
[ ! -e "$sock" ] || fail "the API socket $sock is left behind"
grep -q 'VM paused' "$E2E_WORK/$E2E_CASE.log" || fail "no 'VM paused' in the log"
grep -q 'drive data: new backing file' "$E2E_WORK/$E2E_CASE.log" || fail "no drive swap in the log"
pass
