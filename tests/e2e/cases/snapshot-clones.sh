#!/bin/sh
# snapshot-clones: one guest (vsock, dirty-page tracking on) counting on its console is
# snapshotted Full, runs on, and is snapshotted Diff (the Full memory with the Diff merged
# by kiln-rebase-snap must equal a Full taken at the same moment, byte for byte). Then, each in a new kiln: two clones
# restored at once from the Full snapshot both count on from it and echo over vsock; the
# Diff merged onto the Full memory (kiln-rebase-snap) restores the later count; a Uffd
# restore served by the example page-fault handler (kiln-uffd-handler) counts on; and
# --restore-from restores without the API.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/vsock.inc
. "$E2E_CASES/vsock.inc"
# shellcheck source=tests/e2e/cases/api.inc
. "$E2E_CASES/api.inc"
# shellcheck source=tests/e2e/cases/snapshot.inc
. "$E2E_CASES/snapshot.inc"
for t in kiln-rebase-snap kiln-uffd-handler; do
	[ -x "$E2E_DIR/$t" ] || fail "no $E2E_DIR/$t"
done
cd "$E2E_WORK" || fail "cd $E2E_WORK"
rm -f full.state full.mem diff.state diff.mem merged.mem check.state check.mem ./*.api "$uds"* clone*.sock*
cat > "$E2E_CASE.json" << EOT
{
  "boot-source": {
    "kernel_image_path": "$E2E_DIR/bzImage",
    "initrd_path": "$E2E_DIR/guest-initramfs.cpio.gz",
    "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off quiet rdinit=/init i8042.noaux i8042.nomux i8042.dumbkbd kiln.test=snap_ticks kiln.snap_disk=0"
  },
  "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "track_dirty_pages": true},
  "vsock": {"guest_cid": 3, "uds_path": "$uds"}
}
EOT
pids=
trap 'kill_dumped $pids' EXIT

# start_kiln NAME [ARGS]: a kiln with console NAME.console, stderr NAME.stderr, stdin the
# FIFO NAME.stdin and (unless ARGS say --no-api) the API on NAME.api; sets kpid.
start_kiln() {
	n=$1
	shift
	rm -f "$n.stdin" "$n.api"
	mkfifo "$n.stdin" || fail "mkfifo $n.stdin"
	console=$E2E_WORK/$E2E_CASE.$n.console
	stderr_log=$E2E_WORK/$E2E_CASE.$n.stderr
	sock=$E2E_WORK/$n.api
	case " $* " in
	*" --no-api "*) "$KILN" "$@" > "$console" 2> "$stderr_log" <> "$n.stdin" & ;;
	*) "$KILN" --api-sock "$sock" "$@" > "$console" 2> "$stderr_log" <> "$n.stdin" & ;;
	esac
	kpid=$!
	pids="$pids $kpid"
	case " $* " in *" --no-api "*) ;; *) wait_api_socket "$sock" "$kpid" ;; esac
}

# restored NAME BEFORE: NAME's guest counts on from the console BEFORE, without booting again.
restored() {
	console=$E2E_WORK/$E2E_CASE.$1.console
	wait_console "KILN-E2E: tick " 60
	sleep 2
	ticks_go_on "$2" "$console"
	echo "$1: the count goes on from tick $tick_at to $tick_now"
}

# finish NAME PID: NAME's guest powers off on "done"; kiln exits 0 with reason poweroff.
finish() {
	console=$E2E_WORK/$E2E_CASE.$1.console
	stderr_log=$E2E_WORK/$E2E_CASE.$1.stderr
	echo done > "$1.stdin"
	wait_exit "$2" 60
	expect_end poweroff
}

start_kiln orig --config-file "$E2E_CASE.json"
wait_console "KILN-E2E: snap ready" 120
wait_console "KILN-E2E: tick 2" 30
want 204 PATCH /vm '{"state":"Paused"}'
want 204 PUT /snapshot/create '{"snapshot_path":"full.state","mem_file_path":"full.mem","snapshot_type":"Full"}'
console_until "$console" at-full.console
want 204 PATCH /vm '{"state":"Resumed"}'
n=$(grep -ac 'KILN-E2E: tick ' at-full.console)
wait_console "KILN-E2E: tick $((n + 3))" 30
want 204 PATCH /vm '{"state":"Paused"}'
want 204 PUT /snapshot/create '{"snapshot_path":"diff.state","mem_file_path":"diff.mem","snapshot_type":"Diff"}'
console_until "$console" at-diff.console
# A Full at the same moment: the Diff merged onto the first Full must equal it, byte for byte.
want 204 PUT /snapshot/create '{"snapshot_path":"check.state","mem_file_path":"check.mem"}'
kill -KILL "$kpid"
echo "Full: $(du -k full.mem | cut -f1) KiB on disk, Diff: $(du -k diff.mem | cut -f1) KiB on disk"
[ "$(du -k diff.mem | cut -f1)" -lt "$(du -k full.mem | cut -f1)" ] || fail "the Diff memory file is not smaller than the Full one"

# Two clones of the Full snapshot at once, each with its own vsock socket.
for c in 1 2; do
	start_kiln "clone$c"
	want 204 PUT /snapshot/load "{\"snapshot_path\":\"full.state\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"full.mem\"},\"resume_vm\":true,\"vsock_override\":{\"uds_path\":\"clone$c.sock\"}}"
	eval "clone${c}_pid=$kpid"
done
for c in 1 2; do
	restored "clone$c" at-full.console
	"$UDS_TOOL" connect "clone$c.sock" 5000 echo 65536 1 > "clone$c.echo" 2>&1 ||
		fail "clone$c vsock: $(tail -n 2 "clone$c.echo")"
done
echo "both clones count on and echo over vsock"
finish clone1 "$clone1_pid"
finish clone2 "$clone2_pid"

# The Diff onto a copy of the Full memory file.
cp full.mem merged.mem
"$E2E_DIR/kiln-rebase-snap" --base-file merged.mem --diff-file diff.mem || fail "kiln-rebase-snap failed"
if ! cmp -s merged.mem check.mem; then
	pages=$(cmp -l merged.mem check.mem | awk '{ p = int(($1 - 1) / 4096); if (!(p in s)) { s[p] = 1; n++ } } END { print n }')
	fail "the Full memory with the Diff merged differs from a Full taken with the Diff in $pages pages"
fi
rm -f check.mem check.state
start_kiln diff
want 204 PUT /snapshot/load '{"snapshot_path":"diff.state","mem_backend":{"backend_type":"File","backend_path":"merged.mem"},"resume_vm":true,"vsock_override":{"uds_path":"diff.sock"}}'
restored diff at-diff.console
finish diff "$kpid"

# Uffd: the example handler serves the Full memory file.
rm -f uffd.sock
"$E2E_DIR/kiln-uffd-handler" uffd.sock full.mem > uffd.out 2>&1 &
handler=$!
pids="$pids $handler"
wait_for_socket uffd.sock
start_kiln uffd
want 204 PUT /snapshot/load '{"snapshot_path":"full.state","mem_backend":{"backend_type":"Uffd","backend_path":"uffd.sock"},"resume_vm":true,"vsock_override":{"uds_path":"uffd-vm.sock"}}'
restored uffd at-full.console
"$UDS_TOOL" connect uffd-vm.sock 5000 echo 65536 1 > uffd.echo 2>&1 || fail "uffd vsock: $(tail -n 2 uffd.echo)"
finish uffd "$kpid"
wait "$handler" || fail "kiln-uffd-handler failed: $(tail -n 2 uffd.out)"
echo "Uffd: $(tail -n 1 uffd.out)"

# Without the API: the snapshot's own vsock path, which the killed kiln left behind.
rm -f "$uds"
start_kiln cli --no-api --restore-from full.state --mem-file full.mem
restored cli at-full.console
finish cli "$kpid"
pass
