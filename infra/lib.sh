# Shared helpers for the infra scripts. Source it; do not run it.
# Every service keeps its data, logs and pid file under one state directory.
FARM_INFRA_DIR="${FARM_INFRA_DIR:-/var/tmp/farm-infra}"
export FARM_INFRA_DIR

log() { printf 'infra: %s\n' "$*" >&2; }
die() { printf 'infra: error: %s\n' "$*" >&2; exit 1; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_until SECONDS DESCRIPTION LOGFILE COMMAND...: poll COMMAND until it succeeds.
wait_until() {
  local timeout=$1 what=$2 logfile=$3; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      [ -f "$logfile" ] && tail -n 20 "$logfile" >&2
      die "$what did not answer within ${timeout}s; see $logfile"
    fi
    sleep 0.2
  done
}

# pid_alive PIDFILE: true when the pid file names a running process.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile NAME PIDFILE: TERM the process, wait for it, KILL if it lingers.
stop_pidfile() {
  local name=$1 pidfile=$2 pid
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
  log "stopped $name (pid $pid)"
}

# need_cmd CMD PACKAGE: fail with the install command when a tool is missing.
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: run infra/install.sh (apt-get install $2)"; }
