#!/usr/bin/env bash
# The failover benchmark (run by hand, as root; never in CI): installs keepalived and wrk from
# Debian's packages if they are missing, builds in release mode, and runs
# tests/src/bin/lab-failover-bench.rs, which builds two-director network-namespace labs and
# measures pulse's failover (SIGKILL and SIGTERM of the active) against keepalived's (VRRPv3),
# then pulse under full load (role changes, heartbeat gaps). Results go in docs/BENCHMARKS.md
# by hand, with date and machine.
# Usage: bench/failover-bench.sh [--runs 10] [--only kill,term,keepalived,load]
#                                [--adverts 0.1,1] [--load-s 60] [--idle-s 30]
# The issue's no-false-failover target is 10 minutes of load: --only load --load-s 600.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for t in keepalived wrk ip; do command -v "$t" >/dev/null || need+=("$t"); done
if ((${#need[@]})); then
  pkgs=()
  for t in "${need[@]}"; do
    case "$t" in ip) pkgs+=(iproute2) ;; *) pkgs+=("$t") ;; esac
  done
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi
# The Debian keepalived package may enable a system-wide service; the lab runs its own
# instances in the lab's namespaces, with their configuration and pid files in the lab's
# directory.
cargo build --release -p tests -p pulse -p lvsd -p nanny
exec ./target/release/lab-failover-bench "$@"
