#!/usr/bin/env bash
# Authenticated against unauthenticated calls on one real dpm, measured by h2load (nghttp2's
# HTTP/2 load generator: a client that shares no code with svcid). Rounds of
#   grpc.health.v1.Health/Check            (no token)
#   svcid.identity.IdentityService/WhoAmI  (a dpe's module token, reused by every call)
# each for --seconds, over --connections connections with --streams calls in flight on each; the
# median of the per-round ratios WhoAmI / Health is reported. h2load counts an HTTP 200 as a
# success even when gRPC refused the call, so the run ends by checking DPM's own counters: every
# WhoAmI accepted, none refused.
# Usage: crates/bench/h2load.sh [--rounds N] [--seconds S] [--connections C] [--streams M]
# Needs h2load (Debian's nghttp2-client; installed when missing and apt-get can) and a release
# build (`cargo build --release --workspace`).
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=5 seconds=3 connections=2 streams=16
while [[ $# -gt 0 ]]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --streams) streams=$2; shift 2 ;;
    *) echo "h2load.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if ! command -v h2load >/dev/null; then
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q nghttp2-client >/dev/null
fi
bin=target/release
work=$(mktemp -d)
dpm_pid=""
cleanup() {
    if [[ -n "$dpm_pid" ]]; then kill "$dpm_pid" 2>/dev/null || true; wait "$dpm_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Four free loopback ports, as the kernel hands them out.
read -r grpc http dpe_grpc dpe_http < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
"$bin/svcid" link "$work/dpm" "$work/dpe" --dpm-grpc-port "$grpc" --dpm-http-port "$http" \
    --dpe-grpc-port "$dpe_grpc" --dpe-http-port "$dpe_http" >/dev/null
"$bin/dpm" --home "$work/dpm" >/dev/null 2>&1 &
dpm_pid=$!
for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$http/actuator/health" >/dev/null; then break; fi
    sleep 0.1
done

printf '\0\0\0\0\0' >"$work/empty.grpc" # one empty protobuf message in gRPC framing
phase() { # path [header]: calls per second over $seconds
    local path=$1
    shift
    h2load -D "$seconds" -c "$connections" -m "$streams" -t 1 -d "$work/empty.grpc" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$@" \
        "http://127.0.0.1:$grpc$path" | awk '/^finished in/ {print $4}'
}

ratios=()
echo "h2load: dpm on 127.0.0.1:$grpc; $rounds rounds of $seconds s, $connections connections x $streams streams (load $(cut -d' ' -f1-3 /proc/loadavg))"
for round in $(seq "$rounds"); do
    health=$(phase /grpc.health.v1.Health/Check)
    # A module token lives for seconds: a fresh one per round, reused by every call of the round.
    token=$("$bin/svcid" token mint --home "$work/dpe" --aud dpm 2>/dev/null)
    whoami=$(phase /svcid.identity.IdentityService/WhoAmI -H "authorization: Internal-jwt $token")
    ratio=$(awk -v a="$whoami" -v b="$health" 'BEGIN {printf "%.2f", a / b}')
    ratios+=("$ratio")
    echo "round $round: Health/Check $health calls/s | WhoAmI $whoami calls/s ($ratio x) | load $(cut -d' ' -f1-3 /proc/loadavg)"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

metrics=$(curl -sf "http://127.0.0.1:$http/actuator/prometheus")
accepted=$(awk '/^svcid_authentications_accepted_total/ {s += $2} END {print s + 0}' <<<"$metrics")
refused=$(awk '/^svcid_authentications_refused_total/ {s += $2} END {print s + 0}' <<<"$metrics")
echo "dpm counted $accepted WhoAmI calls accepted, $refused refused"
if [[ "$refused" != 0 || "$accepted" == 0 ]]; then
    echo "h2load.sh: WhoAmI calls were refused: the ratio measures refusals, not answers" >&2
    exit 1
fi
verdict=$(awk -v r="$median" 'BEGIN {print (r >= 0.95) ? "met" : "NOT MET"}')
echo "  ratios by round: ${ratios[*]}"
printf 'RESULT\tWhoAmI / Health/Check under h2load\t%s x (median of %s)\tHealth/Check, same run\t>= 0.95 x\t%s\n' \
    "$median" "$rounds" "$verdict"
