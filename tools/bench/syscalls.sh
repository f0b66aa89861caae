#!/usr/bin/env bash
# System calls per round trip of ping_pongs and ping_pongs_100, for reseau on
# epoll, reseau on io_uring and libuv: each side runs alone (-only) under
# `strace -f -c`, which counts every call of the process (client and server
# both), and the count is divided by the round trips the run reported.
# strace slows each call down, so the round trips per second are meaningless
# here; the calls per round trip are not.
#
#   syscalls.sh [BUILD_DIR]   (default: build-bench, as run.sh makes it)
#
# Prints one comment line per scenario (run.sh --report keeps it as a note):
#   # syscalls_<scenario>  epoll=<n>  io_uring=<n>  libuv=<n>  (per round trip)
# and "# syscalls.sh skipped: ..." without strace. Each run is bounded by the
# benchmark's own limits and by `timeout`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build-bench}"
exe="$build/tools/bench/reseau-bench-channel"
if ! command -v strace >/dev/null; then
    echo "# syscalls.sh skipped: strace is not installed (apt-get install strace)"
    exit 0
fi
if [[ ! -x "$exe" ]]; then
    echo "syscalls.sh: $exe was not built" >&2
    exit 1
fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# per_round_trip SIDE SCENARIO: the calls per round trip of one run.
per_round_trip() {
    local out trips calls
    out=$(timeout 60 strace -f -c -o "$tmp" "$exe" -r 1 -v -only "$1" "$2")
    trips=$(sed -n 's/.* \([0-9][0-9]*\) round trips.*/\1/p' <<<"$out" | head -n 1)
    calls=$(awk '$NF == "total" { print $4 }' "$tmp")
    if [[ -z $trips || -z $calls || $trips -eq 0 ]]; then
        echo "syscalls.sh: no count for $1 $2" >&2
        exit 1
    fi
    awk -v c="$calls" -v t="$trips" 'BEGIN { printf "%.2f", c / t }'
}

for scenario in ping_pongs ping_pongs_100; do
    epoll=$(per_round_trip reseau "$scenario")
    uring=$(per_round_trip reseau "${scenario}_io_uring")
    uv=$(per_round_trip libuv "$scenario")
    printf '# %-24s  epoll=%6s  io_uring=%6s  libuv=%6s  (system calls per round trip, both ends)\n' \
        "syscalls_$scenario" "$epoll" "$uring" "$uv"
done
