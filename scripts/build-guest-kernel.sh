#!/bin/sh
# build-guest-kernel.sh: builds the optional minimal guest kernel (`make guest-kernel`) from
# Debian's linux-source-6.1 package: build/guest-kernel/vmlinux (ELF) and .../bzImage.
#
#   scripts/build-guest-kernel.sh [--config-only]
#
# The configuration is allnoconfig plus the fragment tests/guest/kernel.config
# (KCONFIG_ALLCONFIG), then olddefconfig; every option the fragment sets must survive,
# otherwise the script stops and names the option. --config-only stops after that check.
# The source is unpacked once into build/guest-kernel/src and the build is incremental.
# Needs: linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev.
# Environment: KSRC_TAR (default /usr/src/linux-source-6.1.tar.xz), JOBS (default nproc).
set -eu

die() {
	echo "build-guest-kernel: $*" >&2
	exit 1
}

root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir"
tarball=${KSRC_TAR:-/usr/src/linux-source-6.1.tar.xz}
fragment=$root_dir/tests/guest/kernel.config
out=$root_dir/build/guest-kernel
src=$out/src
obj=$out/obj
jobs=${JOBS:-$(nproc)}

[ -r "$tarball" ] || die "$tarball missing (apt-get install linux-source-6.1)"
for tool in make gcc flex bison bc; do
	command -v "$tool" > /dev/null || die "$tool not found (install build-essential flex bison bc)"
done

# Unpack the source once per tarball.
stamp=$(stat -c '%s %Y' "$tarball")
if [ "$(cat "$src/.kiln-unpacked" 2> /dev/null)" != "$stamp" ]; then
	echo "build-guest-kernel: unpacking $tarball"
	rm -rf "$src" "$obj"
	mkdir -p "$src"
	tar -xf "$tarball" -C "$src" --strip-components=1
	echo "$stamp" > "$src/.kiln-unpacked"
fi
mkdir -p "$obj"

kmake() {
	make -C "$src" O="$obj" ARCH=x86_64 -j"$jobs" "$@"
}

kmake -s allnoconfig KCONFIG_ALLCONFIG="$fragment"
kmake -s olddefconfig
# Every "CONFIG_X=v" and "# CONFIG_X is not set" of the fragment must be in .config as is.
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*) want=$line ;;
	"# CONFIG_"*" is not set") want=$line ;;
	*) continue ;;
	esac
	if ! grep -qxF -- "$want" "$obj/.config"; then
		opt=$(echo "$want" | sed -E 's/^# //; s/[= ].*//')
		have=$(grep -E "(^|# )${opt}[= ]" "$obj/.config" || echo 'nothing')
		echo "build-guest-kernel: '$want' did not apply; .config has: $have" >&2
		bad=1
	fi
done < "$fragment"
[ "$bad" = 0 ] || die "tests/guest/kernel.config does not apply cleanly"
echo "build-guest-kernel: configuration applies cleanly ($obj/.config)"
[ "${1:-}" != --config-only ] || exit 0

kmake bzImage
cp "$obj/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
cp "$obj/arch/x86/boot/bzImage" "$out/bzImage.tmp" && mv "$out/bzImage.tmp" "$out/bzImage"
echo "build-guest-kernel: $out/vmlinux and $out/bzImage ($(kmake -s kernelrelease))"
