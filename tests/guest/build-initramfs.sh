#!/bin/sh
# build-initramfs.sh: builds the kiln e2e test guest's initramfs (gzip'ed newc cpio).
#
#   tests/guest/build-initramfs.sh [-o OUT] [-k KVER] [-i INIT] [-b FILE]... [MODULE...]
#
# Contents: busybox-static with its applet links, tests/guest/init (or INIT) as /init, the action
# files tests/guest/actions/*.sh in /etc/kiln-test.d/, extra programs given with -b (static
# binaries or scripts, copied to /bin), and optionally kernel modules
# (names such as virtio_blk, or paths relative to /lib/modules/KVER) from
# /lib/modules/KVER. Module dependencies are added from modules.dep, everything is listed
# in load order in /etc/modules; .ko.xz/.ko.zst/.ko.gz are decompressed here.
# OUT defaults to build/e2e/guest-initramfs.cpio.gz, KVER to the newest installed
# *-cloud-amd64 kernel. The archive is reproducible (fixed mtimes, sorted, gzip -n) and is
# only rebuilt when an input changed.
set -eu

die() {
	echo "build-initramfs: $*" >&2
	exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
out=build/e2e/guest-initramfs.cpio.gz
kver=
extra_bins=
init=$here/init
while getopts o:k:i:b: opt; do
	case $opt in
	o) out=$OPTARG ;;
	k) kver=$OPTARG ;;
	i)
		[ -f "$OPTARG" ] || die "-i $OPTARG: no such file"
		init=$(cd "$(dirname "$OPTARG")" && pwd)/$(basename "$OPTARG")
		;;
	b)
		[ -f "$OPTARG" ] || die "-b $OPTARG: no such file"
		extra_bins="$extra_bins $(cd "$(dirname "$OPTARG")" && pwd)/$(basename "$OPTARG")"
		;;
	*) die "usage: $0 [-o OUT] [-k KVER] [-i INIT] [-b FILE]... [MODULE...]" ;;
	esac
done
shift $((OPTIND - 1))
if [ -z "$kver" ] && [ $# -gt 0 ]; then
	kver=$(find /lib/modules -mindepth 1 -maxdepth 1 -name '*-cloud-amd64' -printf '%f\n' |
		sort -V | tail -n 1)
	[ -n "$kver" ] || die "no /lib/modules/*-cloud-amd64 (install linux-image-cloud-amd64)"
fi
moddir=/lib/modules/$kver
busybox=$(command -v busybox) || die "busybox not found (install busybox-static)"
ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
	die "$busybox is not static (install busybox-static)"

# resolve_module NAME|PATH: the module's path relative to $moddir.
resolve_module() {
	case $1 in
	*/*) rel=$1 ;;
	*)
		rel=$(grep -E "(^|/)($1|$(echo "$1" | tr _ -))\\.ko(\\.[a-z]+)?:" "$moddir/modules.dep" |
			head -n 1 | cut -d: -f1)
		;;
	esac
	if [ -z "$rel" ] || [ ! -e "$moddir/$rel" ]; then
		die "module $1 not found in $moddir"
	fi
	echo "$rel"
}

# add_module REL: appends REL's dependencies, then REL, to $mods (each once).
mods=
add_module() {
	case " $mods " in *" $1 "*) return 0 ;; esac
	deps=$(grep -E "^$1:" "$moddir/modules.dep" | cut -d: -f2)
	for dep in $deps; do
		add_module "$dep"
	done
	mods="$mods $1"
}

for m in "$@"; do
	add_module "$(resolve_module "$m")"
done

# Up to date if the inputs hash to the same value as last time.
inputs=$(
	{
		echo "kver=$kver mods=$mods"
		# shellcheck disable=SC2086 # a list of paths without spaces
		sha256sum "$busybox" "$init" $extra_bins
		find "$here/actions" -name '*.sh' -type f 2> /dev/null | sort | xargs -r sha256sum
		for m in $mods; do sha256sum "$moddir/$m"; done
	} | sha256sum | cut -d' ' -f1
)
if [ -s "$out" ] && [ "$(cat "$out.inputs" 2> /dev/null)" = "$inputs" ]; then
	exit 0
fi

mkdir -p "$(dirname "$out")"
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
root=$(mktemp -d "${TMPDIR:-/tmp}/kiln-guest-root.XXXXXX")
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/proc" \
	"$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/etc/kiln-test.d" \
	"$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
for f in $extra_bins; do
	install -m 755 "$f" "$root/bin/$(basename "$f")"
done
cp "$init" "$root/init"
chmod 755 "$root/init"
for f in "$here"/actions/*.sh; do
	[ -f "$f" ] && cp "$f" "$root/etc/kiln-test.d/"
done
: > "$root/etc/modules"
for m in $mods; do
	name=$(basename "$m" | sed -E 's/\.ko(\.[a-z]+)?$//')
	case $m in
	*.ko) cp "$moddir/$m" "$root/lib/modules/$name.ko" ;;
	*.ko.xz) xz -dc "$moddir/$m" > "$root/lib/modules/$name.ko" ;;
	*.ko.zst) zstd -dcq "$moddir/$m" > "$root/lib/modules/$name.ko" ;;
	*.ko.gz) gzip -dc "$moddir/$m" > "$root/lib/modules/$name.ko" ;;
	*) die "$m: unknown module compression" ;;
	esac
	echo "$name" >> "$root/etc/modules"
done
# The kernel opens /dev/console for init before anything is mounted (without root, init
# reopens it after mounting devtmpfs).
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
fi

find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) |
	gzip -n -9 > "$out_abs.tmp"
mv "$out_abs.tmp" "$out_abs"
echo "$inputs" > "$out_abs.inputs"
echo "build-initramfs: $out (modules:${mods:- none})"
