#!/bin/sh
# demo.sh: `make demo`, the way to see kiln work. Boots a demo VM with kiln on this terminal:
# Debian's cloud kernel, an initramfs that loads the virtio modules and switches to an ext4
# root filesystem (busybox) on a virtio-blk drive, a TAP (host side HOST_ADDR, guest eth0
# GUEST_ADDR) and a vsock (uds_path in a temporary directory).
#
#   scripts/demo.sh            (make demo; the build must be done)
#
# stdin a terminal: the guest's serial console is an interactive shell; `poweroff` ends the
# guest, kiln and this script. stdin not a terminal: it is read whole first, the guest runs it
# as shell commands (from a drive of its own) with the output here, then powers off, e.g.
#   echo 'uname -a; poweroff -f' | make demo
# On a host with a KVM that boots Linux (scripts/kvm-kind.sh: real) kiln runs here (the TAP
# needs root; without it the guest has no network interface). Otherwise kiln runs inside the
# L1 KVM test host (scripts/l1-boot.sh, tests/e2e/l1/stage-demo.sh) with its console passed
# through. Exits with kiln's exit code (0 when the guest powered off).
# Images are cached in build/demo/ and rebuilt when an input changes.
# Environment: BUILD (default build), DEMO_TIMEOUT (seconds; default 1800 with commands from
# stdin, a day interactive), KILN_KVM (see kvm-kind.sh).
set -u
root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir" || exit 1
BUILD=${BUILD:-build}
out=$BUILD/demo
TAP=kiln-demo0
HOST_ADDR=10.77.99.1/30
GUEST_ADDR=10.77.99.2/30
MODULES="virtio_mmio virtio_blk virtio_net vmw_vsock_virtio_transport"

die() {
	echo "demo: $*" >&2
	exit 1
}

say() {
	echo "demo: $*" >&2
}

# build_rootfs: $out/rootfs.ext4, busybox with scripts/demo/rootfs-* as its init scripts.
build_rootfs() {
	busybox=$(command -v busybox) || die "busybox not found (run scripts/setup.sh)"
	inputs=$(sha256sum "$busybox" scripts/demo/rootfs-* | sha256sum | cut -d' ' -f1)
	[ -s "$out/rootfs.ext4" ] && [ "$(cat "$out/rootfs.ext4.inputs" 2> /dev/null)" = "$inputs" ] &&
		return 0
	tree=$out/rootfs-tree
	rm -rf "$tree"
	mkdir -p "$tree/bin" "$tree/sbin" "$tree/usr/bin" "$tree/usr/sbin" "$tree/etc/init.d" \
		"$tree/proc" "$tree/sys" "$tree/dev" "$tree/tmp" "$tree/run" "$tree/root" "$tree/mnt"
	cp "$busybox" "$tree/bin/busybox"
	for applet in $("$busybox" --list); do
		[ "$applet" = busybox ] || ln -s busybox "$tree/bin/$applet"
	done
	ln -sf ../bin/busybox "$tree/sbin/init"
	cp scripts/demo/rootfs-inittab "$tree/etc/inittab"
	install -m 755 scripts/demo/rootfs-rcS "$tree/etc/init.d/rcS"
	install -m 755 scripts/demo/rootfs-session "$tree/etc/init.d/session"
	echo kiln-demo > "$tree/etc/hostname"
	echo 'root:x:0:0:root:/root:/bin/sh' > "$tree/etc/passwd"
	echo 'root:x:0:' > "$tree/etc/group"
	printf '%s\n' 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin' "PS1='kiln-demo:\\w# '" \
		> "$tree/etc/profile"
	rm -f "$out/rootfs.ext4"
	truncate -s 64M "$out/rootfs.ext4"
	mke2fs -q -t ext4 -L kiln-demo -E root_owner=0:0 -d "$tree" "$out/rootfs.ext4" ||
		die "mke2fs of $out/rootfs.ext4 failed"
	rm -rf "$tree"
	echo "$inputs" > "$out/rootfs.ext4.inputs"
	say "built $out/rootfs.ext4"
}

# build_guest: the guest's kernel, initramfs and root filesystem in $out.
build_guest() {
	mkdir -p "$out"
	cmp -s "/boot/vmlinuz-$kver" "$out/bzImage" || cp "/boot/vmlinuz-$kver" "$out/bzImage" ||
		die "cannot copy /boot/vmlinuz-$kver"
	# shellcheck disable=SC2086 # a list of module names
	tests/guest/build-initramfs.sh -k "$kver" -i scripts/demo/initramfs-init \
		-o "$out/initramfs.cpio.gz" $MODULES >&2 || die "cannot build the guest initramfs"
	build_rootfs
}

# vm_json KERNEL INITRD ROOTFS CMDS TAP UDS: kiln's config for the demo guest; no
# network interface when TAP is empty.
vm_json() {
	net=
	[ -z "$5" ] || net=",
  \"network-interfaces\": [
    { \"iface_id\": \"eth0\", \"host_dev_name\": \"$5\", \"guest_mac\": \"06:00:0a:4d:63:02\" }
  ]"
	cat << EOF
{
  "boot-source": {
    "kernel_image_path": "$1",
    "initrd_path": "$2",
    "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off quiet loglevel=3 rdinit=/init i8042.noaux i8042.nomux i8042.dumbkbd demo.ip=$GUEST_ADDR demo.host=${HOST_ADDR%/*}"
  },
  "drives": [
    { "drive_id": "rootfs", "path_on_host": "$3", "is_root_device": true },
    { "drive_id": "cmds", "path_on_host": "$4", "is_root_device": false, "is_read_only": true }
  ],
  "machine-config": { "vcpu_count": 2, "mem_size_mib": 256 },
  "vsock": { "guest_cid": 3, "uds_path": "$6" }$net
}
EOF
}

# make_run_files: the per-run copy of the root filesystem, and the commands drive: stdin's
# commands after a "#kiln-demo-cmds" line, NUL-padded to whole sectors, or one zero sector.
make_run_files() {
	cp --sparse=always "$out/rootfs.ext4" "$run/rootfs.ext4" || die "cannot copy the rootfs"
	if [ "$interactive" = yes ]; then
		truncate -s 512 "$run/cmds.img"
	else
		{ echo '#kiln-demo-cmds' && cat; } > "$run/cmds.img" || die "cannot read stdin"
		truncate -s %512 "$run/cmds.img"
	fi
}

# run_direct: kiln on this host; prints nothing, returns kiln's exit code.
run_direct() {
	tap=
	if [ "$(id -u)" = 0 ]; then
		ip link del "$TAP" 2> /dev/null # left over from an interrupted run
		if ip tuntap add dev "$TAP" mode tap && ip addr add "$HOST_ADDR" dev "$TAP" &&
			ip link set "$TAP" up; then
			tap=$TAP
		else
			say "cannot set up the TAP $TAP: the guest has no network interface"
		fi
	else
		say "not root: the guest has no network interface (creating a TAP needs root)"
	fi
	o=$(cd "$out" && pwd)
	vm_json "$o/bzImage" "$o/initramfs.cpio.gz" "$run/rootfs.ext4" "$run/cmds.img" "$tap" \
		"$run/vsock.sock" > "$run/vm.json"
	if [ "$interactive" = yes ]; then
		say "booting the guest with kiln here: 'poweroff' in the guest leaves"
		# --foreground: kiln stays in the terminal's foreground process group.
		timeout --foreground -k 10 "$timeout" "$BUILD/kiln" --no-api --config-file "$run/vm.json"
	else
		timeout -k 10 "$timeout" "$BUILD/kiln" --no-api --config-file "$run/vm.json" < /dev/null
	fi
	rc=$?
	[ -z "$tap" ] || ip link del "$TAP"
	return "$rc"
}

# build_l1: the L1 test host's image with the demo stage's files in /e2e/demo.
build_l1() {
	tree=$out/l1-tree
	mkdir -p "$tree/demo" "$out/fix/l1"
	FIX=$(cd "$out/fix" && pwd) tests/e2e/fixtures/net.sh || die "cannot build mktap"
	cp "$out/fix/l1/mktap" "$out/bzImage" "$out/initramfs.cpio.gz" "$tree/demo/"
	printf 'TAP=%s\nHOST_ADDR=%s\n' "$TAP" "$HOST_ADDR" > "$tree/demo/net.env"
	vm_json /e2e/demo/bzImage /e2e/demo/initramfs.cpio.gz /dev/vda /dev/vdb "$TAP" \
		/tmp/demo/vsock.sock > "$tree/demo/vm.json"
	tests/e2e/build-l1.sh -n -k "$BUILD/kiln" -v "$kver" -o "$out/L1-demo.cpio.gz" -d "$tree" >&2 ||
		die "cannot build the test host's image"
}

# run_in_l1: kiln inside the L1 test host, its console on this terminal; returns kiln's exit
# code as L1 wrote it to the result disk.
run_in_l1() {
	truncate -s 4096 "$run/result.img"
	set -- -t "$timeout" -D "$run/rootfs.ext4" -D "$run/cmds.img" -D "$run/result.img" \
		"$out/L1-demo.cpio.gz" l1.stage=demo l1.raw=1 loglevel=3
	if [ "$interactive" = yes ]; then
		say "booting the KVM test host (QEMU TCG, nested SVM; no KVM here boots Linux), then the" \
			"guest with kiln in it: 'poweroff' in the guest leaves (Ctrl-A x kills the test host)"
		scripts/l1-boot.sh "$@" 2> "$run/qemu.stderr"
	else
		say "running stdin's commands in the guest, in the KVM test host (QEMU TCG)"
		scripts/l1-boot.sh "$@" < /dev/null 2> "$run/qemu.stderr"
	fi
	qrc=$?
	[ "$qrc" != 137 ] || return 124
	rc=$(tr -d '\000' < "$run/result.img" | sed -n 's/^kiln-demo-rc=\([0-9]*\)$/\1/p')
	if [ -z "$rc" ]; then
		say "the test host ended (QEMU exit $qrc) before kiln did"
		grep -v 'TCG doesn.t support requested feature' "$run/qemu.stderr" | tail -n 5 >&2
		return 1
	fi
	return "$rc"
}

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
	[ -z "$run" ] || rm -rf "$run"
}

[ -x "$BUILD/kiln" ] || die "$BUILD/kiln not found (run make)"
kind=$(scripts/kvm-kind.sh) || exit 2
kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' 2> /dev/null |
	sed 's/^vmlinuz-//' | sort -V | tail -n 1)
[ -n "$kver" ] || die "no /boot/vmlinuz-*-cloud-amd64 (run scripts/setup.sh)"
interactive=no
[ -t 0 ] && interactive=yes
timeout=${DEMO_TIMEOUT:-$([ "$interactive" = yes ] && echo 86400 || echo 1800)}
run=
trap cleanup EXIT
trap 'exit 130' INT TERM
build_guest
[ "$kind" = real ] || build_l1
# A short path: the vsock's uds_path must fit in a sockaddr_un.
run=$(mktemp -d "${TMPDIR:-/tmp}/kiln-demo.XXXXXX") || die "cannot create a temporary directory"
make_run_files
if [ "$kind" = real ]; then
	run_direct
else
	run_in_l1
fi
rc=$?
case $rc in
0) ;;
124 | 137) say "stopped after DEMO_TIMEOUT=${timeout}s" ;;
*) say "kiln exited with $rc" ;;
esac
exit "$rc"
