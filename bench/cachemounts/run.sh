#!/usr/bin/env bash
# Cache mounts across the farm (issue 17, part 4): wall time of one RUN step with a cache mount, on a shared farm
# (one coordinator with Redis and RabbitMQ, one worker of two slots at a time, all on this machine's loopback),
# against buildah's local cache mount in the same run:
#   apt: RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt/lists,...
#        apt-get update && apt-get install python3   (Debian's mirror)
#   npm: RUN --mount=type=cache,target=/root/.npm npm install express lodash moment axios typescript   (npm's registry)
# The issue asks for pip; PyPI is not reachable from these machines, so npm stands in for it.
# Each measured build runs the step again (a fresh SALT build argument each run) on a Debian bookworm base made from
# /var/cache/farm/debian-bookworm.tgz (examples/base/debian.sh --unpack-tarball; infra/install.sh makes the tarball):
#   cold          farm: a new cache id each run (no snapshot anywhere), buildah: its cache directory removed first
#   warm          farm: the same id, on the worker that wrote it;         buildah: its cache kept
#   fresh worker  farm: the same id, each run on a new worker (empty state directory) that starts from the snapshot
#                 another worker published; buildah has no equivalent (a new machine starts cold)
#   cold, fresh   farm: a new cache id each run, on a new worker: what "fresh worker" is to be compared with (the new
#                 worker pays fetching the base layers in both)
# As root, with dotnet, runc, slirp4netns, buildah, hyperfine, a running registry (127.0.0.1:5100) and RabbitMQ
# (infra/up.sh). Results: bench/results/cachemounts.md. RUNS=3 by default.
#   KINDS="apt npm" (default): the examples to run.
#   FARM_BENCH_PREBUILT=1: use the Debug output of `dotnet build Farm.sln` instead of Release builds.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
runs="${RUNS:-3}"
work="${BENCH_OUT:-/var/tmp/farm-cachemounts-bench}"
registry="${FARM_REGISTRY:-127.0.0.1:5100}"
tarball="${FARM_DEBIAN_TARBALL:-/var/cache/farm/debian-bookworm.tgz}"
bench_need_tools hyperfine buildah curl python3 redis-server debootstrap
bench_need_root "workers run steps with runc; debootstrap and buildah need root"

id="cmbench-$(date +%s)"
rm -rf "$work"; mkdir -p "$work"
bench_farm_binaries "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mgmt="http://guest:guest@127.0.0.1:15672/api"
# buildah 1.28 keeps cache mounts in /var/tmp/buildah-cache (by id); "cold" removes it.
buildah_cache="/var/tmp/buildah-cache"

pids=()
cleanup() {
  local w; w=$(cat "$work/worker.pid" 2>/dev/null || true)
  for p in "${pids[@]}" $w; do kill "$p" 2>/dev/null || true; done
  sleep 2
  for p in "${pids[@]}" $w; do kill -9 "$p" 2>/dev/null || true; done
  bench_unmount_under "$work"
  curl -fsS -X DELETE "$mgmt/vhosts/$id" >/dev/null 2>&1 || true
  buildah rmi -f "buildah-cm:1" >/dev/null 2>&1 || true
}
trap cleanup EXIT
curl -fsS -X PUT "$mgmt/vhosts/$id" >/dev/null
curl -fsS -X PUT -H 'content-type: application/json' -d '{"configure":".*","write":".*","read":".*"}' "$mgmt/permissions/$id/guest" >/dev/null
rabbit="amqp://guest:guest@127.0.0.1:5672/$id"

redis_port=$(free_port); http_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
coordinator="http://127.0.0.1:$http_port"
env FARM_RABBITMQ="$rabbit" Farm__Coordinator__Redis="127.0.0.1:$redis_port" \
  Farm__Coordinator__ClusterId="$id" Farm__Coordinator__ServiceId="$id" \
  Farm__Coordinator__HttpPort="$http_port" Farm__Coordinator__SiloPort="$(free_port)" Farm__Coordinator__GatewayPort="$(free_port)" \
  Farm__Builds__CacheStore="registry://$registry/$id/cache" Farm__Builds__StateDirectory="$work/coordinator" \
  dotnet "$coordinator_dll" >"$work/coordinator.log" 2>&1 &
pids+=($!)

# One worker at a time, so the farm's queue gives it every job: start_worker replaces the running one by the next,
# which starts with an empty state directory (the number and pid in $work/worker.n, $work/worker.pid, as hyperfine's
# --prepare runs it in a shell of its own). The one stopped finishes publishing its snapshots first (CacheMountDrain).
start_worker() {
  local n old
  n=$(( $(cat "$work/worker.n" 2>/dev/null || echo 0) + 1 ))
  if [ -f "$work/worker.pid" ]; then
    old=$(cat "$work/worker.pid"); kill "$old" 2>/dev/null || true
    while kill -0 "$old" 2>/dev/null; do sleep 0.2; done
  fi
  echo "$n" > "$work/worker.n"
  setsid env FARM_RABBITMQ="$rabbit" dotnet "$worker_dll" --Farm:Worker:Name="cm-worker$n" --Farm:Worker:Slots=2 \
    --Farm:Worker:StateDirectory="$work/worker$n" >"$work/worker$n.log" 2>&1 < /dev/null &
  echo $! > "$work/worker.pid"
  for _ in $(seq 1 180); do
    curl -fsS "$coordinator/api/workers" 2>/dev/null \
      | python3 -c "import json,sys; sys.exit(0 if any(w['name']=='cm-worker$n' for w in json.load(sys.stdin)) else 1)" 2>/dev/null && return 0
    sleep 1
  done
  echo "worker $n did not come up; see $work/worker$n.log and $work/coordinator.log" >&2; return 1
}
start_worker

client_env=(env FARM_STATE_DIR="$work/client" FARM_HOST=)
base="$registry/$id/debian:12"
"${client_env[@]}" FARM="$farm" "$repo/examples/base/debian.sh" --unpack-tarball "$tarball" "$base" >/dev/null
"${client_env[@]}" "$farm" push "$base" >/dev/null

# HTTPS from this machine goes through an egress proxy that re-signs every certificate with its own CA, which the host
# trusts (/usr/local/share/ca-certificates) and a Debian image does not: npm inside any RUN step (the farm's, buildah's,
# docker's) then fails with SELF_SIGNED_CERT_IN_CHAIN after retrying for two minutes, silently at --loglevel=error (apt
# is not hit: Debian's mirror is plain HTTP). The npm example takes that CA into the build (NODE_EXTRA_CA_CERTS), for
# the farm and buildah alike; FARM_BENCH_EXTRA_CA names it (an empty file: none).
extra_ca="${FARM_BENCH_EXTRA_CA:-/usr/local/share/ca-certificates/sandboxing-egress-ca.crt}"
cp "$extra_ca" "$work/extra-ca.crt" 2>/dev/null || : > "$work/extra-ca.crt"

# dockerfile KIND CACHE-ID: the Dockerfile of the example with its cache id(s).
dockerfile() {
  local kind=$1 cache=$2
  mkdir -p "$work/ctx/$kind"
  case $kind in
    apt) cat > "$work/ctx/$kind/Dockerfile" <<EOF
FROM $base
ARG SALT
RUN --mount=type=cache,id=$cache-archives,target=/var/cache/apt,sharing=locked --mount=type=cache,id=$cache-lists,target=/var/lib/apt/lists,sharing=locked echo "\$SALT" > /salt && apt-get update -qq && apt-get install -y -qq --no-install-recommends -o APT::Keep-Downloaded-Packages=true python3 >/dev/null
EOF
      ;;
    npm) cp "$work/extra-ca.crt" "$work/ctx/$kind/extra-ca.crt"
      cat > "$work/ctx/$kind/Dockerfile" <<EOF
FROM $base
COPY extra-ca.crt /usr/local/share/ca-certificates/extra-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/extra-ca.crt
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ARG SALT
RUN --mount=type=cache,id=$cache,target=/root/.npm echo "\$SALT" > /salt && npm install --no-audit --no-fund --loglevel=error express lodash moment axios typescript
EOF
      ;;
  esac
}
# hyperfine's --prepare runs in a shell of its own: the two functions as scripts, with what they use.
for f in dockerfile start_worker; do
  { echo '#!/usr/bin/env bash'; echo 'set -euo pipefail'; declare -p work base rabbit worker_dll coordinator; declare -f "$f"; echo "$f \"\$@\""; } > "$work/$f.sh"
  chmod +x "$work/$f.sh"
done

fb="env FARM_STATE_DIR=$work/client FARM_HOST= $farm build --farm $coordinator --progress plain --build-arg SALT=\$(date +%s%N)"
bb="buildah build --layers --runtime runc --tls-verify=false -q -t buildah-cm:1 --build-arg SALT=\$(date +%s%N)"
hf() { hyperfine --runs "$runs" --style basic "$@"; }

rows=()
for kind in ${KINDS:-apt npm}; do
  ctx="$work/ctx/$kind"
  # The layers below the measured step (npm: nodejs and npm from Debian's mirror) into both caches, outside the timings.
  dockerfile "$kind" "$kind-seed"
  "${client_env[@]}" $farm build --farm "$coordinator" --progress plain --build-arg SALT=seed "$ctx" >"$work/$kind-seed.log" 2>&1 \
    || { tail -n 30 "$work/$kind-seed.log" >&2; exit 1; }
  buildah build --layers --runtime runc --tls-verify=false -q -t buildah-cm:1 --build-arg SALT=seed "$ctx" >"$work/$kind-seed-buildah.log" 2>&1 \
    || { tail -n 30 "$work/$kind-seed-buildah.log" >&2; exit 1; }

  echo "== $kind: cold"
  hf --prepare "$work/dockerfile.sh $kind cold-\$(date +%s%N)" --export-json "$work/$kind-cold-farm.json" -n "farm, cold" "$fb $ctx >>$work/$kind-builds.log 2>&1"
  hf --prepare "rm -rf $buildah_cache" --export-json "$work/$kind-cold-buildah.json" -n "buildah, cold" "$bb $ctx >>$work/$kind-builds.log 2>&1"

  echo "== $kind: warm, same worker"
  dockerfile "$kind" "$kind-warm"
  hf --warmup 1 --export-json "$work/$kind-warm-farm.json" -n "farm, warm" "$fb $ctx >>$work/$kind-builds.log 2>&1"
  hf --warmup 1 --export-json "$work/$kind-warm-buildah.json" -n "buildah, warm" "$bb $ctx >>$work/$kind-builds.log 2>&1"

  echo "== $kind: warm, fresh worker"
  hf --prepare "$work/start_worker.sh" --export-json "$work/$kind-fresh-farm.json" -n "farm, fresh worker" "$fb $ctx >>$work/$kind-builds.log 2>&1"

  echo "== $kind: cold, fresh worker"
  hf --prepare "$work/start_worker.sh && $work/dockerfile.sh $kind coldfresh-\$(date +%s%N)" --export-json "$work/$kind-coldfresh-farm.json" -n "farm, cold, fresh worker" "$fb $ctx >>$work/$kind-builds.log 2>&1"
done
uptime > "$work/load.txt"

# What the snapshots weigh: the coordinator logs each one it takes.
grep -o 'snapshot sha256:[0-9a-f]* ([0-9]* bytes) from cm-worker[0-9]*' "$work/coordinator.log" > "$work/snapshots.txt" || true
# What a step pays for publishing: the capture (walk, copy of what changed) before its cache is let go.
cat "$work"/worker*.log | grep -o "Cache '[^']*' \(captured as [a-z]*: [0-9]* changed, [0-9]* deleted, [0-9]* bytes copied in [0-9]* ms\|unchanged ([0-9]* entries walked in [0-9]* ms)\)" > "$work/captures.txt" || true
cat "$work"/worker*.log | grep -o "Cache '[^']*' stored as snapshot sha256:[0-9a-f]* ([0-9]* bytes, [a-z ]*)" > "$work/stored.txt" || true
python3 - "$work" "$results/cachemounts.md" "$runs" "$(nproc)" "$built" "$(buildah --version)" "$(date -u '+%Y-%m-%d %H:%M UTC')" <<'PY'
import json, re, sys
work, out, runs, cores, built, buildah, when = sys.argv[1:8]
def stat(name):
    r = json.load(open(f"{work}/{name}.json"))["results"][0]
    return r["mean"], r["stddev"] or 0.0
snaps = [int(m) for m in re.findall(r"\((\d+) bytes\)", open(f"{work}/snapshots.txt").read())]
lines = ["# Cache mounts across the farm", "",
         f"`bench/cachemounts/run.sh`, {when}, {runs} runs per case under hyperfine, {cores} cores, farm built {built}, {buildah};",
         f"load at the end: {open(work + '/load.txt').read().strip()}.",
         "One coordinator (Redis, RabbitMQ) and one worker of two slots at a time, on this machine's loopback; the step runs",
         "again each time (a fresh `SALT`); base: Debian bookworm minbase. PyPI is not reachable from this machine, so npm",
         "(`--mount=type=cache,target=/root/.npm`, `npm install express lodash moment axios typescript`) stands in for pip;",
         "apt: `apt-get update && apt-get install python3` with `/var/cache/apt` and `/var/lib/apt/lists` as locked caches.",
         "cold: farm with a new cache id each run, buildah with its cache directory removed; warm: the same id on the worker",
         "that wrote it, buildah's cache kept; fresh worker: each run on a new worker with an empty state directory, which",
         "starts from the snapshot another worker published (buildah has nothing like it: a new machine is cold).", "",
         "| example | case | farm mean ± σ (s) | buildah mean ± σ (s) | farm / buildah |", "| --- | --- | --- | --- | --- |"]
import os
for kind in [k for k in ("apt", "npm") if os.path.exists(f"{work}/{k}-fresh-farm.json")]:
    for case, label in (("cold", "cold"), ("warm", "warm, same worker"), ("fresh", "warm, fresh worker"), ("coldfresh", "cold, fresh worker")):
        if not os.path.exists(f"{work}/{kind}-{case}-farm.json"):
            continue
        f, fs = stat(f"{kind}-{case}-farm")
        if case == "coldfresh":
            w, _ = stat(f"{kind}-fresh-farm")
            lines.append(f"| {kind} | {label} | {f:.2f} ± {fs:.2f} | (none) | warm, fresh / cold, fresh: {w / f:.2f} |")
        elif case == "fresh":
            c, _ = stat(f"{kind}-cold-buildah")
            lines.append(f"| {kind} | {label} | {f:.2f} ± {fs:.2f} | (cold: {c:.2f}) | {f / c:.2f} against buildah cold |")
        else:
            b, bs = stat(f"{kind}-{case}-buildah")
            lines.append(f"| {kind} | {label} | {f:.2f} ± {fs:.2f} | {b:.2f} ± {bs:.2f} | {f / b:.2f} |")
        print(lines[-1])
if snaps:
    lines += ["", f"Snapshots published: {len(snaps)}, {min(snaps) / 1e6:.2f} to {max(snaps) / 1e6:.2f} MB each (gzipped)."]
caps = open(f"{work}/captures.txt").read().splitlines()
copied = [(int(m.group(1)), int(m.group(2))) for m in (re.search(r"(\d+) bytes copied in (\d+) ms", c) for c in caps) if m]
unchanged = [int(m.group(1)) for m in (re.search(r"walked in (\d+) ms", c) for c in caps) if m]
if copied:
    lines += [f"Captures (paid by the step, before its cache is let go): {len(copied)} with changes, {min(b for b, _ in copied) / 1e6:.1f} to {max(b for b, _ in copied) / 1e6:.1f} MB copied in {min(t for _, t in copied)} to {max(t for _, t in copied)} ms; {len(unchanged)} unchanged (walk only, {min(unchanged, default=0)} to {max(unchanged, default=0)} ms)."]
stored = open(f"{work}/stored.txt").read().splitlines()
if stored:
    lines += [f"Blobs stored by the workers: {sum('delta' in x for x in stored)} deltas, {sum('whole' in x for x in stored)} whole."]
open(out, "w").write("\n".join(lines) + "\n")
PY
echo "results: $results/cachemounts.md"
