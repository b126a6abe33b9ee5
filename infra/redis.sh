#!/usr/bin/env bash
# redis-server on 127.0.0.1:${FARM_REDIS_PORT:-6379}: start | stop | status
# Durable: Redis holds the farm's membership, build and layer grain state, reminders and the action cache, so it
# writes an append-only file (fsync every second) under $FARM_INFRA_DIR/redis and reloads it when it starts again.
# The coordinators also ride out a Redis that comes back empty (docs/architecture.md, "Failure model").
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
port="${FARM_REDIS_PORT:-6379}"
dir="$FARM_INFRA_DIR/redis"
pidfile="$dir/redis.pid"
case "${1:-start}" in
  start)
    need_cmd redis-server redis-server
    # Only an answer counts: after a reboot or a killed session the pid in a stale file may belong to anything.
    if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
      # An instance started before Redis was made durable: switch it to the append-only file without a restart.
      [ "$(redis-cli -p "$port" config get appendonly | tail -n 1)" = yes ] || redis-cli -p "$port" config set appendonly yes >/dev/null
      exit 0
    fi
    rm -f "$pidfile"
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes \
      --pidfile "$pidfile" --logfile "$dir/redis.log" --appendonly yes --appendfsync everysec --appenddirname appendonly --save "" >/dev/null
    wait_until 30 "redis on 127.0.0.1:$port" "$dir/redis.log" sh -c "redis-cli -p $port ping | grep -q PONG"
    log "redis on 127.0.0.1:$port"
    ;;
  stop) stop_pidfile redis "$pidfile" ;;
  status) pid_alive "$pidfile" ;;
  *) die "usage: $0 start|stop|status" ;;
esac
