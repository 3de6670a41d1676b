#!/bin/sh
# kvm-kind.sh: prints which KVM this host offers the tests, one word:
#   real  /dev/kvm opens read-write and no kvm_pvm module is loaded: Linux guests boot here
#   pvm   /dev/kvm is the nested PVM KVM: tiny guests run, Linux guests do not
#   none  no usable /dev/kvm
# KILN_KVM=real|pvm|none overrides the probe (to exercise another host kind's path here).
set -u
case ${KILN_KVM:-auto} in
real | pvm | none)
	echo "$KILN_KVM"
	exit 0
	;;
auto) ;;
*)
	echo "kvm-kind: KILN_KVM must be auto, real, pvm or none, not '$KILN_KVM'" >&2
	exit 2
	;;
esac
# A device node alone is not enough: it can exist without a KVM behind it or be unopenable.
if [ ! -c /dev/kvm ] || ! { : < /dev/kvm; } 2> /dev/null || ! { : >> /dev/kvm; } 2> /dev/null; then
	echo none
elif [ -d /sys/module/kvm_pvm ] && [ ! -d /sys/module/kvm_amd ] && [ ! -d /sys/module/kvm_intel ]; then
	echo pvm
else
	echo real
fi
