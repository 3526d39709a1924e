#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the API test suite and print its URL.
# Installs Debian's postgresql if it is missing. Usage: eval "$(bash scripts/test-postgres.sh)"
set -euo pipefail
PORT=${PGPORT_TEST:-55432}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "installing postgresql (Debian package)..." >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
DATA=$(mktemp -d /tmp/draftmark-pg.XXXXXX)
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$DATA"
  RUN_AS=(runuser -u postgres --)
fi
"${RUN_AS[@]}" "$BIN/initdb" -D "$DATA/db" -U postgres --auth=trust -E UTF8 >/dev/null
"${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA/db" -l "$DATA/log" -w -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
echo "export TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
echo "export TEST_POSTGRES_STOP='${RUN_AS[*]} $BIN/pg_ctl -D $DATA/db -m immediate stop'"
