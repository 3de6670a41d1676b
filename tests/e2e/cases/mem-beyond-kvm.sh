#!/bin/sh
# mem-beyond-kvm: 1 TiB of guest RAM (the config's maximum) is more than the L1 test host's
# KVM can map with its 40 guest-physical address bits (QEMU's default for -cpu EPYC): kiln
# must exit 2 with one line naming machine-config.mem_size_mib and the limit, and start
# nothing (it used to exit 1 with "KVM_SET_USER_MEMORY_REGION: Invalid argument").
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
E2E_KILN_TIMEOUT=60
bits=$(sed -n 's/^address sizes[[:space:]]*: \([0-9]*\) bits physical.*/\1/p' /proc/cpuinfo | head -n 1)
echo "L1 physical address bits: ${bits:-unknown}"
if [ -n "$bits" ] && [ "$bits" -gt 40 ]; then
	echo "1 TiB fits below 2^$bits: nothing to refuse on this host"
	pass
fi
run_kiln mem-beyond-kvm.json
echo "kiln: exit $kiln_rc: $(cat "$stderr_log")"
expect_exit 2
[ "$(grep -c . "$stderr_log")" = 1 ] || fail "not a one-line error: $(cat "$stderr_log")"
grep -q 'machine-config.mem_size_mib: 1048576 is more than .* (at most [0-9]*)' "$stderr_log" ||
	fail "the error does not name machine-config.mem_size_mib and the limit"
[ ! -s "$console" ] || fail "kiln wrote to the guest console: $(head -c 200 "$console")"
pass
