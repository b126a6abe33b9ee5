#!/usr/bin/env bash
# Simulated machines for a farm across hosts: network namespaces on one bridge, each with its own address.
#
#   infra/hosts.sh up      make the hosts and start the services host's registry, Redis and RabbitMQ
#   infra/hosts.sh down    stop everything started in the hosts and remove them
#   infra/hosts.sh env     print the hosts' names and addresses (shell variables), as `up` does
#
# Settings (environment):
#   FARM_HOSTS_ID    a short name for this set of hosts (default: farm); namespaces are farm-ID-ROLE, the bridge fbID
#                    (letters and digits, at most 6, so that interface names fit 15 characters)
#   FARM_HOSTS_NET   the third octet of the hosts' network 10.214.N.0/24 (default 0)
#
# Hosts (ROLE: address): this machine's end of the bridge .1, services .2, coord1 .11, coord2 .12, worker1 .21,
# worker2 .22, worker3 .23, worker4 .24, client .31. No host has a default route: they reach each other and
# nothing else. The services host runs the registry on :5000 (anonymous, plain HTTP), Redis on :6379 and RabbitMQ
# on :5672 (user farm, password in $STATE/rabbitmq-password; guest only works on loopback), each listening on the
# services address. State and logs under ${FARM_INFRA_DIR:-/var/tmp/farm-infra}/hosts/ID.
#
# Run a process on a host with `nsenter --net=/run/netns/farm-ID-ROLE -- COMMAND` rather than `ip netns exec`:
# ip netns exec also gives the process a fresh /sys, which hides the cgroup file system that runc needs.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

id="${FARM_HOSTS_ID:-farm}"
net="${FARM_HOSTS_NET:-0}"
[[ "$id" =~ ^[a-z0-9]{1,6}$ ]] || die "FARM_HOSTS_ID must be 1 to 6 lower-case letters or digits, not '$id'"
[[ "$net" =~ ^[0-9]+$ ]] && ((net <= 255)) || die "FARM_HOSTS_NET must be a number from 0 to 255, not '$net'"
prefix="10.214.$net"
bridge="fb$id"
state="$FARM_INFRA_DIR/hosts/$id"
roles="services:2 coord1:11 coord2:12 worker1:21 worker2:22 worker3:23 worker4:24 client:31"

ns() { printf 'farm-%s-%s' "$id" "$1"; }
# on_host ROLE COMMAND...: run COMMAND in ROLE's network namespace (and nothing else's).
on_host() { local role=$1; shift; nsenter --net="/run/netns/$(ns "$role")" -- "$@"; }
veth() { printf 'f%s%s' "$id" "${1:0:1}${1: -1}"; }

print_env() {
  echo "FARM_HOSTS_ID=$id"
  echo "FARM_HOSTS_BRIDGE=$bridge"
  echo "FARM_HOSTS_MACHINE=$prefix.1"
  for r in $roles; do
    local role=${r%%:*} upper
    upper="$(printf '%s' "$role" | tr '[:lower:]' '[:upper:]')"
    echo "FARM_HOSTS_${upper}=$prefix.${r##*:}"
    echo "FARM_HOSTS_${upper}_NETNS=$(ns "$role")"
    echo "FARM_HOSTS_${upper}_LINK=$(veth "$role")"
  done
  echo "FARM_HOSTS_REGISTRY=$prefix.2:5000"
  echo "FARM_HOSTS_REDIS=$prefix.2:6379"
  # The password stays in its file (mode 0600): amqp://farm:PASSWORD@HOST:5672/ is the URL to build from it.
  echo "FARM_HOSTS_RABBITMQ=$prefix.2:5672"
  echo "FARM_HOSTS_RABBITMQ_USER=farm"
  echo "FARM_HOSTS_RABBITMQ_PASSWORD_FILE=$state/rabbitmq-password"
  echo "FARM_HOSTS_STATE=$state"
}

make_hosts() {
  ip link show "$bridge" >/dev/null 2>&1 && die "bridge $bridge exists already: infra/hosts.sh down with FARM_HOSTS_ID=$id first"
  if ip -4 route show | grep -q "^$prefix\.0/24"; then
    die "$prefix.0/24 is in use on this machine; choose another FARM_HOSTS_NET"
  fi
  ip link add "$bridge" type bridge
  ip addr add "$prefix.1/24" dev "$bridge"
  ip link set "$bridge" up
  for r in $roles; do
    local role=${r%%:*} name link
    name="$(ns "$role")"; link="$(veth "$role")"
    ip netns add "$name"
    ip link add "$link" type veth peer name eth0 netns "$name"
    ip link set "$link" master "$bridge"
    ip link set "$link" up
    ip -n "$name" addr add "$prefix.${r##*:}/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up
  done
}

start_registry() {
  local dir="$state/registry" addr="$prefix.2:5000"
  mkdir -p "$dir/storage"
  printf '%s\n' "version: 0.1" "log:" "  level: warn" "  accesslog:" "    disabled: true" \
    "storage:" "  filesystem:" "    rootdirectory: $dir/storage" "  delete:" "    enabled: true" \
    "http:" "  addr: $addr" "  secret: farm-hosts-$id" >"$dir/config.yml"
  on_host services setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/registry.pid"
}

start_redis() {
  local dir="$state/redis"
  mkdir -p "$dir"
  # Protected mode would refuse every client that is not on loopback; the hosts' network is private to this machine.
  on_host services redis-server --bind "$prefix.2" --port 6379 --protected-mode no --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no >/dev/null
}

start_rabbitmq() {
  local dir="$state/rabbitmq"
  mkdir -p "$dir/mnesia" "$dir/log"
  if [ ! -s "$state/rabbitmq-password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$state/rabbitmq-password")
  fi
  # No plugins: the management plugin would add seconds to every start.
  echo "[]." >"$dir/enabled_plugins"
  (umask 077; cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp.1 = $prefix.2:5672
default_user = farm
default_pass = $(cat "$state/rabbitmq-password")
loopback_users = none
CONF
  )
  chown -R rabbitmq:rabbitmq "$dir"
  # Its own namespace has its own loopback: the Erlang distribution and epmd there meet no other node.
  on_host services setsid runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq \
    RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS="$prefix.2" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_PID_FILE="$dir/rabbitmq.pid" RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT=25672 \
    rabbitmq-server >"$dir/server.log" 2>&1 </dev/null &
}

# answers_in ROLE HOST PORT: something accepts TCP connections at HOST:PORT, seen from ROLE.
answers_in() { on_host "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }

up() {
  need_cmd nsenter util-linux; need_cmd docker-registry docker-registry; need_cmd redis-server redis-server
  need_cmd rabbitmq-server rabbitmq-server
  rm -rf "$state"
  mkdir -p "$state"
  make_hosts
  start_rabbitmq
  start_registry
  start_redis
  wait_until 60 "registry on $prefix.2:5000" "$state/registry/registry.log" \
    on_host client curl -fsS --max-time 2 "http://$prefix.2:5000/v2/"
  wait_until 30 "redis on $prefix.2:6379" "$state/redis/redis.log" answers_in client "$prefix.2" 6379
  wait_until 120 "rabbitmq on $prefix.2:5672" "$state/rabbitmq/server.log" answers_in client "$prefix.2" 5672
  print_env
}

down() {
  # Links cut by a test come back first: connections the processes leave behind then end at once (a reset) instead
  # of retrying into a dead link for minutes, which would keep the namespaces alive after they are deleted.
  for r in $roles; do
    ip link set "$(veth "${r%%:*}")" up 2>/dev/null || true
  done
  # Every process in the hosts was started for them (services, and whatever ran there since): end them by id.
  for r in $roles; do
    local name
    name="$(ns "${r%%:*}")"
    if [ -e "/run/netns/$name" ]; then
      for pid in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    fi
  done
  for r in $roles; do
    local name
    name="$(ns "${r%%:*}")"
    [ -e "/run/netns/$name" ] && ip netns delete "$name"
    # The veth pair goes with its end here, even while the kernel still holds the namespace for a closing socket.
    ip link delete "$(veth "${r%%:*}")" 2>/dev/null || true
  done
  ip link show "$bridge" >/dev/null 2>&1 && ip link delete "$bridge"
  # RabbitMQ's epmd outlives the node; it ran in the services namespace, so it was ended above.
  rm -rf "$state"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) print_env ;;
  *) die "usage: $0 up|down|env (FARM_HOSTS_ID, FARM_HOSTS_NET select the set of hosts)" ;;
esac
