#!/bin/sh
# blk-vs-qemu.sh: virtio-blk throughput of kiln and QEMU microvm side by side, in one KVM
# host, alternating, with the same guest (Debian's cloud kernel, bench/vsq-guest-init) and
# the same raw drive file (BENCH_BLK_MIB, 256 MiB, in L1's tmpfs): per run, one VM boots and
# the guest runs a sequential write (dd bs=1M of zeros, conv=fsync), then a sequential read
# (page cache dropped, dd bs=1M iflag=direct). Both VMMs cache the drive in the host's page
# cache and honour flushes (kiln cache_type Writeback, io_engine Sync; QEMU
# cache=writeback, aio=threads). MB/s is timed in the guest (/proc/uptime, 10 ms steps,
# around dd); L1 KVM's per-VM counters (debugfs) and kiln's metrics are read around each dd.
#
#   VSQ_IN=DIR sh bench/blk-vs-qemu.sh      (as root, where Linux guests boot; normally via
#                                            `make bench` -> scripts/in-l1.sh vs-qemu)
#
# Prints one line per run, then per phase the median MB/s (10^6 bytes/s) of each VMM and
# kiln/QEMU (above 1: kiln faster) with a 90% interval from its runs' spread, then the median
# counters per MiB moved.
# Environment: BENCH_BLK_RUNS (default BENCH_VSQ_RUNS, else 10), BENCH_BLK_MIB (256); the
# rest as in bench/vs-qemu.inc.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/vs-qemu.inc
. "$here/vs-qemu.inc"
runs=${BENCH_BLK_RUNS:-${BENCH_VSQ_RUNS:-10}}
mib=${BENCH_BLK_MIB:-256}

# blk_phase VMM RUN PHASE: the counters around one of the guest's dd runs; records MB/s
# from the guest's line ("rc=0 bytes=N cs=T": dd's status, bytes, centiseconds).
blk_phase() {
	m=$1 r=$2 p=$3
	if ! wait_line "VSQ: phase $p start" 180 0.05; then
		fail_run "$p" "$m" "$r" "the guest never started the $p phase"
		return 1
	fi
	kvm_snap "$W/s0"
	if ! wait_line "VSQ: phase $p done .* ;" 600 0.2; then
		fail_run "$p" "$m" "$r" "the $p phase did not end"
		return 1
	fi
	kvm_snap "$W/s1"
	line=$(grep -a "VSQ: phase $p done" "$console" | tr -d '\r')
	mbps=$(echo "$line" | awk -v want=$((mib * 1048576)) '{
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			v[kv[1]] = kv[2]
		}
		if (v["rc"] == "0" && v["bytes"] == want && v["cs"] > 0)
			printf "%.1f\n", v["bytes"] / (v["cs"] / 100) / 1e6 }')
	if [ -z "$mbps" ]; then
		fail_run "$p" "$m" "$r" "dd did not move $mib MiB: ${line#*done }"
		return 1
	fi
	record "$p" "$m" "$r" mbps "$mbps"
	record_deltas "$p" "$m" "$r" "$W/s0" "$W/s1" "$mib"
}

# blk_run VMM RUN: one VM, both phases; prints the run's line.
blk_run() {
	m=$1 r=$2
	vsq_net=0
	vsq_drive=$W/drive.img
	vmm_start "$m" 2 512 "$CMDLINE vsq.mode=blk vsq.mib=$mib"
	if blk_phase "$m" "$r" write && blk_phase "$m" "$r" read; then
		wait_line "VSQ: end" 60 > /dev/null
		vmm_end
	else
		vmm_kill
	fi
	echo "blk run $r $m: write $(run_mbps write "$m" "$r"), read $(run_mbps read "$m" "$r"), exit $vmm_rc, at $(at)"
}

vsq_debugfs
: > "$records"
dd if=/dev/zero of="$W/drive.img" bs=1M count="$mib" 2> /dev/null || vsq_die "cannot write $W/drive.img"
echo "blk-vs-qemu: $mib MiB drive (raw file on L1's tmpfs), sequential dd bs=1M, $runs runs per VMM, alternating"
vsq_header
alternate "$runs" blk_run
rm -f "$W/drive.img"

blk_summary
