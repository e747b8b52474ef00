#!/usr/bin/env bash
# Installs the system packages berth's build, tests and demo need (Debian). Idempotent.
set -euo pipefail
packages=(libseccomp-dev busybox-static runc crun iproute2 procps python3 nftables iptables openssl skopeo tini docker-registry)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "berth: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
