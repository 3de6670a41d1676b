#!/bin/sh
# stage-demo.sh: the demo guest inside the L1 KVM test host, for hosts without a KVM that
# boots Linux (scripts/demo.sh boots L1 with l1.stage=demo l1.raw=1: this stage owns the
# console, and kiln's serial console is it). /e2e/demo holds vm.json (paths as seen here), the
# guest's kernel and initramfs, mktap and net.env (TAP=, HOST_ADDR=). L1's disks: /dev/vda the
# guest's root filesystem, /dev/vdb its commands drive, /dev/vdc gets "kiln-demo-rc=<kiln's
# exit code>", which scripts/demo.sh reads once L1 has powered off.
set -u
d=/e2e/demo
i=0
while [ ! -b /dev/vdc ] && [ "$i" -lt 100 ]; do
	i=$((i + 1))
	sleep 0.1
done
[ -b /dev/vdc ] || {
	echo "demo: the test host has no /dev/vdc (disks: $(ls /sys/block))" >&2
	exit 1
}
# shellcheck source=/dev/null
. "$d/net.env"
if ! "$d/mktap" "$TAP" || ! ip addr add "$HOST_ADDR" dev "$TAP" || ! ip link set "$TAP" up; then
	echo "demo: cannot set up the TAP $TAP" >&2
	exit 1
fi
mkdir -p /tmp/demo
cd /tmp/demo || exit 1
/e2e/kiln --no-api --config-file "$d/vm.json"
rc=$?
printf 'kiln-demo-rc=%d\n' "$rc" | dd of=/dev/vdc conv=notrunc,fsync 2> /dev/null
exit "$rc"
