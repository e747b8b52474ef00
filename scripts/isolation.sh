# Sourced by the demo and the bench scripts: a berth daemon of their own shares nothing with a
# berth (or Docker) already on the host, and leaves nothing behind.
# berth_isolation_args NAME: the daemon flags for bridge, nftables table and cgroup parent.
berth_isolation_args() {
  echo "--bridge berth$1 --firewall-table berth_$1 --cgroup-parent /berth-$1"
}
# berth_isolation_cleanup NAME: removes them (after the daemon's containers are gone).
berth_isolation_cleanup() {
  ip link del "berth$1" 2>/dev/null || true
  nft delete table ip "berth_$1" 2>/dev/null || true
  # The ACCEPT rules berth puts in a Docker Engine's DOCKER-USER (or a DROP-policy FORWARD).
  for chain in DOCKER-USER FORWARD; do
    for dir in -i -o; do
      for _ in 1 2 3 4; do
        iptables -w -D "$chain" "$dir" "berth$1" -j ACCEPT 2>/dev/null || break
      done
    done
  done
  rmdir /sys/fs/cgroup/"berth-$1" /sys/fs/cgroup/*/"berth-$1" 2>/dev/null || true
}
