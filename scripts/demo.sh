#!/usr/bin/env bash
# berth's demo, no internet needed: builds berth, makes a busybox image root filesystem from
# Debian's busybox-static, and runs containers with berth's own OCI runtime — one in the
# foreground, one detached under its shim, which outlives the command that started it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/isolation.sh
./scripts/deps.sh
cargo build --release -q -p berth
BERTH=$PWD/target/release/berth
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root=$work/state
cleanup() {
  "$BERTH" runtime --root "$root" delete --force demo-detached >/dev/null 2>&1 || true
  [ -f "$work/shim/shim.pid" ] && kill "$(cat "$work/shim/shim.pid")" 2>/dev/null || true
  if [ -n "${daemon_pid:-}" ]; then
    docker rm -f demo-web demo-site demo-client >/dev/null 2>&1 || true
    docker network rm demo-net >/dev/null 2>&1 || true
    kill "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
    { grep -o " $work[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$exec_root"
    # The demo daemon's own bridge, nftables table and cgroup parent (a real daemon keeps
    # them, as Docker keeps docker0).
    berth_isolation_cleanup demo
  fi
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "A busybox bundle from Debian's busybox-static"
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/bundle/rootfs/bin/$a"; done
(cd "$work/bundle" && "$BERTH" runtime spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c",
  "echo hostname: $(hostname); echo pid: $$; echo processes: $(ls /proc | grep -c '^[0-9]'); "
  "grep CapEff /proc/self/status; echo mounts: $(wc -l < /proc/mounts); ls /sys/firmware | wc -l | sed 's/^/masked entries: /'"]
c["linux"]["resources"] = {"memory": {"limit": 67108864}, "pids": {"limit": 64}}
json.dump(c, open(p, "w"), indent=1)
PY
echo "bundle: $work/bundle (config.json from 'berth runtime spec')"

say "berth runtime run: a container in the foreground"
(cd "$work/bundle" && time "$BERTH" runtime --root "$root" run demo-fg)

say "berth shim: a detached container that outlives the command that started it"
mkdir -p "$work/bundle2" "$work/shim"
cp -a "$work/bundle/rootfs" "$work/bundle2/rootfs"
python3 - "$work/bundle/config.json" "$work/bundle2/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.2; done; echo bye >&2; exit 7"]
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
"$BERTH" shim --id demo-detached --bundle "$work/bundle2" --state-dir "$work/shim" \
  --runtime-root "$root" --log-path "$work/shim/container.log"
echo "shim pid $(cat "$work/shim/shim.pid") is running; the command that started it has returned"
python3 - "$work/shim/shim.sock" <<'PY'
import json, socket, sys
def call(req):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.sendall((json.dumps(req) + "\n").encode())
    line = s.makefile().readline(); s.close()
    return json.loads(line)
print("start ->", call({"op": "start"}))
print("wait  ->", call({"op": "wait"})["exit"])
print("delete ->", call({"op": "delete"}))
print("shutdown ->", call({"op": "shutdown"}))
PY
echo "container log (Docker's json-file format):"
cat "$work/shim/container.log"

if ! command -v docker >/dev/null; then
  echo "(no docker CLI on this machine: skipping the berth daemon part)"
  exit 0
fi

say "berth daemon: the Docker Engine API, driven by the real docker CLI"
exec_root=$work/exec
"$BERTH" daemon $(berth_isolation_args demo) -H "unix://$work/berth.sock" --data-root "$work/data" --exec-root "$exec_root" \
  --config-file /dev/null \
  >"$work/daemon.log" 2>&1 &
daemon_pid=$!
export DOCKER_HOST=unix://$work/berth.sock
for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
docker version --format 'client {{.Client.Version}} -> server {{.Server.Version}} (API {{.Server.APIVersion}})'
tar -C "$work/bundle/rootfs" -cf "$work/busybox.tar" .
echo "\$ docker import busybox.tar busybox"; docker import "$work/busybox.tar" busybox
echo "\$ docker images"; docker images
echo "\$ docker run --rm busybox echo hello from berth"; docker run --rm busybox echo hello from berth
echo "\$ docker run --rm busybox sh -c 'exit 3'"; docker run --rm busybox sh -c 'exit 3' || echo "exit code $?"
echo "\$ docker run -d --name demo-web busybox sh -c 'while true; do date; sleep 1; done'"
docker run -d --name demo-web busybox sh -c 'while true; do date; sleep 1; done'
sleep 1.5
echo "\$ docker ps"; docker ps
echo "\$ docker exec demo-web cat /proc/self/status | grep CapEff"; docker exec demo-web cat /proc/self/status | grep CapEff
echo "\$ docker logs demo-web"; docker logs demo-web
echo "\$ docker stop -t 1 demo-web && docker rm demo-web"; docker stop -t 1 demo-web && docker rm demo-web

say "Networking: a user network with DNS, and a published port"
echo "\$ docker network create demo-net"; docker network create demo-net
echo "\$ docker run -d --name demo-site --network demo-net -p 127.0.0.1::80 busybox httpd -f -p 80 -h /etc"
docker run -d --name demo-site --network demo-net -p 127.0.0.1::80 busybox httpd -f -p 80 -h /etc
echo "\$ docker port demo-site"; docker port demo-site
port=$(docker port demo-site 80 | sed 's/.*://')
echo "\$ (from the host) GET http://127.0.0.1:$port/hostname"
python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(50):
    try:
        print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/hostname", timeout=2).read().decode().strip())
        break
    except OSError:
        time.sleep(0.1)
PY
echo "\$ docker run --rm --network demo-net busybox nslookup demo-site"
docker run --rm --network demo-net busybox nslookup demo-site
echo "\$ docker ps"; docker ps
