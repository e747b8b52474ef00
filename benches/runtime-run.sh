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
if [ -z "${BERTH_BIN:-}" ]; then
  cargo build --release -q -p berth
fi
BERTH=${BERTH_BIN:-$PWD/target/release/berth}

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

# crun 1.8 refuses any cgroup setup on a v1-hybrid host. It runs in pure v1 mode if it cannot
# see the cgroup2 mount, so its loop runs in a private mount namespace without it (set up once,
# outside the timed region).
crun_wrap=()
if [ -d /sys/fs/cgroup/unified ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
  crun_wrap=(unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec "$0" "$@"')
fi

cat > "$work/loop.sh" <<'LOOP'
#!/usr/bin/env bash
# loop.sh N OUT CMD... : runs CMD bench-<i> N times, one elapsed-µs line per run in OUT.
n=$1 out=$2; shift 2
: > "$out"
for ((i = 0; i < n; i++)); do
  t0=$(date +%s%N)
  "$@" "bench-$i" >/dev/null 2>"$out.err" || { echo "failed: $*"; cat "$out.err"; exit 1; }
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 )) >> "$out"
done
LOOP
chmod +x "$work/loop.sh"

median() { sort -n "$1" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%d\n", m}'; }

cd "$work/bundle"
"$work/loop.sh" "$N" "$work/berth" "$BERTH" runtime --root "$work/root-berth" run
"$work/loop.sh" "$N" "$work/runc" runc --root "$work/root-runc" run
"${crun_wrap[@]}" "$work/loop.sh" "$N" "$work/crun" crun --root "$work/root-crun" run
berth=$(median "$work/berth"); runc=$(median "$work/runc"); crun=$(median "$work/crun")
printf '%-8s %10s\n' runtime "median µs (N=$N)"
printf '%-8s %10d\n' berth "$berth" runc "$runc" crun "$crun"
awk -v b="$berth" -v r="$runc" -v c="$crun" 'BEGIN { printf "berth/runc = %.2f   berth/crun = %.2f\n", b / r, b / c }'
