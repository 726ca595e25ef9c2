#!/usr/bin/env bash
# Build or tear down a Docker Swarm of two (or more) nodes on this machine, for the swarm tests.
#
#   scripts/swarm.sh up NAME [NODES] [IMAGE ...]   build it; print one line per node: HOSTNAME URL
#   scripts/swarm.sh down NAME                     tear it all down (safe to run on a partial one)
#   scripts/swarm.sh stop-node NAME N              stop node N's engine (a node going away)
#   scripts/swarm.sh start-node NAME N             start it again (it rejoins by itself)
#
# Every node is its own dockerd in its own network namespace (NAME-0 is the manager, NAME-1...
# workers), started with `nsenter --net` as scripts/second-engine.sh explains; the namespaces are
# joined by veth pairs to a bridge in a namespace of their own (NAME-br), addresses 10.231.0.0/24,
# so swarm traffic (2377, 7946, 4789) never leaves the machine and the host's engine is never put
# into swarm mode. Every node runs with `--no-new-privileges` (daemon-wide, as daemon.json's
# `no-new-privileges: true`), except the nodes listed in $SWARM_PLAIN_NODES (numbers, e.g. "2"),
# which are drained once joined: the tests make one active to show a node that silently differs
# (`docker info` does not show the setting; the tool reads it from each task's /proc). IMAGE (default:
# the test images) is copied from the host's engine into each node (docker save | load): the
# nodes have no registry.
#
# Everything lives under $SWARM_ROOT/NAME (default /tmp/NAME): node-N/{docker.sock,data,exec,
# docker.pid,dockerd.log}. Needs root; installs iproute2 when `ip` is missing (apt).
# Exit codes: 0 ok, 2 failure (message on stderr).
set -euo pipefail

ROOT_DIR="${SWARM_ROOT:-/tmp}"
WAIT_SECONDS="${ENGINE_WAIT_SECONDS:-60}"
SUBNET="10.231.0"

log() { printf 'swarm.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
usage() { sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
ACTION="$1"
NAME="$2"
shift 2
[[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,20}$ ]] || die "NAME must be 1-21 of [a-z0-9-], got '$NAME'"
DIR="$ROOT_DIR/$NAME"
BRIDGE_NS="$NAME-br"

need() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces and dockerd need it)"
    if ! command -v ip >/dev/null 2>&1; then
        log "installing iproute2"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q iproute2 >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && apt-get install -y -q iproute2 >/dev/null; } ||
            die "could not install iproute2"
    fi
    local tool
    for tool in ip nsenter dockerd docker; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found (install iproute2, util-linux, docker.io)"
    done
}

sock() { printf 'unix://%s/node-%s/docker.sock' "$DIR" "$1"; }
answers() { timeout 10 docker -H "$(sock "$1")" version >/dev/null 2>&1; }
dk() { local n="$1"; shift; timeout 60 docker -H "$(sock "$n")" "$@"; }

pid_of_node() {
    # The dockerd pid of node N, only if that process is alive and is this node's engine.
    local pidfile="$DIR/node-$1/docker.pid" pid
    [ -f "$pidfile" ] || return 1
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--pidfile $pidfile" || return 1
    printf '%s\n' "$pid"
}

start_node() {
    local n="$1" ns="$NAME-$1" dir="$DIR/node-$1"
    mkdir -p "$dir/data" "$dir/exec"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # One veth per node, its other end on the bridge.
    ip link add "${NAME:0:8}-v$n" type veth peer name "${NAME:0:8}-p$n"
    ip link set "${NAME:0:8}-v$n" netns "$ns"
    ip link set "${NAME:0:8}-p$n" netns "$BRIDGE_NS"
    ip -n "$BRIDGE_NS" link set "${NAME:0:8}-p$n" master br0 up
    ip -n "$ns" link set "${NAME:0:8}-v$n" name eth0
    ip -n "$ns" addr add "$SUBNET.$((n + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    start_engine "$n"
}

start_engine() {
    local n="$1" ns="$NAME-$1" dir="$DIR/node-$1" nnp="--no-new-privileges"
    if [[ " ${SWARM_PLAIN_NODES:-} " == *" $n "* ]] || [ -f "$dir/plain" ]; then
        nnp="" && touch "$dir/plain"
    fi
    log "starting dockerd node $n in network namespace $ns (log: $dir/dockerd.log)"
    # setsid: the engine outlives this script and ignores the caller's Ctrl-C.
    nsenter --net="/var/run/netns/$ns" setsid dockerd \
        -H "$(sock "$n")" \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" \
        $nnp \
        --shutdown-timeout 2 \
        </dev/null >>"$dir/dockerd.log" 2>&1 &
}

wait_node() {
    local n="$1" deadline=$((SECONDS + WAIT_SECONDS))
    until answers "$n"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$DIR/node-$n/dockerd.log" >&2 || true
            die "node $n did not answer on $(sock "$n") within ${WAIT_SECONDS}s"
        fi
        sleep 0.2
    done
}

up() {
    need
    local nodes="${1:-2}"
    [[ "$nodes" =~ ^[2-9]$ ]] || die "NODES must be 2-9, got '$nodes'"
    shift || true
    [ "$#" -gt 0 ] || set -- simple-test-isolation:latest
    local image n
    for image in "$@"; do
        docker image inspect "$image" >/dev/null 2>&1 ||
            die "image $image is not on the host's engine (scripts/build-test-images.sh)"
    done
    [ ! -e "$DIR" ] || die "$DIR exists: run 'scripts/swarm.sh down $NAME' first"
    mkdir -p "$DIR"
    ip netns add "$BRIDGE_NS"
    ip -n "$BRIDGE_NS" link add br0 type bridge
    ip -n "$BRIDGE_NS" link set br0 up
    for ((n = 0; n < nodes; n++)); do start_node "$n"; done
    for ((n = 0; n < nodes; n++)); do wait_node "$n"; done
    dk 0 swarm init --advertise-addr "$SUBNET.1" --listen-addr "$SUBNET.1:2377" >/dev/null
    local token
    token="$(dk 0 swarm join-token -q worker)"
    for ((n = 1; n < nodes; n++)); do
        dk "$n" swarm join --token "$token" --advertise-addr "$SUBNET.$((n + 1))" \
            --listen-addr "$SUBNET.$((n + 1)):2377" "$SUBNET.1:2377" >/dev/null
    done
    for ((n = 0; n < nodes; n++)); do
        for image in "$@"; do
            docker save "$image" | dk "$n" load >/dev/null || die "could not load $image into node $n"
        done
    done
    local deadline=$((SECONDS + WAIT_SECONDS)) ready
    while :; do
        ready="$(dk 0 node ls --format '{{.Status}}' | grep -c '^Ready$' || true)"
        [ "$ready" -lt "$nodes" ] || break
        [ "$SECONDS" -lt "$deadline" ] || die "only $ready of $nodes nodes are Ready"
        sleep 0.2
    done
    for ((n = 1; n < nodes; n++)); do
        if [ -f "$DIR/node-$n/plain" ]; then
            dk 0 node update --availability drain "$(dk "$n" info --format '{{.Swarm.NodeID}}')" >/dev/null
        fi
    done
    for ((n = 0; n < nodes; n++)); do
        printf '%s %s\n' "$(dk "$n" info --format '{{.Swarm.NodeID}}')" "$(sock "$n")"
    done
}

stop_node() {
    local n="$1" leave="${2:-}" dir="$DIR/node-$1" pid deadline
    if [ -n "$leave" ] && answers "$n"; then
        dk "$n" swarm leave --force >/dev/null 2>&1 || true
    fi
    if pid="$(pid_of_node "$n")"; then
        kill -TERM "$pid"
        deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "dockerd $pid (node $n) did not stop within 30s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    local cpid cfile="$dir/exec/containerd/containerd.pid"
    cpid="$(cat "$cfile" 2>/dev/null || true)"
    if [[ "$cpid" =~ ^[0-9]+$ ]] && [ -r "/proc/$cpid/cmdline" ] &&
        tr '\0' ' ' <"/proc/$cpid/cmdline" | grep -qF -- "$dir/exec/containerd/"; then
        kill -TERM "$cpid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while kill -0 "$cpid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        kill -KILL "$cpid" 2>/dev/null || true
    fi
}

mounts_below() {
    awk -v dir="$DIR" '$5 == dir || index($5, dir "/") == 1 { print $5 }' /proc/self/mountinfo |
        awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}

down() {
    need
    local n ns
    for n in 0 1 2 3 4 5 6 7 8; do
        if [ -d "$DIR/node-$n" ]; then stop_node "$n" leave; fi
    done
    local mount
    while IFS= read -r mount; do
        [ -n "$mount" ] && umount -l "$mount" 2>/dev/null || true
    done < <(mounts_below)
    # Deleting a namespace deletes the veth ends in it, and with them their peers.
    for n in 0 1 2 3 4 5 6 7 8; do
        ns="$NAME-$n"
        if [ -e "/var/run/netns/$ns" ]; then ip netns del "$ns" || log "could not remove $ns"; fi
    done
    if [ -e "/var/run/netns/$BRIDGE_NS" ]; then ip netns del "$BRIDGE_NS" || true; fi
    for n in 0 1 2 3 4 5 6 7 8; do
        if ip link show "${NAME:0:8}-v$n" >/dev/null 2>&1; then ip link del "${NAME:0:8}-v$n"; fi
        if ip link show "${NAME:0:8}-p$n" >/dev/null 2>&1; then ip link del "${NAME:0:8}-p$n"; fi
    done
    [ -z "$(mounts_below)" ] || die "something is still mounted below $DIR; not removing it"
    if [ -d "$DIR" ]; then rm -rf --one-file-system "$DIR"; fi
    log "swarm $NAME torn down"
}

case "$ACTION" in
    up) up "$@" ;;
    down) down ;;
    stop-node) need && [[ "${1:-}" =~ ^[0-9]$ ]] || usage; stop_node "$1" ;;
    start-node) need && [[ "${1:-}" =~ ^[0-9]$ ]] || usage; start_engine "$1"; wait_node "$1" ;;
    *) usage ;;
esac
