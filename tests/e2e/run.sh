#!/bin/sh
# run.sh: the kiln end-to-end tests. Builds the fixtures under build/e2e/ (cached), runs
# every case in tests/e2e/cases/ once and prints "PASS e2e/<name>" or
# "FAIL e2e/<name>: <reason>" per case; exits 1 if any case failed or the test host did
# not come up.
#
# Modes (E2E_MODE=auto|direct|l1, default auto):
#   direct  the host has real KVM (/dev/kvm usable, no kvm_pvm module): the cases run here.
#   l1      otherwise: one boot of the L1 KVM test host (QEMU TCG with emulated AMD SVM,
#           tests/e2e/build-l1.sh) runs all cases; its serial console is parsed.
# Environment:
#   KILN=path            kiln binary (default build/kiln; static, as it runs inside L1)
#   E2E_ONLY="a b"       run only these cases
#   E2E_REPEAT=1         runs of each case (a stress run); a case passes only if every run did
#   E2E_TIMEOUT=1800     overall bound in seconds (the L1 run, or all direct cases)
#   E2E_KILN_TIMEOUT=120 bound for one kiln run; a case that hits it fails as hung
#   E2E_VERBOSE=1        also copy the console of L1 / the runner to stderr as it runs
#   E2E_L1_RETRIES=3     new L1 boots allowed when the test host's own kernel panics (its
#                        panic line on L1's console); the cases without a result run again,
#                        and a case that saw the host crash twice is skipped (the host could
#                        not run it). A timeout never reruns anything.
# Logs: build/e2e/l1-console.log (+ .stderr: QEMU's own messages) or build/e2e/direct.log.
set -u

root_dir=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root_dir" || exit 1
out=build/e2e
mkdir -p "$out"
KILN=${KILN:-build/kiln}
case $KILN in /*) ;; *) KILN=$root_dir/$KILN ;; esac
E2E_MODE=${E2E_MODE:-auto}
E2E_TIMEOUT=${E2E_TIMEOUT:-1800}
E2E_KILN_TIMEOUT=${E2E_KILN_TIMEOUT:-120}
E2E_ONLY=${E2E_ONLY:-}
E2E_REPEAT=${E2E_REPEAT:-1}

cases=
for script in tests/e2e/cases/*.sh; do
	name=$(basename "$script" .sh)
	if [ -n "$E2E_ONLY" ]; then
		case " $E2E_ONLY " in *" $name "*) ;; *) continue ;; esac
	fi
	cases="$cases $name"
done
[ -n "$cases" ] || {
	echo "e2e: no cases selected (E2E_ONLY='$E2E_ONLY')" >&2
	exit 1
}

# fail_all REASON: every case fails with REASON; exits 1.
fail_all() {
	echo "e2e: $1" >&2
	for name in $cases; do
		echo "FAIL e2e/$name: $1"
	done
	exit 1
}

# Oldest first would be wrong: the newest installed cloud kernel is both L1 and guest.
kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' 2> /dev/null |
	sed 's/^vmlinuz-//' | sort -V | tail -n 1)
[ -n "$kver" ] || fail_all "no /boot/vmlinuz-*-cloud-amd64 (install linux-image-cloud-amd64)"
bzimage=/boot/vmlinuz-$kver
[ -x "$KILN" ] || fail_all "kiln binary $KILN not found (run make, or set KILN=)"

if [ "$E2E_MODE" = auto ]; then
	if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
		E2E_MODE=direct
	else
		E2E_MODE=l1
	fi
fi

# Fixtures shared by both modes: E2E_DIR holds bzImage, vmlinux, guest-initramfs.cpio.gz.
scripts/extract-vmlinux.sh "$bzimage" "$out/vmlinux" >&2 ||
	fail_all "cannot extract vmlinux from $bzimage"
# Feature fixtures: each tests/e2e/fixtures/*.sh (run with FIX, KVER and KILN set) puts what
# its cases need under $FIX: l1/ (files the cases find in E2E_DIR, /e2e in L1), guest-bin/
# (programs for the guest's /bin) and guest-modules (guest kernel modules, one per line;
# dependencies are added and everything is loaded in order by the guest init).
fix=$out/fix
rm -rf "$fix"
mkdir -p "$fix/l1" "$fix/guest-bin" || fail_all "cannot create $fix"
: > "$fix/guest-modules"
for f in tests/e2e/fixtures/*.sh; do
	[ -e "$f" ] || continue
	FIX=$root_dir/$fix KVER=$kver KILN=$KILN sh "$f" >&2 || fail_all "fixture $f failed"
done
guest_args=
for b in "$fix"/guest-bin/*; do [ -e "$b" ] && guest_args="$guest_args -b $b"; done
# shellcheck disable=SC2046,SC2086 # word splitting of the lists is intended
tests/guest/build-initramfs.sh -o "$out/guest-initramfs.cpio.gz" $guest_args \
	$(cat "$fix/guest-modules") >&2 || fail_all "cannot build the guest initramfs"
l1_args=
for x in "$fix"/l1/*; do
	[ -e "$x" ] || continue
	l1_args="$l1_args -x $x"
	cp "$x" "$out/" || fail_all "cannot copy $x" # direct mode finds them in E2E_DIR
done
cmp -s "$bzimage" "$out/bzImage" || cp "$bzimage" "$out/bzImage" ||
	fail_all "cannot copy $bzimage"

# clean_log LOG: the log with CRs dropped and every E2E- line cut to start at its marker (the
# serial console can put escape sequences or kernel messages before it).
clean_log() {
	tr -d '\r' < "$1" | awk '{ i = index($0, "E2E-"); if (i) print substr($0, i) }'
}

# run_direct: all cases on this host's real KVM; sets rc and log.
run_direct() {
	log=$out/direct.log
	echo "e2e: direct mode (real KVM), kiln $KILN" >&2
	rm -rf "$out/work"
	KILN=$KILN E2E_DIR=$root_dir/$out E2E_WORK=$root_dir/$out/work E2E_ONLY=$E2E_ONLY \
		E2E_REPEAT=$E2E_REPEAT E2E_KILN_TIMEOUT=$E2E_KILN_TIMEOUT \
		timeout -s KILL "$E2E_TIMEOUT" sh tests/e2e/run-cases.sh tests/e2e/cases \
		< /dev/null > "$log" 2>&1 &
	wait_logged $!
}

# run_l1 CASES: one boot of the L1 test host running CASES; sets rc and log.
run_l1() {
	log=$out/l1-console.log
	# shellcheck disable=SC2086 # split the list: one space between names
	set -- $1
	# The overall bound holds across the test hosts of one run.
	left=$((E2E_TIMEOUT - ($(date +%s) - start)))
	[ "$left" -gt 60 ] || left=60
	scripts/l1-boot.sh -t "$left" -l "$log" "$out/L1.cpio.gz" \
		"e2e.kiln_timeout=$E2E_KILN_TIMEOUT" "e2e.repeat=$E2E_REPEAT" "e2e.only=\"$*\"" &
	wait_logged $!
}

# l1_panic LOG and l1_retry_due RC CRASH TODO ATTEMPT: which end of an L1 run is the test
# host's own crash, and whether it reruns anything.
# shellcheck source=tests/e2e/l1-classify.sh
. tests/e2e/l1-classify.sh

# wait_logged PID: waits for the test host, copying its log to stderr with E2E_VERBOSE=1.
# A test host that prints no E2E line for longer than a case may take (its own bound, see
# run-cases.sh, plus a margin) has stopped responding: it is stopped (rc 125) rather than
# left to hold every later case until the overall timeout.
wait_logged() {
	if [ "${E2E_VERBOSE:-0}" = 1 ]; then
		tail -f "$log" --pid="$1" >&2 &
	fi
	local stall=$((E2E_KILN_TIMEOUT * 2 + 30 + 150)) lines=0 now last n
	last=$(date +%s)
	while kill -0 "$1" 2> /dev/null; do
		sleep 2
		n=$(grep -ac 'E2E-' "$log" 2> /dev/null)
		now=$(date +%s)
		if [ "${n:-0}" != "$lines" ]; then
			lines=${n:-0}
			last=$now
		elif [ $((now - last)) -gt "$stall" ]; then
			echo "e2e: the L1 test host printed nothing for ${stall}s: stopping it" >&2
			kill -TERM "$1" 2> /dev/null
			wait "$1"
			rc=125
			return
		fi
	done
	wait "$1"
	rc=$?
}

# l1_tail: the last lines of the L1 console, for a test host that hung or crashed.
l1_tail() {
	tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' | tail -n "${1:-40}" |
		sed 's/^/  | /'
}

# no_result CASES: those of CASES without a result line in $clean.
no_result() {
	for name in $1; do
		grep -q "^E2E-RESULT [A-Z]* $name:\{0,1\}\( \|$\)" "$clean" || printf '%s ' "$name"
	done
}

start=$(date +%s)
clean=$out/e2e-results.clean
: > "$clean"
host_ready=
if [ "$E2E_MODE" = direct ]; then
	run_direct
	clean_log "$log" > "$clean"
	host_ready=yes
elif [ "$E2E_MODE" = l1 ]; then
	# shellcheck disable=SC2086 # word splitting of the list is intended
	tests/e2e/build-l1.sh -k "$KILN" -v "$kver" -o "$out/L1.cpio.gz" $l1_args >&2 ||
		fail_all "cannot build the L1 initramfs"
	echo "e2e: L1 mode (QEMU $(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([^ ]*\).*/\1/p') TCG test host with nested SVM), kiln $KILN" >&2
	# The emulated test host's own kernel can crash (often on some machines: an interrupt
	# the emulated CPU delivers inside the world switch, docs/testing.md, under QEMU microvm
	# as L2 VMM too). That is the test host failing, not a case: the cases left without a
	# result run again in a fresh L1, at most E2E_L1_RETRIES times, each retry reported.
	# The case running at the crash gets one more try; a second crash skips it alone (a
	# hang fails it, below).
	todo=$cases
	attempt=0
	crashed_once=
	while :; do
		kind=crash
		run_l1 "$todo"
		clean_log "$log" >> "$clean"
		cp "$log" "$log.$attempt"
		if grep -q '^E2E-L1: kvm ready' "$clean"; then
			host_ready=yes
		fi
		todo=$(no_result "$todo")
		crash=$(l1_panic "$log")
		if [ -z "$crash" ] && [ "$rc" = 125 ] && [ -n "$todo" ]; then
			# A hang is a finding about the case that ran: it fails at once (no second
			# try); the cases after it still run, in a new L1.
			crash="it stopped responding"
			kind=hang
			crashed_once="$crashed_once ${todo%% *}"
			echo "e2e: last lines of the L1 console (log $log.$attempt):" >&2
			l1_tail >&2
		fi
		# A QEMU killed by the overall timeout is a failure, never a reason to run again.
		l1_retry_due "$rc" "$crash" "$todo" "$attempt" || break
		attempt=$((attempt + 1))
		culprit=${todo%% *}
		echo "e2e: the L1 test host crashed ($crash) while $culprit ran (log $log.$((attempt - 1)))" >&2
		case " $crashed_once " in
		*" $culprit "*)
			l1_crash_result "$culprit" "$crash" "$kind" >> "$clean"
			todo=${todo#"$culprit"}
			todo=${todo# }
			;;
		*) crashed_once="$crashed_once $culprit" ;;
		esac
		[ -n "$todo" ] || break
		echo "e2e: running $todo again in a new L1 (retry $attempt)" >&2
	done
else
	fail_all "E2E_MODE must be auto, direct or l1, not '$E2E_MODE'"
fi
secs=$(($(date +%s) - start))

how="exit code $rc"
[ "$rc" != 137 ] || how="killed after the overall timeout of ${E2E_TIMEOUT}s"
[ "$rc" != 125 ] || how="stopped: it printed nothing for too long"
if [ "$E2E_MODE" = l1 ] && [ "$rc" = 137 ] && [ -n "$host_ready" ]; then
	echo "e2e: last lines of the L1 console at the overall timeout:" >&2
	l1_tail >&2
fi
if [ "$E2E_MODE" = l1 ]; then
	if [ -z "$host_ready" ]; then
		reason=$(sed -n 's/^E2E-L1: FAIL //p' "$clean" | head -n 1)
		echo "e2e: the L1 KVM test host did not come up: ${reason:-no 'kvm ready' line, QEMU $how}" >&2
		echo "e2e: last lines of $log:" >&2
		tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' | tail -n 30 |
			sed 's/^/  | /' >&2
		echo >&2
		grep -v "TCG doesn't support requested feature" "$log.stderr" | sed 's/^/  qemu: /' >&2
		fail_all "L1 test host did not come up${reason:+: $reason}"
	fi
	sed -n 's/^E2E-L1: //p' "$clean" | grep -v '^dmesg' | sed 's/^/e2e: L1 /' >&2
fi

failed=0
for name in $cases; do
	res=$(awk -v n="$name" '$1 == "E2E-RESULT" && ($3 == n || $3 == n ":")' "$clean")
	t=$(awk -v n="$name" '$1 == "E2E-TIME" && $2 == n { print $3 }' "$clean" | tr '\n' ' ')
	npass=$(printf '%s\n' "$res" | grep -c "^E2E-RESULT PASS $name\$")
	nfail=$(printf '%s\n' "$res" | grep -c "^E2E-RESULT FAIL $name: ")
	nskip=$(printf '%s\n' "$res" | grep -c "^E2E-RESULT SKIP $name: ")
	[ "$E2E_REPEAT" = 1 ] || echo "e2e: $name: $npass of $E2E_REPEAT runs passed, $nfail failed" >&2
	if [ "$nfail" -gt 0 ]; then
		first=$(printf '%s\n' "$res" | grep -m1 "^E2E-RESULT FAIL $name: ")
		echo "FAIL e2e/$name: ${first#"E2E-RESULT FAIL $name: "}"
		failed=$((failed + 1))
		grep "^E2E-LOG $name: " "$clean" | sed "s/^E2E-LOG $name: /  | /"
	elif [ "$npass" -ge "$E2E_REPEAT" ]; then
		echo "PASS e2e/$name"
	elif [ "$nskip" -gt 0 ] && [ $((npass + nskip)) -ge "$E2E_REPEAT" ]; then
		why=$(printf '%s\n' "$res" | grep -m1 "^E2E-RESULT SKIP $name: ")
		echo "SKIP e2e/$name: ${why#"E2E-RESULT SKIP $name: "}"
	else
		echo "FAIL e2e/$name: no result (test host ${E2E_MODE} stopped: $how)"
		failed=$((failed + 1))
	fi
	awk -v n="$name" '$1 == "E2E-RETRY" && $2 == n ":"' "$clean" |
		sed "s/^E2E-RETRY $name: /e2e: $name: run again, a run failed in the test host: /" >&2
	grep "^E2E-RETRY-LOG $name: " "$clean" | sed "s/^E2E-RETRY-LOG $name: /e2e: $name: that run | /" >&2
	[ -z "$t" ] || echo "e2e: $name took ${t% }s" >&2
	awk -v n="$name" '$1 == "E2E-VMSTAT" && $2 == n' "$clean" |
		sed "s/^E2E-VMSTAT $name/e2e: $name: pages moved in the test host during a run:/" >&2
done
echo "e2e: $E2E_MODE run took ${secs}s, log $log" >&2
[ -n "$host_ready" ] && [ "$failed" = 0 ]
