#!/usr/bin/env bash
# The forwarding benchmark (run by hand, as root; never in CI): installs the comparison tools
# from Debian's packages, builds in release mode, and runs tests/src/bin/lab-bench.rs, which
# builds a network-namespace lab and measures routed / nftables DNAT / HAProxy / lvsd NAT /
# lvsd DR through the VIP. Results go in docs/BENCHMARKS.md by hand, with date and machine.
# Usage: bench/lab-bench.sh [SECONDS_PER_MEASUREMENT]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for t in wrk iperf3 haproxy nft ip ethtool; do command -v "$t" >/dev/null || need+=("$t"); done
if ((${#need[@]})); then
  pkgs=()
  for t in "${need[@]}"; do
    case "$t" in nft) pkgs+=(nftables) ;; ip) pkgs+=(iproute2) ;; *) pkgs+=("$t") ;; esac
  done
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi
# The Debian haproxy package may start a system-wide instance; the lab runs its own.
cargo build --release --workspace --bins
exec ./target/release/lab-bench "${1:-10}"
