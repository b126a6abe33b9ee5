#!/usr/bin/env bash
# Cache-affinity scheduling (issue 16): wall time and layer bytes each worker fetched from the cache store, with
# Farm:Coordinator:AffinityWait at 2 s (affinity) and at 0 (every job to the farm's queue), on one coordinator and
# three workers of one slot each, all processes on this machine's loopback:
#   (a) a 5-step chain: FROM busybox, five RUN steps each writing 4 MB of random bytes (a fresh SALT each run)
#   (b) 10 builds at once sharing a base: each FROM busybox, the same cached 16 MB RUN step, then two RUN steps of
#       its own (2 MB each)
# Bytes fetched come from each worker's farm_worker_bytes_downloaded counter (its /metrics), summed over the runs.
# Every mode starts with empty worker layer stores, its own Redis (a private redis-server) and RabbitMQ virtual host.
# As root, with dotnet, runc, slirp4netns, iptables, a running registry (127.0.0.1:5100) and RabbitMQ (infra/up.sh).
# Results: bench/results/affinity.md. RUNS=3 by default.
#   FARM_BENCH_PREBUILT=1: use the Debug output of `dotnet build Farm.sln` (coordinator, worker, CLI) instead of
#   Release builds and the ./farm launcher (which compiles the CLI ahead of time).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
runs="${RUNS:-3}"
work="${BENCH_OUT:-/var/tmp/farm-affinity-bench}"
registry="${FARM_REGISTRY:-127.0.0.1:5100}"
bench_need_tools hyperfine curl python3 redis-server busybox
bench_need_root "workers run steps with runc"

id="affbench-$(date +%s)"
rm -rf "$work"; mkdir -p "$work"
bench_farm_binaries "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mgmt="http://guest:guest@127.0.0.1:15672/api"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 2
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  bench_unmount_under "$work"
  curl -fsS -X DELETE "$mgmt/vhosts/$id" >/dev/null 2>&1 || true
}
trap cleanup EXIT
curl -fsS -X PUT "$mgmt/vhosts/$id" >/dev/null
curl -fsS -X PUT -H 'content-type: application/json' -d '{"configure":".*","write":".*","read":".*"}' "$mgmt/permissions/$id/guest" >/dev/null
rabbit="amqp://guest:guest@127.0.0.1:5672/$id"

client_env=(env FARM_STATE_DIR="$work/client" FARM_HOST=)
base="$registry/$id/busybox:1"
"${client_env[@]}" FARM_CLI="$farm" "$repo/examples/base/busybox.sh" "$base" >/dev/null
"${client_env[@]}" "$farm" push "$base" >/dev/null

ctx="$work/ctx"; mkdir -p "$ctx/chain" "$ctx/seed" "$ctx/shared"
{
  echo "FROM $base"; echo "ARG SALT"
  echo 'RUN head -c 4000000 /dev/urandom > /1 && echo $SALT >> /1'
  for i in 2 3 4 5; do echo "RUN head -c 4000000 /dev/urandom > /$i"; done
} > "$ctx/chain/Dockerfile"
shared_step='RUN head -c 16000000 /dev/urandom > /shared'
printf 'FROM %s\n%s\n' "$base" "$shared_step" > "$ctx/seed/Dockerfile"
{
  echo "FROM $base"; echo "$shared_step"; echo "ARG SALT"
  echo 'RUN echo $SALT > /id && head -c 2000000 /dev/urandom > /own'
  echo 'RUN head -c 2000000 /dev/urandom > /more'
} > "$ctx/shared/Dockerfile"

mode_pids=()
metrics=()
start_mode() {
  local mode=$1 wait=$2 i
  local redis_port http_port
  redis_port=$(free_port); http_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/$mode-redis.log" 2>&1 &
  mode_pids=($!); pids+=($!)
  coordinator="http://127.0.0.1:$http_port"
  env FARM_RABBITMQ="$rabbit" Farm__Coordinator__Redis="127.0.0.1:$redis_port" \
    Farm__Coordinator__ClusterId="$id-$mode" Farm__Coordinator__ServiceId="$id-$mode" \
    Farm__Coordinator__HttpPort="$http_port" Farm__Coordinator__SiloPort="$(free_port)" Farm__Coordinator__GatewayPort="$(free_port)" \
    Farm__Coordinator__AffinityWait="$wait" \
    Farm__Builds__CacheStore="registry://$registry/$id/cache" Farm__Builds__StateDirectory="$work/$mode-coordinator" \
    dotnet "$coordinator_dll" >"$work/$mode-coordinator.log" 2>&1 &
  mode_pids+=($!); pids+=($!)
  for i in 1 2 3; do
    metrics[$i]=$(free_port)
    env FARM_RABBITMQ="$rabbit" dotnet "$worker_dll" --Farm:Worker:Name="$mode-worker$i" --Farm:Worker:Slots=1 \
      --Farm:Worker:StateDirectory="$work/$mode-worker$i" --Farm:Worker:MetricsPort="${metrics[$i]}" \
      >"$work/$mode-worker$i.log" 2>&1 &
    mode_pids+=($!); pids+=($!)
  done
  bench_wait_for 180 "the coordinator and three workers of mode $mode did not come up; see $work/$mode-*.log" workers_listed
}
# Whether the coordinator lists three workers, each with its affinity queue.
workers_listed() {
  [ "$(curl -fsS "$coordinator/api/workers" 2>/dev/null | python3 -c 'import json,sys; print(sum(1 for w in json.load(sys.stdin) if w.get("affinityQueue")))' 2>/dev/null || echo 0)" -ge 3 ]
}
stop_mode() {
  bench_stop "${mode_pids[@]}"
  bench_unmount_under "$work"
}
# "worker1=N worker2=N worker3=N": each worker's fetched bytes so far.
downloaded() {
  local i out=""
  for i in 1 2 3; do
    out+="$(curl -fsS "http://127.0.0.1:${metrics[$i]}/metrics" | awk '/^farm_worker_bytes_downloaded/ {print $2; f=1} END {if (!f) print 0}' | head -1) "
  done
  echo "$out"
}

rows=()
for mode in affinity shared; do
  wait=00:00:02; [ "$mode" = shared ] && wait=00:00:00
  start_mode "$mode" "$wait"
  build="$farm build --farm $coordinator --progress plain"
  # The shared 16 MB layer into the action cache, outside the timings.
  "${client_env[@]}" $build "$ctx/seed" >/dev/null 2>&1
  b0=$(downloaded)
  echo "== $mode: (a) 5-step chain"
  hyperfine --runs "$runs" --style basic --export-json "$work/$mode-chain.json" -n "chain, $mode" \
    "env FARM_STATE_DIR=$work/client FARM_HOST= $build --build-arg SALT=\$(date +%s%N) $ctx/chain >/dev/null 2>&1"
  b1=$(downloaded)
  echo "== $mode: (b) 10 builds sharing a base"
  hyperfine --runs "$runs" --style basic --export-json "$work/$mode-ten.json" -n "10 builds, $mode" \
    "bash -c 's=\$(date +%s%N); for i in \$(seq 1 10); do env FARM_STATE_DIR=$work/client-\$i FARM_HOST= $build --build-arg SALT=\$s-\$i $ctx/shared >/dev/null 2>&1 & done; fail=0; for j in \$(jobs -p); do wait \$j || fail=1; done; exit \$fail'"
  b2=$(downloaded)
  rows+=("$mode|$work/$mode-chain.json|$b0|$b1|$work/$mode-ten.json|$b2")
  stop_mode
done

python3 - "$results/affinity.md" "$runs" "$(nproc)" "$built" "${rows[@]}" <<'PY'
import json, sys
out, runs, cores, built, *rows = sys.argv[1:]
def mean(path):
    r = json.load(open(path))["results"][0]
    return r["mean"], r["stddev"] or 0.0
def mb(a, b):
    d = [int(float(y)) - int(float(x)) for x, y in zip(a.split(), b.split())]
    return d, " / ".join(f"{v / 1e6:.1f}" for v in d), sum(d) / 1e6
lines = ["# Cache-affinity scheduling", "",
         f"`bench/affinity/run.sh`, {runs} runs per case under hyperfine, builds of the coordinator, workers and CLI: {built}.",
         f"One coordinator (Redis, RabbitMQ) and three workers of one slot each, all on this machine's loopback, {cores} cores.",
         "`affinity`: `Farm:Coordinator:AffinityWait` 2 s; `shared`: 0 (every job to the farm's queue, as before).",
         "Fetched: compressed layer bytes each worker downloaded from the cache store (`farm_worker_bytes_downloaded`),",
         "summed over the runs of the case, in MB, worker 1 / 2 / 3.", "",
         "| case | mode | mean (s) | ± (s) | fetched per worker (MB) | fetched in all (MB) |", "| --- | --- | --- | --- | --- | --- |"]
for row in rows:
    mode, chain, b0, b1, ten, b2 = row.split("|")
    for name, path, x, y in (("(a) 5-step chain", chain, b0, b1), ("(b) 10 builds sharing a base", ten, b1, b2)):
        m, s = mean(path)
        _, per, total = mb(x, y)
        lines.append(f"| {name} | {mode} | {m:.2f} | {s:.2f} | {per} | {total:.1f} |")
        print(f"{name}, {mode}: {m:.2f} s ± {s:.2f}; fetched {per} MB ({total:.1f} MB)")
open(out, "w").write("\n".join(lines) + "\n")
PY
echo "results: $results/affinity.md"
