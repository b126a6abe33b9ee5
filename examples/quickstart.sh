#!/usr/bin/env bash
# A new user's first build, on Debian 12 with the .NET 10 SDK, as root:
#   sudo examples/quickstart.sh
# Installs what is missing from Debian's packages (infra/install.sh: runc, busybox-static, podman ...), makes a
# busybox base image offline, builds examples/hello with the embedded farm (no service needed), and runs the image
# with podman.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (sudo $0): build steps run under runc" >&2; exit 1; }
command -v dotnet >/dev/null || { echo "quickstart: the .NET 10 SDK is missing: https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing what is missing (infra/install.sh)"
"$root/infra/install.sh"

step "making the busybox base image (examples/base/busybox.sh)"
"$root/examples/base/busybox.sh" busybox:latest

step "building examples/hello with the embedded farm"
archive="${TMPDIR:-/tmp}/farm-hello.tar"
"$root/farm" build -t hello:1 --output "type=docker,dest=$archive" "$root/examples/hello"
"$root/farm" images

step "running it with podman"
podman load -q -i "$archive" >/dev/null
podman run --rm --runtime runc docker.io/library/hello:1
cat <<DONE

Done: hello:1 is in farm's local store (./farm images) and in podman's (podman images).
Build it again to see the cache: ./farm build -t hello:1 examples/hello
DONE
