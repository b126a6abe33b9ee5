#!/usr/bin/env bash
# Makes a small busybox base image offline, from Debian's busybox-static, and imports it into the local image
# store as busybox:latest (or the name given), so `FROM busybox` builds without a registry.
#   examples/base/busybox.sh [--platform linux/arm64] [NAME]
# --platform linux/arm64 takes busybox from Debian's busybox-static:arm64 package that infra/install.sh keeps in
# /var/cache/farm/arm64 (FARM_ARM64_DEBS), and writes it (to run, that needs qemu-user-static: infra/install.sh);
# with --tar-only it only writes the rootfs tar to NAME (for tests that assemble a multi-platform base themselves).
# FARM_CLI: the farm command to import with (default: the repository's ./farm launcher).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
platform=linux/amd64 tar_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    --platform) platform="$2"; shift 2 ;;
    --platform=*) platform="${1#--platform=}"; shift ;;
    --tar-only) tar_only=true; shift ;;
    *) break ;;
  esac
done
name="${1:-busybox:latest}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
case "$platform" in
  linux/amd64) busybox="$(command -v busybox || true)" ;;
  linux/arm64 | linux/arm64/v8)
    deb="$(ls "${FARM_ARM64_DEBS:-/var/cache/farm/arm64}"/busybox-static_*_arm64.deb 2>/dev/null | head -n 1 || true)"
    [ -n "$deb" ] || { echo "busybox.sh: busybox-static:arm64 is not in ${FARM_ARM64_DEBS:-/var/cache/farm/arm64}: run infra/install.sh" >&2; exit 1; }
    dpkg-deb -x "$deb" "$work/deb"
    busybox="$work/deb/bin/busybox" ;;
  *) echo "busybox.sh: --platform $platform: only linux/amd64 and linux/arm64" >&2; exit 1 ;;
esac
if [ -z "$busybox" ] || [ ! -x "$busybox" ]; then
  echo "busybox.sh: busybox is missing: apt-get install busybox-static (infra/install.sh installs it)" >&2
  exit 1
fi
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var/tmp,proc,sys,dev}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
cp "$busybox" "$rootfs/bin/busybox"
# The host's busybox lists the applets: the same Debian version, and it runs without emulation.
for applet in $("$(command -v busybox || echo "$rootfs/bin/busybox")" --list); do
  [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
done
cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
nogroup:x:65534:
GROUP
# Fixed times and owners: the same busybox makes the same layer (the image id still changes: import records its time).
tar --sort=name --mtime='2024-01-01 00:00:00' --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
if $tar_only; then cp "$work/rootfs.tar" "$name"; exit 0; fi
"${FARM_CLI:-$root/farm}" import --platform "$platform" -c 'CMD ["sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' -m "busybox from $busybox" "$work/rootfs.tar" "$name"
