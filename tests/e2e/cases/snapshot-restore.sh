#!/bin/sh
# snapshot-restore: Firecracker's snapshot flow. A guest with a drive, a TAP and a vsock
# counts on its console ("tick <n>") after writing 1 MiB to its drive; the host pauses it,
# PUT /snapshot/create, SIGKILLs kiln, and PUT /snapshot/load into a new kiln with
# network_overrides (another TAP) and vsock_override (another socket): the count goes on
# from where it stopped with no second boot, the data written before the snapshot is on the
# drive, a new write lands, the guest pings the host through the new TAP, and a host->guest
# vsock connection is echoed after the transport reset. A memory file shorter than the
# state says is refused (400), and --describe-snapshot reads the state file.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/net.inc
. "$E2E_CASES/net.inc"
# shellcheck source=tests/e2e/cases/vsock.inc
. "$E2E_CASES/vsock.inc"
# shellcheck source=tests/e2e/cases/api.inc
. "$E2E_CASES/api.inc"
# shellcheck source=tests/e2e/cases/snapshot.inc
. "$E2E_CASES/snapshot.inc"
cd "$E2E_WORK" || fail "cd $E2E_WORK"
disk=$E2E_WORK/$E2E_CASE.disk
state=$E2E_WORK/$E2E_CASE.state
mem=$E2E_WORK/$E2E_CASE.mem
rm -f "$disk" "$state" "$mem" "$uds" "$uds"2 "$uds"2_*
truncate -s 4M "$disk" || fail "cannot create $disk"
tap_up kiln-snap0 10.79.0.1/24
cat > "$E2E_CASE.json" << EOT
{
  "boot-source": {
    "kernel_image_path": "$E2E_DIR/bzImage",
    "initrd_path": "$E2E_DIR/guest-initramfs.cpio.gz",
    "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off quiet rdinit=/init i8042.noaux i8042.nomux i8042.dumbkbd kiln.test=snap_ticks kiln.net=06:00:0a:4f:00:02,10.79.0.2/24,10.79.0.1"
  },
  "drives": [{"drive_id": "data", "path_on_host": "$disk", "is_root_device": false, "is_read_only": false}],
  "network-interfaces": [{"iface_id": "net1", "guest_mac": "06:00:0a:4f:00:02", "host_dev_name": "kiln-snap0"}],
  "machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
  "vsock": {"guest_cid": 3, "uds_path": "$uds"}
}
EOT

# The first kiln boots from the file and serves the API.
sock=$E2E_WORK/$E2E_CASE.api
fifo=$E2E_WORK/$E2E_CASE.stdin
rm -f "$sock" "$sock"2 "$fifo"
mkfifo "$fifo" || fail "mkfifo $fifo"
"$KILN" --api-sock "$sock" --config-file "$E2E_CASE.json" > "$console" 2> "$stderr_log" <> "$fifo" &
kpid=$!
trap 'kill_dumped $kpid $kpid2; net_cleanup' EXIT
wait_api_socket "$sock" "$kpid"
wait_console "KILN-E2E: snap ready" 120
wait_console "KILN-E2E: tick 2" 30
before=$(grep -a 'KILN-E2E: snap before sha256=' "$console" | tr -d '\r' | sed 's/.*sha256=//')
[ -n "$before" ] || fail "the guest did not report its first write$(last_marker)"
want 204 PATCH /vm '{"state":"Paused"}'
want 400 PUT /snapshot/create "{\"snapshot_path\":\"$state\",\"mem_file_path\":\"$mem\",\"snapshot_type\":\"Diff\"}"
case $body in *track_dirty_pages*) ;; *) fail "Diff without dirty tracking: $body" ;; esac
want 204 PUT /snapshot/create "{\"snapshot_path\":\"$state\",\"mem_file_path\":\"$mem\"}"
echo "snapshot taken; state $(wc -c < "$state") bytes, memory $(wc -c < "$mem") bytes ($(du -k "$mem" | cut -f1) KiB on disk)"
kill -KILL "$kpid"
wait "$kpid" 2> /dev/null
"$KILN" --describe-snapshot "$state" > describe.out 2>&1 || fail "--describe-snapshot: $(cat describe.out)"
grep -q '^vCPUs: 2$' describe.out || fail "--describe-snapshot: $(cat describe.out)"

# The disk holds what the guest flushed before the snapshot.
got=$(dd if="$disk" bs=1048576 count=1 2> /dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$before" ] || fail "the disk's first MiB is $got, the guest wrote $before"

# Another TAP with the host's address and MAC (the guest's ARP cache has it): the restored
# guest reaches it through the override.
mac=$(cat /sys/class/net/kiln-snap0/address)
"$MKTAP" -d kiln-snap0
tap_up kiln-snap1 10.79.0.1/24
ip link set kiln-snap1 address "$mac" || fail "ip link set kiln-snap1 address $mac"
console1=$console
console=$E2E_WORK/$E2E_CASE.load.console
stderr_log=$E2E_WORK/$E2E_CASE.load.stderr
sock=$E2E_WORK/$E2E_CASE.api2
"$KILN" --api-sock "$sock" > "$console" 2> "$stderr_log" <> "$fifo" &
kpid2=$!
wait_api_socket "$sock" "$kpid2"
# A memory file shorter than the state says is refused; the process can still load.
head -c 1048576 "$mem" > short.mem
want 400 PUT /snapshot/load "{\"snapshot_path\":\"$state\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"$E2E_WORK/short.mem\"}}"
case $body in *shorter*) ;; *) fail "short memory file: $body" ;; esac
want_state "Not started"
want 204 PUT /snapshot/load "{\"snapshot_path\":\"$state\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"$mem\"},\"resume_vm\":true,\"network_overrides\":[{\"iface_id\":\"net1\",\"host_dev_name\":\"kiln-snap1\"}],\"vsock_override\":{\"uds_path\":\"${uds}2\"}}"
want_state Running
wait_console "KILN-E2E: tick " 60
sleep 2
ticks_go_on "$console1" "$console"
echo "restored: the count goes on from tick $tick_at to $tick_now"
echo after > "$fifo"
wait_console "KILN-E2E: snap after sha256=" 60
wait_console "snap ping" 60
grep -aq 'KILN-E2E: error:' "$console" &&
	fail "guest: $(grep -a 'KILN-E2E: error:' "$console" | head -n 1 | tr -d '\r')"
after=$(grep -a 'KILN-E2E: snap after sha256=' "$console" | tr -d '\r' | sed 's/.*sha256=//')
got=$(dd if="$disk" bs=1048576 skip=1 count=1 2> /dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$after" ] || fail "the disk's second MiB is $got, the restored guest wrote $after"
got=$(dd if="$disk" bs=1048576 count=1 2> /dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$before" ] || fail "the first MiB changed after the restore"
"$UDS_TOOL" connect "${uds}2" 5000 echo 1048576 3 > echo.out 2>&1 || fail "vsock after restore: $(tail -n 2 echo.out)"
echo "vsock: $(tail -n 1 echo.out)"
echo done > "$fifo"
wait_exit "$kpid2" 60
expect_end poweroff
[ ! -e "$sock" ] || fail "the API socket $sock is left behind"
pass
