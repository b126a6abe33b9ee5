#!/usr/bin/env bash
# rabbitmq-server (node rabbit@localhost) on 127.0.0.1:5672 with the management plugin on 127.0.0.1:15672:
# start | stop | status
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
port="${FARM_RABBITMQ_PORT:-5672}"
mgmt_port="${FARM_RABBITMQ_MANAGEMENT_PORT:-15672}"
dir="$FARM_INFRA_DIR/rabbitmq"
pidfile="$dir/rabbitmq.pid"
case "${1:-start}" in
  start)
    need_cmd rabbitmq-server rabbitmq-server
    if pid_alive "$pidfile" && port_open 127.0.0.1 "$port"; then exit 0; fi
    if port_open 127.0.0.1 "$port"; then log "something already answers on 127.0.0.1:$port; using it"; exit 0; fi
    mkdir -p "$dir/mnesia" "$dir/log"
    echo "[rabbitmq_management]." > "$dir/enabled_plugins"
    cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$port
management.tcp.ip = 127.0.0.1
management.tcp.port = $mgmt_port
loopback_users.guest = true
CONF
    # rabbitmq-server runs as user rabbitmq: it must own its directories.
    chown -R rabbitmq:rabbitmq "$dir"
    # The Erlang distribution listens on loopback only.
    setsid runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq \
      RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
      RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
      RABBITMQ_PID_FILE="$pidfile" RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
      ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT="$((port + 20000))" \
      rabbitmq-server >"$dir/server.log" 2>&1 < /dev/null &
    wait_until 120 "rabbitmq on 127.0.0.1:$port" "$dir/server.log" port_open 127.0.0.1 "$port"
    wait_until 60 "rabbitmq management on 127.0.0.1:$mgmt_port" "$dir/server.log" \
      curl -fsS -u guest:guest "http://127.0.0.1:$mgmt_port/api/overview"
    log "rabbitmq on 127.0.0.1:$port (management http://127.0.0.1:$mgmt_port, guest/guest)"
    ;;
  stop) stop_pidfile rabbitmq "$pidfile" ;;
  status) pid_alive "$pidfile" ;;
  *) die "usage: $0 start|stop|status" ;;
esac
