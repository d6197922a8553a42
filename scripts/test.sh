#!/usr/bin/env bash
# Runs every test: unit and integration tests on SQLite and PostgreSQL (cargo nextest), the
# catalog check, the matcher's accuracy bars on the shared evaluation set, and the browser tests
# (webtests/: the widget, the resident pages and the staff console in headless chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi
cargo run -q -- intents check
if [ -f ../shared/dev-questions.tsv ]; then
  cargo run -q -- intents eval ../shared/dev-questions.tsv \
    --min-answer-rate 0.92 --min-precision 0.98 --min-offered 0.97 \
    --max-false-fallback 0.03 --min-oos-fallback 0.95 --max-oos-answered 0
fi

# Browser tests drive the debug binary in Debian's chromium (playwright-core + axe-core).
cargo build -q
if [ ! -d webtests/node_modules ]; then
  npm ci --prefix webtests --no-audit --no-fund
fi
npm test --prefix webtests
