#!/usr/bin/env bash
# Starts the peer databases `allocdb bench` compares against: a private PostgreSQL cluster on
# 127.0.0.1:55432 (user and database `bench`) and a private redis-server on 127.0.0.1:56379,
# both with durable settings, their data under $ALLOCDB_PEERS_DIR (default /var/tmp/allocdb-peers).
#
# Installs the Debian packages first if they are missing, without letting the packages start
# their own system-wide services. Re-running it is safe: what is installed, initialised or
# running already is left as it is. It prints the servers' process ids as one line
#   PEER_PIDS postgres=<pid> redis=<pid>
# and writes them to $ALLOCDB_PEERS_DIR/pids.env; scripts/peers-teardown.sh stops exactly these.
#
#   ALLOCDB_PEERS_DIR         where the data, logs and pid files live
#   ALLOCDB_PEERS_PG_PORT     PostgreSQL port (default 55432)
#   ALLOCDB_PEERS_REDIS_PORT  Redis port (default 56379)
set -euo pipefail

peers_dir="${ALLOCDB_PEERS_DIR:-/var/tmp/allocdb-peers}"
pg_port="${ALLOCDB_PEERS_PG_PORT:-55432}"
redis_port="${ALLOCDB_PEERS_REDIS_PORT:-56379}"
pg_data="$peers_dir/postgres/data"
pg_socket_dir="$peers_dir/postgres/socket"
pg_log="$peers_dir/postgres/server.log"
redis_dir="$peers_dir/redis"
redis_pidfile="$redis_dir/redis.pid"

say() { printf 'peers-setup: %s\n' "$*"; }
fail() { printf 'peers-setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root: it installs packages and runs PostgreSQL as the postgres user"

# The newest installed PostgreSQL server's bin directory, or nothing.
pg_bin_dir() {
  local candidates
  candidates=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V)
  [ -n "$candidates" ] && printf '%s\n' "$candidates" | tail -n 1
  return 0
}

install_missing_packages() {
  local missing=()
  [ -n "$(pg_bin_dir)" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  # invoke-rc.d consults policy-rc.d; exit code 101 means "do not start services". Without it
  # the packages would start a system redis on 6379 and the Debian "main" cluster on 5432,
  # which we neither want to measure nor are allowed to stop later. A policy file that is
  # already there is left alone (it usually says the same).
  local policy=/usr/sbin/policy-rc.d
  local made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$made_policy" = 1 ]; then
    rm -f "$policy"
    trap - EXIT
  fi
}

start_postgres() {
  local bin_dir
  bin_dir=$(pg_bin_dir)
  [ -n "$bin_dir" ] || fail "no PostgreSQL server binaries under /usr/lib/postgresql"
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    say "initdb $pg_data"
    mkdir -p "$pg_data" "$pg_socket_dir"
    chown -R postgres:postgres "$peers_dir/postgres"
    # Trust on loopback only: the cluster listens on 127.0.0.1 and a private socket directory.
    runuser -u postgres -- "$bin_dir/initdb" -D "$pg_data" -U bench -A trust -E UTF8 --locale=C >/dev/null
    cat >>"$pg_data/postgresql.conf" <<CONF

# ---- allocdb peers (scripts/peers-setup.sh) ----
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pg_socket_dir'
max_connections = 200
shared_buffers = 1GB
# Durable by default, stated explicitly; the bench sets synchronous_commit per session.
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
# Ordinary production tuning, so that a short run is not dominated by forced checkpoints.
max_wal_size = 8GB
checkpoint_timeout = 15min
logging_collector = off
log_min_messages = warning
CONF
  fi
  if runuser -u postgres -- "$bin_dir/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    say "postgres already running on 127.0.0.1:$pg_port"
  else
    say "starting postgres on 127.0.0.1:$pg_port"
    runuser -u postgres -- "$bin_dir/pg_ctl" -D "$pg_data" -l "$pg_log" -w -t 60 start >/dev/null
  fi
  local has_db
  has_db=$(psql "host=127.0.0.1 port=$pg_port user=bench dbname=postgres" -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'bench'")
  if [ "$has_db" != 1 ]; then
    psql "host=127.0.0.1 port=$pg_port user=bench dbname=postgres" -qc 'CREATE DATABASE bench' >/dev/null
  fi
  # pg_stat_wal.wal_sync_time (the bench's fsync time) is measured only with this on; it costs
  # two clock readings per WAL write and flush. ALTER SYSTEM makes it stick and is idempotent.
  psql "host=127.0.0.1 port=$pg_port user=bench dbname=postgres" -q \
    -c 'ALTER SYSTEM SET track_wal_io_timing = on' -c 'SELECT pg_reload_conf()' >/dev/null
}

start_redis() {
  mkdir -p "$redis_dir"
  cat >"$redis_dir/redis.conf" <<CONF
# allocdb peers (scripts/peers-setup.sh): a private instance on loopback
bind 127.0.0.1
port $redis_port
protected-mode yes
daemonize yes
pidfile $redis_pidfile
logfile $redis_dir/redis.log
dir $redis_dir
# Durable by default; the bench switches appendfsync with CONFIG SET for relaxed runs.
appendonly yes
appendfsync always
appenddirname appendonly
# No RDB snapshots: a fork and dump landing inside a measured window would be noise.
save ""
maxmemory 8gb
maxmemory-policy noeviction
CONF
  if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
    say "redis already running on 127.0.0.1:$redis_port"
    return 0
  fi
  say "starting redis on 127.0.0.1:$redis_port"
  redis-server "$redis_dir/redis.conf"
  local attempt
  for attempt in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "redis did not answer PING on port $redis_port within 10 s (see $redis_dir/redis.log)"
}

# The first line of postmaster.pid is the postmaster's pid; the pid file the one redis wrote.
read_pids() {
  postgres_pid=$(head -n 1 "$pg_data/postmaster.pid")
  local attempt
  for attempt in $(seq 100); do
    [ -s "$redis_pidfile" ] && break
    sleep 0.1
  done
  redis_pid=$(cat "$redis_pidfile")
  [[ "$postgres_pid" =~ ^[0-9]+$ ]] || fail "no pid in $pg_data/postmaster.pid"
  [[ "$redis_pid" =~ ^[0-9]+$ ]] || fail "no pid in $redis_pidfile"
  # A redis answering on our port that is not the one our pid file names is someone else's.
  local answering
  answering=$(redis-cli -p "$redis_port" info server | tr -d '\r' | sed -n 's/^process_id://p')
  [ "$answering" = "$redis_pid" ] ||
    fail "the redis on port $redis_port is pid $answering, not $redis_pid from $redis_pidfile"
}

install_missing_packages
mkdir -p "$peers_dir"
# The postgres user must be able to reach its data directory below this one.
chmod 755 "$peers_dir"
start_postgres
start_redis
read_pids

cat >"$peers_dir/pids.env" <<ENV
# Written by scripts/peers-setup.sh; scripts/peers-teardown.sh stops these.
PEER_PID_POSTGRES=$postgres_pid
PEER_PID_REDIS=$redis_pid
PEER_PG_URL='host=127.0.0.1 port=$pg_port user=bench dbname=bench'
PEER_REDIS_URL='redis://127.0.0.1:$redis_port/'
ENV
say "ok: postgres host=127.0.0.1 port=$pg_port user=bench dbname=bench, redis redis://127.0.0.1:$redis_port/, data $peers_dir"
say "versions: $("$(pg_bin_dir)/postgres" --version) / $(redis-server --version | cut -d ' ' -f 1-3)"
echo "PEER_PIDS postgres=$postgres_pid redis=$redis_pid"
