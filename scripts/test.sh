#!/usr/bin/env bash
# Runs every test: unit and integration tests on SQLite and PostgreSQL (cargo nextest), the
# catalog check, the matcher's accuracy bars on the shared evaluation set, and the browser tests
# (webtests/: the widget, the resident pages and the staff console in headless chromium).
#
# On a fresh machine it first gets what it needs: Debian's chromium (apt-get, when running as
# root), the browser tests' packages (`npm ci`, when webtests/node_modules is missing or was
# installed from another package-lock.json), cargo-nextest, and starts the local PostgreSQL
# when it is installed but stopped. It runs every step even when one fails, then prints a
# summary: how many tests ran, how many PostgreSQL and browser tests ran or were skipped, and
# a loud warning when PostgreSQL was unreachable (its tests then skip themselves, except under
# CI=true, where they fail). Exit status: non-zero when any step failed.
#
#   bash scripts/test.sh [ARGS]   ARGS go to cargo nextest run (e.g. --test binary)
set -uo pipefail
cd "$(dirname "$0")/.."

PG_URL=${VENTANILLA_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}
PG_SHOWN=$(sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$PG_URL")
root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  root && command -v apt-get >/dev/null || return 1
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
pg_up() {
  if command -v psql >/dev/null; then
    psql "$PG_URL" -qtAc 'select 1' >/dev/null 2>&1
  else
    pg_isready -q -d "$PG_URL" 2>/dev/null
  fi
}

# --- What a fresh machine lacks -------------------------------------------------------------
if ! command -v chromium >/dev/null && [ -z "${CHROMIUM:-}" ]; then
  echo "== installing Debian's chromium (browser tests)"
  apt_install chromium || echo "chromium is missing and cannot be installed here (not root?)"
fi
if ! command -v npm >/dev/null; then
  echo "== installing node and npm (browser tests)"
  apt_install nodejs npm || echo "npm is missing and cannot be installed here (not root?)"
fi
# npm ci again whenever the lock file changed since the last install.
lock_stamp=webtests/node_modules/.ventanilla-lock.sha256
if command -v npm >/dev/null \
  && ! sha256sum --status -c "$lock_stamp" 2>/dev/null; then
  echo "== npm ci --prefix webtests"
  npm ci --prefix webtests --no-audit --no-fund \
    && sha256sum webtests/package-lock.json > "$lock_stamp"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "== installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
# PostgreSQL is part of the machine image; start it if it is installed but stopped.
if ! pg_up && root && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "== starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi

if pg_up; then pg_reachable=yes; else pg_reachable=no; fi

# --- The tests ------------------------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
# Each integration test that asks for a PostgreSQL database writes "ran NAME" or "skipped NAME"
# here (tests/common/mod.rs), whichever runner runs it.
export VENTANILLA_TEST_PG_LOG="$work/pg.log"
: > "$VENTANILLA_TEST_PG_LOG"

echo "== Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@" 2>&1 | tee "$work/rust.log"
  rust_status=${PIPESTATUS[0]}
  rust_summary=$(grep -E '^ *Summary \[' "$work/rust.log" | tail -n1 | sed -E 's/^ *Summary \[[^]]*\] *//')
else
  cargo test --no-fail-fast "$@" 2>&1 | tee "$work/rust.log"
  rust_status=${PIPESTATUS[0]}
  rust_summary=$(awk '/^test result:/ {p+=$4; f+=$6; i+=$8} END {print p+f " tests run: " p " passed, " f " failed, " i " ignored"}' "$work/rust.log")
fi
[ "$rust_status" = 0 ] || failed+=("Rust tests")

echo "== catalog check"
if cargo run -q -- intents check; then catalog="ok"; else catalog="FAILED"; failed+=("catalog check"); fi

if [ -f ../shared/dev-questions.tsv ]; then
  echo "== matcher evaluation"
  if cargo run -q -- intents eval ../shared/dev-questions.tsv \
    --min-answer-rate 0.92 --min-precision 0.98 --min-offered 0.97 \
    --max-false-fallback 0.03 --min-oos-fallback 0.95 --max-oos-answered 0; then
    matcher="ok"
  else
    matcher="FAILED"; failed+=("matcher evaluation")
  fi
else
  matcher="not run (../shared/dev-questions.tsv absent)"
fi

# Browser tests drive the debug binary in Debian's chromium (playwright-core + axe-core).
echo "== browser tests"
browser_missing=""
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || browser_missing="chromium"
[ -d webtests/node_modules ] || browser_missing="${browser_missing:+$browser_missing, }webtests/node_modules"
if [ -n "$browser_missing" ]; then
  browser="SKIPPED: $browser_missing missing"
  [ "${CI:-}" = true ] && failed+=("browser tests ($browser_missing missing)")
elif ! cargo build -q; then
  browser="not run (the build failed)"; failed+=("browser tests")
else
  npm test --prefix webtests 2>&1 | tee "$work/web.log"
  web_status=${PIPESTATUS[0]}
  count() { awk -v k="$1" '$1 == "ℹ" && $2 == k {n=$3} END {print n+0}' "$work/web.log"; }
  browser="$(count tests) run: $(count pass) passed, $(count fail) failed, $(count skipped) skipped"
  [ "$web_status" = 0 ] || failed+=("browser tests")
fi

# --- Summary --------------------------------------------------------------------------------
pg_count() { awk -v k="$1" '$1 == k {print $2}' "$VENTANILLA_TEST_PG_LOG" | sort -u | wc -l; }
pg_ran=$(pg_count ran); pg_skipped=$(pg_count skipped); pg_failed=$(pg_count unreachable)
echo
echo "================================ summary ================================"
echo "Rust tests:         ${rust_summary:-no summary found}"
echo "PostgreSQL tests:   $pg_ran ran, $pg_skipped skipped, $pg_failed failed to connect ($PG_SHOWN)"
echo "Catalog check:      $catalog"
echo "Matcher evaluation: $matcher"
echo "Browser tests:      $browser"
if [ "$pg_skipped" -gt 0 ] || [ "$pg_reachable" = no ]; then
  echo
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  echo "!! WARNING: PostgreSQL at $PG_SHOWN was unreachable."
  if [ "$pg_skipped" -gt 0 ]; then
    echo "!! $pg_skipped PostgreSQL tests were SKIPPED: they count as passed above but tested"
    echo "!! nothing on PostgreSQL."
  fi
  [ "$pg_failed" -gt 0 ] && echo "!! $pg_failed PostgreSQL tests FAILED for it (CI=true)."
  echo "!! Start it (or set VENTANILLA_TEST_PG) and run again."
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
fi
if [ -n "$browser_missing" ]; then
  echo "!! WARNING: the browser tests did not run ($browser_missing missing)."
fi
if [ ${#failed[@]} -gt 0 ]; then
  (IFS=';'; echo "FAILED: ${failed[*]}" | sed 's/;/; /g')
  exit 1
fi
if [ "$pg_skipped" -gt 0 ] || [ -n "$browser_missing" ]; then
  echo "what ran passed; see the skips above"
else
  echo "all passed"
fi
