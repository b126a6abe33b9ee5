# The preamble every bench/*/run.sh shares. Source it (after `set -euo pipefail`); do not run it.
# Sets: repo (the checkout), results (bench/results, created).
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
results="$repo/bench/results"
mkdir -p "$results"

# bench_need_tools TOOL...: fail, naming every missing tool at once, when one is not on PATH.
bench_need_tools() {
  local missing=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if ((${#missing[@]})); then
    echo "missing ${missing[*]}: infra/install.sh installs them (or apt-get install -y the Debian packages)" >&2
    exit 1
  fi
}

# bench_need_root REASON: fail unless running as root.
bench_need_root() {
  [ "$(id -u)" = 0 ] || { echo "run as root: $1" >&2; exit 1; }
}

# bench_build PROJECT OUTDIR: a Release build of PROJECT (relative to the checkout) into OUTDIR, outside the timings.
bench_build() {
  dotnet build "$repo/$1" -c Release -nologo -v q -o "$2" >/dev/null
}

# bench_farm_binaries WORK: the coordinator, worker and CLI a cluster bench runs: Release builds under WORK (the CLI
# compiled ahead of time, as ./farm makes it), or with FARM_BENCH_PREBUILT=1 the Debug builds `dotnet build Farm.sln`
# left. Sets coordinator_dll, worker_dll, farm and built (what the results file says was measured).
bench_farm_binaries() {
  local work="$1"
  if [ "${FARM_BENCH_PREBUILT:-}" = 1 ]; then
    coordinator_dll="$repo/coordinator/host/bin/Debug/net10.0/farm-coordinator.dll"
    worker_dll="$repo/worker/host/bin/Debug/net10.0/farm-worker.dll"
    printf '#!/bin/sh\nexec dotnet %s "$@"\n' "$repo/cli/bin/Debug/net10.0/farm.dll" > "$work/farm"; chmod +x "$work/farm"
    farm="$work/farm"; built="Debug (dotnet build Farm.sln)"
  else
    bench_build coordinator/host "$work/coordinator-bin"; coordinator_dll="$work/coordinator-bin/farm-coordinator.dll"
    bench_build worker/host "$work/worker-bin"; worker_dll="$work/worker-bin/farm-worker.dll"
    "$repo/farm" --help >/dev/null; farm="$repo/.farm/cli/farm"; built="Release"
  fi
}

# bench_unmount_under DIR: lazily unmounts everything mounted below DIR (overlays a run left), deepest first.
bench_unmount_under() {
  { grep -o " $1/[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# bench_busybox_rootfs DIR: a busybox root file system in DIR (applet links, root in /etc/passwd and /etc/group),
# the same for farm and the peer it is measured against.
bench_busybox_rootfs() {
  local rootfs=$1 applet
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp"
  cp "$(command -v busybox)" "$rootfs/bin/busybox"
  for applet in $(busybox --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$rootfs/$(dirname "$applet")"; ln -sf /bin/busybox "$rootfs/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\n' > "$rootfs/etc/group"
}

# bench_wait_for SECONDS MESSAGE COMMAND...: runs COMMAND once a second until it succeeds; after SECONDS, fails with MESSAGE.
bench_wait_for() {
  local seconds=$1 message=$2; shift 2
  for _ in $(seq 1 "$seconds"); do "$@" && return 0; sleep 1; done
  echo "$message" >&2; exit 1
}

# bench_stop PID...: SIGTERM to each process, then waits for each to exit.
bench_stop() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
