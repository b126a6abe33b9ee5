#!/usr/bin/env bash
# Builds Farm's images with Farm itself (infra/Containerfile: coordinator, worker, registry, redis, rabbitmq), pushes
# them to a registry and pulls them into podman, for infra/compose.yaml. Offline: the Debian base comes from the
# package tarball infra/install.sh saved, the programs from a self-contained `dotnet publish` on this machine.
#   sudo infra/images.sh [PREFIX] [TAG]
# PREFIX (default $FARM_IMAGES, else 127.0.0.1:5100/farm: the registry infra/up.sh starts) and TAG (default
# $FARM_TAG, else latest) name the images PREFIX/coordinator:TAG and so on, as compose.yaml does. Environment:
# FARM_DEBIAN_TARBALL (default /var/cache/farm/debian-bookworm.tgz), FARM_IMAGE_BASE (the base's name in the local
# image store, default farm-debian:bookworm; made from the tarball when missing), FARM (the farm command, default ./farm).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${1:-${FARM_IMAGES:-127.0.0.1:5100/farm}}"
tag="${2:-${FARM_TAG:-latest}}"
tarball="${FARM_DEBIAN_TARBALL:-/var/cache/farm/debian-bookworm.tgz}"
base="${FARM_IMAGE_BASE:-farm-debian:bookworm}"
read -ra farm <<<"${FARM:-$root/farm}"
log() { echo "images: $*" >&2; }
command -v podman >/dev/null || { log "podman is missing: run infra/install.sh"; exit 1; }

if ! "${farm[@]}" inspect "$base" >/dev/null 2>&1; then
  log "making the base $base from $tarball"
  "$root/examples/base/debian.sh" --unpack-tarball "$tarball" "$base"
fi

context="$(mktemp -d /var/tmp/farm-images.XXXXXX)"
trap 'rm -rf "$context"' EXIT
for host in coordinator worker; do
  log "publishing $host/host (self-contained, linux-x64)"
  project="$root/$host/host/Farm.${host^}.Host.csproj"
  if ! out="$(dotnet publish "$project" -c Release -r linux-x64 --self-contained -o "$context/$host" -nologo -v q 2>&1)"; then
    printf '%s\n' "$out" >&2; log "publishing $project failed (see above)"; exit 1
  fi
done

# Plain HTTP for a registry on loopback (as farm itself allows), TLS anywhere else.
case "$prefix" in 127.0.0.1:* | localhost:* | \[::1\]:*) tls=false ;; *) tls=true ;; esac
for target in coordinator worker registry redis rabbitmq; do
  image="$prefix/$target:$tag"
  log "building $image"
  "${farm[@]}" build -f "$root/infra/Containerfile" --target "$target" --build-arg "BASE=$base" -t "$image" --push --progress plain "$context"
  podman pull -q --tls-verify="$tls" "$image" >/dev/null
done
log "done: $prefix/{coordinator,worker,registry,redis,rabbitmq}:$tag in podman"
