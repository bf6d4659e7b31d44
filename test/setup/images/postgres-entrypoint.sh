#!/bin/sh
# Entry point of the test image regctl-test/postgres:15 (made by test/setup/provision.sh from Debian's
# PostgreSQL 15), honouring the part of the official postgres image's contract the trial stack uses:
#   POSTGRES_USER (default postgres), POSTGRES_DB (default $POSTGRES_USER), POSTGRES_PASSWORD_FILE or
#   POSTGRES_PASSWORD, PGDATA (default /var/lib/postgresql/data).
# An empty PGDATA is initialised (initdb, the database created); the server then listens on every address and
# asks the network for a SCRAM password, as the official image does. It runs as the user postgres.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
export PGDATA POSTGRES_USER POSTGRES_DB

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec su -m -s /bin/sh postgres -c 'exec /usr/local/bin/docker-entrypoint.sh "$@"' sh "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="${POSTGRES_PASSWORD_FILE:-}"
  if [ -z "$pwfile" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
      echo 'postgres: set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD' >&2
      exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  fi
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  [ "$pwfile" = "${POSTGRES_PASSWORD_FILE:-}" ] || rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    printf 'CREATE DATABASE "%s";\n' "$POSTGRES_DB" | psql -v ON_ERROR_STOP=1 -q -U "$POSTGRES_USER" -d postgres
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "postgres: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
exec postgres -D "$PGDATA" "$@"
