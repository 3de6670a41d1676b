#!/bin/sh
# vs-qemu-summary.sh: the tables of bench/net-vs-qemu.sh and bench/blk-vs-qemu.sh rebuilt
# from the result records that sessions printed (BENCH_RECORDS=1 bench/vs-qemu.sh > LOG),
# over every run of all the LOGs: several sessions pooled, or one the test host cut short
# (its kernel panicked or it stalled before the bench printed its tables).
#
#   bench/vs-qemu-summary.sh LOG...
#
# A LOG is what bench/vs-qemu.sh printed ("record TEST VMM RUN KEY VALUE" lines) or the test
# host's console (build/l1/vs-qemu-console.log, the same lines after "E2E-OUT "). Runs keep
# apart across LOGs (run N of the i-th LOG counts as i*1000+N). Exits 2 on a LOG that cannot
# be read or holds no records.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: vs-qemu-summary.sh LOG..." >&2 && exit 2; }
records=$(mktemp "${TMPDIR:-/tmp}/kiln-vsq-records.XXXXXX")
trap 'rm -f "$records"' EXIT

i=0
for log in "$@"; do
	i=$((i + 1))
	[ -r "$log" ] || { echo "vs-qemu-summary: $log: cannot read it" >&2 && exit 2; }
	n=$(tr -d '\r' < "$log" | awk -v s="$i" '
		{ sub(/^E2E-OUT /, "") }
		$1 == "record" && NF == 6 && $4 ~ /^[0-9]+$/ {
			print $2, $3, s * 1000 + $4, $5, $6; n++ }
		END { print n + 0 > "/dev/stderr" }' 2>&1 >> "$records")
	[ "$n" != 0 ] || { echo "vs-qemu-summary: $log: no \"record\" lines (BENCH_RECORDS=1)" >&2 && exit 2; }
done

# kiln and QEMU first, then the other kilns as they first appear.
OTHER_KILNS=$(awk '$2 != "kiln" && $2 != "qemu" && !seen[$2]++ { printf "%s ", $2 }' "$records")
VMMS="kiln qemu $OTHER_KILNS"
# shellcheck source=bench/vs-qemu-table.inc
. "$here/vs-qemu-table.inc"

echo "vs-qemu-summary: $# session log(s), $(wc -l < "$records" | tr -d ' ') records"
# Any transfer of bench/net-vs-qemu.sh (BENCH_NET_ONLY sessions have only some).
if grep -Eq '^(h2g|g2h|h2g-nc|g2h-nc) ' "$records"; then
	net_summary
fi
if grep -q '^write ' "$records"; then
	blk_summary
fi
