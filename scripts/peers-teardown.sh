#!/usr/bin/env bash
# Stops exactly the PostgreSQL and Redis instances scripts/peers-setup.sh started: PostgreSQL
# by its data directory (pg_ctl), Redis by its port (SHUTDOWN) and, only if that did not end
# it, by the pid in our own pid file. Nothing is ever stopped by process name.
#
#   --purge   also delete $ALLOCDB_PEERS_DIR (data, logs, pid files)
#
# Re-running it is safe: what is not running is reported and skipped.
set -euo pipefail

peers_dir="${ALLOCDB_PEERS_DIR:-/var/tmp/allocdb-peers}"
redis_port="${ALLOCDB_PEERS_REDIS_PORT:-56379}"
pg_data="$peers_dir/postgres/data"
redis_pidfile="$peers_dir/redis/redis.pid"

say() { printf 'peers-teardown: %s\n' "$*"; }

purge=0
for argument in "$@"; do
  case "$argument" in
    --purge) purge=1 ;;
    *) printf 'peers-teardown: unknown argument %s (only --purge)\n' "$argument" >&2; exit 2 ;;
  esac
done

stop_postgres() {
  local candidates bin_dir
  candidates=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V)
  bin_dir=$(printf '%s\n' "$candidates" | tail -n 1)
  if [ ! -f "$pg_data/PG_VERSION" ] || [ -z "$bin_dir" ]; then
    say "no postgres cluster at $pg_data"
    return 0
  fi
  if runuser -u postgres -- "$bin_dir/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    say "stopping postgres ($pg_data)"
    runuser -u postgres -- "$bin_dir/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null
  else
    say "postgres ($pg_data) is not running"
  fi
}

stop_redis() {
  local pid=""
  [ -f "$redis_pidfile" ] && pid=$(cat "$redis_pidfile")
  if ! [[ "$pid" =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
    say "redis (pid file $redis_pidfile) is not running"
    return 0
  fi
  # A pid file left behind by a crashed redis may name a pid the system has since reused: act
  # only on a process that is a redis-server serving our port.
  local title
  title=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  if [[ "$title" != *redis-server*":$redis_port"* ]]; then
    say "pid $pid from $redis_pidfile is not our redis ($title); leaving it alone"
    return 0
  fi
  say "shutting down redis on port $redis_port (pid $pid)"
  redis-cli -p "$redis_port" shutdown >/dev/null 2>&1 || true
  local attempt
  for attempt in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "redis pid $pid still alive after SHUTDOWN; sending SIGTERM to that pid"
    kill -TERM "$pid"
  fi
}

stop_postgres
stop_redis
if [ "$purge" = 1 ]; then
  say "removing $peers_dir"
  rm -rf "$peers_dir"
fi
