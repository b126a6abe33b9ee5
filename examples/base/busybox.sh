#!/usr/bin/env bash
# Makes a small busybox base image offline, from Debian's busybox-static, and imports it into the local image
# store as busybox:latest (or the name given), so `FROM busybox` builds without a registry.
#   examples/base/busybox.sh [NAME]
# FARM_CLI: the farm command to import with (default: the repository's ./farm launcher).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
name="${1:-busybox:latest}"
busybox="$(command -v busybox || true)"
if [ -z "$busybox" ]; then
  echo "busybox.sh: busybox is missing: apt-get install busybox-static (infra/install.sh installs it)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var/tmp,proc,sys,dev}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do
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
"${FARM_CLI:-$root/farm}" import -c 'CMD ["sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' -m "busybox from $busybox" "$work/rootfs.tar" "$name"
