#!/bin/sh
# l1-boot.sh: boots the L1 KVM test host: Debian's cloud kernel under QEMU TCG with an emulated
# AMD SVM CPU (nested KVM inside), the initramfs IMAGE (tests/e2e/build-l1.sh) as its root.
#
#   scripts/l1-boot.sh [-i] [-t SECS] [-l LOG] [-D DISK]... IMAGE [KERNEL-ARGS...]
#
#   -l LOG   the serial console goes to LOG (QEMU's own messages to LOG.stderr), stdin is
#            /dev/null; without -l, or with -i, the console is this terminal (interactive;
#            Ctrl-A x quits QEMU)
#   -t SECS  QEMU is killed after SECS (default 900)
#   -D DISK  a raw image file attached as a virtio disk (/dev/vda, /dev/vdb, ... in L1)
# L1 neither compacts memory nor makes or splits transparent huge pages (QEMU's TCG does not
# keep the nested guest's view of a page it moved: see docs/testing.md); L1_PAGE_MIGRATION=1
# leaves the kernel's defaults, to reproduce that.
# The kernel is the newest /boot/vmlinuz-*-cloud-amd64 (KVER= overrides). Exits with QEMU's
# status (137 when the timeout killed it). QEMU 10 (bookworm-backports) is required: older
# TCG ignores the SVM XSETBV intercept and L2 guests lose XSAVE.
set -eu
timeout=900
log=
disks=
while getopts it:l:D: opt; do
	case $opt in
	i) log= ;;
	t) timeout=$OPTARG ;;
	l) log=$OPTARG ;;
	D) disks="$disks $OPTARG" ;;
	*) echo "usage: $0 [-i] [-t SECS] [-l LOG] [-D DISK]... IMAGE [KERNEL-ARGS...]" >&2 && exit 2 ;;
	esac
done
shift $((OPTIND - 1))
image=${1:?usage: l1-boot.sh [-i] [-t SECS] [-l LOG] [-D DISK]... IMAGE [KERNEL-ARGS...]}
shift
kver=${KVER:-$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' 2> /dev/null |
	sed 's/^vmlinuz-//' | sort -V | tail -n 1)}
[ -n "$kver" ] || { echo "l1-boot: no /boot/vmlinuz-*-cloud-amd64 (run scripts/setup.sh)" >&2 && exit 2; }
command -v qemu-system-x86_64 > /dev/null ||
	{ echo "l1-boot: qemu-system-x86_64 not found (run scripts/setup.sh)" >&2 && exit 2; }
qver=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
[ "${qver:-0}" -ge 10 ] || { echo "l1-boot: QEMU ${qver:-?} found, the test host needs QEMU 10 (run scripts/setup.sh)" >&2 && exit 2; }

pin=
[ "${L1_PAGE_MIGRATION:-0}" = 1 ] ||
	pin="transparent_hugepage=never sysctl.vm.compaction_proactiveness=0 sysctl.vm.extfrag_threshold=1000"

# The console is what -nographic sets up (serial and monitor multiplexed on stdio, Ctrl-C to
# the guest) without -nographic's SeaBIOS serial console, which resets the terminal.
set -- -accel tcg,thread=multi -M q35 -cpu EPYC,+svm,+npt -smp 2 -m 4096 -display none \
	-chardev stdio,id=con,mux=on,signal=off -serial chardev:con -mon chardev=con,mode=readline \
	-no-reboot -nic none -kernel "/boot/vmlinuz-$kver" -initrd "$image" \
	-append "console=ttyS0 panic=-1 rdinit=/init quiet $pin $*"
for d in $disks; do
	set -- "$@" -drive "file=$d,format=raw,if=virtio,cache=unsafe"
done
if [ -n "$log" ]; then
	exec timeout -s KILL "$timeout" qemu-system-x86_64 "$@" < /dev/null > "$log" 2> "$log.stderr"
fi
exec timeout -s KILL --foreground "$timeout" qemu-system-x86_64 "$@"
