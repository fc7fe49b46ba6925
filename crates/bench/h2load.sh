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

# shellcheck source=crates/bench/one-dpm.sh
source crates/bench/one-dpm.sh
install_missing h2load nghttp2-client
start_dpm "$bin/dpm"

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
    token=$(module_token)
    whoami=$(phase /svcid.identity.IdentityService/WhoAmI -H "authorization: Internal-jwt $token")
    ratio=$(awk -v a="$whoami" -v b="$health" 'BEGIN {printf "%.2f", a / b}')
    ratios+=("$ratio")
    echo "round $round: Health/Check $health calls/s | WhoAmI $whoami calls/s ($ratio x) | load $(cut -d' ' -f1-3 /proc/loadavg)"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

read -r accepted refused < <(whoami_verdicts)
echo "dpm counted $accepted WhoAmI calls accepted, $refused refused"
if [[ "$refused" != 0 || "$accepted" == 0 ]]; then
    echo "h2load.sh: WhoAmI calls were refused: the ratio measures refusals, not answers" >&2
    exit 1
fi
verdict=$(awk -v r="$median" 'BEGIN {print (r >= 0.95) ? "met" : "NOT MET"}')
echo "  ratios by round: ${ratios[*]}"
printf 'RESULT\tWhoAmI / Health/Check under h2load\t%s x (median of %s)\tHealth/Check, same run\t>= 0.95 x\t%s\n' \
    "$median" "$rounds" "$verdict"
