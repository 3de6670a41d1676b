#!/bin/sh
# test-needs-kvm.sh: tests/unit/needs-kvm.txt names exactly the unit tests whose sources open
# /dev/kvm (those scripts/check.sh moves into the KVM test host on a host without KVM), each
# with a source. Prints "PASS unit/needs-kvm/<name>" or "FAIL unit/needs-kvm/<name>: why";
# exits 1 if any failed.
set -u
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root_dir" || exit 1
failed=0
listed=$(grep -v '^#' tests/unit/needs-kvm.txt)
opening=$(grep -l '"/dev/kvm"' tests/unit/*.c tests/unit/*.h | sed 's|.*/||; s|\.[ch]$||' |
	sort -u)
for name in $opening; do
	case $name in
	test_*)
		if printf '%s\n' "$listed" | grep -qx "$name"; then
			echo "PASS unit/needs-kvm/$name"
		else
			echo "FAIL unit/needs-kvm/$name: opens /dev/kvm but is not in tests/unit/needs-kvm.txt"
			failed=1
		fi
		;;
	*)
		echo "FAIL unit/needs-kvm/$name: a shared header opens /dev/kvm: list its tests by hand"
		failed=1
		;;
	esac
done
for name in $listed; do
	if [ ! -f "tests/unit/$name.c" ]; then
		echo "FAIL unit/needs-kvm/$name: listed, but tests/unit/$name.c does not exist"
		failed=1
	fi
done
exit $failed
