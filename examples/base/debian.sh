#!/usr/bin/env bash
# Makes a Debian 12 (bookworm) base image with debootstrap from a Debian mirror and imports it into the local image
# store as debian:bookworm (or the name given). About a minute and 200 MB; needs root and the mirror.
#   sudo examples/base/debian.sh [NAME] [MIRROR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
name="${1:-debian:bookworm}"
mirror="${2:-${FARM_DEBIAN_MIRROR:-http://deb.debian.org/debian}}"
command -v debootstrap >/dev/null || { echo "debian.sh: debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "debian.sh: debootstrap needs root: sudo $0" >&2; exit 1; }
work="$(mktemp -d /var/tmp/farm-debian.XXXXXX)"
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; echo "debian.sh: debootstrap failed" >&2; exit 1; }
# What an image does not need: apt lists and caches, logs of the bootstrap; and no device nodes (the runtime makes
# /dev, and layers with devices are refused).
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/log/"*.log
find "$work/rootfs/dev" -mindepth 1 -delete
tar --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$root/farm" import -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -m "debootstrap --variant=minbase bookworm $mirror" "$work/rootfs.tar" "$name"
