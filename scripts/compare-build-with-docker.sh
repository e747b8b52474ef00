#!/usr/bin/env bash
# Builds the example Dockerfiles of crates/builder/testdata/dockerfiles/ with berth daemon and
# with a real Docker Engine (Debian's docker.io, own data root and socket, no bridge or
# iptables), both through the docker CLI's classic builder, and compares the resulting image
# configs: Config (Env, Cmd, Entrypoint, WorkingDir, User, Labels, ExposedPorts, Volumes,
# Healthcheck, OnBuild, StopSignal, Shell), history (created_by, empty_layer) and the number of
# layers. Timestamps and ids are ignored; COPY's source checksum in created_by is masked (the
# two engines hash differently). Exits 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/isolation.sh
if [ -z "${BERTH_BIN:-}" ]; then
  cargo build -q -p berth
fi
BERTH=${BERTH_BIN:-$PWD/target/debug/berth}
command -v dockerd >/dev/null || { echo "needs dockerd (apt-get install docker.io)"; exit 1; }
examples=$PWD/crates/builder/testdata/dockerfiles

work=$(mktemp -d /tmp/berth-compare.XXXXXX)
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
  if grep -q " $work" /proc/mounts; then
    echo "mounts left under $work; not removing it" >&2
  else
    rm -rf "$work"
  fi
  berth_isolation_cleanup cmp
}
trap cleanup EXIT

echo '{}' > "$work/daemon.json"
"$BERTH" daemon $(berth_isolation_args cmp) -H "unix://$work/berth.sock" --data-root "$work/berth-data" \
  --exec-root "$work/berth-exec" --pidfile "$work/berth.pid" \
  --config-file "$work/daemon.json" >"$work/berth.log" 2>&1 &
dockerd --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
  -H "unix://$work/docker.sock" --pidfile "$work/docker.pid" --bridge=none \
  --iptables=false --ip-masq=false --storage-driver overlay2 \
  --config-file "$work/daemon.json" >"$work/docker.log" 2>&1 &
for sock in berth docker; do
  for _ in $(seq 100); do [ -S "$work/$sock.sock" ] && break; sleep 0.1; done
done

mkdir -p "$work/rootfs"/{bin,proc,sys,dev,tmp,etc}
chmod 1777 "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh echo true cat mkdir; do ln -s busybox "$work/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  > "$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

export DOCKER_CONFIG="$work/docker-config" DOCKER_BUILDKIT=0
status=0
for engine in berth docker; do
  DOCKER_HOST="unix://$work/$engine.sock" docker import "$work/busybox.tar" busybox:latest >/dev/null
done
for dir in "$examples"/*/; do
  name=$(basename "$dir")
  this=0
  for engine in berth docker; do
    export DOCKER_HOST="unix://$work/$engine.sock"
    docker build -q -t "example-$name" "$dir" >/dev/null 2>"$work/err" \
      || { echo "$engine failed to build $name:"; cat "$work/err"; status=1; continue 2; }
    docker image inspect "example-$name" > "$work/$engine-$name.json"
  done
  python3 - "$work/berth-$name.json" "$work/docker-$name.json" "$name" <<'PY' || this=1
import json, re, sys
FIELDS = ["User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "Volumes", "WorkingDir",
          "Entrypoint", "OnBuild", "Labels", "StopSignal", "Shell"]
def view(path):
    img = json.load(open(path))[0]
    cfg = img.get("Config") or {}
    out = {f: cfg.get(f) or None for f in FIELDS}
    out["Os/Arch"] = (img.get("Os"), img.get("Architecture"))
    out["Layers"] = len(img["RootFS"].get("Layers") or [])
    return out
berth, docker, name = view(sys.argv[1]), view(sys.argv[2]), sys.argv[3]
diff = [(k, berth[k], docker[k]) for k in berth if berth[k] != docker[k]]
for k, b, d in diff:
    print(f"{name}: {k} differs\n  berth:  {b}\n  docker: {d}")
sys.exit(1 if diff else 0)
PY
  for engine in berth docker; do
    DOCKER_HOST="unix://$work/$engine.sock" docker history --no-trunc \
      --format '{{.CreatedBy}}|{{.Size}}' "example-$name" \
      | sed -E 's/(file|dir|multi):[0-9a-f]{64}/<src>/; s/\|0B$/|empty/; s/\|[0-9.]+[kMG]?B$/|layer/' \
      > "$work/$engine-$name.history"
  done
  if ! diff -u "$work/docker-$name.history" "$work/berth-$name.history" > "$work/$name.hdiff"; then
    echo "$name: history differs (- docker, + berth):"; cat "$work/$name.hdiff"; this=1
  fi
  if [ "$this" = 0 ]; then echo "$name: same config and history"; else status=1; fi
done
exit "$status"
