#!/usr/bin/env bash
# Times Farm's layer writer against tar|pigz and tar|zstd -T0 on the same >100 MB tree, same run, same disk.
# Usage: bench/layers/run.sh [tree]   (default: the .NET shared runtimes, ~106 MB)
# Results: bench/results/layers.{json,md} (hyperfine) and a summary on stdout.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
tree="${1:-/usr/share/dotnet/shared}"
out="${BENCH_OUT:-/tmp/farm-layer-bench}"
runs="${RUNS:-5}"
mkdir -p "$out"
bench_need_tools hyperfine pigz zstd tar python3

bench_build bench/layers/LayerBench/LayerBench.csproj "$out/bin"
bench="$out/bin/LayerBench"

# Warm the page cache so every contender reads the tree from memory.
tar -C "$tree" -cf - . >/dev/null

hyperfine --warmup 1 --runs "$runs" \
  --export-json "$results/layers.json" --export-markdown "$results/layers.md" \
  -n "farm gzip"   "$bench $tree gzip $out/farm.tar.gz" \
  -n "tar | pigz"  "tar -C $tree -cf - . | pigz -6 > $out/pigz.tar.gz" \
  -n "farm zstd"   "$bench $tree zstd $out/farm.tar.zst" \
  -n "tar | zstd -T0" "tar -C $tree -cf - . | zstd -3 -T0 -q > $out/zstd.tar.zst"

# Sanity: every output is valid for the reference tools.
gzip -t "$out/farm.tar.gz" && zstd -q -t "$out/farm.tar.zst"

raw=$(tar -C "$tree" -cf - . | wc -c)
python3 - "$results/layers.json" "$raw" "$out" "$(nproc)" <<'PY'
import json, os, sys
data = json.load(open(sys.argv[1])); raw = int(sys.argv[2]); out = sys.argv[3]
files = {"farm gzip": "farm.tar.gz", "tar | pigz": "pigz.tar.gz", "farm zstd": "farm.tar.zst", "tar | zstd -T0": "zstd.tar.zst"}
t = {r["command"]: r["mean"] for r in data["results"]}
print(f"\ntree: {raw/1e6:.1f} MB uncompressed tar, {sys.argv[4]} cores")
print(f"{'command':<16}{'mean s':>8}{'MB/s':>9}{'size MB':>10}{'ratio':>7}")
for name, f in files.items():
    size = os.path.getsize(os.path.join(out, f))
    print(f"{name:<16}{t[name]:>8.3f}{raw/1e6/t[name]:>9.1f}{size/1e6:>10.2f}{raw/size:>7.3f}")
g = os.path.getsize(os.path.join(out, "farm.tar.gz")) / os.path.getsize(os.path.join(out, "pigz.tar.gz"))
z = os.path.getsize(os.path.join(out, "farm.tar.zst")) / os.path.getsize(os.path.join(out, "zstd.tar.zst"))
print(f"\ngzip: farm/pigz time {t['farm gzip']/t['tar | pigz']:.2f}x (target <= 1.00), size {g:.3f}x (target <= 1.05)")
print(f"zstd: farm/zstd time {t['farm zstd']/t['tar | zstd -T0']:.2f}x (target <= 1.20), size {z:.3f}x")
PY
