#!/usr/bin/env bash
# Starts a local dpm + dpe pair with freshly generated keys, then follows their JSON logs.
#
# The first run copies the sample homes config/dpm and config/dpe to target/local/ and links them
# with `svcid link` (a new key for each side, each trusting the other); later runs reuse them.
# Ctrl-C stops both daemons gracefully (the engine unregisters first).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bins
bin=target/debug
run=target/local

if [ ! -f "$run/dpm/etc/application.properties" ] || [ ! -f "$run/dpe/etc/application.properties" ]; then
  mkdir -p "$run"
  rm -rf "$run/dpm" "$run/dpe"
  cp -r config/dpm config/dpe "$run/"
  "$bin/svcid" link "$run/dpm" "$run/dpe"
fi

pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT

wait_for() { # file pattern seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for $2 in $1" >&2
  return 1
}

mkdir -p "$run/dpm/log" "$run/dpe/log"
: > "$run/dpm/log/spring-boot-logger.json.log"
: > "$run/dpe/log/spring-boot-logger.json.log"
"$bin/dpm" --home "$run/dpm" --ataccama.logging.plainTextConsoleAppender=false & pids+=($!)
wait_for "$run/dpm/log/spring-boot-logger.json.log" grpcServerStarted 30
"$bin/dpe" --home "$run/dpe" --ataccama.logging.plainTextConsoleAppender=false & pids+=($!)
wait_for "$run/dpm/log/spring-boot-logger.json.log" '"newStatus":"READY"' 30

echo "== dpm: $run/dpm/log/spring-boot-logger.json.log"
grep -E 'registerEngine|setEngineStatus' "$run/dpm/log/spring-boot-logger.json.log"
echo "== dpe: $run/dpe/log/spring-boot-logger.json.log"
grep -E '"eventId":"register"' "$run/dpe/log/spring-boot-logger.json.log"
echo "== dpm and dpe are running (Ctrl-C stops both). Following the logs:"
tail -n 0 -f "$run/dpm/log/spring-boot-logger.json.log" "$run/dpe/log/spring-boot-logger.json.log" & pids+=($!)
wait
