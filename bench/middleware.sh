#!/usr/bin/env bash
# What the middleware stack costs: /healthz (request id, span, metrics, security headers,
# CORS, body limits; no database) against a bare axum plaintext handler (examples/
# bare_axum.rs), same tool (wrk), threads, connections and duration, in alternating rounds of
# the same run so machine noise hits all alike. The service runs twice: with the log filter
# at warn, as in every benchmark here (the request span is then off), and at info, the
# production default (every request opens its span). Rate limiting is off, as for every
# benchmark (/healthz is not rate limited anyway). Besides requests/second it prints each
# server's CPU time per request (from /proc), steadier than throughput on a shared machine.
#
#   bash bench/middleware.sh [seconds] [connections] [rounds]
cd "$(dirname "$0")/.."
source bench/lib.sh
secs=${1:-5}
conns=${2:-16}
rounds=${3:-5}
start_bare; pid_bare=${BENCH_PIDS[-1]}
VENTANILLA_LOG=warn start_server "sqlite://$BENCH_TMP/warn.db"; warn_url=$BASE; pid_warn=${BENCH_PIDS[-1]}
VENTANILLA_LOG=info start_server "sqlite://$BENCH_TMP/info.db"; info_url=$BASE; pid_info=${BENCH_PIDS[-1]}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# load NAME PID URL → appends "rps us_per_request" to $BENCH_TMP/NAME
load() {
  local before after
  before=$(cpu_ticks "$2")
  wrk -t2 -c"$conns" -d"${secs}s" "$3" > "$BENCH_TMP/wrk.txt"
  after=$(cpu_ticks "$2")
  if grep -q "Non-2xx" "$BENCH_TMP/wrk.txt"; then cat "$BENCH_TMP/wrk.txt"; exit 1; fi
  python3 -c "print($(rps "$BENCH_TMP/wrk.txt"), ($after - $before) / $(getconf CLK_TCK) * 1e6 / $(awk '/requests in/ {print $1}' "$BENCH_TMP/wrk.txt"))" >> "$BENCH_TMP/$1"
  echo "  $1: $(tail -n1 "$BENCH_TMP/$1" | awk '{printf "%.0f req/s, %.2f µs CPU/request", $1, $2}')"
}
for r in $(seq 1 "$rounds"); do
  echo "round $r"
  load bare "$pid_bare" "$BARE/"
  load healthz_warn "$pid_warn" "$warn_url/healthz"
  load healthz_info "$pid_info" "$info_url/healthz"
done
python3 - "$BENCH_TMP" <<'PY'
import statistics, sys
def rows(name):
    return [[float(x) for x in l.split()] for l in open(f"{sys.argv[1]}/{name}")]
bare = rows("bare")
med = statistics.median
print(f"median bare axum: {med(r[0] for r in bare):.0f} req/s, {med(r[1] for r in bare):.2f} µs CPU/request")
for name, label in (("healthz_warn", "log filter warn"), ("healthz_info", "log filter info")):
    h = rows(name)
    print(f"median healthz ({label}): {med(r[0] for r in h):.0f} req/s, {med(r[1] for r in h):.2f} µs CPU/request")
    # Each round's ratio, then the median: a round's runs are seconds apart.
    ratio = med(x[0] / b[0] for x, b in zip(h, bare))
    print(f"healthz / bare axum = {ratio:.2f} ({label}; median of the rounds' ratios; goal >= 0.80)")
PY
