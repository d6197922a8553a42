#!/usr/bin/env bash
# OIRS case filing throughput over HTTP (durable commits: case, events and outbox messages
# in one transaction) on SQLite and on PostgreSQL, each also as a fraction of /healthz on the
# same server, measured in the same run. The outbox worker runs (no receiver configured, so
# webhooks are marked skipped), as in a deployment without gestión documental.
#
#   bash bench/filing-throughput.sh [seconds] [connections]
cd "$(dirname "$0")/.."
source bench/lib.sh
secs=${1:-10}
conns=${2:-16}
cat > "$BENCH_TMP/file.lua" <<'LUA'
local i = 0
request = function()
  i = i + 1
  local body = '{"type": "reclamo", "topic": "alumbrado_publico", "name": "Vecina de prueba", ' ..
    '"description": "Luminaria apagada en el pasaje numero ' .. i .. '", "consent": true}'
  return wrk.format("POST", "/api/v1/oirs/cases", { ["Content-Type"] = "application/json" }, body)
end
LUA
run() {
  local label=$1 url=$2
  start_server "$url"
  wrk -t2 -c"$conns" -d"${secs}s" "$BASE/healthz" > "$BENCH_TMP/h.txt"
  wrk -t2 -c"$conns" -d"${secs}s" -s "$BENCH_TMP/file.lua" "$BASE/" > "$BENCH_TMP/f.txt"
  local h f
  h=$(rps "$BENCH_TMP/h.txt"); f=$(rps "$BENCH_TMP/f.txt")
  echo "$label: $f cases/s ($(python3 -c "print(f'{float($f)/float($h):.3f}')") x healthz at $h req/s)"
  grep -E "Latency|Non-2xx" "$BENCH_TMP/f.txt" || true
}
run "SQLite    " "sqlite://$BENCH_TMP/filing.db"
pg_admin=${VENTANILLA_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
if psql "$pg_admin/postgres" -qc "DROP DATABASE IF EXISTS ventanilla_bench" -c "CREATE DATABASE ventanilla_bench" >/dev/null 2>&1; then
  run "PostgreSQL" "$pg_admin/ventanilla_bench"
else
  echo "PostgreSQL: not reachable at $pg_admin, skipped"
fi
echo "goal: >= 1000 cases/s on SQLite with durable commits"
