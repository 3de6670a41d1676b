#!/bin/sh
# stage-host.sh: the host-test stage inside the L1 KVM test host, for hosts without a usable
# /dev/kvm (scripts/in-l1.sh host). /e2e/repo holds the repository's test scripts and build/
# (kiln, kiln-testhooks, kiln-jailer, tiny-guest.elf) as scripts/check.sh stages them.
# Runs tests/host/run.sh, tests/host/seccomp.sh, tests/host/api.sh and the jailer's
# kiln_in_jail case, exactly as they run on a host with KVM, then the unit test binaries
# staged in unit-kvm/ (tests/unit/needs-kvm.txt) with run-unit.sh; exits non-zero if any of
# them failed.
#
# pivot_root refuses a process whose root is the initramfs, so the suites run chrooted in a
# tmpfs "host root" whose directories are bind mounts of L1's own.
set -u
hr=/run/hostroot
mkdir -p "$hr"
mount -t tmpfs -o mode=755 tmpfs "$hr" || exit 1
for d in bin sbin usr lib lib64 etc e2e; do
	[ -d "/$d" ] || continue
	mkdir -p "$hr/$d"
	mount --bind "/$d" "$hr/$d" || exit 1
done
mkdir -p "$hr/proc" "$hr/sys" "$hr/dev" "$hr/tmp" "$hr/run"
mount -t proc proc "$hr/proc" &&
	mount -t sysfs sysfs "$hr/sys" &&
	mount -t cgroup2 cgroup2 "$hr/sys/fs/cgroup" &&
	mount --rbind /dev "$hr/dev" &&
	mount -t tmpfs -o size=2g tmpfs "$hr/tmp" || exit 1

# shellcheck disable=SC2016 # expanded by the chrooted bash
chroot "$hr" /bin/bash -c '
	cd /e2e/repo || exit 1
	export PATH=/usr/sbin:/usr/bin:/sbin:/bin BUILD=build KILN=build/kiln
	rc=0
	bash tests/host/run.sh || rc=1
	bash tests/host/seccomp.sh || rc=1
	bash tests/host/api.sh || rc=1
	JAILER_CASES=kiln_in_jail bash tests/jailer/run.sh || rc=1
	if [ -n "$(ls unit-kvm 2> /dev/null)" ]; then
		sh /e2e/run-unit.sh unit-kvm/* || rc=1
	fi
	exit $rc'
