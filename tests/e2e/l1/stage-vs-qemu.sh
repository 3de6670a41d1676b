#!/bin/sh
# stage-vs-qemu.sh: the kiln vs QEMU microvm benches (bench/net-vs-qemu.sh,
# bench/blk-vs-qemu.sh, bench/boot.sh) inside the L1 KVM test host (scripts/in-l1.sh vs-qemu,
# from bench/vs-qemu.sh and `make bench`). Figures only, no thresholds. BENCH_* settings
# come in /e2e/stage.env; BENCH_VSQ picks the benches (default "net blk boot").
cd /e2e/repo || exit 1
# shellcheck disable=SC1091 # written by scripts/in-l1.sh
[ ! -r /e2e/stage.env ] || . /e2e/stage.env
VSQ_IN=/e2e/repo/build/bench/vs-qemu-in
export VSQ_IN
rc=0
for b in ${BENCH_VSQ:-net blk boot}; do
	case $b in
	net) sh bench/net-vs-qemu.sh || rc=1 ;;
	blk) sh bench/blk-vs-qemu.sh || rc=1 ;;
	boot) sh bench/boot.sh || rc=1 ;;
	*) echo "stage-vs-qemu: unknown bench '$b' (net, blk, boot)" >&2 && rc=1 ;;
	esac
done
exit "$rc"
