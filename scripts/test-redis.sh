#!/usr/bin/env bash
# Start a throwaway Redis server on 127.0.0.1 for the Celery batch tests and print its URL.
# Installs Debian's redis-server if it is missing. Usage: eval "$(bash scripts/test-redis.sh)"
set -euo pipefail
PORT=${REDIS_PORT_TEST:-56380}
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (Debian package)..." >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >&2
fi
DATA=$(mktemp -d /tmp/draftmark-redis.XXXXXX)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DATA" \
  --daemonize yes --pidfile "$DATA/redis.pid" --logfile "$DATA/log" >&2
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" ping >/dev/null
echo "export TEST_REDIS_URL=redis://127.0.0.1:$PORT/0"
echo "export TEST_REDIS_STOP='redis-cli -p $PORT shutdown nosave'"
