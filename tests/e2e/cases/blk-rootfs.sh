#!/bin/sh
# blk-rootfs: the guest boots from an ext4 root filesystem. The drive with is_root_device
# comes second in the config but must be /dev/vda, and kiln must add "root=/dev/vda rw" to
# the command line (the JSON's boot_args have neither; the initramfs reports what it found
# in /proc/cmdline). The test initramfs acts like a real one (action rootfs): it mounts
# root= and switch_roots into the image's /sbin/init, which runs as PID 1 from /dev/vda,
# writes /booted and powers off. On this host the image then holds /booted.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/blk-common.inc
. "$E2E_CASES/blk-common.inc"
blk_raw "$E2E_CASE.vdb" 4
blk_copy blk-root.ext4 "$E2E_CASE.vda"
expect_boots_and_does blk-rootfs.json rootfs poweroff
[ "$(guest_line "rootfs mounted ")" = "root=/dev/vda mode=rw: switch_root" ] ||
	fail "initramfs: $(guest_line "rootfs mounted ")"
[ "$(guest_line "rootfs init ")" = "pid=1 id=kiln-blk-rootfs" ] ||
	fail "root filesystem init: $(guest_line "rootfs init ")"
mount_line=$(guest_line "rootfs mount ")
case $mount_line in
"/dev/vda ext4 rw,"*) ;;
*) fail "the guest's / is not /dev/vda ext4 rw: $mount_line" ;;
esac
guest_line "rootfs wrote /booted" > /dev/null
blk_mount "$E2E_CASE.vda"
booted=$(cat "$mnt/booted" 2> /dev/null)
blk_umount
[ "$booted" = "written by the rootfs init" ] || fail "/booted in the root image: '$booted'"
echo "guest / was $mount_line"
pass
