#!/usr/bin/env bash
# Container start-to-exit latency, same machine, same run: `farm run --rm IMAGE true` against
# `podman run --rm --runtime runc IMAGE true` (both runc, overlayfs, a busybox image imported into private
# stores), with no network and with a slirp4netns network. Whole commands, so farm's figure includes .NET start-up
# and the supervisor's bookkeeping; podman's includes its own start-up.
# Usage: bench/containers/run.sh      Results: bench/results/containers.{md,json}. Needs root, runc, podman, slirp4netns, hyperfine.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
out="${BENCH_OUT:-/tmp/fcb}"
runs="${RUNS:-20}"
bench_need_tools hyperfine podman runc slirp4netns busybox python3
bench_need_root "overlay mounts and runc need it"

podman=(podman --root "$out/podman" --runroot "$out/podman-run" --storage-driver overlay)
cleanup() {
  "${podman[@]}" rm -af >/dev/null 2>&1 || true
  bench_unmount_under "$out"
}
trap cleanup EXIT
rm -rf "$out"; mkdir -p "$out"

bench_build cli/Farm.Cli.csproj "$out/bin"
farm="$out/bin/farm"
export FARM_STATE_DIR="$out/state"

rootfs="$out/rootfs"
bench_busybox_rootfs "$rootfs"
tar -C "$rootfs" -cf "$out/rootfs.tar" .
"$farm" import "$out/rootfs.tar" bench-bb >/dev/null
"${podman[@]}" import -q "$out/rootfs.tar" localhost/bench-bb >/dev/null

hyperfine --warmup 2 --runs "$runs" --export-json "$out/run.json" \
  -n "farm run --network none" "$farm run --rm --network none bench-bb true" \
  -n "podman run --network none" "${podman[*]} run --rm --runtime runc --network none localhost/bench-bb true" \
  -n "farm run (private: slirp4netns)" "$farm run --rm bench-bb true" \
  -n "podman run --network slirp4netns" "${podman[*]} run --rm --runtime runc --network slirp4netns localhost/bench-bb true"
cp "$out/run.json" "$results/containers.json"

python3 - "$out/run.json" "$results/containers.md" "$runs" <<'PY'
import json, sys, subprocess, datetime
data = json.load(open(sys.argv[1]))["results"]
med = {r["command"]: r["median"] * 1000 for r in data}
def v(cmd): return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
lines = [
    "# Container run benchmark", "",
    f"{datetime.date.today()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores (shared with other work), "
    f"{v(['runc', '--version'])}, {v(['podman', '--version'])}, {v(['slirp4netns', '--version'])}. "
    f"Command: `bench/containers/run.sh` (RUNS={sys.argv[3]}).", "",
    "Start-to-exit of `run --rm IMAGE true` on a busybox image, whole commands (hyperfine medians).", "",
    "| contender | median |", "| --- | --- |",
]
lines += [f"| {name} | {ms:.0f} ms |" for name, ms in med.items()]
none = med["farm run --network none"] / med["podman run --network none"]
slirp = med["farm run (private: slirp4netns)"] / med["podman run --network slirp4netns"]
lines += ["", f"**Ratio farm / podman: {none:.2f}x without network, {slirp:.2f}x with slirp4netns** (below 1 means farm is faster).", ""]
open(sys.argv[2], "w").write("\n".join(lines))
print("\n".join(lines))
PY
