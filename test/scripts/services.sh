#!/usr/bin/env bash
# Starts (or stops) the private Postgres cluster and Redis server the test suite uses.
#   test/scripts/services.sh start   → prints the env lines to export
#   test/scripts/services.sh stop
# Needs Debian's postgresql and redis-server packages (apt-get install -y postgresql redis-server).
set -euo pipefail
PG_PORT="${GATEWAY_TEST_PG_PORT:-55432}"
REDIS_PORT="${GATEWAY_TEST_REDIS_PORT:-56379}"
BASE="${GATEWAY_TEST_SERVICES_DIR:-/tmp/ai-gateway-test-services}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
PGDATA="$BASE/pg"

run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() {
  [ -n "$PG_BIN" ] || { echo "postgresql is not installed (apt-get install -y postgresql)" >&2; exit 1; }
  command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install -y redis-server)" >&2; exit 1; }
  mkdir -p "$BASE"
  if [ "$(id -u)" = 0 ]; then chown postgres "$BASE"; fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    run_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync >/dev/null
  fi
  if ! run_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    # The port is inside Linux's ephemeral range: a client that tried it while nothing listened
    # can have been given it as its own source port and connected to itself, and that socket's
    # TIME_WAIT (60 s) refuses the bind. Retried for up to 90 s before giving up.
    local tries=0
    until run_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/log" -w \
      -o "-p $PG_PORT -k $BASE -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null 2>&1; do
      tries=$((tries + 1))
      if [ "$tries" -ge 18 ]; then
        echo "postgres did not start on port $PG_PORT; its log:" >&2
        tail -5 "$PGDATA/log" >&2
        exit 1
      fi
      sleep 5
    done
  fi
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
      --logfile "$BASE/redis.log" >/dev/null
  fi
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "export GATEWAY_TEST_PG_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "export GATEWAY_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
}

stop() {
  [ -n "$PG_BIN" ] && [ -d "$PGDATA" ] && run_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
