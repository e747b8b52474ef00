#!/usr/bin/env bash
# Benchmark (not a test): `run` of /bin/true in a busybox bundle with berth's runtime, runc and
# crun, in the same run, on the same bundle. Prints the median of N runs for each and berth's
# ratio to the others.
#
# crun 1.8 refuses cgroups on a cgroup-v1-hybrid host; there it runs with
# --cgroup-manager=disabled, which skips work the others do (noted in the output).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-30}
./scripts/deps.sh
cargo build --release -q -p berth
BERTH=$PWD/target/release/berth

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin" "$work/root-berth" "$work/root-runc" "$work/root-crun"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in sh true; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
(cd "$work/bundle" && "$BERTH" runtime spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["readonly"] = True
json.dump(c, open(p, "w"))
PY

crun_flags=()
if [ -d /sys/fs/cgroup/unified ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
  crun_flags=(--cgroup-manager=disabled)
  echo "note: cgroup v1 hybrid host: crun runs with --cgroup-manager=disabled (no cgroup work)"
fi

time_runs() { # name cmd...
  local name=$1; shift
  local i t0 t1
  : > "$work/$name.times"
  for ((i = 0; i < N; i++)); do
    t0=$(date +%s%N)
    "$@" "bench-$name-$i" >/dev/null 2>"$work/$name.err" || { echo "$name failed:"; cat "$work/$name.err"; exit 1; }
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 )) >> "$work/$name.times"
  done
  sort -n "$work/$name.times" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%d\n", m}'
}

cd "$work/bundle"
berth=$(time_runs berth "$BERTH" runtime --root "$work/root-berth" run)
runc=$(time_runs runc runc --root "$work/root-runc" run)
crun=$(time_runs crun crun --root "$work/root-crun" "${crun_flags[@]}" run)
printf '%-8s %10s\n' runtime "median µs (N=$N)"
printf '%-8s %10d\n' berth "$berth" runc "$runc" crun "$crun"
awk -v b="$berth" -v r="$runc" -v c="$crun" 'BEGIN { printf "berth/runc = %.2f   berth/crun = %.2f\n", b / r, b / c }'
