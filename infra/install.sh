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
  qemu-user-static  # workers run linux/arm64 steps emulated (binfmt_misc, flag F: below)
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

# Emulated platforms (docs/architecture.md, "Platforms"): qemu-user-static's handlers registered with flag F (the kernel
# opens the interpreter once, at registration, so it runs inside runc containers whose root lacks it). The handlers
# are the package's own lines in /usr/lib/binfmt.d; systemd-binfmt registers them at boot where systemd runs, this does
# it where it does not (containers, CI). A kernel without binfmt_misc runs the native platform only: said, not fatal.
binfmt=/proc/sys/fs/binfmt_misc
if ! grep -qw binfmt_misc /proc/filesystems && ! modprobe binfmt_misc 2>/dev/null; then
  echo "infra: this kernel has no binfmt_misc: workers here run linux/amd64 steps only (no emulated linux/arm64)" >&2
else
  [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null \
    || echo "infra: cannot mount binfmt_misc on $binfmt (a container without CAP_SYS_ADMIN?): no emulated platforms here" >&2
  if [ -e "$binfmt/register" ]; then
    for arch in aarch64; do
      conf="/usr/lib/binfmt.d/qemu-$arch.conf"
      if [ ! -e "$binfmt/qemu-$arch" ] && [ -s "$conf" ]; then
        cat "$conf" > "$binfmt/register" || echo "infra: registering $conf with binfmt_misc failed" >&2
      fi
      if [ -e "$binfmt/qemu-$arch" ] && ! grep -q '^flags:.*F' "$binfmt/qemu-$arch"; then
        echo "infra: qemu-$arch is registered without flag F: runc containers cannot run it; unregister it (echo -1 > $binfmt/qemu-$arch) and run this again" >&2
      fi
    done
  fi
fi

# Debian's busybox-static for arm64, kept once under /var/cache/farm/arm64, so examples/base/busybox.sh --platform
# linux/arm64 makes an arm64 base (and the tests an index of both platforms) without the network.
arm64_dir=/var/cache/farm/arm64
if ! ls "$arm64_dir"/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  echo "infra: saving busybox-static:arm64 in $arm64_dir" >&2
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; apt-get update -q >/dev/null; }
  mkdir -p "$arm64_dir"
  (cd "$arm64_dir" && apt-get download -q busybox-static:arm64 >/dev/null 2>&1) || { echo "infra: apt-get download busybox-static:arm64 failed" >&2; exit 1; }
fi
