#!/bin/sh
# stage-bench.sh: bench/startup and bench/snapshot inside the L1 KVM test host, for hosts without a usable
# /dev/kvm (scripts/in-l1.sh bench, from `make bench`). Figures only, no thresholds.
cd /e2e/repo || exit 1
build/bench/startup build/kiln build/tiny-guest.elf "${BENCH_RUNS:-20}"
build/bench/snapshot build/kiln build/tiny-guest.elf "${BENCH_SNAPSHOT_RUNS:-5}"
