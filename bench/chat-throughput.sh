#!/usr/bin/env bash
# HTTP chat throughput as a fraction of a plain /healthz loop under the same load tool
# (wrk), same connections and duration, in the same run. Sessions and analytics recording
# are on; rate limiting is off (VENTANILLA_RATE_LIMIT=off), as for any benchmark.
#
#   bash bench/chat-throughput.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-16}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
VENTANILLA_LISTEN=127.0.0.1:$port DATABASE_URL=${DATABASE_URL:-sqlite://$tmp/bench.db} \
  VENTANILLA_RATE_LIMIT=off VENTANILLA_LOG=warn ./target/release/ventanilla serve &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"
sid=$(curl -sf -X POST "$base/api/v1/chat/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
cat > "$tmp/chat.lua" <<LUA
local questions = {
  "horario de atencion de la muni", "como pago el permiso de circulacion",
  "telefono de la dideco", "hay un hoyo en mi calle", "quiero hacer un reclamo",
  "donde queda el cementerio", "luminaria apagada en el pasaje", "receta de queque",
}
local i = 0
request = function()
  i = i + 1
  local body = '{"text": "' .. questions[(i % #questions) + 1] .. '"}'
  return wrk.format("POST", "/api/v1/chat/sessions/$sid/messages",
    { ["Content-Type"] = "application/json" }, body)
end
LUA
rps() { awk '/Requests\/sec/ {print $2}'; }
health=$(wrk -t2 -c"$conns" -d"${secs}s" "$base/healthz" | tee "$tmp/h.txt" | rps)
chat=$(wrk -t2 -c"$conns" -d"${secs}s" -s "$tmp/chat.lua" "$base/" | tee "$tmp/c.txt" | rps)
echo "healthz: $health req/s"
grep -E "Latency|Non-2xx" "$tmp/h.txt" || true
echo "chat:    $chat req/s"
grep -E "Latency|Non-2xx" "$tmp/c.txt" || true
python3 -c "print(f'chat throughput = {float($chat)/float($health):.3f} x healthz (goal >= 0.10)')"
