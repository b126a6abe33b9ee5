#!/usr/bin/env bash
# Makes a Debian 12 (bookworm) base image with debootstrap and imports it into the local image store as
# debian:bookworm (or the name given). Needs root. Two ways:
#   sudo examples/base/debian.sh [NAME] [MIRROR]
#       from a Debian mirror: about a minute and 200 MB.
#   sudo examples/base/debian.sh --unpack-tarball FILE [NAME]
#       without the network, from the packages a `debootstrap --make-tarball` saved (infra/install.sh makes
#       /var/cache/farm/debian-bookworm.tgz, the base of infra/Containerfile's images); the image holds exactly the
#       packages that tarball was made with.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tarball=""
if [ "${1:-}" = --unpack-tarball ]; then
  tarball="${2:?debian.sh: --unpack-tarball needs a file}"
  shift 2
  [ -f "$tarball" ] || { echo "debian.sh: $tarball is missing: infra/install.sh makes it (debootstrap --make-tarball)" >&2; exit 1; }
  tarball="$(realpath "$tarball")"  # debootstrap wants an absolute path
fi
name="${1:-debian:bookworm}"
mirror="${2:-${FARM_DEBIAN_MIRROR:-http://deb.debian.org/debian}}"
command -v debootstrap >/dev/null || { echo "debian.sh: debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "debian.sh: debootstrap needs root: sudo $0" >&2; exit 1; }
work="$(mktemp -d /var/tmp/farm-debian.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if [ -n "$tarball" ]; then
  # The mirror argument only goes into the image's sources.list here: nothing is downloaded.
  args=(--unpack-tarball="$tarball" --variant=minbase bookworm "$work/rootfs" "$mirror")
  source="debootstrap --unpack-tarball=$(basename "$tarball") --variant=minbase bookworm"
else
  args=(--variant=minbase bookworm "$work/rootfs" "$mirror")
  source="debootstrap --variant=minbase bookworm $mirror"
fi
debootstrap "${args[@]}" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; echo "debian.sh: debootstrap failed" >&2; exit 1; }
# What an image does not need: apt lists and caches (the unpacked tarball's .debs too), logs of the bootstrap. /dev stays
# as debootstrap made it, as with docker import: workers apply its device nodes, and RUN steps get a /dev of their own.
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/cache/apt/archives/"*.deb \
  "$work/rootfs/var/log/"*.log
tar --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .
read -ra farm <<<"${FARM:-$root/farm}"  # FARM: another farm command (words), e.g. the tests' CLI
"${farm[@]}" import -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -m "$source" "$work/rootfs.tar" "$name"
