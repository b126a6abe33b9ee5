#!/usr/bin/env bash
# The large fuzz run: N mutated inputs per target (the Dockerfile parser and build graph; SubmitBuild JSON as the
# coordinator reads it), at large scale (megabyte lines, deep nesting, tens of thousands of continuation lines).
# Usage: bench/fuzz/run.sh [N] [SEED]   (defaults: N=20000 per target, SEED=1; LIMIT=10 seconds per input)
# Results: bench/results/fuzz.md; failing inputs in $BENCH_OUT/findings (replay one with
#   $BENCH_OUT/bin/FuzzBench replay dockerfile|submission FILE).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
n="${1:-20000}"
seed="${2:-1}"
limit="${LIMIT:-10}"
out="${BENCH_OUT:-/tmp/farm-fuzz-bench}"
mkdir -p "$out/findings"
# Built inside the checkout (bin/ is ignored) so the harness finds the corpora in tests/conformance.
bin="$repo/bench/fuzz/FuzzBench/bin/run"
bench_build bench/fuzz/FuzzBench/FuzzBench.csproj "$bin"

status=0
{
  echo "# Fuzz run"
  echo
  echo "bench/fuzz/run.sh $n $seed on $(nproc) cores, $(date -u +%Y-%m-%d), commit $(git -C "$repo" rev-parse --short HEAD)."
  echo "Each target: $n inputs (the seed corpus first, then mutations), large scale, ${limit} s per input."
  echo
  for target in dockerfile submission; do
    echo "## $target"
    echo
    echo '```'
    "$bin/FuzzBench" "$target" "$n" "$seed" "$out/findings" large "$limit" 2>/dev/null || status=1
    echo '```'
    echo
  done
} | tee "$results/fuzz.md"
exit $status
