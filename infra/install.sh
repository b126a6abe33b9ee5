#!/usr/bin/env bash
# Installs, from Debian's packages, every tool and service Farm's tests and a local farm use.
# Idempotent: installs only what is missing.
set -euo pipefail
packages=(
  runc docker-registry redis-server rabbitmq-server busybox-static skopeo umoci
  podman buildah slirp4netns uidmap fuse-overlayfs
  podman-compose golang-github-containernetworking-plugin-dnsname  # infra/compose.yaml (service names resolve by DNS)
  pigz zstd hyperfine apache2-utils openssl jq curl ca-certificates iproute2 iptables procps tmux
  prometheus chromium chromium-driver fonts-dejavu-core debootstrap
  clang zlib1g-dev  # the farm CLI is compiled ahead of time (NativeAOT links with clang)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "infra: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Services must not start under their system units: infra/up.sh starts them on loopback under its own state dir.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# podman here must run containers with runc and without default ulimits (docs/architecture.md, "Services and tests").
conf=/etc/containers/containers.conf
if ! grep -q '^default_ulimits = \[\]' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  {
    echo "# written by farm infra/install.sh"
    echo "[containers]"
    echo "default_ulimits = []"
    echo "[engine]"
    echo 'runtime = "runc"'
  } > "$conf"
fi

# The Debian packages of Farm's own images (infra/Containerfile), saved once so that examples/base/debian.sh
# --unpack-tarball makes their base without the network (infra/images.sh, ComposeTests). Downloaded from the mirror of
# apt's sources; made again when the package list below changes.
images_packages=ca-certificates,libicu72,libssl3,runc,iptables,slirp4netns,iproute2,docker-registry,redis-server,rabbitmq-server
tarball=/var/cache/farm/debian-bookworm.tgz
if [ ! -s "$tarball" ] || [ "$(cat "$tarball.packages" 2>/dev/null)" != "$images_packages" ]; then
  mirror="${FARM_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  echo "infra: saving the packages of Farm's images from $mirror in $tarball" >&2
  mkdir -p "$(dirname "$tarball")"
  scratch="$(mktemp -d /var/tmp/farm-debootstrap.XXXXXX)"
  debootstrap --make-tarball="$tarball.part" --variant=minbase --include="$images_packages" bookworm "$scratch" "$mirror" \
    >"$scratch.log" 2>&1 || { tail -n 20 "$scratch.log" >&2; rm -rf "$scratch" "$scratch.log"; echo "infra: debootstrap --make-tarball failed" >&2; exit 1; }
  rm -rf "$scratch" "$scratch.log"
  mv "$tarball.part" "$tarball"
  echo "$images_packages" > "$tarball.packages"
fi
