#!/bin/sh
# stage-powercut.sh: the L1 side of tests/e2e/powercut.sh. L1's /dev/vda is a disk image on
# the outer host: an ext4 filesystem holding drive.img (allocated, not sparse, so the guest's
# writes overwrite its blocks in place). kiln boots the e2e guest with /mnt/drive.img as a
# Writeback drive (a file, so unflushed writes stay in L1's page cache); the guest
# writes a 1 MiB pattern at 3 MiB with dd conv=fsync (action blk_flush) and prints a marker;
# at the marker this L1 dies at once (sysrq b: no sync, its page cache is lost), and the
# outer host reads the disk. Kernel parameter l1.powercut=flush runs /e2e/kiln;
# l1.powercut=noflush runs /e2e/kiln-testhooks with KILN_TEST_NO_FLUSH=1 (flush requests
# complete without fdatasync): the control run, whose pattern must be lost.
set -u
mode=$(sed -n 's/.*l1\.powercut=\([a-z]*\).*/\1/p' /proc/cmdline)
kiln=/e2e/kiln
case $mode in
flush) ;;
noflush)
	kiln=/e2e/kiln-testhooks
	export KILN_TEST_NO_FLUSH=1
	;;
*)
	echo "powercut: l1.powercut= must be flush or noflush, not '$mode'" >&2
	exit 1
	;;
esac
[ -x "$kiln" ] || { echo "powercut: $kiln missing" >&2 && exit 1; }
# Nothing L1 does on its own may write the disk back before the power cut.
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
echo 360000 > /proc/sys/vm/dirty_expire_centisecs
i=0
while [ ! -b /dev/vda ]; do
	i=$((i + 1))
	[ "$i" -le 100 ] || { echo "powercut: no /dev/vda in L1" >&2 && exit 1; }
	sleep 0.1
done
mkdir -p /mnt
mount -t ext4 /dev/vda /mnt || { echo "powercut: cannot mount /dev/vda" >&2 && exit 1; }
[ -f /mnt/drive.img ] || { echo "powercut: no drive.img on /dev/vda" >&2 && exit 1; }
w=/tmp/powercut
mkdir -p "$w"
truncate -s 4M "$w/unsafe.img"
cat > "$w/vm.json" << JSON
{
  "boot-source": {
    "kernel_image_path": "/e2e/bzImage",
    "initrd_path": "/e2e/guest-initramfs.cpio.gz",
    "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off quiet rdinit=/init i8042.noaux i8042.nomux i8042.dumbkbd kiln.test=blk_flush"
  },
  "drives": [
    {"drive_id": "unsafe", "path_on_host": "$w/unsafe.img", "is_root_device": false},
    {"drive_id": "writeback", "path_on_host": "/mnt/drive.img", "is_root_device": false,
     "cache_type": "Writeback"}
  ],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}
}
JSON
mkfifo "$w/stdin"
"$kiln" --no-api --config-file "$w/vm.json" > "$w/console" 2> "$w/stderr" <> "$w/stdin" &
kpid=$!
i=0
while ! grep -aq 'KILN-E2E: blk-flush synced' "$w/console"; do
	i=$((i + 1))
	if [ "$i" -gt 1200 ] || ! kill -0 "$kpid" 2> /dev/null; then
		echo "powercut: the guest never reported its flush (kiln $kiln)" >&2
		tr -d '\r' < "$w/console" | tail -n 20 | sed 's/^/powercut: console: /' >&2
		sed 's/^/powercut: kiln: /' "$w/stderr" >&2
		exit 1
	fi
	sleep 0.1
done
# Straight to the kernel log (critical level, printed at once even with "quiet"): the
# stage's own output is a pipe that the power cut does not wait for.
say() {
	echo "<2>E2E-OUT powercut: $*" > /dev/kmsg
}
say "$(grep -a 'KILN-E2E: blk-flush' "$w/console" | tr -d '\r' | sed 's/^.*KILN-E2E: //' | tr '\n' ' ')"
say "cutting the power (mode $mode)"
echo b > /proc/sysrq-trigger
sleep 10
echo "powercut: still alive after sysrq b" >&2
exit 1
