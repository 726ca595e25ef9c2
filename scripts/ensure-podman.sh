#!/usr/bin/env bash
# Make sure a rootful Podman service answers for the tests, in a store of its own.
#
#   scripts/ensure-podman.sh           install, load the test images, start the service
#   scripts/ensure-podman.sh --stop    remove the service's containers and stop it
#   scripts/ensure-podman.sh --rootless       the same service run by an unprivileged user
#   scripts/ensure-podman.sh --stop-rootless  (PODMAN_ROOTLESS_USER, created with useradd
#                                             and its subordinate ids when missing; its
#                                             socket is /run/user/UID/podman.sock)
#
# - podman missing: as root with apt-get, install Debian's podman (otherwise say
#   what to do and exit 2);
# - the test images (scripts/build-test-images.sh, in Docker's store) are copied
#   into the service's own store with `docker save | podman load` when their ids
#   differ there (no registry is used);
# - `podman system service --time=0` serves the Docker-compatible API on
#   PODMAN_SOCKET, with its own storage (PODMAN_ROOT, PODMAN_RUNROOT) so the
#   tests never touch a user's containers or images; the script waits up to PODMAN_WAIT_SECONDS for /_ping and records
#   the service's pid in PODMAN_RUNROOT/service.pid. Idempotent: a service that
#   answers is left as it is.
#
# The service is stock Podman: it gives every container nofile and nproc limits of
# its own (nofile 1048576), which runc refuses at start where the service's hard limit
# is lower (here: 20000, no CAP_SYS_RESOURCE). Profiles launched on Podman must declare
# both (engine/backends/kinds/podman.py), and tests that create containers by hand do.
#
# Environment: PODMAN_SOCKET (default /run/container-policy-podman/podman.sock),
#   PODMAN_ROOT (default /var/lib/container-policy-podman/storage),
#   PODMAN_RUNROOT (default /run/container-policy-podman/runroot),
#   PODMAN_LOG (default PODMAN_RUNROOT/service.log), PODMAN_WAIT_SECONDS (30).
# Exit codes: 0 the service answers (or, with --stop, is stopped), 2 failure.
set -euo pipefail
cd "$(dirname "$0")/.."

SOCKET="${PODMAN_SOCKET:-/run/container-policy-podman/podman.sock}"
ROOT="${PODMAN_ROOT:-/var/lib/container-policy-podman/storage}"
RUNROOT="${PODMAN_RUNROOT:-/run/container-policy-podman/runroot}"
LOG="${PODMAN_LOG:-$RUNROOT/service.log}"
WAIT_SECONDS="${PODMAN_WAIT_SECONDS:-30}"
PIDFILE="$RUNROOT/service.pid"
IMAGES=(simple-test-isolation:latest simple-test-full:latest)

log() { printf 'ensure-podman: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
have() { command -v "$1" >/dev/null 2>&1; }
p() { podman --root "$ROOT" --runroot "$RUNROOT" "$@"; }

answers() {
    have curl || return 1
    [ -S "$SOCKET" ] && curl -fsS --max-time 5 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1
}

stop() {
    if [ -f "$PIDFILE" ]; then
        local pid
        pid=$(cat "$PIDFILE")
        # Only the service this script started: its pid, and that pid's command line.
        if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "system service"; then
            have podman && p rm --all --force --volumes >/dev/null 2>&1 || true
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
            log "stopped the service (pid $pid)"
        fi
        rm -f "$PIDFILE"
    fi
    rm -f "$SOCKET"
}

ROOTLESS_USER="${PODMAN_ROOTLESS_USER:-policy-rootless}"

rootless() {
    # A user of its own with subordinate ids (useradd gives them), its runtime directory, the
    # test image in its store, and its service; stopped (and its containers removed) by --stop.
    id "$ROOTLESS_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$ROOTLESS_USER" \
        || die "useradd $ROOTLESS_USER failed"
    grep -q "^$ROOTLESS_USER:" /etc/subuid || die "$ROOTLESS_USER has no subordinate uids in /etc/subuid"
    local uid run
    uid=$(id -u "$ROOTLESS_USER")
    run="/run/user/$uid"
    install -d -m 700 -o "$ROOTLESS_USER" "$run"
    local as=(su -s /bin/sh "$ROOTLESS_USER" -c)
    local env="XDG_RUNTIME_DIR=$run; export XDG_RUNTIME_DIR; cd /"
    if ! curl -fsS --max-time 5 --unix-socket "$run/podman.sock" http://d/_ping >/dev/null 2>&1; then
        docker save "${IMAGES[0]}" | "${as[@]}" "$env; podman load -q" >/dev/null 2>&1 \
            || die "podman load as $ROOTLESS_USER failed"
        "${as[@]}" "$env; setsid podman system service --time=0 unix://$run/podman.sock >$run/service.log 2>&1 </dev/null &"
        for _ in $(seq $((WAIT_SECONDS * 10))); do
            curl -fsS --max-time 5 --unix-socket "$run/podman.sock" http://d/_ping >/dev/null 2>&1 && break
            sleep 0.1
        done
    fi
    curl -fsS --max-time 5 --unix-socket "$run/podman.sock" http://d/_ping >/dev/null 2>&1 \
        || die "rootless podman's service did not answer on $run/podman.sock"
    log "rootless podman ($ROOTLESS_USER) answers on unix://$run/podman.sock"
}

stop_rootless() {
    id "$ROOTLESS_USER" >/dev/null 2>&1 || return 0
    local uid
    uid=$(id -u "$ROOTLESS_USER")
    su -s /bin/sh "$ROOTLESS_USER" -c "XDG_RUNTIME_DIR=/run/user/$uid; export XDG_RUNTIME_DIR; cd /; podman rm --all --force >/dev/null 2>&1" || true
    # The user exists for this service alone: its processes are the service, conmon and the
    # rootless pause process podman keeps for the user namespace; each is ended by its pid.
    local pid
    for pid in $(pgrep -u "$uid" || true); do kill "$pid" 2>/dev/null || true; done
    log "stopped rootless podman ($ROOTLESS_USER)"
}

case "${1:-}" in
    --stop) stop; exit 0 ;;
    --stop-rootless) stop_rootless; exit 0 ;;
    --rootless) ;;
    "") ;;
    *) die "unknown argument: $1 (usage: scripts/ensure-podman.sh [--stop|--rootless|--stop-rootless])" ;;
esac
[ $# -le 1 ] || die "one argument at most (usage: scripts/ensure-podman.sh [--stop|--rootless|--stop-rootless])"

if ! have podman || ! have curl; then
    [ "$(id -u)" -eq 0 ] && have apt-get || die "podman is missing: install it (apt-get install podman curl) or run this script as root"
    log "installing podman (apt)"
    apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman curl >/dev/null 2>&1 \
        || die "apt-get install podman failed"
fi
[ "$(id -u)" -eq 0 ] || die "the test service is rootful: run this script as root"

mkdir -p "$(dirname "$SOCKET")" "$RUNROOT" "$ROOT"
if ! answers; then
    stop
    log "starting podman system service on unix://$SOCKET (log $LOG)"
    setsid podman --root "$ROOT" --runroot "$RUNROOT" \
        system service --time=0 "unix://$SOCKET" >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq $((WAIT_SECONDS * 10))); do
        answers && break
        sleep 0.1
    done
    answers || { tail -5 "$LOG" >&2 || true; die "podman's service did not answer on $SOCKET within ${WAIT_SECONDS}s"; }
fi

# The test images, from Docker's store, unless the service has them with the same ids.
for image in "${IMAGES[@]}"; do
    want=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) \
        || die "test image $image missing from Docker's store: run scripts/build-test-images.sh"
    have_id=$(p image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    if [ "sha256:$have_id" != "$want" ] && [ "$have_id" != "$want" ]; then
        log "loading $image into podman's store"
        docker save "$image" | p load -q >/dev/null || die "podman load of $image failed"
    fi
done
log "podman $(podman --version | awk '{print $3}') answers on unix://$SOCKET"
[ "${1:-}" = "--rootless" ] && rootless
exit 0
