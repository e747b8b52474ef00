#!/usr/bin/env bash
# berth's demo, no internet needed: builds berth, makes a busybox image root filesystem from
# Debian's busybox-static, and runs containers with berth's own OCI runtime — one in the
# foreground, one detached under its shim, which outlives the command that started it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo build --release -q -p berth
BERTH=$PWD/target/release/berth
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root=$work/state
cleanup() {
  "$BERTH" runtime --root "$root" delete --force demo-detached >/dev/null 2>&1 || true
  [ -f "$work/shim/shim.pid" ] && kill "$(cat "$work/shim/shim.pid")" 2>/dev/null || true
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
