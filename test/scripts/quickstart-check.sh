#!/usr/bin/env bash
# Runs the README quickstart exactly as written, on a clean clone of this repository's HEAD, and
# fails loudly if any step does not do what the README promises:
#
#   npm ci && npm run build
#   bin/gatewayctl demo --serve
#   bin/gatewayctl chat "hello"          (second terminal)
#   <the curl line that demo printed>    (second terminal)
#   bin/gatewayctl chat                  (second terminal; driven through tmux: hello, /exit)
#
# Usage: test/scripts/quickstart-check.sh
#   QUICKSTART_PORT=N       serve on N instead of 8080 (sets GATEWAY_PORT; the lines stay the same)
#   QUICKSTART_REUSE_MODULES=1  link this checkout's node_modules instead of `npm ci` (local runs
#                           only: it skips the install step, so CI must not set it)
#   QUICKSTART_KEEP=1       keep the temporary clone for inspection
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/gw-quickstart.XXXXXX")"
tmux_socket="gw-quickstart-$$"
demo_pid=""

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() {
  printf '\nquickstart-check FAILED: %s\n' "$*" >&2
  if [ -f "$work/ai-gateway/demo.log" ]; then
    printf -- '--- demo --serve output ---\n' >&2
    cat "$work/ai-gateway/demo.log" >&2
  fi
  exit 1
}
cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then kill -TERM "$demo_pid" 2>/dev/null || true; fi
  tmux -L "$tmux_socket" kill-server 2>/dev/null || true
  if [ "${QUICKSTART_KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Nothing from the caller's environment may steer the quickstart (a CI job's store, key or URL).
for v in $(env | sed -n 's/^\(GATEWAY_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
if [ -n "${QUICKSTART_PORT:-}" ]; then export GATEWAY_PORT="$QUICKSTART_PORT"; fi
port="${GATEWAY_PORT:-8080}"
export npm_config_nodedir="${npm_config_nodedir:-/usr}"

step "clean clone of HEAD"
git clone --quiet --no-hardlinks "$repo" "$work/ai-gateway"
cd "$work/ai-gateway"
git log --oneline -1

step "npm ci && npm run build"
if [ "${QUICKSTART_REUSE_MODULES:-}" = 1 ]; then
  ln -s "$repo/node_modules" node_modules
  npm run build
else
  npm ci && npm run build
fi

step "bin/gatewayctl demo --serve"
bin/gatewayctl demo --serve >demo.log 2>&1 &
demo_pid=$!
for _ in $(seq 1 600); do
  grep -q '^  curl -s ' demo.log && break
  kill -0 "$demo_pid" 2>/dev/null || fail "demo --serve exited before the proxy was listening"
  sleep 0.1
done
grep -q "listening on http://127.0.0.1:$port" demo.log || fail "the proxy did not say 'listening on http://127.0.0.1:$port' within 60 s"
grep -q '^  curl -s ' demo.log || fail "demo did not print the curl line"
grep -m1 'listening on' demo.log

step 'bin/gatewayctl chat "hello"'
answer="$(bin/gatewayctl chat "hello" 2>chat.err)" || { cat chat.err >&2; fail 'chat "hello" exited non-zero'; }
cat chat.err
[ -n "$answer" ] || fail 'chat "hello" printed no answer'
grep -q 'tokens left today' chat.err || fail 'chat "hello" did not report what is left of the quota'
echo "answer: $answer"

step "the curl line demo printed"
curl_line="$(grep -m1 '^  curl -s ' demo.log | sed 's/^  //')"
echo "$curl_line" | sed 's/Bearer gw_[a-z]*_[0-9a-z]*_[0-9A-Za-z]*/Bearer gw_…/'
body="$(eval "$curl_line")" || fail "the curl line failed"
echo "$body" | node -e '
  const b = JSON.parse(require("fs").readFileSync(0, "utf8"));
  if (!b.choices?.[0]?.message?.content) { console.error("no answer in", b); process.exit(1); }
  console.log("answer:", b.choices[0].message.content.slice(0, 80), "· tokens:", b.usage?.total_tokens);
' || fail "the curl line did not return a chat completion"

step "bin/gatewayctl chat (interactive, in tmux)"
command -v tmux >/dev/null || fail "tmux is needed to drive the interactive chat"
screen() { tmux -L "$tmux_socket" capture-pane -p -J -t qs -S -100; }
wait_screen() {
  for _ in $(seq 1 300); do screen | grep -q -- "$1" && return 0; sleep 0.1; done
  screen >&2
  fail "the interactive chat never showed '$1'"
}
# CI=true means "never prompt"; a person at a terminal has no CI variable.
tmux -L "$tmux_socket" -f /dev/null new-session -d -s qs -x 120 -y 40 -c "$PWD" \
  "env -u CI bin/gatewayctl chat; echo \"[chat exited \$?]\"; sleep 30"
wait_screen 'you ›'
tmux -L "$tmux_socket" send-keys -t qs -l 'hello'
tmux -L "$tmux_socket" send-keys -t qs Enter
wait_screen 'tokens left today'
tmux -L "$tmux_socket" send-keys -t qs -l '/exit'
tmux -L "$tmux_socket" send-keys -t qs Enter
wait_screen '\[chat exited 0\]'
screen | sed '/^$/d'

step "Ctrl-C stops the gateway"
kill -INT "$demo_pid"
status=0
wait "$demo_pid" || status=$?
demo_pid=""
[ "$status" = 0 ] || fail "demo --serve exited $status after SIGINT"
grep -q 'gateway-proxy stopped' demo.log || fail "the proxy did not report a clean stop"

printf '\nquickstart-check OK\n'
