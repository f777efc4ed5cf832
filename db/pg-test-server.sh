#!/usr/bin/env bash
# A PostgreSQL server for the registry tests, on loopback only, reused from run to run.
#
#   eval "$(bash db/pg-test-server.sh start)"   # install if missing, init once, start; prints
#                                               #   HAMTA_TEST_PG_URL=… (export it)
#   bash db/pg-test-server.sh url               # the URL only (server must be running)
#   bash db/pg-test-server.sh status | stop      # it keeps running between test runs until stopped
#
# The cluster lives in $HAMTA_CACHE/pg (default /var/cache/hamta-ivr/pg), outside the clone; the
# port is $HAMTA_PG_PORT (default 55432). As root it installs the `postgresql-15` Debian package when
# initdb is missing and runs the server as the `postgres` user; as another user it runs the
# server as that user (PostgreSQL must then be installed already). Password authentication with
# a password generated once (in $HAMTA_CACHE/pg/password, mode 600). Only the URL goes to stdout;
# progress goes to stderr.
set -euo pipefail

cache=${HAMTA_CACHE:-/var/cache/hamta-ivr}
dir=$cache/pg
data=$dir/data
port=${HAMTA_PG_PORT:-55432}
dbname=${HAMTA_PG_DB:-hamta_test}
dbuser=hamta

say() { printf 'pg-test-server: %s\n' "$*" >&2; }
die() { printf 'pg-test-server: %s\n' "$*" >&2; exit 2; }

find_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

install_postgres() {
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and I am not root; run: sudo apt-get install -y postgresql"
  say "installing PostgreSQL (apt-get install postgresql-15, no default cluster)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  # Debian's postinst would create and start a cluster `main` nobody uses: postgresql-common
  # first, told not to
  apt-get install -y -q --no-install-recommends postgresql-common >&2
  local conf=/etc/postgresql-common/createcluster.conf
  sed -i -E 's/^[#[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$conf"
  grep -q '^create_main_cluster = false' "$conf" || echo 'create_main_cluster = false' >> "$conf"
  apt-get install -y -q --no-install-recommends postgresql-15 >&2
}

# run as the server's user
if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

url() {
  printf 'postgresql+psycopg://%s:%s@127.0.0.1:%s/%s' "$dbuser" "$(cat "$dir/password")" "$port" "$dbname"
}

running() { [ -f "$data/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

start() {
  bin=$(find_bin) || true
  if [ -z "${bin:-}" ]; then
    install_postgres
    bin=$(find_bin) || die "initdb still missing after installing postgresql"
  fi
  mkdir -p "$dir"
  if [ ! -s "$dir/password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password")
  fi
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user; reinstall the postgresql package"
    chown postgres: "$dir"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initialising a cluster in $data"
    local pwfile
    pwfile=$(mktemp)
    printf '%s\n' "$(cat "$dir/password")" > "$pwfile"
    [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
    as_pg "$bin/initdb" -D "$data" -U "$dbuser" --pwfile="$pwfile" -E UTF8 --no-locale \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 >&2
    rm -f "$pwfile"
  fi
  if ! running; then
    say "starting PostgreSQL on 127.0.0.1:$port"
    as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
      start >&2 || { tail -n 20 "$dir/server.log" >&2; die "the server did not start (log: $dir/server.log)"; }
  fi
  export PGPASSWORD
  PGPASSWORD=$(cat "$dir/password")
  if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U "$dbuser" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$dbname'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$dbuser" "$dbname"
  fi
  echo "HAMTA_TEST_PG_URL=$(url); export HAMTA_TEST_PG_URL"
}

stop() {
  bin=$(find_bin) || { say "PostgreSQL is not installed"; return 0; }
  if running; then
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >&2
  else
    say "not running"
  fi
}

status() {
  bin=$(find_bin) || { echo "not installed"; return 3; }
  if running; then echo "running on 127.0.0.1:$port ($data)"; else echo "stopped"; return 3; fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) [ -s "$dir/password" ] || die "not initialised; run: $0 start"; url; echo ;;
  *) die "usage: $0 start|stop|status|url" ;;
esac
