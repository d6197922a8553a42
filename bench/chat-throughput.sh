#!/usr/bin/env bash
# HTTP chat throughput as a fraction of two baselines under the same load tool (wrk), same
# connections and duration, in the same run: a bare axum plaintext handler (examples/
# bare_axum.rs: no middleware, no state) and the service's own /healthz (the whole middleware
# stack). Sessions and analytics recording are on; rate limiting is off
# (VENTANILLA_RATE_LIMIT=off), as for any benchmark.
#
#   bash bench/chat-throughput.sh [seconds] [connections]
cd "$(dirname "$0")/.."
source bench/lib.sh
secs=${1:-10}
conns=${2:-16}
start_server "${DATABASE_URL:-sqlite://$BENCH_TMP/bench.db}"
start_bare
sid=$(curl -sf -X POST "$BASE/api/v1/chat/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
cat > "$BENCH_TMP/chat.lua" <<LUA
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
wrk -t2 -c"$conns" -d"${secs}s" "$BARE/" > "$BENCH_TMP/b.txt"
wrk -t2 -c"$conns" -d"${secs}s" "$BASE/healthz" > "$BENCH_TMP/h.txt"
wrk -t2 -c"$conns" -d"${secs}s" -s "$BENCH_TMP/chat.lua" "$BASE/" > "$BENCH_TMP/c.txt"
bare=$(rps "$BENCH_TMP/b.txt"); health=$(rps "$BENCH_TMP/h.txt"); chat=$(rps "$BENCH_TMP/c.txt")
echo "bare axum: $bare req/s";   grep -E "Latency|Non-2xx" "$BENCH_TMP/b.txt" || true
echo "healthz:   $health req/s"; grep -E "Latency|Non-2xx" "$BENCH_TMP/h.txt" || true
echo "chat:      $chat req/s";   grep -E "Latency|Non-2xx" "$BENCH_TMP/c.txt" || true
python3 -c "print(f'chat throughput = {float($chat)/float($bare):.3f} x bare axum handler (goal >= 0.10)')"
python3 -c "print(f'chat throughput = {float($chat)/float($health):.3f} x healthz; healthz = {float($health)/float($bare):.3f} x bare axum (the middleware)')"
