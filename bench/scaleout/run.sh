#!/usr/bin/env bash
# Scale-out across simulated machines (issue 16): 8 independent stages of `RUN sleep 2` (and a final stage copying
# one file from each), built without cache through a coordinator on its own host, with 1, 2 and 4 worker hosts of
# one slot each. The hosts are network namespaces on one bridge (infra/hosts.sh); the client, the coordinator, the
# workers and the services each have an address of their own.
#   efficiency = ideal / measured, ideal = ceil(8 / workers) x 2 s (the sleeps a perfect farm could not avoid)
# Also reports the compressed layer bytes each worker fetched from the cache store (farm_worker_bytes_downloaded).
# As root, with dotnet, runc, slirp4netns, iptables, docker-registry, redis-server, rabbitmq-server (infra/install.sh).
# Results: bench/results/scaleout.md. RUNS=3 by default; WORKERS="1 2 4".
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
runs="${RUNS:-3}"
counts="${WORKERS:-1 2 4}"
work="${BENCH_OUT:-/var/tmp/farm-scaleout-bench}"
bench_need_tools hyperfine nsenter curl python3
bench_need_root "workers run steps with runc, and the hosts are network namespaces"

export FARM_HOSTS_ID=sbench FARM_HOSTS_NET=77
"$repo/infra/hosts.sh" down >/dev/null 2>&1 || true
rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$repo/infra/hosts.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$repo/infra/hosts.sh" up >/dev/null
eval "$("$repo/infra/hosts.sh" env)"
rabbit="amqp://farm:$(cat "$FARM_HOSTS_RABBITMQ_PASSWORD_FILE")@$FARM_HOSTS_RABBITMQ/"
registry="$FARM_HOSTS_REGISTRY"
on() { local netns=$1; shift; nsenter --net="/run/netns/$netns" -- "$@"; }

bench_build coordinator/host "$work/coordinator-bin"
bench_build worker/host "$work/worker-bin"
"$repo/farm" --help >/dev/null
farm="$repo/.farm/cli/farm"

coordinator="http://$FARM_HOSTS_COORD1:8480"
# nsenter itself in the background (not the shell function on), so that $! is the process to stop.
nsenter --net="/run/netns/$FARM_HOSTS_COORD1_NETNS" -- env FARM_RABBITMQ="$rabbit" \
  Farm__Coordinator__Redis="$FARM_HOSTS_REDIS" \
  Farm__Coordinator__HttpAddress="$FARM_HOSTS_COORD1" Farm__Coordinator__HttpPort=8480 \
  Farm__Coordinator__SiloAddress="$FARM_HOSTS_COORD1" Farm__Coordinator__Auth__Disabled=true \
  Farm__Builds__CacheStore="registry://$registry/cache" Farm__Builds__StateDirectory="$work/coordinator" \
  Farm__Registries__Insecure__0="$registry" \
  dotnet "$work/coordinator-bin/farm-coordinator.dll" >"$work/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do on "$FARM_HOSTS_CLIENT_NETNS" curl -fsS "$coordinator/healthz" >/dev/null 2>&1 && break; sleep 1; done
on "$FARM_HOSTS_CLIENT_NETNS" curl -fsS "$coordinator/healthz" >/dev/null || { tail -20 "$work/coordinator.log"; exit 1; }

# The base, pushed from the client host to the services host's registry.
client_env=(env FARM_STATE_DIR="$work/client" FARM_INSECURE_REGISTRIES="$registry" FARM_HOST=)
base="$registry/bench/busybox:1"
on "$FARM_HOSTS_CLIENT_NETNS" "${client_env[@]}" "$repo/examples/base/busybox.sh" "$base" >/dev/null
on "$FARM_HOSTS_CLIENT_NETNS" "${client_env[@]}" "$farm" push "$base" >/dev/null

ctx="$work/ctx"; mkdir -p "$ctx"
{
  for i in $(seq 1 8); do printf 'FROM %s AS s%s\nRUN sleep 2 && echo %s > /n\n\n' "$base" "$i" "$i"; done
  echo "FROM $base"
  for i in $(seq 1 8); do echo "COPY --from=s$i /n /n$i"; done
} > "$ctx/Dockerfile"

worker_pids=()
start_workers() {
  local n=$1 i
  for i in $(seq 1 "$n"); do
    local netns_var="FARM_HOSTS_WORKER${i}_NETNS"
    nsenter --net="/run/netns/${!netns_var}" -- env FARM_RABBITMQ="$rabbit" Farm__Registries__Insecure__0="$registry" \
      dotnet "$work/worker-bin/farm-worker.dll" --Farm:Worker:Name="worker$i" --Farm:Worker:Slots=1 \
      --Farm:Worker:StateDirectory="$work/worker$i" --Farm:Worker:MetricsPort=9480 --Farm:Worker:MetricsAddress=+ \
      >"$work/worker$i.log" 2>&1 &
    worker_pids+=($!); pids+=($!)
  done
  for _ in $(seq 1 120); do
    [ "$(on "$FARM_HOSTS_CLIENT_NETNS" curl -fsS "$coordinator/api/workers" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge "$n" ] && return 0
    sleep 1
  done
  echo "the $n workers did not report to the coordinator" >&2; exit 1
}
stop_workers() {
  for p in "${worker_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${worker_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  worker_pids=()
}
downloaded() {
  local i=$1 ip_var="FARM_HOSTS_WORKER${1}"
  on "$FARM_HOSTS_CLIENT_NETNS" curl -fsS "http://${!ip_var}:9480/metrics" 2>/dev/null \
    | awk '/^farm_worker_bytes_downloaded/ {print $2; found=1} END {if (!found) print 0}' | head -1
}

build="$farm build --farm $coordinator --no-cache --progress plain $ctx"
rows=()
for n in $counts; do
  start_workers "$n"
  echo "== $n worker(s)"
  on "$FARM_HOSTS_CLIENT_NETNS" "${client_env[@]}" hyperfine --runs "$runs" --warmup 1 --style basic \
    --export-json "$work/w$n.json" -n "farm, $n worker(s)" "$build >/dev/null 2>&1"
  bytes=""
  for i in $(seq 1 "$n"); do bytes+="worker$i $(downloaded "$i") B; "; done
  rows+=("$n|$(python3 -c "import json; print(json.load(open('$work/w$n.json'))['results'][0]['mean'])")|${bytes%; }")
  stop_workers
  # Workers of the next round start with empty layer stores again.
  rm -rf "$work"/worker[0-9]*
done

python3 - "$results/scaleout.md" "$runs" "$(nproc)" "${rows[@]}" <<'PY'
import math, sys
out, runs, cores, *rows = sys.argv[1:]
lines = ["# Scale-out across simulated machines", "",
         f"`bench/scaleout/run.sh`, {runs} runs each (plus one warm-up) under hyperfine, {cores} cores shared by every host.",
         "8 independent stages of `RUN sleep 2` and a final stage copying one file from each, `--no-cache`, through one",
         "coordinator host; worker hosts of one slot each; client, coordinator, workers and services on separate addresses.", "",
         "| workers | mean (s) | ideal (s) | efficiency | layer bytes fetched per worker (all runs) |", "| --- | --- | --- | --- | --- |"]
for row in rows:
    n, mean, fetched = row.split("|")
    ideal = math.ceil(8 / int(n)) * 2
    lines.append(f"| {n} | {float(mean):.2f} | {ideal} | {ideal / float(mean):.0%} | {fetched} |")
    print(f"{n} worker(s): {float(mean):.2f} s, ideal {ideal} s, efficiency {ideal / float(mean):.0%}; {fetched}")
open(out, "w").write("\n".join(lines) + "\n")
PY
echo "results: $results/scaleout.md"
