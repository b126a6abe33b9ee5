#!/usr/bin/env bash
# Installs what is missing and starts every service the tests and a local farm need, on loopback,
# under $FARM_INFRA_DIR (default /var/tmp/farm-infra). Idempotent. infra/down.sh stops them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/install.sh"
"$here/registry.sh" start
"$here/redis.sh" start
"$here/rabbitmq.sh" start
