#!/usr/bin/env bash
# farm build (through the local farm daemon, and optionally a local cluster) against buildah on the same Dockerfile
# and context, same machine, same run, under hyperfine:
#   (a) warm rebuild, nothing changed      farm build            vs buildah build --layers
#   (b) rebuild after one file changed      farm build            vs buildah build --layers
#       (a file under src/: its stage's COPY and RUN run again, and that RUN sleeps 1 s in both builders)
#   (g) rebuild after one file changed      farm build            vs buildah build --layers
#       (app.txt, copied by the final stage: only that COPY runs again; no fixed wait under the ratio)
#   (c) cold multi-stage build             farm build --no-cache vs buildah build --layers --no-cache --jobs 2
#   (e) 10 small RUN steps, no cache       farm build --no-cache vs buildah build --layers --no-cache
#   (f) (a) as the first command after the daemon stopped (its cold start) vs buildah build --layers
#   (h) an empty state seeded from a registry cache (--cache-from, exported once with --cache-to mode=max) vs the
#       same empty state built cold: farm against farm, daemon start and base pull in both (not against buildah)
#   (d) warm rebuild through a cluster     farm build --farm URL (only with FARM_BENCH_CLUSTER=URL, e.g. after
#                                          infra/cluster.sh start 2: FARM_BENCH_CLUSTER=http://127.0.0.1:8480)
# As root, with infra/up.sh's registry on 127.0.0.1:5100 (both builders take the base image from it).
# Results: bench/results/build.md (and build-*.json); ratios on stdout. RUNS=10 by default; CASES="a b c d" picks.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
runs="${RUNS:-10}"
work="${BENCH_OUT:-/var/tmp/farm-build-bench}"
registry="${FARM_REGISTRY:-127.0.0.1:5100}"
cluster="${FARM_BENCH_CLUSTER:-}"
bench_need_tools hyperfine buildah jq python3
bench_need_root "both builders run steps with runc"
curl -fsS "http://$registry/v2/" >/dev/null || { echo "registry $registry does not answer: run infra/up.sh" >&2; exit 1; }

# Earlier cases' results survive a run of only some (CASES="c d").
rm -rf "$work/ctx" "$work/state"; mkdir -p "$work/ctx/src"
export FARM_STATE_DIR="$work/state" FARM_HOST=
farm="$repo/.farm/cli/farm"
"$repo/farm" --help >/dev/null   # builds the CLI once, outside the timings

# The base: busybox from busybox-static, in the registry so that both builders resolve the same image.
base="$registry/farm-bench/busybox:1"
"$repo/examples/base/busybox.sh" "$base" >/dev/null
"$farm" push "$base" >/dev/null

# A two-stage-plus-final Dockerfile: two independent stages (parallel with --jobs 2), COPY of a 200-file tree.
ctx="$work/ctx"
for i in $(seq 1 200); do head -c 2048 /dev/urandom | base64 > "$ctx/src/f$i.txt"; done
echo one > "$ctx/src/changed.txt"
echo "app" > "$ctx/app.txt"
cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM $base AS sums
WORKDIR /work
COPY src/ ./src/
RUN find src -type f | sort | xargs cat | sha256sum > /sums && sleep 1

FROM $base AS data
RUN dd if=/dev/zero of=/data bs=1M count=16 2>/dev/null && sleep 1

FROM $base
COPY --from=sums /sums /sums
COPY --from=data /data /data
COPY app.txt /app.txt
ENV APP=bench
CMD ["cat", "/sums"]
DOCKERFILE

fb="$farm build --progress plain -t farm-bench:1"
bb="buildah build --layers --runtime runc --tls-verify=false -q -t buildah-bench:1"
change="date +%s%N > $ctx/src/changed.txt"
change_app="date +%s%N > $ctx/app.txt"
hf() { hyperfine --runs "$runs" --style basic "$@"; }
cases="${CASES:-a b g c d e f h}"
want() { [[ " $cases " == *" $1 "* ]]; }

if want a; then
echo "== (a) warm rebuild, nothing changed"
hf --warmup 2 --export-json "$work/a.json" -n "farm (local daemon)" "$fb $ctx >/dev/null 2>&1" -n "buildah --layers" "$bb $ctx >/dev/null 2>&1"
fi
if want b; then
echo "== (b) one file changed"
hf --warmup 1 --prepare "$change" --export-json "$work/b.json" -n "farm (local daemon)" "$fb $ctx >/dev/null 2>&1" -n "buildah --layers" "$bb $ctx >/dev/null 2>&1"
fi
if want g; then
echo "== (g) one file changed, copied by the final stage"
hf --warmup 1 --prepare "$change_app" --export-json "$work/g.json" -n "farm (local daemon)" "$fb $ctx >/dev/null 2>&1" -n "buildah --layers" "$bb $ctx >/dev/null 2>&1"
fi
if want c; then
echo "== (c) cold multi-stage build"
hf --warmup 1 --export-json "$work/c.json" -n "farm --no-cache" "$fb --no-cache $ctx >/dev/null 2>&1" -n "buildah --no-cache --jobs 2" "$bb --no-cache --jobs 2 $ctx >/dev/null 2>&1"
fi
if want d && [ -n "$cluster" ]; then
  echo "== (d) warm rebuild through the cluster at $cluster"
  cb="$farm build --farm $cluster --progress plain -t $registry/farm-bench/app:1 $ctx"
  hf --warmup 2 --export-json "$work/d.json" -n "farm --farm (cluster)" "$cb >/dev/null 2>&1" -n "buildah --layers" "$bb $ctx >/dev/null 2>&1"
fi
if want e; then
  echo "== (e) 10 small RUN steps without cache"
  mkdir -p "$work/runs"
  { echo "FROM $base"; for i in $(seq 1 10); do echo "RUN echo step-$i > /step-$i"; done; } > "$work/runs/Dockerfile"
  hf --warmup 1 --export-json "$work/e.json" -n "farm --no-cache" "$fb --no-cache $work/runs >/dev/null 2>&1" -n "buildah --no-cache" "$bb --no-cache $work/runs >/dev/null 2>&1"
fi
if want f; then
  echo "== (f) warm rebuild as the first command after the daemon stopped"
  $fb "$ctx" >/dev/null 2>&1
  hf --prepare "$farm daemon stop >/dev/null" --export-json "$work/f.json" -n "farm (daemon cold start)" "$fb $ctx >/dev/null 2>&1" -n "buildah --layers" "$bb $ctx >/dev/null 2>&1"
fi
if want h; then
  echo "== (h) an empty state seeded from a registry cache vs the same built cold"
  cache="$registry/farm-bench/cache:h"
  FARM_STATE_DIR="$work/state-h" $fb --cache-to "type=registry,ref=$cache,mode=max" "$ctx" >/dev/null 2>&1
  fresh="FARM_STATE_DIR=$work/state-h $farm daemon stop >/dev/null 2>&1; rm -rf $work/state-h"
  hf --prepare "$fresh" --export-json "$work/h.json" \
    -n "farm --cache-from (empty state)" "FARM_STATE_DIR=$work/state-h $fb --cache-from $cache $ctx >/dev/null 2>&1" \
    -n "farm cold (empty state)" "FARM_STATE_DIR=$work/state-h $fb $ctx >/dev/null 2>&1"
  eval "$fresh"
fi
"$farm" daemon stop >/dev/null
for f in "$work"/[a-h].json; do if [ -e "$f" ]; then cp "$f" "$results/build-$(basename "$f")"; fi; done

python3 - "$work" "$results/build.md" "$runs" "$(nproc)" "$(buildah --version)" <<'PY'
import json, os, sys
work, out, runs, cores, buildah = sys.argv[1:6]
names = {"a": "(a) warm rebuild, nothing changed", "b": "(b) one file changed", "c": "(c) cold multi-stage build", "d": "(d) warm rebuild through the local cluster", "e": "(e) 10 small RUN steps without cache", "f": "(f) warm rebuild, daemon cold start", "g": "(g) one file changed, copied by the final stage"}
lines = ["# farm build vs buildah", "", f"`bench/build/run.sh`, {runs} runs each under hyperfine, {cores} cores, {buildah}.",
         "Same Dockerfile and context (3 stages, 200-file COPY, base busybox from the local registry), same run.", "",
         "| case | farm mean ± σ (s) | buildah mean ± σ (s) | farm / buildah |", "| --- | --- | --- | --- |"]
for key, title in names.items():
    path = os.path.join(work, key + ".json")
    if not os.path.exists(path):
        continue
    farm, other = json.load(open(path))["results"]
    ratio = farm["mean"] / other["mean"]
    lines.append(f"| {title} | {farm['mean']:.3f} ± {farm['stddev']:.3f} | {other['mean']:.3f} ± {other['stddev']:.3f} | {ratio:.3f} |")
    print(f"{title}: farm {farm['mean']:.3f}s, buildah {other['mean']:.3f}s, ratio {ratio:.3f}")
h = os.path.join(work, "h.json")
if os.path.exists(h):
    seeded, cold = json.load(open(h))["results"]
    ratio = seeded["mean"] / cold["mean"]
    lines += ["", "| case | --cache-from mean ± σ (s) | cold mean ± σ (s) | seeded / cold |", "| --- | --- | --- | --- |",
              f"| (h) empty state seeded from a registry cache | {seeded['mean']:.3f} ± {seeded['stddev']:.3f} | {cold['mean']:.3f} ± {cold['stddev']:.3f} | {ratio:.3f} |"]
    print(f"(h) seeded {seeded['mean']:.3f}s, cold {cold['mean']:.3f}s, ratio {ratio:.3f}")
lines += ["", "Targets (issue 12): (a) at most 0.10, one file changed ((b), (g)) at most 0.30, (c) at most 0.60, (e) at most 0.13 of buildah's time."]
open(out, "w").write("\n".join(lines) + "\n")
PY
echo "results: $results/build.md"
