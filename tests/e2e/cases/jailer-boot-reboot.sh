#!/bin/sh
# jailer-boot-reboot: kiln-jailer starts kiln for the stock Debian bzImage (2 vCPUs, 256 MiB,
# kernel, initramfs and config staged in the jail, jailer-boot-reboot.json as /vm.json) as
# uid/gid 1000 with --new-pid-ns and cgroup v2. While the guest waits
# (kiln.test=wait_then_reboot), the case checks kiln from outside through /proc: every kiln
# thread has Seccomp 2 with one filter, no capabilities in any set, no_new_privs and uid/gid
# 1000; there are vcpu_count + 1 of them; kiln's root is the jail (same inode, the expected
# files, one mount); its mount and pid namespaces are its own (pid 1 there); its cgroup, argv
# and empty environment are the jailer's. Then it writes "go" to the guest console: the
# guest reboots, kiln exits 0 and the jailer, which returns once kiln runs, has exited 0.
#
# The jailer needs pivot_root, which refuses a process whose root is an initramfs (the L1
# test host's): it runs chrooted in a tmpfs ("host root") holding /proc, a cgroup2 mount,
# /e2e (bind) and the chroot base dir. It runs under /e2e/subreaper, which kiln (orphaned when
# the jailer exits) is reparented to, so kiln's exit status is seen. (From L1, readlink of
# /proc/<kiln>/root then names the chroot dir, where pivot_root left the jail mount in kiln's
# namespace; the check compares the inode instead.)
# shellcheck disable=SC2317 # cleanup, jailer_done, guest_waits: called indirectly
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"

[ "$(id -u)" = 0 ] || fail "needs root (kiln-jailer)"
JUID=1000
JGID=1000
id=e2e-boot-reboot
cfg=jailer-boot-reboot.json
host=$E2E_WORK/$E2E_CASE.host
base=/srv/jailer
jail=$host$base/kiln/$id/root
cg=$host/sys/fs/cgroup
reaped=$E2E_WORK/$E2E_CASE.reaped
fifo=$E2E_WORK/$E2E_CASE.stdin
kpid=
sr_pid=
cg_added=

# cleanup: kills what is left (a kiln still running after its hang dump), removes the
# cgroups and the host root; silent (the last line of the case's output must stay PASS) and
# idempotent.
cleanup() {
	if [ -n "$kpid" ] && [ -d "/proc/$kpid" ]; then
		kill_dumped "$kpid"
		sleep 0.5
	fi
	[ -z "$sr_pid" ] || kill -KILL "$sr_pid"
	if [ -d "$cg/kiln" ]; then
		rmdir "$cg/kiln/$id" "$cg/kiln"
	fi
	[ -z "$cg_added" ] || echo "-$cg_added" > "$cg/cgroup.subtree_control"
	cg_added=
	for m in "$host/e2e" "$host/proc" "$cg" "$host"; do
		if grep -q " $m " /proc/self/mounts; then umount "$m" || umount -l "$m"; fi
	done
	rmdir "$host"
	rm -f "$fifo"
} > /dev/null 2>&1
trap cleanup EXIT

# ---- the host root for the jailer, and the staged jail ----
mkdir -p "$host" || fail "mkdir $host"
mount -t tmpfs -o size=256m,mode=755 e2e-jailer "$host" || fail "mount tmpfs on $host"
mkdir -p "$host/proc" "$cg" "$host/e2e" "$jail" || fail "mkdir in $host"
mount -t proc proc "$host/proc" || fail "mount proc in $host"
mount -t cgroup2 cgroup2 "$cg" || fail "mount cgroup2 in $host"
mount -o bind "$E2E_DIR" "$host/e2e" || fail "bind mount $E2E_DIR"
grep -qw pids "$cg/cgroup.subtree_control" || cg_added=pids
exec_file=/e2e/kiln
if ! cmp -s "$KILN" "$E2E_DIR/kiln"; then # direct mode: KILN lives elsewhere
	{ mkdir -p "$host/opt" && cp "$KILN" "$host/opt/kiln"; } || fail "cannot copy $KILN"
	exec_file=/opt/kiln
fi
for f in bzImage:bzImage guest-initramfs.cpio.gz:initrd.cpio.gz; do
	cp "$E2E_DIR/${f%:*}" "$jail/${f#*:}" || fail "cannot stage $E2E_DIR/${f%:*} in $jail"
done
cp "$E2E_CASES/$cfg" "$jail/vm.json" || fail "cannot stage $cfg in $jail"

# ---- start: subreaper -> chroot -> kiln-jailer -> (fork, new pid ns) kiln ----
rm -f "$fifo" "$reaped"
mkfifo "$fifo" || fail "mkfifo $fifo"
start=$(uptime_cs)
timeout -s KILL "$E2E_KILN_TIMEOUT" "$E2E_DIR/subreaper" -o "$reaped" \
	chroot "$host" /e2e/kiln-jailer --id "$id" --exec-file "$exec_file" \
	--uid $JUID --gid $JGID --chroot-base-dir "$base" --new-pid-ns --cgroup-version 2 \
	--cgroup pids.max=64 -- --no-api --config-file /vm.json \
	> "$console" 2> "$stderr_log" <> "$fifo" &
sr_pid=$!
kiln_desc="still running"

# until CONDITION-COMMAND...: polls every 0.2 s for up to $E2E_KILN_TIMEOUT s; 1 on timeout.
until_true() {
	i=0
	until "$@"; do
		i=$((i + 1))
		[ "$i" -le $((E2E_KILN_TIMEOUT * 5)) ] || return 1
		sleep 0.2
	done
}
jailer_done() { grep -q '^child ' "$reaped" 2> /dev/null || ! kill -0 "$sr_pid" 2> /dev/null; }
guest_waits() {
	grep -aq 'KILN-E2E: waiting' "$console" && return 0
	[ -d "/proc/$kpid" ] || fail "kiln exited before the guest was ready: $(tr '\n' ' ' < "$stderr_log")$(last_marker)"
	return 1
}

until_true jailer_done || fail "the jailer did not return$(last_marker)"
jline=$(grep '^child ' "$reaped" 2> /dev/null)
case $jline in
"child "*" exit 0") ;;
*) fail "kiln-jailer: ${jline:-no exit status}: $(tr '\n' ' ' < "$stderr_log")" ;;
esac
echo "kiln-jailer returned: $jline"
kpid=$(cat "$jail/kiln.pid" 2> /dev/null)
{ [ -n "$kpid" ] && [ -d "/proc/$kpid" ]; } ||
	fail "no kiln process (pid file: '${kpid}'): $(tr '\n' ' ' < "$stderr_log")"
until_true guest_waits || fail "the guest never got to 'waiting'$(last_marker)"
echo "guest waiting after $((($(uptime_cs) - start) / 100)) s; kiln is host pid $kpid"

# ---- kiln from outside, while the guest runs ----
[ "$(sed -n 's/^Name:[[:space:]]*//p' "/proc/$kpid/status")" = kiln ] ||
	fail "pid $kpid is not kiln: $(head -n 1 "/proc/$kpid/status")"
# One line per thread: tid name seccomp filters nnp capinh capprm capeff capbnd capamb uid gid
threads=$(for st in /proc/"$kpid"/task/*/status; do
	awk -v t="$(basename "$(dirname "$st")")" '
		{ sub(":", "", $1); v[$1] = $2; if ($1 == "Uid" || $1 == "Gid") v[$1] = $2 "/" $3 "/" $4 "/" $5 }
		END { print t, v["Name"], v["Seccomp"], v["Seccomp_filters"], v["NoNewPrivs"], v["CapInh"],
			v["CapPrm"], v["CapEff"], v["CapBnd"], v["CapAmb"], v["Uid"], v["Gid"] }' "$st"
done)
echo "threads (tid name seccomp filters nnp inh prm eff bnd amb uid gid):"
echo "$threads" | sed 's/^/  /'
zero=0000000000000000
ids="$JUID/$JUID/$JUID/$JUID $JGID/$JGID/$JGID/$JGID"
bad=$(echo "$threads" | awk -v z=$zero -v ids="$ids" '$2 !~ /^kvm-/ &&
	($3 != 2 || $4 != 1 || $5 != 1 || $6 != z || $7 != z || $8 != z || $9 != z || $10 != z ||
	 $11 " " $12 != ids)')
[ -z "$bad" ] || fail "a kiln thread is not confined: $(echo "$bad" | head -n 1)"
nthreads=$(echo "$threads" | awk '$2 !~ /^kvm-/' | wc -l)
vcpus=$(json_int vcpu_count "$E2E_CASES/$cfg")
[ "$nthreads" = $((vcpus + 1)) ] ||
	fail "kiln has $nthreads threads, expected vcpu_count + 1 = $((vcpus + 1))"

root_id=$(stat -L -c '%d:%i' "/proc/$kpid/root")
jail_id=$(stat -c '%d:%i' "$jail")
# shellcheck disable=SC2012 # plain names, from the case's own staging
root_ls=$(ls -A "/proc/$kpid/root" | sort | tr '\n' ' ')
echo "root: readlink '$(readlink "/proc/$kpid/root")', dev:inode $root_id (jail $jail_id), holds: $root_ls"
[ "$root_id" = "$jail_id" ] || fail "kiln's root $root_id is not the jail $jail ($jail_id)"
[ "$root_ls" = "bzImage dev initrd.cpio.gz kiln kiln.pid run vm.json " ] ||
	fail "kiln's / holds: $root_ls"
mounts=$(awk '{ print $5 }' "/proc/$kpid/mountinfo" | tr '\n' ' ')
[ "$mounts" = "/ " ] || fail "kiln's mount table is not just the jail: $mounts"

for ns in mnt pid; do
	mine=$(readlink "/proc/self/ns/$ns")
	its=$(readlink "/proc/$kpid/ns/$ns")
	echo "ns/$ns: kiln $its, L1 $mine"
	{ [ -n "$its" ] && [ "$its" != "$mine" ]; } || fail "kiln is in L1's $ns namespace ($its)"
done
nspid=$(sed -n 's/^NSpid:[[:space:]]*//p' "/proc/$kpid/status" | tr -s '\t ' '  ')
[ "$nspid" = "$kpid 1" ] || fail "kiln is not pid 1 of its pid namespace (NSpid $nspid)"
kcg=$(grep '^0::' "/proc/$kpid/cgroup")
{ [ "$kcg" = "0::/kiln/$id" ] && [ "$(cat "$cg/kiln/$id/pids.max")" = 64 ]; } ||
	fail "kiln's cgroup is '$kcg', pids.max $(cat "$cg/kiln/$id/pids.max" 2>&1)"
argv=$(tr '\0' ' ' < "/proc/$kpid/cmdline")
[ "$argv" = "/kiln --id $id --no-api --config-file /vm.json " ] || fail "kiln's argv: $argv"
envc=$(wc -c < "/proc/$kpid/environ")
[ "$envc" = 0 ] || fail "kiln's environment is not empty ($envc bytes)"
echo "cgroup $kcg; argv $argv; environ empty; fds: $(for fd in "/proc/$kpid/fd"/*; do
	printf '%s->%s ' "${fd##*/}" "$(readlink "$fd")"
done)"

# ---- let the guest reboot; kiln and the jailer must end with 0 ----
echo go > "$fifo"
wait "$sr_pid"
sr_rc=$?
sr_pid=
kiln_secs=$(($(uptime_cs) - start))
kiln_secs=$((kiln_secs / 100)).$(printf '%02d' $((kiln_secs % 100)))
echo "subreaper exited $sr_rc after ${kiln_secs}s; reaped: $(tr '\n' ';' < "$reaped")"
[ "$sr_rc" != 137 ] || fail "kiln hung: killed after ${E2E_KILN_TIMEOUT}s$(last_marker)"
kline=$(grep "^reaped $kpid " "$reaped")
kiln_rc=$(echo "$kline" | sed -n 's/^reaped [0-9]* exit \([0-9]*\)$/\1/p')
kiln_desc=${kline#reaped "$kpid" }
[ -n "$kline" ] || fail "kiln (pid $kpid) was never reaped: $(tr '\n' ';' < "$reaped")"
[ "$sr_rc" = 0 ] || fail "kiln-jailer exited $sr_rc"
kpid=
expect_console "KILN-E2E: ready"
expect_machine "$cfg"
expect_console "KILN-E2E: action=wait_then_reboot"
expect_console "KILN-E2E: wait-done input=go"
if grep -aq 'KILN-E2E: error' "$console"; then
	fail "guest error: $(grep -a 'KILN-E2E: error' "$console" | head -n 1 | tr -d '\r')"
fi
expect_end reboot
pass
