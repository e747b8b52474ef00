#!/usr/bin/env bash
# Benchmark (not a test): docker push and docker pull through berth daemon against
# `berth registry serve` on loopback, for an image with one ~200 MB layer (incompressible and
# compressible variants), next to what sha256 and gzip -d alone achieve on this machine on
# the same layer (coreutils sha256sum, gzip), and the same push and pull through a real
# Docker Engine (Debian's docker.io, its own socket and data root) when dockerd is installed.
# Rates are MB/s of layer content (the uncompressed tar).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/isolation.sh
MB=${MB:-200}
if [ -z "${BERTH_BIN:-}" ]; then
  cargo build --release -q -p berth
fi
BERTH=${BERTH_BIN:-$PWD/target/release/berth}

work=$(mktemp -d /tmp/berth-regbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  grep -o "$work[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
  berth_isolation_cleanup rbench
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
"$BERTH" registry serve --addr "$reg" --root "$work/registry" 2>"$work/registry.log" &
pids+=($!)
echo '{}' > "$work/daemon.json"
"$BERTH" daemon $(berth_isolation_args rbench) -H "unix://$work/berth.sock" --data-root "$work/data" --exec-root "$work/exec" \
  --pidfile "$work/berth.pid" --config-file "$work/daemon.json" 2>"$work/daemon.log" &
pids+=($!)
engines=(berth)
if command -v dockerd >/dev/null; then
  dockerd -H "unix://$work/docker.sock" --data-root "$work/docker-data" \
    --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" --bridge none \
    --iptables=false >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  engines+=(docker)
fi
export DOCKER_CONFIG=$work/docker-config
for e in "${engines[@]}"; do
  for _ in $(seq 300); do DOCKER_HOST=unix://$work/$e.sock docker version >/dev/null 2>&1 && break; sleep 0.1; done
done

now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1/1e6/($3-$2):.0f}')"; }

for kind in incompressible compressible; do
  root=$work/root-$kind
  mkdir -p "$root"
  if [ $kind = incompressible ]; then
    head -c $((MB << 20)) /dev/urandom > "$root/data"
  else
    python3 - "$root/data" $((MB << 20)) <<'PY'
import sys
line = b"berth ships images: the quick brown fox jumps over the lazy dog 0123456789\n"
n = int(sys.argv[2])
with open(sys.argv[1], "wb") as f:
    f.write((line * (n // len(line) + 1))[:n])
PY
  fi
  tar -C "$root" -cf "$work/$kind.tar" .
  gzip -1 -c "$work/$kind.tar" > "$work/$kind.tar.gz"
  tarsize=$(stat -c %s "$work/$kind.tar")
  # The machine's limits on this layer: sha256 of the blob; gunzip + sha256 of the tar.
  t0=$(now); sha256sum "$work/$kind.tar.gz" >/dev/null; t1=$(now)
  gzip -dc "$work/$kind.tar.gz" | sha256sum >/dev/null; t2=$(now)
  echo "$kind: $((tarsize / 1000000)) MB tar; limits: sha256 of the blob $(rate "$tarsize" "$t0" "$t1") MB/s, gzip -d | sha256 $(rate "$tarsize" "$t1" "$t2") MB/s"
  for e in "${engines[@]}"; do
    export DOCKER_HOST=unix://$work/$e.sock
    ref="$reg/bench-$e/$kind:1"
    docker import "$work/$kind.tar" bench-$kind:1 >/dev/null
    docker tag bench-$kind:1 "$ref"
    t3=$(now); docker push -q "$ref" >/dev/null; t4=$(now)
    docker rmi bench-$kind:1 "$ref" >/dev/null
    t5=$(now); docker pull -q "$ref" >/dev/null; t6=$(now)
    # Every rate in MB/s of layer content (the uncompressed tar), so the variants compare.
    echo "  $e: push $(rate "$tarsize" "$t3" "$t4") MB/s; pull (download, verify, unpack) $(rate "$tarsize" "$t5" "$t6") MB/s"
    docker rmi "$ref" >/dev/null
  done
done
