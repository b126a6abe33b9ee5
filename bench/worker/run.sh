#!/usr/bin/env bash
# Worker benchmarks, same machine, same run:
#  (a) per-step overhead of an empty "RUN true" on a busybox base: Farm's LayerJobExecutor (median of $STEPS jobs,
#      in process, base layer already extracted) versus buildah build --layers --runtime runc (hyperfine, whole
#      commands; the marginal cost of one step is (time of 11 RUNs - time of 1 RUN) / 10).
#  (b) diff of a RUN that wrote ~200 MB in 2000 files: LayerWriter over the overlay upperdir versus tar -c | pigz of
#      the same upperdir (hyperfine, whole commands).
# Usage: bench/worker/run.sh        Results: bench/results/worker.{md,json}. Needs root, runc, buildah, pigz, hyperfine.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
out="${BENCH_OUT:-/tmp/fwb}"
steps="${STEPS:-20}"
runs="${RUNS:-10}"
bench_need_tools hyperfine pigz buildah runc busybox python3
bench_need_root "overlay mounts and runc need it"

cleanup() {
  bench_unmount_under "$out"
  buildah "${bstore[@]}" rm --all >/dev/null 2>&1 || true
}
bstore=(--root "$out/containers" --runroot "$out/runroot" --storage-driver overlay)
trap cleanup EXIT
cleanup
rm -rf "$out"; mkdir -p "$out"

bench_build bench/worker/WorkerBench/WorkerBench.csproj "$out/bin"
bench="$out/bin/WorkerBench"

# A busybox root file system, the same for both builders.
rootfs="$out/rootfs"
bench_busybox_rootfs "$rootfs"
tar -C "$rootfs" -cf "$out/rootfs.tar" .

# buildah: import the same tree as an image in a private storage.
ctr=$(buildah "${bstore[@]}" from scratch)
buildah "${bstore[@]}" add "$ctr" "$out/rootfs.tar" / >/dev/null
buildah "${bstore[@]}" commit -q "$ctr" localhost/farm-bench-busybox >/dev/null
buildah "${bstore[@]}" rm "$ctr" >/dev/null
mkdir -p "$out/ctx"
printf 'FROM localhost/farm-bench-busybox\nRUN true\n' > "$out/ctx/Dockerfile.1"
{ printf 'FROM localhost/farm-bench-busybox\n'; for _ in $(seq 11); do printf 'RUN true\n'; done; } > "$out/ctx/Dockerfile.11"
bb="buildah ${bstore[*]} build -q --layers --no-cache --runtime runc --pull=never"

echo "== (a) RUN true: farm executor, $steps jobs"
"$bench" steps "$rootfs" "$out/farm-steps" "$steps" | tee "$out/farm-steps.txt"
farm_median=$(awk '/^median_ms/ {print $2}' "$out/farm-steps.txt")

echo "== (a) RUN true: buildah"
hyperfine --warmup 1 --runs "$runs" --export-json "$out/buildah.json" \
  -n "buildah 1 RUN" "$bb -f $out/ctx/Dockerfile.1 $out/ctx" \
  -n "buildah 11 RUN" "$bb -f $out/ctx/Dockerfile.11 $out/ctx"

echo "== (b) diff of 200 MB in 2000 files"
upper=$("$bench" prepare-diff "$rootfs" "$out/diff")
du -sh "$upper"
hyperfine --warmup 1 --runs "${DIFF_RUNS:-5}" --export-json "$out/diff.json" \
  -n "farm LayerWriter (upperdir)" "$bench write-upper $upper $out/farm.tar.gz" \
  -n "tar -c | pigz" "tar -C $upper -cf - . | pigz > $out/pigz.tar.gz"
gzip -t "$out/farm.tar.gz"

python3 - "$farm_median" "$out/buildah.json" "$out/diff.json" "$steps" "$runs" "$(nproc)" "$results/worker.md" \
  "$(runc --version | head -1)" "$(buildah --version)" "$(stat -c %s "$out/farm.tar.gz")" "$(stat -c %s "$out/pigz.tar.gz")" <<'PY'
import json, sys, statistics, datetime
farm, bjson, djson, steps, runs, cores, md, runc, buildah, farm_size, pigz_size = sys.argv[1:]
farm = float(farm)
b = {r["command"]: r for r in json.load(open(bjson))["results"]}
d = {r["command"]: r for r in json.load(open(djson))["results"]}
b1, b11 = b["buildah 1 RUN"]["median"] * 1000, b["buildah 11 RUN"]["median"] * 1000
per_step = (b11 - b1) / 10
fw, pz = d["farm LayerWriter (upperdir)"]["median"], d["tar -c | pigz"]["median"]
lines = [
  "# Worker benchmark",
  "",
  f"{datetime.date.today()}, {cores} cores (shared with other work), {runc}, {buildah}. Command: `bench/worker/run.sh` (STEPS={steps}, RUNS={runs}).",
  "",
  "## (a) Per-step overhead of `RUN true` on a busybox base",
  "",
  "| contender | median |",
  "| --- | --- |",
  f"| Farm LayerJobExecutor, one job (overlay mount, runc run, diff of an empty upperdir), median of {steps} | {farm:.1f} ms |",
  f"| buildah build --layers --no-cache --runtime runc, FROM + 1 RUN (whole command) | {b1:.0f} ms |",
  f"| buildah, FROM + 11 RUN (whole command) | {b11:.0f} ms |",
  f"| buildah marginal cost of one RUN step: (11 RUN - 1 RUN) / 10 | {per_step:.0f} ms |",
  "",
  f"**Ratio buildah per step / Farm per step: {per_step / farm:.2f}x** (above 1 means Farm's step is cheaper).",
  "",
  "Farm's figure is in-process (no process start, base layer already extracted, no layer because the diff is empty);",
  "buildah's marginal figure also excludes its start-up and FROM, but includes committing each step as an image layer.",
  "",
  "## (b) Diff of a RUN that wrote ~200 MB in 2000 files (base64 of random bytes)",
  "",
  "| contender | median | output |",
  "| --- | --- | --- |",
  f"| Farm LayerWriter over the overlay upperdir (whole command, incl. .NET start-up), gzip + sha256 of tar and blob | {fw*1000:.0f} ms | {int(farm_size)/1e6:.1f} MB |",
  f"| tar -c \\| pigz of the same upperdir (whole command) | {pz*1000:.0f} ms | {int(pigz_size)/1e6:.1f} MB |",
  "",
  f"**Ratio Farm / tar|pigz: {fw / pz:.2f}x** (below 1 means Farm is faster).",
  "",
]
open(md, "w").write("\n".join(lines))
print("\n".join(lines))
PY
