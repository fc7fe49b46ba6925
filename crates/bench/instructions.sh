#!/usr/bin/env bash
# What authentication adds to a call, in instructions: one real dpm run under valgrind's callgrind
# (which counts every instruction the process executes), driven by h2load (nghttp2's HTTP/2 load
# generator, sharing no code with svcid) with N calls of
#   grpc.health.v1.Health/Check            (no token)
#   svcid.identity.IdentityService/WhoAmI  (a dpe's module token, reused by every call)
# each counted alone (callgrind's counters zeroed before, dumped after). A count does not depend
# on what else the machine runs, so two builds compare to a fraction of a percent where timed
# rounds on a shared VM scatter by tens of percent (BENCHMARKS.md, "Authenticated throughput").
# Instructions are not time: cache misses and system calls weigh differently; the timed figures
# stay with loadgen and h2load.sh.
# Usage: crates/bench/instructions.sh [--calls N] [--dpm PATH]
# Needs valgrind and h2load (installed when missing and apt-get can) and a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."

calls=4000
dpm=target/release/dpm
while [[ $# -gt 0 ]]; do
    case "$1" in
    --calls) calls=$2; shift 2 ;;
    --dpm) dpm=$2; shift 2 ;;
    *) echo "instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

# shellcheck source=crates/bench/one-dpm.sh
source crates/bench/one-dpm.sh
install_missing valgrind valgrind h2load nghttp2-client
# Under callgrind DPM runs some 50 times slower: start_dpm waits up to a minute.
start_dpm valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" "$dpm"

calls_of() { # path [header]: $calls calls, 16 in flight on each of 2 connections
    local path=$1
    shift
    h2load -n "$calls" -c 2 -m 16 -t 1 -d "$work/empty.grpc" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$@" \
        "http://127.0.0.1:$grpc$path" >/dev/null
}
whoami() { # a fresh token per batch: module tokens live for seconds
    local token
    token=$(module_token)
    calls_of /svcid.identity.IdentityService/WhoAmI -H "authorization: Internal-jwt $token"
}
health() { calls_of /grpc.health.v1.Health/Check; }

# Warm-up, not counted: connections, the first verification of a token, lazily built state.
health
whoami
declare -A per_call
for kind in health whoami; do
    callgrind_control --zero "$dpm_pid" >/dev/null 2>&1
    "$kind"
    callgrind_control --dump="$kind" "$dpm_pid" >/dev/null 2>&1
    dump=""
    for _ in $(seq 50); do
        dump=$(grep -l "^desc: Trigger: .*$kind\$" "$work"/callgrind.* 2>/dev/null | head -1 || true)
        if [[ -n "$dump" ]]; then break; fi
        sleep 0.2
    done
    if [[ -z "$dump" ]]; then
        echo "instructions.sh: callgrind wrote no dump for $kind" >&2
        exit 1
    fi
    total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    per_call[$kind]=$((total / calls))
    echo "$kind: $total instructions for $calls calls, ${per_call[$kind]} per call"
done

read -r accepted refused < <(whoami_verdicts)
echo "dpm counted $accepted WhoAmI calls accepted, $refused refused"
if [[ "$refused" != 0 || "$accepted" != $((2 * calls)) ]]; then
    echo "instructions.sh: not every WhoAmI call was accepted: the count measures refusals" >&2
    exit 1
fi
health=${per_call[health]}
whoami=${per_call[whoami]}
ratio=$(awk -v h="$health" -v w="$whoami" 'BEGIN {printf "%.2f", h / w}')
printf 'FIGURE\tdpm instructions per call, Health/Check vs WhoAmI with a token (callgrind)\t%s vs %s (+%s, %s x)\n' \
    "$health" "$whoami" "$((whoami - health))" "$ratio"
