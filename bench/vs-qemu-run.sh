#!/bin/sh
# vs-qemu-run.sh: runs the kiln vs QEMU microvm benches named in BENCH_VSQ (default
# "net blk boot": bench/net-vs-qemu.sh, blk-vs-qemu.sh, boot.sh) one after the other, on a
# host with real KVM (bench/vs-qemu.sh) or inside the L1 test host (stage-vs-qemu.sh).
# VSQ_IN must name the gathered inputs. Exits 1 if any bench failed or was unknown.
rc=0
for b in ${BENCH_VSQ:-net blk boot}; do
	case $b in
	net) sh bench/net-vs-qemu.sh || rc=1 ;;
	blk) sh bench/blk-vs-qemu.sh || rc=1 ;;
	boot) sh bench/boot.sh || rc=1 ;;
	*) echo "vs-qemu: unknown bench '$b' (net, blk, boot)" >&2 && rc=1 ;;
	esac
done
exit "$rc"
