#!/bin/sh
# boot.sh: boot to init and power off, kiln and QEMU microvm side by side in one KVM host,
# alternating: 1 vCPU, 256 MiB, the same kernel, initramfs (bench/vsq-guest-init, whose
# vsq.mode=boot prints VSQ-INIT first thing, writes the boot timer's byte and runs
# poweroff -f) and command line for both, no devices but the serial console; kiln without
# its API socket (--no-api) and with --boot-timer. bench/vsq runs each VMM and times, from
# just before the fork, the first VSQ-INIT on the console and the VMM's exit.
#
#   VSQ_IN=DIR sh bench/boot.sh      (as root, where Linux guests boot; normally via
#                                     `make bench` -> scripts/in-l1.sh vs-qemu)
#
# Prints one line per run, then per kernel the median ms of each VMM and kiln/QEMU (below 1:
# kiln faster), and kiln's Guest-boot-time (its --boot-timer, from the start of the VM build
# to the guest's write). Kernels: VSQ_IN/vmlinuz (Debian's cloud kernel) and, if present,
# VSQ_IN/min-vmlinuz (the minimal guest kernel of `make guest-kernel`).
# Environment: BENCH_BOOT_RUNS (default BENCH_VSQ_RUNS, else 10); the rest as in
# bench/vs-qemu.inc.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/vs-qemu.inc
. "$here/vs-qemu.inc"
runs=${BENCH_BOOT_RUNS:-${BENCH_VSQ_RUNS:-10}}
args="$CMDLINE vsq.mode=boot"

# boot_run TEST VMM RUN: one boot; records init_ms, exit_ms and (kiln) boot_timer_ms.
boot_run() {
	t=$1 m=$2 r=$3
	vsq_net=0 vsq_drive='' vsq_metrics=0
	if [ "$m" != qemu ]; then
		kiln_config 1 256 "$args" > "$W/kiln.json"
		set -- "$(kiln_bin "$m")" --no-api --boot-timer --config-file "$W/kiln.json"
	else
		old_ifs=$IFS
		IFS='
'
		# shellcheck disable=SC2046 # one argument per line
		set -- "$QEMU" $(qemu_args 1 256 "$args")
		IFS=$old_ifs
	fi
	out=$("$VSQ" boot "$VM_TIMEOUT" VSQ-INIT "$console" "$@" < /dev/null 2> "$W/vmm.err")
	# shellcheck disable=SC2086 # three words
	set -- $out
	if [ "$#" != 3 ] || [ "$3" != 0 ] || [ "$1" = -1.0 ]; then
		fail_run "$t" "$m" "$r" "VSQ-INIT ms, exit ms, status: ${out:-none}"
		return
	fi
	record "$t" "$m" "$r" init_ms "$1"
	record "$t" "$m" "$r" exit_ms "$2"
	timer=
	if [ "$m" != qemu ]; then
		timer=$(sed -n 's/.*Guest-boot-time = *[0-9]* us *\([0-9]*\) ms.*/\1/p' "$W/vmm.err" | head -n 1)
		[ -z "$timer" ] || record "$t" "$m" "$r" boot_timer_ms "$timer"
	fi
	echo "$t run $r $m: init $1 ms, exit $2 ms${timer:+, Guest-boot-time $timer ms}, at $(at)"
}

# boot_table TEST: the medians of one kernel.
boot_table() {
	for key in init_ms exit_ms; do
		k=$(median "$1" kiln "$key")
		q=$(median "$1" qemu "$key")
		name="exec -> VSQ-INIT on console"
		[ "$key" = init_ms ] || name="exec -> VMM exit"
		printf '%-12s %-30s %10s %10s %10s\n' "$1" "$name" "$k" "$q" "$(ratio "$k" "$q")"
		for m in $OTHER_KILNS; do
			o=$(median "$1" "$m" "$key")
			printf '%-12s %-30s %10s %10s %10s\n' "" "  kiln-$m" "$o" "$q" "$(ratio "$o" "$q")"
		done
	done
	printf '%-12s %-30s %10s %10s %10s\n' "$1" "kiln Guest-boot-time" \
		"$(median "$1" kiln boot_timer_ms)" - -
	printf '%-12s runs: %s\n' "$1" "$(runs_line "$1" exit_ms)"
}

: > "$records"
kernels="stock:$KERNEL"
[ ! -e "$VSQ_IN/min-vmlinuz" ] || kernels="$kernels minimal:$VSQ_IN/min-vmlinuz"
echo "boot: 1 vCPU, 256 MiB, boot to init and poweroff -f, $runs runs per VMM and kernel, alternating"
echo "command line (both): $args"
vsq_header
for spec in $kernels; do
	KERNEL=${spec#*:}
	alternate "$runs" boot_run "boot-${spec%%:*}"
done

echo
echo "boot summary: medians in ms, kiln/QEMU below 1 = kiln faster"
printf '%-12s %-30s %10s %10s %10s\n' kernel figure kiln QEMU kiln/QEMU
for spec in $kernels; do
	boot_table "boot-${spec%%:*}"
done
