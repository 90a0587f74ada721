#!/usr/bin/env bash
# The whole test suite, as README.md and .ci/run call it (after `npm ci`):
#   installs Postgres/Redis from Debian if missing (root only), starts private instances,
#   builds, lints, type-checks, runs every vitest file, and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

need_pkgs=()
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
command -v tmux >/dev/null || need_pkgs+=(tmux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${need_pkgs[*]} from Debian…"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}") >/dev/null || {
      echo "apt-get install ${need_pkgs[*]} failed" >&2; exit 1; }
  else
    echo "missing ${need_pkgs[*]}: sudo apt-get install -y ${need_pkgs[*]}" >&2; exit 1
  fi
fi

eval "$(test/scripts/services.sh start)" || { echo "could not start Postgres/Redis" >&2; exit 1; }

status=0
npm run --silent build || status=1
npm run --silent lint || status=1
npx tsc -p test/tsconfig.json || status=1
for dialect in sqlite pg; do
  out="$(npx drizzle-kit generate --config "migrations/drizzle.$dialect.config.ts" 2>&1)"
  echo "$out" | grep -q "No schema changes" || { echo "schema changes without a migration ($dialect):"; echo "$out"; status=1; }
done

report="$(mktemp -d)/vitest.json"
npx vitest run --config test/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$report" "$@"
vitest_status=$?
[ $vitest_status -eq 0 ] || status=1

if [ -s "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$report"
else
  echo "0 passed, 1 failed"
fi
exit $status
