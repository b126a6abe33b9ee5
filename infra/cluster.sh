#!/usr/bin/env bash
# A local farm on loopback: the services (infra/up.sh), one coordinator (Redis clustering and grain storage, RabbitMQ,
# /healthz on 127.0.0.1:$FARM_COORDINATOR_HTTP_PORT) and N workers, each a separate process with its own name, state
# directory, log and pid file under $FARM_INFRA_DIR/cluster.
#   infra/cluster.sh start [N]   (default 2 workers; idempotent: running processes are kept)
#   infra/cluster.sh stop        (kills by pid file, removes runc containers and mounts the workers left)
#   infra/cluster.sh status
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
repo="$(cd "$here/.." && pwd)"
dir="$FARM_INFRA_DIR/cluster"
http_port="${FARM_COORDINATOR_HTTP_PORT:-8480}"
rabbit_url="${FARM_RABBITMQ:-amqp://guest:guest@127.0.0.1:5672/}"
redis="${FARM_REDIS:-127.0.0.1:6379}"
queue=farm-build-layer

healthy() { curl -fsS "http://127.0.0.1:$http_port/healthz"; }

# Consumers RabbitMQ counts on the workers' queue of the default vhost (0 before the queue exists).
consumers() { curl -fsS -u guest:guest "http://127.0.0.1:15672/api/queues/%2F/$queue" 2>/dev/null | jq -r '.consumers // 0' 2>/dev/null || echo 0; }

at_least_consumers() { [ "$(consumers)" -ge "$1" ]; }

build() {
  # One Release build of each process per start; incremental when nothing changed.
  log "building coordinator and worker (Release)"
  dotnet build "$repo/coordinator/Farm.Coordinator.csproj" -c Release -o "$dir/bin/coordinator" -nologo -v q >"$dir/logs/build.log" 2>&1 \
    || { tail -n 30 "$dir/logs/build.log" >&2; die "coordinator build failed; see $dir/logs/build.log"; }
  dotnet build "$repo/worker/Farm.Worker.csproj" -c Release -o "$dir/bin/worker" -nologo -v q >>"$dir/logs/build.log" 2>&1 \
    || { tail -n 30 "$dir/logs/build.log" >&2; die "worker build failed; see $dir/logs/build.log"; }
}

# spawn NAME PIDFILE LOG ENV... -- COMMAND...: start a background process in its own session unless it runs already.
spawn() {
  local name=$1 pidfile=$2 logfile=$3; shift 3
  if pid_alive "$pidfile"; then log "$name already running (pid $(cat "$pidfile"))"; return 0; fi
  setsid env "$@" >>"$logfile" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  log "started $name (pid $!), log $logfile"
}

start() {
  local n=${1:-2}
  [[ "$n" =~ ^[0-9]+$ ]] || die "N must be a number of workers, got '$n'"
  need_cmd curl curl
  need_cmd jq jq
  "$here/up.sh"
  mkdir -p "$dir/logs" "$dir/run"
  build

  spawn coordinator "$dir/run/coordinator.pid" "$dir/logs/coordinator.log" \
    Farm__Coordinator__Redis="$redis" Farm__Coordinator__HttpPort="$http_port" FARM_RABBITMQ="$rabbit_url" \
    dotnet "$dir/bin/coordinator/Farm.Coordinator.dll"
  for i in $(seq 1 "$n"); do
    # Short state directories: overlayfs mount options are limited to one page.
    spawn "worker-$i" "$dir/run/worker-$i.pid" "$dir/logs/worker-$i.log" \
      Farm__Worker__Name="worker-$i" Farm__Worker__StateDirectory="$dir/w$i" Farm__Worker__Slots="${FARM_WORKER_SLOTS:-1}" \
      FARM_RABBITMQ="$rabbit_url" dotnet "$dir/bin/worker/Farm.Worker.dll"
  done

  wait_until 120 "coordinator /healthz on 127.0.0.1:$http_port" "$dir/logs/coordinator.log" healthy
  # The management API's counts lag a few seconds behind the connections.
  wait_until 120 "$n consumers on $queue" "$dir/logs/worker-1.log" at_least_consumers "$n"
  log "farm up: coordinator http://127.0.0.1:$http_port/healthz, $(consumers) consumers on $queue"
}

stop() {
  local pidfile name root mount
  for pidfile in "$dir"/run/worker-*.pid "$dir/run/coordinator.pid"; do
    [ -e "$pidfile" ] || continue
    name="$(basename "$pidfile" .pid)"
    stop_pidfile "$name" "$pidfile"
  done
  # What killed workers left: their runc containers, then their overlay and bind mounts (deepest first).
  for root in "$dir"/w*/run/runc; do
    [ -d "$root" ] || continue
    for id in $(runc --root "$root" list -q 2>/dev/null); do
      runc --root "$root" delete --force "$id" 2>/dev/null || true
    done
  done
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null || true
  done
}

status() {
  local pidfile
  for pidfile in "$dir/run/coordinator.pid" "$dir"/run/worker-*.pid; do
    [ -e "$pidfile" ] || continue
    if pid_alive "$pidfile"; then echo "$(basename "$pidfile" .pid): running (pid $(cat "$pidfile"))"; else echo "$(basename "$pidfile" .pid): stopped"; fi
  done
  if healthy >/dev/null 2>&1; then echo "coordinator /healthz: $(healthy)"; else echo "coordinator /healthz: not answering"; fi
  echo "consumers on $queue: $(consumers)"
}

case "${1:-start}" in
  start) start "${2:-2}" ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 start [N] | stop | status" ;;
esac
