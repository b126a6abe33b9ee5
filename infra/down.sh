#!/usr/bin/env bash
# Stops what infra/up.sh started, by pid file.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/rabbitmq.sh" stop || true
"$here/redis.sh" stop || true
[ -x "$here/registry.sh" ] && "$here/registry.sh" stop || true
