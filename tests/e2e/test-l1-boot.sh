#!/bin/sh
# test-l1-boot.sh: unit test of scripts/l1-boot.sh's watchdog with a fake qemu-system-x86_64
# (a shell script first on PATH): a QEMU that takes no CPU time, or one of whose vCPU threads
# takes none, is stopped as a stalled test host (exit 124, the "l1-boot: the test host
# stalled" line at the end of the log), one that keeps running is not (the overall timeout
# stops it: 137), one that runs but prints nothing more for L1_SILENT_SECS is stopped as a
# silent test host (124, "l1-boot: the test host went silent") while one that keeps printing
# is not, QEMU's own exit status and console pass through, and stopping l1-boot.sh stops
# QEMU.
# Prints "PASS unit/l1-boot/<name>" or "FAIL unit/l1-boot/<name>: why"; exits 1 if any
# failed.
set -u
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-l1-boot.XXXXXX")
trap 'rm -rf "$T"' EXIT
failed=0

mkdir -p "$T/bin"
# The fake: FAKE_QEMU=idle sleeps (no CPU time), busy spins, quiet prints a console line and
# spins, chatty spins for 12 s printing a line every 2 s and exits 0, exit3 prints a console
# line and exits 3. Its pid goes to $T/qemu.pid.
cat > "$T/bin/qemu-system-x86_64" << 'EOF'
#!/bin/sh
[ "${1:-}" != --version ] || { echo "QEMU emulator version 10.0.2"; exit 0; }
echo $$ > "$FAKE_DIR/qemu.pid"
case $FAKE_QEMU in
idle) exec sleep 60 ;;
busy) while :; do :; done ;;
onecpu) exec "$FAKE_DIR/two-vcpus" ;;
quiet) echo "console line" && while :; do :; done ;;
chatty)
	for i in 1 2 3 4 5 6; do
		echo "console line $i"
		end=$(($(date +%s) + 2))
		while [ "$(date +%s)" -lt "$end" ]; do :; done
	done
	;;
exit3) echo "console line"; exit 3 ;;
esac
EOF
chmod +x "$T/bin/qemu-system-x86_64"
# onecpu: threads named as QEMU's vCPU threads, "CPU 0/TCG" running now and then, "CPU 1/TCG"
# never (the test host's CPU halted with its interrupts lost).
cat > "$T/two-vcpus.c" << 'EOF'
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>
static void *vcpu(void *arg)
{
	prctl(PR_SET_NAME, arg ? "CPU 0/TCG" : "CPU 1/TCG", 0, 0, 0);
	for (;;) {
		if (!arg)
			pause();
		for (volatile long i = 0; i < 2000000; i++)
			;
		usleep(100000);
	}
	return NULL;
}
int main(void)
{
	pthread_t a, b;
	pthread_create(&a, NULL, vcpu, "0");
	pthread_create(&b, NULL, vcpu, NULL);
	pause();
	return 0;
}
EOF
cc -pthread -o "$T/two-vcpus" "$T/two-vcpus.c" || echo "FAIL unit/l1-boot/build-fake: cannot build it"
: > "$T/image"

# boot NAME MODE [ARGS...]: runs l1-boot.sh on the fake in MODE (L1_SILENT_SECS from $silent,
# default off); sets rc and log.
boot() {
	log=$T/$1.log
	name=$1 mode=$2
	shift 2
	rm -f "$T/qemu.pid"
	PATH=$T/bin:$PATH FAKE_DIR=$T FAKE_QEMU=$mode KVER=fake L1_STALL_SECS=6 \
		L1_SILENT_SECS=${silent:-0} \
		sh "$root_dir/scripts/l1-boot.sh" -l "$log" "$@" "$T/image" 2> "$T/$name.err"
	rc=$?
}

# check NAME COND WHY: PASS if the shell condition COND holds.
check() {
	if eval "$2"; then
		echo "PASS unit/l1-boot/$1"
	else
		echo "FAIL unit/l1-boot/$1: $3"
		failed=1
	fi
}

boot stalled idle -t 60
check stalled '[ "$rc" = 124 ] && tail -n 1 "$log" | grep -q "^l1-boot: the test host stalled: its threads ran for no time in [0-9]* s (no registers); stopped$"' \
	"exit $rc, log: $(tail -n 1 "$log")"
check stalled-fifos-removed '[ ! -e "$log.mon.in" ] && [ ! -e "$log.mon.out" ] && [ ! -e "$log.why" ]' \
	"left $(ls "$T")"

boot onecpu onecpu -t 60
check one-vcpu-stalled '[ "$rc" = 124 ] && tail -n 1 "$log" | grep -q "^l1-boot: the test host stalled: its vCPU 1 ran for no time in [0-9]* s (no registers); stopped$"' \
	"exit $rc, log: $(tail -n 1 "$log")"

boot busy busy -t 12
check busy-not-stalled '[ "$rc" = 137 ] && ! grep -q stalled "$log"' "exit $rc, log: $(cat "$log")"

silent=6
boot quiet quiet -t 60
check went-silent '[ "$rc" = 124 ] && tail -n 1 "$log" | grep -q "^l1-boot: the test host went silent: no console output in [0-9]* s (no registers); stopped$"' \
	"exit $rc, log: $(tail -n 1 "$log")"
boot chatty chatty -t 60
check chatty-not-silent '[ "$rc" = 0 ] && ! grep -q "went silent" "$log"' "exit $rc, log: $(tail -n 1 "$log")"
silent=

boot exit3 exit3 -t 60
check exit-status '[ "$rc" = 3 ] && [ "$(cat "$log")" = "console line" ]' "exit $rc, log: $(cat "$log")"

# Stopped from outside (tests/e2e/run.sh stops a test host that went silent): QEMU goes too.
rm -f "$T/qemu.pid"
PATH=$T/bin:$PATH FAKE_DIR=$T FAKE_QEMU=busy KVER=fake \
	sh "$root_dir/scripts/l1-boot.sh" -t 60 -l "$T/term.log" "$T/image" 2> /dev/null &
boot_pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$T/qemu.pid" ] && break; sleep 0.5; done
kill -TERM "$boot_pid"
wait "$boot_pid"
qpid=$(cat "$T/qemu.pid" 2> /dev/null)
sleep 1
check term-stops-qemu '[ -n "$qpid" ] && ! kill -0 "$qpid" 2> /dev/null' "QEMU ${qpid:-?} still running"
[ -z "$qpid" ] || kill -KILL "$qpid" 2> /dev/null

exit "$failed"
