#!/usr/bin/env bash
# The CNCF distribution registry on loopback, in the four configurations Farm's tests use:
#   127.0.0.1:5100 anonymous        127.0.0.1:5101 htpasswd basic auth (farm / farm-secret)
#   127.0.0.1:5102 token auth       127.0.0.1:5103 TLS (test CA)
# Usage: registry.sh start|stop|status. State under ${FARM_INFRA_DIR:-/var/tmp/farm-infra}/registry.
# Idempotent: an instance already answering on its port is left alone. Quiet on success.
#
# Token auth: the registry trusts tokens whose x5c header carries the signing certificate
# (token-signing/signing.crt, also the rootcertbundle); the token server itself runs inside the tests on
# 127.0.0.1:5109 and signs RS256 JWTs with token-signing/signing.key (issuer farm-test-issuer,
# audience farm-registry).
set -euo pipefail

state="${FARM_INFRA_DIR:-/var/tmp/farm-infra}/registry"
# name:port of each instance
instances="anon:5100 basic:5101 token:5102 tls:5103"
token_realm="http://127.0.0.1:5109/token"

say() { printf 'registry: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: apt-get install -y $2 (or run infra/install.sh)"; }
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# answering NAME PORT: true when /v2/ returns any HTTP status (401 means answering with auth on).
answering() {
  local name=$1 port=$2 code
  if [ "$name" = tls ]; then
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$state/tls/ca.crt" "https://127.0.0.1:$port/v2/" 2>/dev/null)" || return 1
  else
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/v2/" 2>/dev/null)" || return 1
  fi
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

make_secrets() {
  mkdir -p "$state/token-signing" "$state/tls" "$state/certs.d/127.0.0.1:5103" "$state/certs.d/localhost:5103"
  if [ ! -s "$state/htpasswd" ]; then
    htpasswd -Bbc "$state/htpasswd.tmp" farm farm-secret >/dev/null 2>&1
    mv "$state/htpasswd.tmp" "$state/htpasswd"
  fi
  if [ ! -s "$state/token-signing/signing.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=farm-test-issuer" \
      -keyout "$state/token-signing/signing.key" -out "$state/token-signing/signing.crt.tmp" >/dev/null 2>&1
    mv "$state/token-signing/signing.crt.tmp" "$state/token-signing/signing.crt"
  fi
  if [ ! -s "$state/tls/server.crt" ]; then
    local t="$state/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Farm test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$t/ca.key" -out "$t/ca.crt" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$t/server.key" -out "$t/server.csr" >/dev/null 2>&1
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$t/server.ext"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
      -extfile "$t/server.ext" -out "$t/server.crt.tmp" >/dev/null 2>&1
    mv "$t/server.crt.tmp" "$t/server.crt"
  fi
  cp "$state/tls/ca.crt" "$state/certs.d/127.0.0.1:5103/ca.crt"
  cp "$state/tls/ca.crt" "$state/certs.d/localhost:5103/ca.crt"
}

write_config() {
  local name=$1 port=$2 dir="$state/$1"
  mkdir -p "$dir/storage"
  {
    printf '%s\n' "version: 0.1" "log:" "  level: info" "  accesslog:" "    disabled: false" \
      "storage:" "  filesystem:" "    rootdirectory: $dir/storage" "  delete:" "    enabled: true" \
      "  maintenance:" "    uploadpurging:" "      enabled: false" \
      "http:" "  addr: 127.0.0.1:$port" "  secret: farm-test-$name-secret"
    case "$name" in
      tls) printf '%s\n' "  tls:" "    certificate: $state/tls/server.crt" "    key: $state/tls/server.key" ;;
    esac
    case "$name" in
      basic) printf '%s\n' "auth:" "  htpasswd:" "    realm: farm-registry" "    path: $state/htpasswd" ;;
      token) printf '%s\n' "auth:" "  token:" "    realm: $token_realm" "    service: farm-registry" \
        "    issuer: farm-test-issuer" "    rootcertbundle: $state/token-signing/signing.crt" ;;
    esac
  } >"$dir/config.yml"
}

start_one() {
  local name=$1 port=$2 dir="$state/$1"
  if answering "$name" "$port"; then return 0; fi
  if pid_alive "$dir/registry.pid"; then kill "$(cat "$dir/registry.pid")" 2>/dev/null || true; fi
  write_config "$name" "$port"
  # setsid: the registry must outlive the shell (and the test run) that started it.
  setsid docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/registry.pid"
}

wait_one() {
  local name=$1 port=$2 dir="$state/$1" deadline
  deadline=$(($(date +%s) + 30))
  until answering "$name" "$port"; do
    if ! pid_alive "$dir/registry.pid"; then
      tail -n 20 "$dir/registry.log" >&2 || true
      die "registry $name on 127.0.0.1:$port exited at start; see $dir/registry.log"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 20 "$dir/registry.log" >&2 || true
      die "registry $name on 127.0.0.1:$port did not answer /v2/ within 30s; see $dir/registry.log"
    fi
    sleep 0.2
  done
}

stop_one() {
  local pidfile="$state/$1/registry.pid" pid
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start)
    need docker-registry docker-registry; need htpasswd apache2-utils; need openssl openssl; need curl curl
    mkdir -p "$state"
    make_secrets
    for i in $instances; do start_one "${i%%:*}" "${i##*:}"; done
    for i in $instances; do wait_one "${i%%:*}" "${i##*:}"; done
    ;;
  stop)
    for i in $instances; do stop_one "${i%%:*}"; done
    ;;
  status)
    rc=0
    for i in $instances; do
      if answering "${i%%:*}" "${i##*:}"; then echo "${i%%:*} 127.0.0.1:${i##*:} answering"
      else echo "${i%%:*} 127.0.0.1:${i##*:} not answering"; rc=1; fi
    done
    exit "$rc"
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
