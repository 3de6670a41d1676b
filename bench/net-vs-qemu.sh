#!/bin/sh
# net-vs-qemu.sh: virtio-net throughput of kiln and QEMU microvm side by side, in one KVM
# host, alternating, with the same guest (Debian's cloud kernel, bench/vsq-guest-init) on
# the same TAP: per run, one VM boots, the host (bench/vsq) sends 64 MiB of random data to
# the guest (host->guest; the guest's sha256 must match the host's), then fetches it back
# (guest->host; it must be the same bytes), else the run counts as failed and is reported.
# Twice: with bulk I/O in the guest (bench/vsq there too, 256 KiB reads and writes, as a
# throughput tool would: the network itself), then with busybox nc's 1 KiB reads and writes
# (small I/O, where the guest's TCP batches small writes depending on when its earlier
# frames are completed). Around each transfer the host reads L1 KVM's per-VM counters (debugfs)
# and kiln's metrics.
#
#   VSQ_IN=DIR sh bench/net-vs-qemu.sh      (as root, where Linux guests boot; normally via
#                                            `make bench` -> scripts/in-l1.sh vs-qemu)
#
# Prints one line per run, then per direction the median MB/s (10^6 bytes/s) of each VMM and
# kiln/QEMU (above 1: kiln faster) with a 90% interval from its runs' spread, and the round
# trips per second, then the median counters per MiB moved and per 1000 round trips (L1
# KVM's, the guest's own and kiln's) and each direction's TCP sender's view (the host's for
# host->guest, the guest's for guest->host), with the guest receiver's of host->guest.
# Environment: BENCH_NET_RUNS (default BENCH_VSQ_RUNS, else 10), BENCH_NET_MIB (64),
# BENCH_NET_RR (round trips, 2000), BENCH_NET_ONLY=h2g, bulk, nc or h2g-nc (the bulk
# host->guest transfer alone, both bulk transfers, both 1 KiB transfers, or the 1 KiB
# host->guest one alone), BENCH_NET_PIN (1: the guest's programs pinned, below); the rest as
# in bench/vs-qemu.inc.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/vs-qemu.inc
. "$here/vs-qemu.inc"
runs=${BENCH_NET_RUNS:-${BENCH_VSQ_RUNS:-10}}
mib=${BENCH_NET_MIB:-64}
bytes=$((mib * 1048576))
rr_n=${BENCH_NET_RR:-2000}
# The last VM's console without CRs (net_run writes it once the VM ended).
console_lf=$W/console.lf
# h2g/g2h: host->guest/guest->host with bulk I/O in the guest (vsq, 256 KiB), -nc: with
# busybox nc (1 KiB). BENCH_NET_ONLY=h2g: only the first; =bulk: the first two (both bulk
# transfers); =nc: the two 1 KiB ones (the issue's first method), =h2g-nc: its first: a
# session has room for more VMs, and the 1 KiB transfers are where the test host fails
# most (docs/testing.md). The guest powers off after the last one (vsq.only).
# BENCH_NET_PIN=1 (the default): the guest's transfer programs on its CPU 1, eth0's
# interrupts on CPU 0 (vsq.pin, bench/vsq-guest-init); 0: wherever the guest puts them.
pin='' pinned=''
case ${BENCH_NET_PIN:-1} in
1) pin=" vsq.pin=1" pinned=", the guest's programs on its CPU 1 and eth0's interrupts on CPU 0" ;;
0) ;;
*) vsq_die "BENCH_NET_PIN=$BENCH_NET_PIN: 1 or 0" ;;
esac
NET_TESTS="h2g g2h h2g-nc g2h-nc"
only=
case ${BENCH_NET_ONLY:-} in
'') ;;
h2g) NET_TESTS=h2g only=" vsq.only=h2g" ;;
bulk) NET_TESTS="h2g g2h" only=" vsq.only=g2h" ;;
nc) NET_TESTS="h2g-nc g2h-nc" only=" vsq.only=g2h-nc" ;;
h2g-nc) NET_TESTS=h2g-nc only=" vsq.only=h2g-nc" ;;
*) vsq_die "BENCH_NET_ONLY=$BENCH_NET_ONLY: h2g, bulk, nc or h2g-nc" ;;
esac

# transfer TEST VMM RUN BEFORE AFTER VSQ-ARGS...: one timed transfer with vsq; records
# MB/s, the counters per MiB and the host sender's TCP view (vsq send's "tcpinfo" line);
# 1 if vsq failed.
transfer() {
	t=$1 m=$2 r=$3 before=$4 after=$5
	shift 5
	kvm_snap "$before"
	out=$("$VSQ" "$@") || return 1
	kvm_snap "$after"
	# How much of the VMM's memory L1 backs with huge pages (guest RAM touched by then),
	# after the run's first transfer, while the VM still runs.
	[ "$t" != h2g ] || record thp "$m" "$r" anon_huge_mib \
		"$(awk '/^AnonHugePages:/ { print int($2 / 1024) }' "/proc/$vmm_pid/smaps_rollup")"
	printf '%s\n' "$out" | tcpinfo_record "$t" "$m" "$r"
	# shellcheck disable=SC2086 # two words (and the tcpinfo line's)
	set -- $out
	[ "$1" = "$bytes" ] || return 1
	mbps=$(awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f\n", b / s / 1e6 }')
	record "$t" "$m" "$r" mbps_try "$mbps"
	record_deltas "$t" "$m" "$r" "$before" "$after" "$mib"
}

# round_trips TEST VMM RUN PORT: request/response with the guest's `vsq echo` on PORT:
# records round trips per second and the counters per 1000 round trips under TEST (rr).
round_trips() {
	t=$1 m=$2 r=$3
	kvm_snap "$W/s0"
	if ! out=$("$VSQ" ping "$GUEST_IP" "$4" "$rr_n" 64); then
		fail_run "$t" "$m" "$r" "the round trips did not complete"
		return
	fi
	kvm_snap "$W/s1"
	# shellcheck disable=SC2086 # two words
	set -- $out
	record "$t" "$m" "$r" rt_per_s "$(awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f\n", n / s }')"
	record_deltas "$t" "$m" "$r" "$W/s0" "$W/s1" "$(awk -v n="$1" 'BEGIN { print n / 1000 }')" per_krt.
}

# to_guest TEST VMM RUN PORT: the host sends the file to the guest's PORT; the guest's
# sha256 of what it got ("VSQ: rx TEST ...") must be the host's.
to_guest() {
	if transfer "$1" "$2" "$3" "$W/s0" "$W/s1" send "$GUEST_IP" "$4" "$W/to-guest.bin" &&
		wait_line "VSQ: rx $1 bytes=[0-9]+ sha256=[0-9a-f]{64}" 300; then
		got=$(sed -n "s/.*VSQ: rx $1 bytes=$bytes sha256=\\([0-9a-f]*\\).*/\\1/p" "$console")
		check "$1" "$2" "$3" "$to_guest_sum" "$got"
	else
		fail_run "$1" "$2" "$3" "the transfer did not complete"
	fi
}

# from_guest TEST VMM RUN PORT: the host fetches from the guest's PORT what the guest got
# before; it must be byte for byte what the host sent.
from_guest() {
	rm -f "$W/from-guest.bin"
	if transfer "$1" "$2" "$3" "$W/s0" "$W/s1" recv "$GUEST_IP" "$4" "$W/from-guest.bin"; then
		got="different bytes"
		! cmp -s "$W/from-guest.bin" "$W/to-guest.bin" || got=$to_guest_sum
		check "$1" "$2" "$3" "$to_guest_sum" "$got"
	else
		fail_run "$1" "$2" "$3" "the transfer did not complete"
	fi
	rm -f "$W/from-guest.bin"
}

# net_step FUNC TEST VMM RUN PORT: FUNC (to_guest, from_guest, round_trips) for TEST, unless
# an earlier step of this VM failed (vm_failed names it): a VM that failed one transfer,
# mostly a guest that stopped (the test host's failure, docs/testing.md), would only wait
# out the next ones' timeouts; they count as failed without running.
net_step() {
	ns_f=$1
	shift
	if [ -n "$vm_failed" ]; then
		record "$1" "$2" "$3" failed 1
		echo "$1 run $3 $2: FAILED: not run, $vm_failed failed before in this VM"
		return
	fi
	"$ns_f" "$@"
	[ -z "$(run_value "$1" "$2" "$3" failed)" ] || vm_failed=$1
}

# net_test TEST VMM RUN: the transfer TEST (of NET_TESTS) with the guest's port for it.
net_test() {
	case $1 in
	h2g) net_step to_guest "$@" 5002 ;;
	g2h) net_step from_guest "$@" 5001 ;;
	h2g-nc) net_step to_guest "$@" 5004 ;;
	g2h-nc) net_step from_guest "$@" 5003 ;;
	esac
}

# net_run VMM RUN: one VM; bulk I/O host->guest then guest->host (the guest sends back what
# it got), then the same with small I/O; prints the run's line.
net_run() {
	m=$1 r=$2
	vsq_net=1
	# A new TAP for every VM: what one VMM set on it (QEMU: its send buffer, offloads)
	# must not carry over to the next.
	vsq_tap
	vmm_start "$m" 2 512 "$CMDLINE vsq.mode=net vsq.ip=$GUEST_IP/24 vsq.peer=$HOST_IP$only$pin"
	if ! wait_line "VSQ: ready" 180; then
		nr_alive=exited
		! kill -0 "$vmm_pid" 2> /dev/null || nr_alive="still running"
		for t in $NET_TESTS; do fail_run "$t" "$m" "$r" "the guest never got ready"; done
		vmm_kill
		# QEMU runs with -no-reboot: a guest that reset (a triple fault) ends it quietly.
		[ "$nr_alive" != exited ] || echo "  $m had exited by then, status $vmm_rc"
		return
	fi
	record settle "$m" "$r" settle_s "$(settle)"
	feat=$(sed -n 's/.*VSQ: features \([01]*\).*/\1/p' "$console" | head -n 1)
	record features "$m" "$r" bits "${feat:--}"
	vm_failed=
	for nt in $NET_TESTS; do net_test "$nt" "$m" "$r"; done
	[ -n "$only" ] || net_step round_trips rr "$m" "$r" 5005
	if [ -z "$vm_failed" ]; then
		wait_line "VSQ: end" 60 > /dev/null
		vmm_end
	else
		vmm_kill
	fi
	# The VM's console without its CRs, once, for every reader below.
	tr -d '\r' < "$console" > "$console_lf"
	sed -n 's/.*VSQ: \(tcpinfo .*\)/\1/p' "$console_lf" | tcpinfo_record g2h "$m" "$r"
	# The guest's view as the receiver of host->guest bulk (tcp.guest_rcv*).
	sed -n 's/.*VSQ: h2g rcvinfo \(.*\)/tcpinfo \1/p' "$console_lf" | tcpinfo_record h2g "$m" "$r"
	# The guest's own complaints (eth0's setup, pinning), and which interrupt it pinned.
	sed -n 's/.*VSQ: error: \(.*\)/  guest error: \1/p' "$console_lf"
	irq=$(sed -n 's/.*VSQ: pinned eth0 ([^)]*) irq \([0-9]*\) .*/\1/p' "$console_lf")
	[ -z "$pin" ] || record pin "$m" "$r" irq "${irq:--}"
	# The guest's counts of each transfer: from its gstat line before to the one after.
	prev=start line=
	for nt in $NET_TESTS; do
		gstat_deltas "$nt" "$m" "$r" "$prev" "$nt"
		line="$line, $nt $(run_mbps "$nt" "$m" "$r")"
		prev=$nt
	done
	if [ -z "$only" ]; then
		gstat_deltas rr "$m" "$r" "$prev" rr "$(awk -v n="$rr_n" 'BEGIN { print n / 1000 }')" per_krt.
		rt=$(run_value rr "$m" "$r" rt_per_s)
		line="$line, rr ${rt:-FAILED}${rt:+ round trips/s}"
	fi
	echo "net run $r $m:${line#,}, exit $vmm_rc, at $(at), L1 idle after $(run_value settle "$m" "$r" settle_s) s, $(run_value thp "$m" "$r" anon_huge_mib) MiB in huge pages"
}

# gstat_deltas TEST VMM RUN FROM TO [UNITS PREFIX]: the guest's counts (its "VSQ: gstat"
# lines) from FROM to TO, per MiB (per unit of UNITS), as "per_mib.guest.<name>"
# ("PREFIXguest.<name>") figures of a run that passed; from $console_lf (net_run).
gstat_deltas() {
	[ -z "$(run_value "$1" "$2" "$3" failed)" ] || return 0
	awk -v t="$1" -v m="$2" -v r="$3" -v from="$4" -v to="$5" \
		-v mib="${6:-$mib}" -v p="${7:-per_mib.}" '
		$1 == "VSQ:" && $2 == "gstat" && ($3 == from || $3 == to) {
			for (i = 4; i <= NF; i++) { split($i, kv, "="); v[$3, kv[1]] = kv[2]; k[kv[1]] = 1 } }
		END { for (n in k) if ((from, n) in v && (to, n) in v)
			printf "%s %s %s %sguest.%s %.2f\n", t, m, r, p, n, (v[to, n] - v[from, n]) / mib }' \
		"$console_lf" | records_add
}

# tcpinfo_record TEST VMM RUN: a TCP end's view (a "tcpinfo name=value..." line on stdin)
# as "tcp.<name>" figures of a run not failed.
tcpinfo_record() {
	[ -z "$(run_value "$1" "$2" "$3" failed)" ] || return 0
	awk -v t="$1" -v m="$2" -v r="$3" '
		$1 == "tcpinfo" {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); printf "%s %s %s tcp.%s %s\n", t, m, r, kv[1], kv[2] } }' \
		| records_add
}

# check TEST VMM RUN WANT GOT: a transfer with the same sha256 at both ends counts.
check() {
	if [ -n "$4" ] && [ "$4" = "$5" ]; then
		record "$1" "$2" "$3" mbps "$(run_value "$1" "$2" "$3" mbps_try)"
	else
		fail_run "$1" "$2" "$3" "sha256 differs: sent ${4:-?}, received ${5:-?}"
	fi
}

vsq_debugfs
: > "$records"
head -c "$bytes" /dev/urandom > "$W/to-guest.bin"
to_guest_sum=$(sha256sum < "$W/to-guest.bin" | cut -d' ' -f1)
if [ -n "$only" ]; then
	echo "net-vs-qemu: $mib MiB TCP over TAP $TAP, only $NET_TESTS (BENCH_NET_ONLY=$BENCH_NET_ONLY), $runs runs per VMM, alternating$pinned"
else
	echo "net-vs-qemu: $mib MiB TCP each way over TAP $TAP, bulk I/O (vsq in the guest) then 1 KiB I/O (busybox nc), then $rr_n round trips of 64 B, $runs runs per VMM, alternating$pinned"
fi
vsq_header
alternate "$runs" net_run
"$VSQ_IN/mktap" -d "$TAP" 2> /dev/null
rm -f "$W/to-guest.bin"

net_summary
