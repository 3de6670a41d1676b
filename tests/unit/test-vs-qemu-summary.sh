#!/bin/sh
# test-vs-qemu-summary.sh: unit test of bench/vs-qemu-summary.sh on made-up session logs: the
# records of a session's output and of a test host's console (a session cut short) pool
# into one table (medians over both, runs kept apart), the other kilns get their rows, a
# session of some transfers gets only theirs, kiln/QEMU comes with the interval its runs'
# spread allows, and a log without records is refused.
# Prints "PASS unit/vs-qemu-summary/<name>" or "FAIL unit/vs-qemu-summary/<name>: why";
# exits 1 if any failed.
set -u
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-vsq-summary.XXXXXX")
trap 'rm -rf "$T"' EXIT
failed=0

# check NAME COND WHY: PASS if the shell condition COND holds.
check() {
	if eval "$2"; then
		echo "PASS unit/vs-qemu-summary/$1"
	else
		echo "FAIL unit/vs-qemu-summary/$1: $3"
		failed=1
	fi
}

# A finished session: bench/vs-qemu.sh's output, the tables and other lines around records.
cat > "$T/session1.log" << 'EOF'
net-vs-qemu: 64 MiB TCP each way over TAP vsq0
record order kiln 1 after_self 0
record features kiln 1 bits 0101
record h2g kiln 1 mbps 100.0
record h2g kiln 1 per_mib.exits 20
record order qemu 1 after_self 0
record features qemu 1 bits 0111
record h2g qemu 1 mbps 120.0
record h2g qemu 1 per_mib.exits 30
record order qemu 2 after_self 1
record h2g qemu 2 mbps 140.0
record h2g qemu 2 per_mib.exits 34
record order kiln 2 after_self 0
record h2g kiln 2 failed 1
record h2g kiln 2 host_failed 1
net run 2 kiln: h2g FAILED
EOF
# A session the test host cut short: only its console, CRLF lines, other kiln included.
printf 'E2E-OUT record order kiln 1 after_self 0\r\n' > "$T/console.log"
{
	printf 'E2E-OUT record h2g kiln 1 mbps 130.0\r\n'
	printf 'E2E-OUT record h2g kiln 1 per_mib.exits 24\r\n'
	printf 'E2E-OUT record order ride 1 after_self 0\r\n'
	printf 'E2E-OUT record h2g ride 1 mbps 90.0\r\n'
	printf '[  116.712232] Kernel panic - not syncing: corrupted stack end detected inside scheduler\r\n'
} >> "$T/console.log"

out=$(sh "$root_dir/bench/vs-qemu-summary.sh" "$T/session1.log" "$T/console.log" 2>&1)
rc=$?
row=$(printf '%s\n' "$out" | grep -m1 '^host->guest ')
check pooled-medians '[ "$rc" = 0 ] && printf "%s\n" "$row" | grep -Eq "^host->guest +115 +130 +0\.88 +- +kiln 2 ok, 1 failed \(1 the test host.s\); qemu 2 ok, 0 failed"' \
	"exit $rc, row '$row'"
check after-self '[ "$(printf "%s\n" "$out" | grep -m1 "^  after the same VMM" | tr -s " ")" = " after the same VMM - 140.0 - - runs: kiln 0, QEMU 1" ]' \
	"$(printf '%s\n' "$out" | grep -m1 '^  after the same VMM')"
# Against QEMU's median over all its runs (it took the after-the-same-VMM one before).
check other-kiln 'printf "%s\n" "$out" | grep -m1 "^  kiln-ride" | grep -Eq "^  kiln-ride +90\.0 +130 +0\.69 +-$"' \
	"$(printf '%s\n' "$out" | grep 'kiln-ride')"
check per-mib 'printf "%s\n" "$out" | grep -Eq "^exits +22 +32 +"' \
	"$(printf '%s\n' "$out" | grep '^exits')"
check features 'printf "%s\n" "$out" | grep -q "took (bit 0 first): kiln 0101$" && printf "%s\n" "$out" | grep -Eq "QEMU 0111$"' \
	"$(printf '%s\n' "$out" | grep -A1 'features the guest')"

# A session of the 1 KiB transfers alone (BENCH_NET_ONLY=nc): its table, without rows for
# the transfers it did not run.
cat > "$T/nc.log" << 'EOF'
record order kiln 1 after_self 0
record h2g-nc kiln 1 mbps 40.0
record order qemu 1 after_self 0
record h2g-nc qemu 1 mbps 50.0
EOF
out=$(sh "$root_dir/bench/vs-qemu-summary.sh" "$T/nc.log" 2>&1)
check only-run-rows 'printf "%s\n" "$out" | grep -Eq "^host->guest, 1 KiB I/O +40(\.0)? +50(\.0)? +0\.80 " &&
	! printf "%s\n" "$out" | grep -Eq "^(host->guest|guest->host|round trips/s, 64 B) +[-0-9]"' \
	"$(printf '%s\n' "$out" | grep -E '^(host|guest|round)')"

# The interval: runs that agree leave the ratio nowhere to go (over all runs and over those
# after the same VMM); spread runs give an interval around it, one that reaches past 1 when
# the VMMs' runs overlap.
{
	for r in 1 2 3; do
		echo "record order kiln $r after_self 1"
		echo "record h2g kiln $r mbps 100"
		echo "record order qemu $r after_self 1"
		echo "record h2g qemu $r mbps 50"
	done
	for v in 40 44 48 52 56; do echo "record g2h kiln $v mbps $v"; done
	for v in 42 46 50 54 58; do echo "record g2h qemu $v mbps $v"; done
} > "$T/spread.log"
out=$(sh "$root_dir/bench/vs-qemu-summary.sh" "$T/spread.log" 2>&1)
check interval-exact 'printf "%s\n" "$out" | grep -Eq "^host->guest +100 +50 +2\.00 +2\.00-2\.00 +kiln 3 ok" &&
	printf "%s\n" "$out" | grep -Eq "^  after the same VMM +100 +50 +2\.00 +2\.00-2\.00 +runs: kiln 3, QEMU 3"' \
	"$(printf '%s\n' "$out" | grep -m2 -E '^(host->guest|  after the same) ')"
row=$(printf '%s\n' "$out" | grep -m1 '^guest->host ')
# The interval's ends: below the ratio, above 1, and within what any resample can give.
spread_ok=$(printf '%s\n' "$row" | awk '{ split($5, i, "-")
	print (i[1] < 0.96 && i[1] >= 40 / 58 && i[2] > 1 && i[2] <= 56 / 42) ? "yes" : "no" }')
check interval-spread 'printf "%s\n" "$row" | grep -Eq "^guest->host +48 +50 +0\.96 " &&
	[ "$spread_ok" = yes ]' "row '$row', ends as expected: $spread_ok"

# The same draws in every awk: the summary the test host prints (busybox) and the one rebuilt
# on the host (mawk here) give the same intervals.
if command -v busybox > /dev/null 2>&1; then
	mkdir "$T/bb" && ln -s "$(command -v busybox)" "$T/bb/awk"
	bb_out=$(PATH="$T/bb:$PATH" sh "$root_dir/bench/vs-qemu-summary.sh" "$T/spread.log" 2>&1)
	check interval-every-awk '[ "$(printf "%s\n" "$bb_out" | grep -m1 "^guest->host ")" = "$row" ]' \
		"busybox awk: '$(printf '%s\n' "$bb_out" | grep -m1 '^guest->host ')', awk: '$row'"
else
	echo "SKIP unit/vs-qemu-summary/interval-every-awk: no busybox to compare with"
fi

: > "$T/empty.log"
sh "$root_dir/bench/vs-qemu-summary.sh" "$T/session1.log" "$T/empty.log" > "$T/out" 2>&1
rc=$?
check no-records '[ "$rc" = 2 ] && grep -q "empty.log: no \"record\" lines" "$T/out"' "exit $rc: $(cat "$T/out")"
sh "$root_dir/bench/vs-qemu-summary.sh" "$T/missing.log" > "$T/out" 2>&1
rc=$?
check unreadable '[ "$rc" = 2 ] && grep -q "missing.log: cannot read it" "$T/out"' "exit $rc: $(cat "$T/out")"

exit "$failed"
