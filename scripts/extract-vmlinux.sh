#!/bin/sh
# extract-vmlinux.sh: extracts the uncompressed ELF vmlinux from an x86 bzImage.
#
#   scripts/extract-vmlinux.sh [BZIMAGE [OUT]]
#
# BZIMAGE defaults to the newest /boot/vmlinuz-*-cloud-amd64, OUT to build/e2e/vmlinux.
# The compressed payload is located through the setup header (boot protocol >= 2.08:
# payload_offset at 0x248, payload_length at 0x24c, relative to the protected-mode code at
# (setup_sects + 1) * 512), its format is detected from its magic bytes and it is
# decompressed with the matching Debian tool (gzip, xz, zstd, lz4, bzip2, lzma, lzop).
# The result must be an x86-64 ELF file. OUT is rewritten only when BZIMAGE changed.
set -eu

die() {
	echo "extract-vmlinux: $*" >&2
	exit 1
}

# le32 FILE OFFSET / le16 FILE OFFSET / le8: little-endian unsigned integer at OFFSET.
le_n() {
	od -An -tu"$3" -j "$2" -N "$3" --endian=little "$1" | tr -d ' \n'
}

# hexbytes FILE OFFSET COUNT: COUNT bytes at OFFSET as a lowercase hex string.
hexbytes() {
	od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'
}

bzimage=${1:-}
if [ -z "$bzimage" ]; then
	bzimage=$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' | sort -V | tail -n 1)
	[ -n "$bzimage" ] || die "no /boot/vmlinuz-*-cloud-amd64 found (install linux-image-cloud-amd64)"
fi
out=${2:-build/e2e/vmlinux}
[ -r "$bzimage" ] || die "$bzimage: not readable"

if [ -s "$out" ] && [ -s "$out.src" ] && [ "$(cat "$out.src")" = "$(sha256sum < "$bzimage")" ]; then
	exit 0 # up to date
fi

[ "$(hexbytes "$bzimage" 0x202 4)" = "48647253" ] || die "$bzimage: no 'HdrS' setup header"
version=$(le_n "$bzimage" 0x206 2)
[ "$version" -ge $((0x208)) ] ||
	die "$bzimage: boot protocol $(printf '%x' "$version") < 2.08, no payload fields"
setup_sects=$(le_n "$bzimage" 0x1f1 1)
[ "$setup_sects" -ne 0 ] || setup_sects=4
payload_offset=$(le_n "$bzimage" 0x248 4)
payload_length=$(le_n "$bzimage" 0x24c 4)
start=$(((setup_sects + 1) * 512 + payload_offset))
size=$(stat -c %s "$bzimage")
if [ "$payload_length" -le 4 ] || [ "$start" -ge "$size" ] ||
	[ "$payload_length" -gt $((size - start)) ]; then
	die "$bzimage: payload [$start, +$payload_length) outside the file ($size bytes)"
fi

# Every format but gzip gets the uncompressed size appended as 4 bytes by the kernel build
# (the *_with_size rules); those bytes are cut off and checked against the output.
magic=$(hexbytes "$bzimage" "$start" 6)
with_size=1
case $magic in
1f8b*) fmt=gzip; with_size=0; set -- gzip -dc ;;
fd377a585a00) fmt=xz; set -- xz -dc --single-stream ;;
28b52ffd*) fmt=zstd; set -- zstd -dcq ;;
02214c18*) fmt=lz4; set -- lz4 -dcq ;;
425a68*) fmt=bzip2; set -- bzip2 -dc ;;
5d0000*) fmt=lzma; set -- xz -dc --format=lzma ;;
894c5a4f*) fmt=lzo; set -- lzop -dc ;;
*) die "$bzimage: unknown payload compression (magic $magic)" ;;
esac
command -v "$1" > /dev/null || die "$1 not installed, needed for the $fmt payload of $bzimage"

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp" "$tmp.z"' EXIT
dd if="$bzimage" of="$tmp.z" bs=64k iflag=skip_bytes,count_bytes skip="$start" \
	count="$((payload_length - 4 * with_size))" status=none
# lz4 legacy frames have no end marker: the tool may complain about trailing data; the
# ELF and size checks below decide.
"$@" < "$tmp.z" > "$tmp" || [ "$fmt" = lz4 ] || die "$bzimage: $fmt decompression failed"

[ "$(hexbytes "$tmp" 0 5)" = "7f454c4602" ] || die "$bzimage: payload is not an ELF64 file"
[ "$(le_n "$tmp" 18 2)" = "62" ] || die "$bzimage: payload ELF is not x86-64"
if [ "$with_size" = 1 ]; then
	want=$(le_n "$bzimage" $((start + payload_length - 4)) 4)
	got=$(stat -c %s "$tmp")
	[ "$want" = "$got" ] || die "$bzimage: decompressed $got bytes, header says $want"
fi
mv "$tmp" "$out"
sha256sum < "$bzimage" > "$out.src"
echo "extract-vmlinux: $out ($fmt payload of $bzimage)"
