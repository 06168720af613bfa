#!/usr/bin/env bash
# Listing a large table (run by hand, as root; never in CI): builds lvsd and lvsadm in
# release mode, starts lvsd (no nannies) in a throwaway network namespace with a generated
# lvs.cf of SERVICES services of SERVERS real servers each (default 1000 x 10), and times
# `lvsadm -L -n`, `-L -n --stats`, `-L -n --rate`, `-S -n` and a Prometheus scrape of
# /metrics (curl, from inside the namespace) RUNS times each (median and worst, wall clock).
# Results go in docs/BENCHMARKS.md by hand.
# Usage: bench/big-table-bench.sh [SERVICES] [SERVERS] [RUNS]
# Addresses: 198.18.0.0/15 only, inside the namespace; the root namespace is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
services=${1:-1000}
servers=${2:-10}
runs=${3:-20}
cargo build -q --release -p lvsd --bins
ns="lvsadm-bench-$$"
dir=$(mktemp -d)
lvsd_pid=""
cleanup() {
  [[ -n "$lvsd_pid" ]] && kill "$lvsd_pid" 2>/dev/null && wait "$lvsd_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

ip netns add "$ns"
ip -n "$ns" link add eth0 type veth peer name peer0
ip -n "$ns" link set lo up
ip -n "$ns" link set peer0 up
ip -n "$ns" addr add 198.18.0.2/24 dev eth0
ip -n "$ns" addr add 198.19.0.1/16 dev eth0
ip -n "$ns" addr add 198.18.0.10/24 dev eth0 label eth0:1
ip -n "$ns" link set eth0 up

cf="$dir/lvs.cf"
{
  echo "service = lvs"
  echo "primary = 198.18.0.2"
  echo "network = direct"
  echo "status_address = 198.18.0.2:9180"
  for ((i = 0; i < services; i++)); do
    echo "virtual v$i {"
    echo "    active = 1"
    echo "    address = 198.18.0.10 eth0:1"
    echo "    port = $((10000 + i))"
    echo "    protocol = tcp"
    echo "    scheduler = wlc"
    for ((j = 0; j < servers; j++)); do
      echo "    server s${i}_$j {"
      echo "        address = 198.19.$((i % 200)).$((10 + j))"
      echo "        active = 1"
      echo "        weight = $((1 + j))"
      echo "    }"
    done
    echo "}"
  done
} >"$cf"

sock="$dir/lvsd.sock"
ip netns exec "$ns" ./target/release/lvsd -c "$cf" --nodaemon --no-nannies --socket "$sock" \
  >"$dir/lvsd.log" 2>&1 &
lvsd_pid=$!
for ((t = 0; t < 300; t++)); do
  [[ -S "$sock" ]] && LVSD_SOCKET="$sock" ./target/release/lvsadm -L -n >/dev/null 2>&1 && break
  sleep 0.1
done
export LVSD_SOCKET="$sock"
lines=$(./target/release/lvsadm -L -n | wc -l)
echo "table: $services services x $servers servers; lvsadm -L -n prints $lines lines"

time_ms() {
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
for args in "-L -n" "-L -n --stats" "-L -n --rate" "-S -n"; do
  samples=()
  for ((r = 0; r < runs; r++)); do
    # shellcheck disable=SC2086
    samples+=("$(time_ms ./target/release/lvsadm $args)")
  done
  sorted=$(printf '%s\n' "${samples[@]}" | sort -n)
  median=$(echo "$sorted" | sed -n "$(((runs + 1) / 2))p")
  worst=$(echo "$sorted" | tail -1)
  printf 'lvsadm %-14s median %4d ms   worst %4d ms   (%d runs)\n' "$args" "$median" "$worst" "$runs"
done
samples=()
for ((r = 0; r < runs; r++)); do
  s=$(ip netns exec "$ns" curl -s -o /dev/null -w '%{time_total}' \
    -H 'Accept: application/openmetrics-text;version=1.0.0' http://198.18.0.2:9180/metrics)
  samples+=("$(awk -v s="$s" 'BEGIN { printf "%d", s * 1000 }')")
done
size=$(ip netns exec "$ns" curl -s http://198.18.0.2:9180/metrics | wc -c)
sorted=$(printf '%s\n' "${samples[@]}" | sort -n)
printf 'GET /metrics (%d bytes)  median %4d ms   worst %4d ms   (%d runs)\n' "$size" \
  "$(echo "$sorted" | sed -n "$(((runs + 1) / 2))p")" "$(echo "$sorted" | tail -1)" "$runs"
