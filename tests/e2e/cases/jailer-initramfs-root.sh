#!/bin/sh
# jailer-initramfs-root: kiln-jailer run straight from the L1 test host's root, which is the
# initial ramfs, where pivot_root fails with EINVAL. The jailer must say so in one line and
# fall back, as runc's no-pivot mode does, to moving the jail onto / and chroot; the rest
# is unchanged. kiln (uid/gid 1000, --new-pid-ns) boots the stock bzImage staged in the
# jail, the guest powers off, kiln exits 0. While it runs, kiln's root must be the jail
# (same inode, the staged files) and its mount table hold nothing of L1's.
# shellcheck disable=SC2317 # cleanup: called indirectly
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"

[ "$(id -u)" = 0 ] || fail "needs root (kiln-jailer)"
grep -q '^[0-9]* [0-9]* [^ ]* / / .* - rootfs ' /proc/self/mountinfo ||
	fail "L1's / is not the initial ramfs: $(awk '$5 == "/"' /proc/self/mountinfo | tail -n 1)"
id=e2e-initramfs
cfg=jailer-initramfs-root.json
base=/srv/jailer-initramfs
jail=$base/kiln/$id/root
reaped=$E2E_WORK/$E2E_CASE.reaped
sr_pid=

cleanup() {
	[ -z "$sr_pid" ] || kill -KILL "$sr_pid"
	rm -rf "$base"
} > /dev/null 2>&1
trap cleanup EXIT

rm -rf "$base"
mkdir -p "$jail" || fail "mkdir $jail"
for f in bzImage:bzImage guest-initramfs.cpio.gz:initrd.cpio.gz; do
	cp "$E2E_DIR/${f%:*}" "$jail/${f#*:}" || fail "cannot stage $E2E_DIR/${f%:*} in $jail"
done
cp "$E2E_CASES/$cfg" "$jail/vm.json" || fail "cannot stage $cfg in $jail"

start=$(uptime_cs)
timeout -s KILL "$E2E_KILN_TIMEOUT" "$E2E_DIR/subreaper" -o "$reaped" \
	"$E2E_DIR/kiln-jailer" --id "$id" --exec-file "$KILN" --uid 1000 --gid 1000 \
	--chroot-base-dir "$base" --new-pid-ns -- --no-api --config-file /vm.json \
	> "$console" 2> "$stderr_log" < /dev/null &
sr_pid=$!

# kiln's root and mounts, checked once while it runs (the guest needs seconds to boot).
kpid=
i=0
while [ "$i" -lt 100 ] && [ -z "$kpid" ]; do
	kpid=$(cat "$jail/kiln.pid" 2> /dev/null)
	[ -n "$kpid" ] && [ -d "/proc/$kpid" ] || kpid=
	i=$((i + 1))
	sleep 0.1
done
if [ -n "$kpid" ]; then
	root_id=$(stat -L -c '%d:%i' "/proc/$kpid/root" 2> /dev/null)
	jail_id=$(stat -c '%d:%i' "$jail")
	mounts=$(awk '{ print $5 }' "/proc/$kpid/mountinfo" 2> /dev/null | tr '\n' ' ')
	echo "kiln pid $kpid: root $root_id (jail $jail_id), mounts: $mounts"
	[ -z "$root_id" ] || [ "$root_id" = "$jail_id" ] ||
		fail "kiln's root $root_id is not the jail ($jail_id)"
	case $mounts in
	"" | "/ " | "/ / ") ;;
	*) fail "kiln's mount table holds more than the jail: $mounts" ;;
	esac
fi

wait "$sr_pid"
sr_rc=$?
sr_pid=
kiln_secs=$(($(uptime_cs) - start))
kiln_secs=$((kiln_secs / 100)).$(printf '%02d' $((kiln_secs % 100)))
echo "subreaper exited $sr_rc after ${kiln_secs}s; reaped: $(tr '\n' ';' < "$reaped")"
echo "stderr: $(tr '\n' '|' < "$stderr_log")"
[ "$sr_rc" != 137 ] || fail "kiln hung: killed after ${E2E_KILN_TIMEOUT}s$(last_marker)"
grep -q "kiln-jailer: / is the initial ramfs" "$stderr_log" ||
	fail "no line about the initramfs fallback: $(tr '\n' ' ' < "$stderr_log")"
[ "$(grep -c 'kiln-jailer:' "$stderr_log")" = 1 ] ||
	fail "more than the one jailer line: $(tr '\n' ' ' < "$stderr_log")"
kline=$(grep '^reaped .* exit ' "$reaped" | tail -n 1)
kiln_rc=$(echo "$kline" | sed -n 's/^reaped [0-9]* exit \([0-9]*\)$/\1/p')
kiln_desc=${kline#reaped * }
[ -n "$kline" ] || fail "kiln was never reaped: $(tr '\n' ';' < "$reaped")"
expect_console "KILN-E2E: ready"
expect_console "KILN-E2E: action=poweroff"
expect_exit 0
pass
