#!/bin/sh
# jailer-bad-id: kiln-jailer refuses an --id that could leave the chroot base dir or is not
# 1-64 characters of A-Z a-z 0-9 '-' ("../x" first, then "..", "a/b", "x.y", 65 characters,
# and --id=../x): exit 2, one line on stderr naming --id and the value, nothing on stdout,
# and nothing created (the chroot base dir does not appear, kiln never runs). The
# arguments are refused before any privileged step, so this runs in L1 as it is.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"

base=$E2E_WORK/$E2E_CASE.base
out=$E2E_WORK/$E2E_CASE.jailer-out
long=$(printf '%065d' 0)
rm -rf "$base"
for bad in ../x .. a/b x.y "$long" =../x; do
	case $bad in
	=*) args="--id=${bad#=}" bad=${bad#=} ;;
	*) args="--id $bad" ;;
	esac
	# shellcheck disable=SC2086 # $args is two words, or one with '='
	timeout -s KILL 20 "$E2E_DIR/kiln-jailer" $args --exec-file "$KILN" --uid 1000 --gid 1000 \
		--chroot-base-dir "$base" --new-pid-ns --cgroup-version 2 -- --no-api --config-file /vm.json \
		> "$out" 2> "$stderr_log" < /dev/null
	rc=$?
	err=$(cat "$stderr_log")
	echo "$args: exit $rc: $err"
	[ "$rc" = 2 ] || fail "$args: kiln-jailer exited $rc, expected 2: $err"
	[ "$(grep -c . "$stderr_log")" = 1 ] || fail "$args: not one line on stderr: $err"
	case $err in
	"kiln-jailer: --id: \"$bad\": "*) ;;
	*) fail "$args: the line does not name --id and \"$bad\": $err" ;;
	esac
	[ ! -s "$out" ] || fail "$args: kiln-jailer wrote to stdout: $(head -n 1 "$out")"
	[ ! -e "$base" ] || fail "$args: $base was created: $(find "$base" | head -n 5 | tr '\n' ' ')"
done
pass
