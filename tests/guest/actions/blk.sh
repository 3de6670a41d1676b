# virtio-blk actions of the e2e test guest (sourced by /init) for the tests/e2e/cases/blk-*
# cases. The drives are the images of tests/e2e/fixtures/blk.sh (an ext4 holding host.bin,
# a root filesystem) or raw scratch files, all copied by the case. Results are
# "KILN-E2E: blk-<what> ..." lines; anything unexpected is a "KILN-E2E: error: blk: ..."
# line, which fails the case.
# shellcheck shell=sh disable=SC2317 # actions are called by name

blk_err() {
	say "error: blk: $*"
}

# blk_wait_dev NAME: waits up to 10 s for /dev/NAME (virtio_blk probes at insmod, devtmpfs
# creates the node a moment later).
blk_wait_dev() {
	i=0
	while [ ! -b "/dev/$1" ]; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			blk_err "no /dev/$1 (block devices: $(cd /sys/block && echo *))"
			return 1
		fi
		sleep 0.1
	done
}

blk_sha256() {
	sha256sum "$1" | cut -d' ' -f1
}

# blk_flush_pattern: the 1 MiB the blk-flush-sigkill case expects (32-byte numbered lines);
# the case generates the same with the same busybox awk.
blk_flush_pattern() {
	awk 'BEGIN { for (i = 0; i < 32768; i++) printf "kiln-flush-%020d\n", i }'
}

# /dev/vda is the fixture's ext4: read the host's file, write a new one, sync, read it back
# from the drive (page cache dropped), reboot without unmounting.
action_blk_rw() {
	blk_wait_dev vda || guest_finish reboot
	mkdir -p /mnt
	if ! out=$(mount -t ext4 /dev/vda /mnt 2>&1); then
		blk_err "mount /dev/vda: $out"
		guest_finish reboot
	fi
	say "blk-rw host.bin sha256=$(blk_sha256 /mnt/host.bin) size=$(wc -c < /mnt/host.bin)"
	# 1 MiB + 1000 bytes of random data: several extents and a partial last block.
	if head -c 1049576 /dev/urandom > /mnt/guest.bin && sync; then
		sum=$(blk_sha256 /mnt/guest.bin)
		echo 3 > /proc/sys/vm/drop_caches
		say "blk-rw guest.bin sha256=$sum size=$(wc -c < /mnt/guest.bin)" \
			"readback=$(blk_sha256 /mnt/guest.bin)"
	else
		blk_err "cannot write /mnt/guest.bin"
	fi
	guest_finish reboot
}

# /dev/vda a writable raw drive, /dev/vdb the fixture's ext4 with is_read_only: reads work,
# every way of writing vdb fails, vda stays writable.
action_blk_ro() {
	blk_wait_dev vda && blk_wait_dev vdb || return 0
	say "blk-ro sysfs-ro vda=$(cat /sys/block/vda/ro) vdb=$(cat /sys/block/vdb/ro)"
	say "blk-ro serial vda=$(cat /sys/block/vda/serial) vdb=$(cat /sys/block/vdb/serial)"
	mkdir -p /mnt
	if ! out=$(mount -t ext4 -o ro /dev/vdb /mnt 2>&1); then
		blk_err "mount -o ro /dev/vdb: $out"
		return 0
	fi
	say "blk-ro host.bin sha256=$(blk_sha256 /mnt/host.bin)"
	if touch /mnt/new 2> /dev/null; then
		blk_err "created a file on the read-only mount"
	else
		say "blk-ro file-create refused"
	fi
	umount /mnt
	if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2> /dev/null; then
		blk_err "dd to /dev/vdb succeeded"
	else
		say "blk-ro raw-write refused"
	fi
	# busybox mount falls back to read-only on a write-protected device: either way the
	# filesystem must not end up writable.
	if mount -t ext4 -o rw /dev/vdb /mnt 2> /dev/null; then
		opts=$(awk '$2 == "/mnt" { print $4 }' /proc/mounts)
		if touch /mnt/new 2> /dev/null; then
			blk_err "rw mount of /dev/vdb is writable ($opts)"
		else
			say "blk-ro rw-mount read-only (${opts%%,*})"
		fi
		umount /mnt
	else
		say "blk-ro rw-mount refused"
	fi
	# The writable drive next to it: a pattern written with O_DIRECT reads back.
	blk_flush_pattern > /tmp/pattern
	if dd if=/tmp/pattern of=/dev/vda bs=65536 oflag=direct conv=fsync 2> /dev/null &&
		dd if=/dev/vda of=/tmp/back bs=65536 count=16 iflag=direct 2> /dev/null &&
		cmp -s /tmp/pattern /tmp/back; then
		say "blk-ro vda-write ok"
	else
		blk_err "write and read back on /dev/vda failed"
	fi
}

# root=/dev/vdX from kiln's command line: mount it like a real initramfs would (rw or ro
# as the command line says) and switch_root into its /sbin/init, which takes over.
action_rootfs() {
	root=$(kernel_param root)
	mode=ro
	read -r cmdline < /proc/cmdline
	for word in $cmdline; do
		case $word in rw | ro) mode=$word ;; esac
	done
	case $root in
	/dev/*) blk_wait_dev "${root#/dev/}" || return 0 ;;
	*)
		blk_err "rootfs: no root=/dev/... on the command line: $(cat /proc/cmdline)"
		return 0
		;;
	esac
	mkdir -p /newroot
	if ! out=$(mount -t ext4 -o "$mode" "$root" /newroot 2>&1); then
		blk_err "rootfs: mount $root: $out"
		return 0
	fi
	if [ ! -x /newroot/sbin/init ]; then
		blk_err "rootfs: $root has no /sbin/init"
		return 0
	fi
	say "rootfs mounted root=$root mode=$mode: switch_root"
	umount /tmp /run /dev/pts 2> /dev/null
	for fs in dev proc sys; do
		mount --move "/$fs" "/newroot/$fs"
	done
	exec switch_root /newroot /sbin/init
}

# /dev/vda Unsafe, /dev/vdb Writeback: 1 MiB pattern at 3 MiB on vdb with conv=fsync, then
# a marker; the host SIGKILLs kiln on the marker and finds the pattern in the image.
action_blk_flush() {
	blk_wait_dev vda && blk_wait_dev vdb || return 0
	say "blk-flush write_cache vda=$(tr ' ' _ < /sys/block/vda/queue/write_cache)" \
		"vdb=$(tr ' ' _ < /sys/block/vdb/queue/write_cache)"
	blk_flush_pattern > /tmp/pattern
	if dd if=/tmp/pattern of=/dev/vdb bs=1048576 seek=3 conv=fsync 2> /dev/null; then
		say "blk-flush synced sha256=$(blk_sha256 /tmp/pattern)"
	else
		blk_err "dd conv=fsync to /dev/vdb failed"
		return 0
	fi
	sleep 100 # bounded, in case the host side is gone
	blk_err "still running 100 s after the flush (the host should have killed kiln)"
}

# Keeps the guest (and its drives) in use until the host stops kiln.
action_blk_hold() {
	blk_wait_dev vda || return 0
	say "blk-hold holding vda"
	sleep 100
	blk_err "still holding vda after 100 s (the host should have stopped kiln)"
}

# /dev/vda has a 1 MB/s rate limiter, /dev/vdb none: 4 MiB read from each with O_DIRECT
# (nothing from the guest's cache), timed.
action_blk_rate() {
	blk_wait_dev vda && blk_wait_dev vdb || return 0
	for d in vdb vda; do
		t0=$(uptime_cs)
		# 64 KiB requests, below the 100 kB bucket: a request larger than the bucket is
		# admitted on a full bucket and its debt repaid after it, so a transfer of a few
		# large requests would finish one request ahead of the rate.
		if ! dd if="/dev/$d" of=/dev/null bs=65536 count=64 iflag=direct 2> /dev/null; then
			blk_err "dd from /dev/$d failed"
			return 0
		fi
		say "blk-rate $d read 4194304 in $(($(uptime_cs) - t0))0 ms"
	done
}
