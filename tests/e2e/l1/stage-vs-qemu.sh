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
exec sh bench/vs-qemu-run.sh
