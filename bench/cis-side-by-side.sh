#!/bin/bash
# CIS Docker Benchmark 1.6 section 5, side by side: docker-bench-security and `policy audit` on
# the same containers, one per control with its weakness (plus a hardened one), all named
# cp-cis-*. Usage (as root, from the checkout, with docker-bench-security unpacked somewhere):
#
#     bench/cis-side-by-side.sh /path/to/docker-bench-security
#
# Prints, per container, the section 5 checks docker-bench warns about and the rules of ours
# that fire, then both tools' wall times and their ratio. Everything it starts is removed at
# the end (on failure and Ctrl-C too), and so is the cgroup parent the 5.25 container makes.
# Results and the reading of every mismatch: docs/rules.md, "Side by side".
set -u
DBS=${1:?usage: $0 DOCKER_BENCH_SECURITY_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=$ROOT/.venv/bin/python
OUT=$(mktemp -d)
IMG=simple-test-isolation:latest
PREFIX=cp-cis-$$
cleanup() {
  for n in $(docker ps -a --format '{{.Names}}' | grep "^$PREFIX-"); do docker rm -f -v "$n" >/dev/null; done
  for d in /sys/fs/cgroup/*/"$PREFIX-parent"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The rendered hardened `isolation` line (policies/base.toml), without its reserved labels.
base=(--user 1001:1001 --read-only --network none --cap-drop ALL
  --security-opt no-new-privileges:true --pids-limit 256 --memory 1g --cpu-period 100000
  --cpu-quota 200000 --ulimit nofile=4096:4096 --ulimit nproc=4096:4096
  --tmpfs /tmp:size=100m,mode=1777,nodev,noexec,nosuid
  --mount "type=bind,source=$ROOT,target=/src,readonly" --workdir /src)
without() {  # base without flag $1 and its value ($2 words after it, default 1)
  local skip=0 out=() n=${2:-1} w
  for w in "${base[@]}"; do
    if [ $skip -gt 0 ]; then skip=$((skip - 1)); continue; fi
    if [ "$w" = "$1" ]; then skip=$n; continue; fi
    out+=("$w")
  done
  printf '%s\n' "${out[@]}"
}
start() {
  local name=$PREFIX-$1; shift
  docker run -d --name "$name" "$@" "$IMG" sleep 900 >/dev/null || echo "could not start $name"
}
mapfile -t nonet < <(without --network)
mapfile -t noro < <(without --read-only 0)
mapfile -t nomem < <(without --memory)
mapfile -t nopids < <(without --pids-limit)
mapfile -t nonnp < <(without --security-opt)
start hardened "${base[@]}"
start 5.2-apparmor "${base[@]}" --security-opt apparmor=unconfined
start 5.3-selinux "${base[@]}" --security-opt label=disable
start 5.4-capadd "${base[@]}" --cap-add SYS_ADMIN
start 5.5-privileged "${base[@]}" --privileged
start 5.6-sensitive "${base[@]}" -v /etc:/host-etc:ro
start 5.8-privport "${nonet[@]}" --network bridge -p "127.0.0.1:${PRIVPORT:-987}:80"
start 5.9-port "${nonet[@]}" --network bridge -p 127.0.0.1::80
start 5.10-hostnet "${nonet[@]}" --network host
start 5.11-nomemory "${nomem[@]}"
start 5.13-writable "${noro[@]}"
start 5.14-allifaces "${nonet[@]}" --network bridge -p 80
start 5.15-restart "${base[@]}" --restart on-failure:9
start 5.16-hostpid "${base[@]}" --pid host
start 5.17-hostipc "${base[@]}" --ipc host
start 5.18-device "${base[@]}" --device /dev/null:/dev/xnull
start 5.21-hostuts "${base[@]}" --uts host
start 5.22-seccomp "${base[@]}" --security-opt seccomp=unconfined
start 5.25-cgroup "${base[@]}" --cgroup-parent "/$PREFIX-parent"
start 5.26-nnp "${nonnp[@]}"
start 5.29-nopids "${nopids[@]}"
start 5.31-userns "${base[@]}" --userns host
start 5.32-socket "${base[@]}" -v /var/run/docker.sock:/var/run/docker.sock
start oom "${base[@]}" --oom-kill-disable
start sysctl "${base[@]}" --sysctl net.ipv4.ping_group_range="0 1"
start 5.27-healthcheck "${base[@]}" --health-cmd true --health-interval 30s

t0=$(date +%s.%N)
(cd "$DBS" && ./docker-bench-security.sh -c container_runtime -i "$PREFIX" -l "$OUT/dbs.log") \
  >"$OUT/dbs.out" 2>&1
t1=$(date +%s.%N)
"$ROOT/.venv/bin/policy" audit --policies "$ROOT/policies" --filter "name=$PREFIX" \
  --format json >"$OUT/audit.json" 2>/dev/null
t2=$(date +%s.%N)

"$PY" - "$OUT" "$t0" "$t1" "$t2" <<'PYEOF'
import json, re, sys
from policy.rules import RULES_BY_ID
out, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
ours = {c["name"]: sorted({f["rule"] for f in c["findings"]})
        for c in json.load(open(f"{out}/audit.json"))["containers"]}
text = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{out}/dbs.out").read())
warned, check = {}, None
for line in text.splitlines():
    if m := re.match(r"\[(WARN|INFO)\] (5\.\d+) - ", line):
        check = (m[1], m[2])
    elif (m := re.match(r"\[(WARN|INFO)\]\s+\* .*?(cp-cis-\d+-[\w.-]+)", line)) and check:
        warned.setdefault(m[2], []).append(check[1] + ("" if m[1] == "WARN" else " (info)"))
warns = sum(1 for v in warned.values() for x in v if "info" not in x)
print(f"{'container':24} {'docker-bench section 5':34} ours (rule: CIS)")
for name in sorted(set(ours) | set(warned), key=lambda n: n.split("-", 3)[-1]):
    rules = ", ".join(f"{r}: {RULES_BY_ID[r].cis or '-'}" if r in RULES_BY_ID else r
                      for r in ours.get(name, []))
    print(f"{name.split('-', 3)[-1]:24} {', '.join(warned.get(name, [])):34} {rules}")
print(f"\ncontainers {len(ours)}; docker-bench WARN items {warns}; our findings "
      f"{sum(len(v) for v in ours.values())}")
print(f"docker-bench -c container_runtime: {t1 - t0:.1f} s; policy audit: {t2 - t1:.2f} s; "
      f"ratio {(t1 - t0) / (t2 - t1):.0f}x")
PYEOF
