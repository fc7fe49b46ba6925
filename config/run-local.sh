#!/usr/bin/env bash
# Starts a local dpm + dpe pair with freshly generated keys, then follows their JSON logs.
#
# The first run copies the sample homes config/dpm and config/dpe to target/local/ and links them
# with `svcid link` (a new key for each side, each trusting the other); later runs reuse them.
# Ctrl-C stops both daemons gracefully (the engine unregisters first).
#
#   config/run-local.sh                 start, print the handshake, follow the logs
#   config/run-local.sh --until-ready   start, print the handshake, stop both and exit 0 once DPM
#                                       logs the engine READY (non-zero if it does not within 60 s);
#                                       CI runs this on a clean clone
set -euo pipefail
cd "$(dirname "$0")/.."

until_ready=false
case "${1:-}" in
  "") ;;
  --until-ready) until_ready=true ;;
  *) echo "usage: config/run-local.sh [--until-ready]" >&2; exit 64 ;;
esac

# The three binaries live in their own packages: name them (a bare `cargo build --bins` in the
# workspace root builds only the root package, which has none). Cargo's progress stays visible: a
# cold build compiles a few hundred crates and takes minutes; a warm one prints one line.
echo "== building svcid, dpm and dpe (cargo build; the first build takes a few minutes)"
cargo build -p svcid-cli -p svcid-dpm -p svcid-dpe --bins
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
wait_for "$run/dpm/log/spring-boot-logger.json.log" grpcServerStarted 60
"$bin/dpe" --home "$run/dpe" --ataccama.logging.plainTextConsoleAppender=false & pids+=($!)
wait_for "$run/dpm/log/spring-boot-logger.json.log" '"newStatus":"READY"' 60

echo "== dpm: $run/dpm/log/spring-boot-logger.json.log"
grep -E 'registerEngine|setEngineStatus' "$run/dpm/log/spring-boot-logger.json.log"
echo "== dpe: $run/dpe/log/spring-boot-logger.json.log"
grep -E '"eventId":"register"' "$run/dpe/log/spring-boot-logger.json.log"
if $until_ready; then
  echo "== the engine is READY; stopping both (--until-ready)"
  exit 0
fi
echo "== dpm and dpe are running (Ctrl-C stops both). Following the logs:"
tail -n 0 -f "$run/dpm/log/spring-boot-logger.json.log" "$run/dpe/log/spring-boot-logger.json.log" & pids+=($!)
wait
