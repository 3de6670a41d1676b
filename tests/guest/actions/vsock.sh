# vsock actions of the e2e test guest (sourced by /init): AF_VSOCK servers and clients
# run with /bin/vsock-tool (tests/e2e/tools/vsock-tool.c) for the tests/e2e/cases/vsock-*
# cases, whose host side talks to them through kiln with uds-tool. Each prints its result
# as "KILN-E2E: <name> <vsock-tool's last line>" or "KILN-E2E: error: <name>: <output>".
# The bulk size comes from the kernel command line: kiln.vsock_bytes=N (default 64 MiB).
# shellcheck shell=sh disable=SC2317 # actions are called by name

# vsock_run NAME CMD...: runs CMD and reports its last output line under NAME.
vsock_run() {
	name=$1
	shift
	if out=$("$@" 2>&1); then
		say "$name $(echo "$out" | tail -n 1)"
	else
		say "error: $name: $(echo "$out" | tail -n 1)"
	fi
}

# A host client CONNECTs to port 5000 and has its bytes echoed.
action_vsock_echo() {
	vsock_run vsock-echo vsock-tool listen 5000 serve-echo
}

# The guest connects to the host (CID 2) port 5001: kiln forwards to <uds_path>_5001.
action_vsock_to_host() {
	vsock_run vsock-to-host vsock-tool connect 2 5001 echo 1048576 5
}

# kiln.vsock_bytes each way: host -> guest port 5002, then guest -> host port 5003.
action_vsock_bulk() {
	bytes=$(kernel_param kiln.vsock_bytes)
	vsock_run vsock-bulk-in vsock-tool listen 5002 recv
	vsock_run vsock-bulk-out vsock-tool connect 2 5003 send "${bytes:-67108864}" 9
}

# 52 host connections one after the other, each echoed (warm-up, 50 measured, last).
action_vsock_loop() {
	vsock_run vsock-loop vsock-tool listen 5004 serve-loop 52
}
