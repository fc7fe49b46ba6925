# Sourced by the shell benchmarks (h2load.sh, instructions.sh): one real dpm on free loopback
# ports, linked with a dpe home whose key mints the module token WhoAmI is called with; stopped
# and its files removed when the script exits. Run from the repository's root, after
# `cargo build --release --workspace`.
#
# Sets bin, work (a fresh directory), grpc and http (DPM's ports) and "$work/empty.grpc" (one
# empty protobuf message in gRPC framing); defines install_missing, start_dpm, module_token and
# whoami_verdicts.

bin=target/release
work=$(mktemp -d)
dpm_pid=""
cleanup() {
    if [[ -n "$dpm_pid" ]]; then kill "$dpm_pid" 2>/dev/null || true; wait "$dpm_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# install_missing COMMAND PACKAGE [COMMAND PACKAGE ...]: installs with apt-get (through sudo when
# not root) each Debian PACKAGE whose COMMAND is not on the PATH.
install_missing() {
    local missing=()
    while [[ $# -ge 2 ]]; do
        command -v "$1" >/dev/null || missing+=("$2")
        shift 2
    done
    if [[ ${#missing[@]} -eq 0 ]]; then return; fi
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
}

# Four free loopback ports, as the kernel hands them out.
read -r grpc http dpe_grpc dpe_http < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
"$bin/svcid" link "$work/dpm" "$work/dpe" --dpm-grpc-port "$grpc" --dpm-http-port "$http" \
    --dpe-grpc-port "$dpe_grpc" --dpe-http-port "$dpe_http" >/dev/null
printf '\0\0\0\0\0' >"$work/empty.grpc"

# start_dpm COMMAND...: runs COMMAND --home <DPM's home> (the dpm binary, or a wrapper and its
# arguments followed by it) and waits up to a minute for DPM's health endpoint to answer.
start_dpm() {
    "$@" --home "$work/dpm" >"$work/dpm.out" 2>&1 &
    dpm_pid=$!
    for _ in $(seq 600); do
        if curl -sf "http://127.0.0.1:$http/actuator/health" >/dev/null; then return; fi
        sleep 0.1
    done
    echo "$(basename "$0"): dpm did not answer on 127.0.0.1:$http within a minute" >&2
    exit 1
}

# module_token: a fresh token of the dpe home for DPM. Module tokens live for seconds: mint one
# per batch of calls.
module_token() {
    "$bin/svcid" token mint --home "$work/dpe" --aud dpm 2>/dev/null
}

# whoami_verdicts: "<accepted> <refused>", DPM's counts of authentication verdicts so far. h2load
# counts an HTTP 200 as a success even when gRPC refused the call; these counts tell.
whoami_verdicts() {
    curl -sf "http://127.0.0.1:$http/actuator/prometheus" | awk '
        /^svcid_authentications_accepted_total/ {a += $2}
        /^svcid_authentications_refused_total/ {r += $2}
        END {print a + 0, r + 0}'
}
