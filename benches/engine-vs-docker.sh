#!/usr/bin/env bash
# Benchmark (not a test): berth daemon against a real Docker Engine (Debian's docker.io), in the
# same run, on the same busybox image, both driven by the same docker CLI. Each daemon gets its
# own socket, data root and exec root under a temp dir; nothing touches /var/lib/docker.
#
# Reports medians of N runs and berth's ratio to Docker for:
#   run --rm --network none busybox true · run --rm busybox true (default bridge) ·
#   create + start + rm -f · exec true · 50 × run -d, then ps, then rm -f ·
#   daemon idle RSS · per-container overhead (PSS of the shims).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/isolation.sh
N=${N:-20}
./scripts/deps.sh
if ! command -v dockerd >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if [ -z "${BERTH_BIN:-}" ]; then
  cargo build --release -q -p berth
fi
BERTH=${BERTH_BIN:-$PWD/target/release/berth}

work=$(mktemp -d /tmp/berth-engine-bench.XXXXXX)
pids=()
cleanup() {
  for sock in "$work/docker.sock" "$work/berth.sock"; do
    if [ -S "$sock" ]; then
      ids=$(DOCKER_HOST=unix://$sock docker ps -aq 2>/dev/null || true)
      [ -z "$ids" ] || DOCKER_HOST=unix://$sock docker rm -f $ids >/dev/null 2>&1 || true
    fi
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  ip link del docker0 2>/dev/null || true
  grep -o "$work[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
  berth_isolation_cleanup ebench
}
trap cleanup EXIT

wait_sock() {
  for _ in $(seq 300); do
    DOCKER_HOST=unix://$1 docker version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon on $1 did not come up" >&2
  exit 1
}

dockerd -H "unix://$work/docker.sock" --data-root "$work/docker-data" \
  --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
  >"$work/dockerd.log" 2>&1 &
pids+=($!)
echo '{}' >"$work/berth.json"
"$BERTH" daemon $(berth_isolation_args ebench) -H "unix://$work/berth.sock" --data-root "$work/berth-data" \
  --exec-root "$work/berth-exec" --pidfile "$work/berth.pid" \
  --config-file "$work/berth.json" \
  --bip 10.199.0.1/24 >"$work/berthd.log" 2>&1 &
pids+=($!)
wait_sock "$work/docker.sock"
wait_sock "$work/berth.sock"

# The same busybox image in both: Debian's static busybox with its applet links.
rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
cp /bin/busybox "$rootfs/bin/busybox"
for a in $("$rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
tar -C "$rootfs" -cf "$work/busybox.tar" .
for d in docker berth; do
  DOCKER_HOST=unix://$work/$d.sock docker import --change "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin" "$work/busybox.tar" busybox:latest >/dev/null
done

median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%d\n", m}'; }
now_us() { echo $(( $(date +%s%N) / 1000 )); }

create_start_rm() {
  local id
  id=$(docker create busybox sleep 60)
  docker start "$id" >/dev/null
  docker rm -f "$id" >/dev/null
}
export -f create_start_rm

fifty() {
  local ids=()
  for ((j = 0; j < 50; j++)); do ids+=("$(docker run -d busybox sleep 60)"); done
  docker ps >/dev/null
  docker rm -f "${ids[@]}" >/dev/null
}
export -f fifty

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kib() { awk '/^Pss:/ {s += $2} END {print s + 0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

declare -A R
# time_pair KEY N CMD...: CMD N times against each daemon, alternating run by run so that a
# change of machine load hits both alike; R[docker,KEY] and R[berth,KEY] get the medians (µs).
# CMD sees the daemon's name in $BENCH_D.
time_pair() {
  local key=$1 n=$2 d t0 i; shift 2
  : >"$work/t.docker"; : >"$work/t.berth"
  for ((i = 0; i < n; i++)); do
    for d in docker berth; do
      t0=$(now_us)
      BENCH_D=$d DOCKER_HOST=unix://$work/$d.sock "$@" >/dev/null
      echo $(( $(now_us) - t0 )) >>"$work/t.$d"
    done
  done
  for d in docker berth; do R[$d,$key]=$(median <"$work/t.$d"); done
}
exec_true() { docker exec "$(cat "$BENCH_WORK/cid.$BENCH_D")" true; }
export -f exec_true
export BENCH_WORK=$work
for d in docker berth; do
  DOCKER_HOST=unix://$work/$d.sock docker run --rm busybox true >/dev/null # warm-up
  DOCKER_HOST=unix://$work/$d.sock docker run -d busybox sleep 600 >"$work/cid.$d"
done
time_pair none "$N" docker run --rm --network none busybox true
time_pair bridge "$N" docker run --rm busybox true
time_pair csr "$N" bash -c create_start_rm
time_pair exec "$N" bash -c exec_true
for d in docker berth; do DOCKER_HOST=unix://$work/$d.sock docker rm -f "$(cat "$work/cid.$d")" >/dev/null; done
time_pair fifty 3 bash -c fifty

# Port forwarding: 1 GiB from the host through a published port on 127.0.0.1 into a
# container that discards it (MiB/s; Docker uses its userland proxy for loopback here).
throughput() {
  local d=$1 cid port
  if ! cid=$(DOCKER_HOST=unix://$work/$d.sock docker run -d -p 127.0.0.1::5000 busybox sh -c 'nc -l -p 5000 > /dev/null' 2>"$work/$d.port.err"); then
    echo "$d: publishing a port failed: $(cat "$work/$d.port.err")" >&2
    echo 0
    return
  fi
  port=$(DOCKER_HOST=unix://$work/$d.sock docker port "$cid" 5000 | head -1 | sed 's/.*://')
  python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1]); chunk = b"\0" * (1 << 20)
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5); break
    except OSError:
        time.sleep(0.1)
t0 = time.monotonic()
for _ in range(1024):
    s.sendall(chunk)
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
try:
    s.recv(1)
except OSError:
    pass
print(int(1024 / (time.monotonic() - t0)))
PY
  DOCKER_HOST=unix://$work/$d.sock docker rm -f "$cid" >/dev/null
}
for d in docker berth; do R[$d,tput]=$(throughput "$d"); done

# Idle memory: berth's one daemon against dockerd plus the containerd it started.
sleep 2
berth_pid=$(cat "$work/berth.pid")
docker_pid=$(cat "$work/docker.pid")
containerd_pid=$(pgrep -f "containerd --config $work/docker-exec" | head -1 || true)
[ -n "$containerd_pid" ] || containerd_pid=$(pgrep -P "$docker_pid" containerd | head -1 || echo "")
R[berth,rss]=$(rss_kib "$berth_pid")
R[docker,rss]=$(( $(rss_kib "$docker_pid") + ${containerd_pid:+$(rss_kib "$containerd_pid")}+0 ))

# Per-container overhead: PSS of the shims of 10 running containers, per container.
for d in docker berth; do
  for ((j = 0; j < 10; j++)); do
    DOCKER_HOST=unix://$work/$d.sock docker run -d --network none busybox sleep 600 >/dev/null
  done
done
sleep 1
sum_pss() { local s=0; for p in $(pgrep -f "$1"); do s=$(( s + $(pss_kib "$p") )); done; echo "$s"; }
R[docker,shim]=$(( $(sum_pss "containerd-shim-runc-v2 .*$work/docker-exec|containerd-shim-runc-v2 -namespace moby") / 10 ))
R[berth,shim]=$(( $(sum_pss " shim .*$work/berth-exec") / 10 ))

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "n/a" }'; }
printf '\n%-44s %12s %12s %8s\n' "measure (median of $N)" "berth" "docker" "ratio"
row() { printf '%-44s %12s %12s %8s\n' "$1" "${R[berth,$2]} $3" "${R[docker,$2]} $3" "$(ratio "${R[berth,$2]}" "${R[docker,$2]}")"; }
row "run --rm --network none busybox true" none µs
row "run --rm busybox true (default bridge)" bridge µs
row "create + start + rm -f" csr µs
row "exec true" exec µs
row "50 × run -d, ps, rm -f (median of 3)" fifty µs
row "port forwarding, 1 GiB via 127.0.0.1 (higher is better)" tput MiB/s
row "daemon idle RSS (dockerd+containerd)" rss KiB
row "per-container overhead (shim PSS)" shim KiB
