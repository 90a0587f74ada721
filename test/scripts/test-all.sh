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

# Build, lint, type-check and the migrations check count as tests of their own in the closing line.
status=0
checks_passed=0
checks_failed=0
check() {
  if "$@"; then checks_passed=$((checks_passed + 1)); else echo "FAILED: $*" >&2; checks_failed=$((checks_failed + 1)); status=1; fi
}
migrations_current() {
  local out
  out="$(npx drizzle-kit generate --config "migrations/drizzle.$1.config.ts" 2>&1)"
  echo "$out" | grep -q "No schema changes" || { echo "schema changes without a migration ($1):"; echo "$out"; return 1; }
}
check npm run --silent build
check npm run --silent lint
check npx tsc -p test/tsconfig.json
check migrations_current sqlite
check migrations_current pg

report="$(mktemp -d)/vitest.json"
npx vitest run --config test/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$report" "$@"
vitest_status=$?
[ $vitest_status -eq 0 ] || status=1

if [ -s "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const [cp, cf] = [Number(process.argv[2]), Number(process.argv[3])];
    const failed = r.numFailedTests + cf + (r.success === false && r.numFailedTests === 0 ? 1 : 0);
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`${r.numPassedTests + cp} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$report" "$checks_passed" "$checks_failed"
else
  echo "$checks_passed passed, $((checks_failed + 1)) failed"
fi
exit $status
