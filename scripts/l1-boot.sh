#!/bin/sh
# l1-boot.sh: boots the L1 KVM test host: Debian's cloud kernel under QEMU TCG with an emulated
# AMD SVM CPU (nested KVM inside), the initramfs IMAGE (tests/e2e/build-l1.sh) as its root.
#
#   scripts/l1-boot.sh [-i] [-t SECS] [-l LOG] [-D DISK]... IMAGE [KERNEL-ARGS...]
#
#   -l LOG   the serial console goes to LOG (QEMU's own messages to LOG.stderr), stdin is
#            /dev/null, and a watchdog stops a test host that stalled (below); without -l, or
#            with -i, the console is this terminal (interactive; Ctrl-A x quits QEMU)
#   -t SECS  QEMU is killed after SECS (default 900)
#   -D DISK  a raw image file attached as a virtio disk (/dev/vda, /dev/vdb, ... in L1)
# L1 neither compacts memory nor makes or splits transparent huge pages (QEMU's TCG does not
# keep the nested guest's view of a page it moved: see docs/testing.md); L1_PAGE_MIGRATION=1
# leaves the kernel's defaults, to reproduce that. L1_THP=always|madvise (default never)
# lets L1 back memory with huge pages, still without compaction: the benches against QEMU
# run so, as a host would (scripts/in-l1.sh vs-qemu).
# A stalled test host: seen on these machines, L1 with a vCPU that stopped running for good
# (one or both; nothing more on the console) in the middle of a stage. A live L1 runs each
# of its vCPUs every few seconds even when idle (its timers), so with -l, once one of QEMU's
# vCPU threads (the whole process if it does not name them) has had no CPU time for
# L1_STALL_SECS (default 60), l1-boot.sh asks QEMU's monitor for their registers, kills it
# and appends "l1-boot: the test host stalled: ..." to LOG (tests/e2e/l1-classify.sh,
# l1_panic, tells it apart), exit status 124.
# A silent test host: with -l and L1_SILENT_SECS (default 0, off) set, once LOG has not
# grown for that long, l1-boot.sh stops it the same way ("l1-boot: the test host went
# silent: ...", 124). Seen: an L1 at full CPU, its vCPUs running, that printed nothing
# more (the bench stage sets it, bench/vs-qemu.sh: its sessions print every few minutes at
# most).
# The kernel is the newest /boot/vmlinuz-*-cloud-amd64 (KVER= overrides). Exits with QEMU's
# status (137 when the timeout killed it, 124 when it stalled). QEMU 10 (bookworm-backports) is required: older
# TCG ignores the SVM XSETBV intercept and L2 guests lose XSAVE.
set -eu
timeout=900
log=
disks=
while getopts it:l:D: opt; do
	case $opt in
	i) log= ;;
	t) timeout=$OPTARG ;;
	l) log=$OPTARG ;;
	D) disks="$disks $OPTARG" ;;
	*) echo "usage: $0 [-i] [-t SECS] [-l LOG] [-D DISK]... IMAGE [KERNEL-ARGS...]" >&2 && exit 2 ;;
	esac
done
shift $((OPTIND - 1))
image=${1:?usage: l1-boot.sh [-i] [-t SECS] [-l LOG] [-D DISK]... IMAGE [KERNEL-ARGS...]}
shift
kver=${KVER:-$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' 2> /dev/null |
	sed 's/^vmlinuz-//' | sort -V | tail -n 1)}
[ -n "$kver" ] || { echo "l1-boot: no /boot/vmlinuz-*-cloud-amd64 (run scripts/setup.sh)" >&2 && exit 2; }
command -v qemu-system-x86_64 > /dev/null ||
	{ echo "l1-boot: qemu-system-x86_64 not found (run scripts/setup.sh)" >&2 && exit 2; }
qver=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
[ "${qver:-0}" -ge 10 ] || { echo "l1-boot: QEMU ${qver:-?} found, the test host needs QEMU 10 (run scripts/setup.sh)" >&2 && exit 2; }

# qemu_registers, for a stalled test host's report.
# shellcheck source=tests/e2e/l1-classify.sh
. "$(dirname "$0")/../tests/e2e/l1-classify.sh"

pin=
[ "${L1_PAGE_MIGRATION:-0}" = 1 ] ||
	pin="transparent_hugepage=${L1_THP:-never} sysctl.vm.compaction_proactiveness=0 sysctl.vm.extfrag_threshold=1000"

# The console is what -nographic sets up (serial and monitor multiplexed on stdio, Ctrl-C to
# the guest) without -nographic's SeaBIOS serial console, which resets the terminal.
set -- -accel tcg,thread=multi -M q35 -cpu EPYC,+svm,+npt -smp 2 -m 4096 -display none \
	-chardev stdio,id=con,mux=on,signal=off -serial chardev:con -mon chardev=con,mode=readline \
	-no-reboot -nic none -kernel "/boot/vmlinuz-$kver" -initrd "$image" \
	-append "console=ttyS0 panic=-1 rdinit=/init quiet $pin $*"
for d in $disks; do
	set -- "$@" -drive "file=$d,format=raw,if=virtio,cache=unsafe"
done
[ -n "$log" ] || exec timeout -s KILL --foreground "$timeout" qemu-system-x86_64 "$@"

# vcpu_times PID: a line "NAME NS" per vCPU thread of PID (NAME "vCPU_N" for QEMU's "CPU N/TCG",
# NS its nanoseconds on a CPU so far), or "threads NS" for all its threads together if none
# is named so; nothing if no thread's schedstat could be read.
vcpu_times() {
	all=0 seen='' cpus=''
	for d in /proc/"$1"/task/*; do
		read -r ns _ 2> /dev/null < "$d/schedstat" || continue
		seen=1 all=$((all + ns))
		read -r comm 2> /dev/null < "$d/comm" || continue
		case $comm in "CPU "[0-9]*) n=${comm#CPU } && cpus="$cpus vCPU_${n%%/*} $ns" ;; esac
	done
	# shellcheck disable=SC2086 # NAME NS pairs, one a line
	[ -z "$seen" ] || printf '%s %s\n' ${cpus:-threads $all}
}

# stall_check NOW STATE: reads vcpu_times' lines on stdin; STATE holds "NAME NS SINCE" of each
# from the last poll (SINCE: when NS last changed) and is rewritten. Prints "SECS NAME" of the
# one that has gone longest without running.
stall_check() {
	awk -v now="$1" -v state="$2" '
		FILENAME == state { ns[$1] = $2; since[$1] = $3; next }
		{
			s = ($1 in ns && ns[$1] == $2) ? since[$1] : now
			out = out $1 " " $2 " " s "\n"
			if (now - s >= worst) { worst = now - s; who = $1 }
		}
		END { printf "%s", out > state; print worst + 0, who }' "$2" -
}

# registers: QEMU's vCPUs on one line, "CPU#N RIP=... CR2=... CR3=... HLT=N; ...".
registers() {
	qemu_registers "$mon" | awk '{ printf "%s%s", sep, $0; sep = "; " }'
}

# stop_qemu PID WHY: kills QEMU (PID) and says WHY in $log.why, with the vCPUs' registers.
stop_qemu() {
	regs=$(registers)
	echo "$2 (${regs:-no registers}); stopped" > "$log.why"
	kill -KILL "$1"
}

# watchdog PID: kills QEMU (PID) at the timeout, once its console went silent
# (L1_SILENT_SECS), or once one of its vCPUs stalled: QEMU's thread for it took no CPU time
# for L1_STALL_SECS (60; an L1 CPU, even an idle one, runs its timers every few seconds);
# the last two say so (stop_qemu). Seen: both vCPUs stopped; and one halted for good with
# interrupts enabled and pending in its local APIC while the other ran on, the test host's
# tasks queued on the halted one never running again.
watchdog() {
	start=$(date +%s)
	: > "$log.stall"
	size=-1 grew=$start
	while sleep 5 && kill -0 "$1" 2> /dev/null; do
		now=$(date +%s)
		if [ $((now - start)) -ge "$timeout" ]; then
			kill -KILL "$1"
			return
		fi
		s=$(stat -c %s "$log" 2> /dev/null) || s=0
		[ "$s" = "$size" ] || size=$s grew=$now
		if [ "${L1_SILENT_SECS:-0}" -gt 0 ] && [ $((now - grew)) -ge "$L1_SILENT_SECS" ]; then
			stop_qemu "$1" "the test host went silent: no console output in $((now - grew)) s"
			return
		fi
		stall=$(vcpu_times "$1" | stall_check "$now" "$log.stall")
		secs=${stall%% *} who=${stall#* }
		if [ "$secs" -ge "${L1_STALL_SECS:-60}" ]; then
			stop_qemu "$1" "the test host stalled: its $(echo "$who" | tr _ ' ') ran for no time in $secs s"
			return
		fi
	done
}

set +e
mon=$log.mon
rm -f "$mon.in" "$mon.out" "$log.why" "$log.stall"
mkfifo "$mon.in" "$mon.out" || exit 2
qemu-system-x86_64 "$@" -name l1,debug-threads=on -chardev "pipe,id=l1mon,path=$mon" \
	-mon chardev=l1mon,mode=readline < /dev/null > "$log" 2> "$log.stderr" &
qpid=$!
# Whoever stops l1-boot.sh stops QEMU (as timeout(1) passed the signal on before).
trap 'kill -TERM "$qpid" 2> /dev/null' TERM INT HUP
watchdog "$qpid" &
wpid=$!
while :; do
	wait "$qpid"
	rc=$?
	kill -0 "$qpid" 2> /dev/null || break
done
kill "$wpid" 2> /dev/null
wait "$wpid"
rm -f "$mon.in" "$mon.out"
if [ -s "$log.why" ]; then
	echo "l1-boot: $(cat "$log.why")" | tee -a "$log" >&2
	rc=124
fi
rm -f "$log.why" "$log.stall"
exit "$rc"
