#!/usr/bin/env bash
# Benchmark (not a test): `docker build` (classic builder, DOCKER_BUILDKIT=0) through berth
# daemon and through a real Docker Engine (Debian's docker.io, its own data root, socket and
# no bridge or iptables, so it disturbs nothing), in the same run, on the same context:
#
#   FROM busybox / COPY a 50 MB file / RUN / ENV / COPY a small file
#
# cold (--no-cache), fully cached rebuild, rebuild after changing the last COPY source.
# Prints the median of N runs of each and berth's ratio to Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/isolation.sh
N=${N:-3}
if [ -z "${BERTH_BIN:-}" ]; then
  cargo build --release -q -p berth
fi
BERTH=${BERTH_BIN:-$PWD/target/release/berth}
command -v dockerd >/dev/null || { echo "needs dockerd (apt-get install docker.io)"; exit 1; }

work=$(mktemp -d /tmp/berth-build-bench.XXXXXX)
cleanup() {
  for engine in berth docker; do
    export DOCKER_HOST="unix://$work/$engine.sock"
    ids=$(docker ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
  done
  for pidfile in "$work/berth.pid" "$work/docker.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 3
  # Never delete through a mount a daemon left behind.
  if grep -q " $work" /proc/mounts; then
    echo "mounts left under $work; not removing it" >&2
  else
    rm -rf "$work"
  fi
  berth_isolation_cleanup bbench
}
trap cleanup EXIT

echo '{}' > "$work/daemon.json"
"$BERTH" daemon $(berth_isolation_args bbench) -H "unix://$work/berth.sock" --data-root "$work/berth-data" \
  --exec-root "$work/berth-exec" --pidfile "$work/berth.pid" \
  --config-file "$work/daemon.json" >"$work/berth.log" 2>&1 &
dockerd --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
  -H "unix://$work/docker.sock" --pidfile "$work/docker.pid" --bridge=none \
  --iptables=false --ip-masq=false --storage-driver overlay2 \
  --config-file "$work/daemon.json" >"$work/docker.log" 2>&1 &
for sock in berth docker; do
  for _ in $(seq 100); do [ -S "$work/$sock.sock" ] && break; sleep 0.1; done
done

# busybox from Debian's busybox-static, imported into both engines.
mkdir -p "$work/rootfs"/{bin,proc,sys,dev,tmp,etc}
chmod 1777 "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh echo true cat; do ln -s busybox "$work/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  > "$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
head -c $((50 << 20)) /dev/urandom > "$work/big.bin"

export DOCKER_CONFIG="$work/docker-config" DOCKER_BUILDKIT=0
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

bench() { # engine
  export DOCKER_HOST="unix://$work/$1.sock"
  docker import "$work/busybox.tar" busybox:latest >/dev/null
  local ctx="$work/ctx-$1"
  mkdir -p "$ctx"
  cp "$work/big.bin" "$ctx/"
  printf 'FROM busybox\nCOPY big.bin /data/big.bin\nRUN echo built > /built.txt\nENV A=1\nCOPY small.txt /small.txt\n' \
    > "$ctx/Dockerfile"
  one() {
    local s e
    s=$(date +%s%N)
    docker build -q "$@" -t bench "$ctx" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    e=$(date +%s%N)
    echo "scale=3; ($e - $s) / 1000000000" | bc
  }
  cold=$(for i in $(seq "$N"); do echo "$i" > "$ctx/small.txt"; one --no-cache; done | median)
  cached=$(for _ in $(seq "$N"); do one; done | median)
  changed=$(for i in $(seq "$N"); do echo "changed $i $RANDOM" > "$ctx/small.txt"; one; done | median)
  echo "$cold $cached $changed"
}

read -r b_cold b_cached b_changed < <(bench berth)
read -r d_cold d_cached d_changed < <(bench docker)
ratio() { echo "scale=2; $1 / $2" | bc; }
printf '%-22s %8s %8s %8s\n' "" berth docker ratio
printf '%-22s %7ss %7ss %8s\n' "cold" "$b_cold" "$d_cold" "$(ratio "$b_cold" "$d_cold")"
printf '%-22s %7ss %7ss %8s\n' "fully cached" "$b_cached" "$d_cached" "$(ratio "$b_cached" "$d_cached")"
printf '%-22s %7ss %7ss %8s\n' "last COPY changed" "$b_changed" "$d_changed" "$(ratio "$b_changed" "$d_changed")"
