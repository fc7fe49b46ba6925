#!/usr/bin/env bash
# Measures, with the debug binaries a local run uses, the wall time from starting dpe until DPM's
# log shows the engine READY, and the resident memory of both daemons when idle.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet --bins
run=$(mktemp -d)
cp -r config/dpm config/dpe $run/
target/debug/svcid link $run/dpm $run/dpe >/dev/null
args="--ataccama.logging.plainTextConsoleAppender=false --ataccama.server.grpc.port=0 --server.port=0"
target/debug/dpm --home $run/dpm $args & dpm=$!
for i in $(seq 100); do grep -q grpcServerStarted $run/dpm/log/*.json.log 2>/dev/null && break; sleep 0.05; done
port=$(grep -o '"port":"[0-9]*"' $run/dpm/log/*.json.log | head -1 | grep -o '[0-9]*')
start=$(date +%s.%N)
target/debug/dpe --home $run/dpe $args --ataccama.client.connection.dpm.grpc.port=$port & dpe=$!
until grep -q '"newStatus":"READY"' $run/dpm/log/*.json.log 2>/dev/null; do sleep 0.005; done
end=$(date +%s.%N)
echo "dpe start -> READY observed: $(awk "BEGIN{printf \"%.0f\", ($end - $start) * 1000}") ms"
sleep 5
echo "idle RSS after 5s: dpm $(grep VmRSS /proc/$dpm/status | awk '{print $2}') kB, dpe $(grep VmRSS /proc/$dpe/status | awk '{print $2}') kB"
kill -TERM $dpe; wait $dpe; echo "dpe exit $?"; kill -TERM $dpm; wait $dpm; echo "dpm exit $?"
rm -rf $run
