#!/bin/sh
# build-tools.sh: builds the e2e socket tools as static musl binaries (the guest and the L1
# test host have no libc of their own): vsock-tool (guest, AF_VSOCK) and uds-tool (host,
# AF_UNIX, kiln's vsock uds_path). Rebuilt only when a source changed.
#
#   tests/e2e/tools/build-tools.sh [-o DIR]     DIR defaults to build/e2e
set -eu

die() {
	echo "build-tools: $*" >&2
	exit 1
}

root_dir=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root_dir"
out=build/e2e
while getopts o: opt; do
	case $opt in
	o) out=$OPTARG ;;
	*) die "usage: $0 [-o DIR]" ;;
	esac
done
cc=${MUSL_CC:-musl-gcc}
command -v "$cc" > /dev/null || die "$cc not found (install musl-tools)"
mkdir -p "$out/tools-include"
# musl's include path lacks the kernel headers (<linux/vm_sockets.h>): borrow the system's.
for d in linux asm-generic; do
	ln -sfn "/usr/include/$d" "$out/tools-include/$d"
done
ln -sfn "/usr/include/$(gcc -print-multiarch 2> /dev/null || echo x86_64-linux-gnu)/asm" \
	"$out/tools-include/asm"

for tool in vsock-tool uds-tool; do
	src=tests/e2e/tools/$tool.c
	sum=$(cat "$src" tests/e2e/tools/stream.h | sha256sum | cut -d' ' -f1)
	if [ -x "$out/$tool" ] && [ "$(cat "$out/$tool.inputs" 2> /dev/null)" = "$sum" ]; then
		continue
	fi
	"$cc" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static \
		-isystem "$out/tools-include" -o "$out/$tool.tmp" "$src"
	strip "$out/$tool.tmp"
	mv "$out/$tool.tmp" "$out/$tool"
	echo "$sum" > "$out/$tool.inputs"
	echo "build-tools: $out/$tool"
done
