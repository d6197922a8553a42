# Shared helpers for the HTTP benchmarks: build, start a server on a free port with rate
# limiting off (VENTANILLA_BIN=path serves another build, e.g. an older commit's, to compare),
# and read wrk's requests/second.
set -euo pipefail
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
BENCH_TMP=$(mktemp -d)
BENCH_PIDS=()
cleanup() {
  for p in "${BENCH_PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$BENCH_TMP"
}
trap cleanup EXIT

# start_server DATABASE_URL → sets BASE
start_server() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  VENTANILLA_LISTEN=127.0.0.1:$port DATABASE_URL="$1" VENTANILLA_RATE_LIMIT=off VENTANILLA_LOG="${VENTANILLA_LOG:-warn}" \
    "${VENTANILLA_BIN:-./target/release/ventanilla}" serve &
  BENCH_PIDS+=($!)
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do curl -sf "$BASE/readyz" >/dev/null && return 0; sleep 0.1; done
  echo "server did not become ready" >&2; return 1
}

# start_bare → sets BARE: the baseline, a bare axum plaintext handler (examples/bare_axum.rs:
# no middleware, no state), built with the same profile and served on a free port.
start_bare() {
  cargo build --release -q --example bare_axum
  ./target/release/examples/bare_axum > "$BENCH_TMP/bare.addr" &
  BENCH_PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$BENCH_TMP/bare.addr" ] && break; sleep 0.05; done
  BARE="http://$(head -n1 "$BENCH_TMP/bare.addr")"
}

# rps OUTPUT_FILE → requests/second from wrk's output
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
