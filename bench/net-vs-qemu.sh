#!/bin/sh
# net-vs-qemu.sh: virtio-net throughput of kiln and QEMU microvm side by side, in one KVM
# host, alternating, with the same guest (Debian's cloud kernel, bench/vsq-guest-init) on
# the same TAP: per run, one VM boots, the host (bench/vsq) sends 64 MiB of random data to
# the guest's busybox nc (host->guest; the guest's sha256 must match the host's), then
# fetches it back (guest->host; it must be the same bytes), else the run counts as failed
# and is reported. Around each transfer the host reads L1 KVM's per-VM counters (debugfs)
# and kiln's metrics.
#
#   VSQ_IN=DIR sh bench/net-vs-qemu.sh      (as root, where Linux guests boot; normally via
#                                            `make bench` -> scripts/in-l1.sh vs-qemu)
#
# Prints one line per run, then per direction the median MB/s (10^6 bytes/s) of each VMM and
# kiln/QEMU (above 1: kiln faster), then the median counters per MiB moved.
# Environment: BENCH_NET_RUNS (default BENCH_VSQ_RUNS, else 10), BENCH_NET_MIB (64); the
# rest as in bench/vs-qemu.inc.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/vs-qemu.inc
. "$here/vs-qemu.inc"
runs=${BENCH_NET_RUNS:-${BENCH_VSQ_RUNS:-10}}
mib=${BENCH_NET_MIB:-64}
bytes=$((mib * 1048576))

# transfer TEST VMM RUN BEFORE AFTER VSQ-ARGS...: one timed transfer with vsq; records
# MB/s and the counters per MiB; 1 if vsq failed.
transfer() {
	t=$1 m=$2 r=$3 before=$4 after=$5
	shift 5
	kvm_snap "$before"
	out=$("$VSQ" "$@") || return 1
	kvm_snap "$after"
	# shellcheck disable=SC2086 # two words
	set -- $out
	[ "$1" = "$bytes" ] || return 1
	mbps=$(awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f\n", b / s / 1e6 }')
	record "$t" "$m" "$r" mbps_try "$mbps"
	record_deltas "$t" "$m" "$r" "$before" "$after" "$mib"
}

# net_run VMM RUN: one VM, host->guest then guest->host (the guest sends back what it got);
# prints the run's line.
net_run() {
	m=$1 r=$2
	vsq_net=1
	vmm_start "$m" 2 512 "$CMDLINE vsq.mode=net vsq.ip=$GUEST_IP/24 vsq.peer=$HOST_IP"
	if ! wait_line "VSQ: ready" 180; then
		fail_run h2g "$m" "$r" "the guest never got ready"
		fail_run g2h "$m" "$r" "the guest never got ready"
		vmm_kill
		return
	fi
	feat=$(sed -n 's/.*VSQ: features \([01]*\).*/\1/p' "$console" | head -n 1)
	[ -e "$W/features.$m" ] || echo "$feat" > "$W/features.$m"
	if transfer h2g "$m" "$r" "$W/s0" "$W/s1" send "$GUEST_IP" 5002 "$W/to-guest.bin" &&
		wait_line "VSQ: rx bytes=[0-9]+ sha256=[0-9a-f]{64}" 300; then
		got=$(sed -n "s/.*VSQ: rx bytes=$bytes sha256=\\([0-9a-f]*\\).*/\\1/p" "$console")
		check h2g "$m" "$r" "$to_guest_sum" "$got"
	else
		fail_run h2g "$m" "$r" "the transfer did not complete"
	fi
	rm -f "$W/from-guest.bin"
	if transfer g2h "$m" "$r" "$W/s0" "$W/s1" recv "$GUEST_IP" 5001 "$W/from-guest.bin"; then
		# What the guest got and sent back: byte for byte what the host sent.
		if cmp -s "$W/from-guest.bin" "$W/to-guest.bin"; then
			got=$to_guest_sum
		else
			got="different bytes"
		fi
		check g2h "$m" "$r" "$to_guest_sum" "$got"
	else
		fail_run g2h "$m" "$r" "the transfer did not complete"
	fi
	rm -f "$W/from-guest.bin"
	wait_line "VSQ: end" 60 > /dev/null
	vmm_end
	echo "net run $r $m: host->guest $(run_mbps h2g "$m" "$r"), guest->host $(run_mbps g2h "$m" "$r"), exit $vmm_rc, at $(at)"
}

# check TEST VMM RUN WANT GOT: a transfer with the same sha256 at both ends counts.
check() {
	if [ -n "$4" ] && [ "$4" = "$5" ]; then
		mbps=$(awk -v t="$1" -v m="$2" -v r="$3" '$1 == t && $2 == m && $3 == r && $4 == "mbps_try" { print $5 }' "$records")
		record "$1" "$2" "$3" mbps "$mbps"
	else
		fail_run "$1" "$2" "$3" "sha256 differs: sent ${4:-?}, received ${5:-?}"
	fi
}

vsq_debugfs
vsq_tap
: > "$records"
head -c "$bytes" /dev/urandom > "$W/to-guest.bin"
to_guest_sum=$(sha256sum < "$W/to-guest.bin" | cut -d' ' -f1)
echo "net-vs-qemu: $mib MiB TCP each way over TAP $TAP, busybox nc in the guest, $runs runs per VMM, alternating"
vsq_header
alternate "$runs" net_run
"$VSQ_IN/mktap" -d "$TAP" 2> /dev/null
rm -f "$W/to-guest.bin"

echo
echo "net-vs-qemu summary: medians, MB/s = 10^6 bytes/s, kiln/QEMU above 1 = kiln faster"
printf '%-12s %10s %10s %10s   %s\n' direction "kiln MB/s" "QEMU MB/s" kiln/QEMU runs
mbps_row 12 "host->guest" h2g
mbps_row 12 "guest->host" g2h
echo "virtio-net features the guest driver took (bit 0 first): kiln $(cat "$W/features.kiln" 2> /dev/null)"
echo "                                                          QEMU $(cat "$W/features.qemu" 2> /dev/null)"
echo "g2h = guest->host, h2g = host->guest; L1 KVM's counters from /sys/kernel/debug/kvm/<pid>-<fd>"
echo "(VM and vCPUs summed), kiln.* from kiln's metrics (FlushMetrics before and after):"
per_mib_table h2g g2h
