#!/usr/bin/env bash
# Build the benchmarks in release mode and run every one of them, each bounded
# in time, printing one line per scenario:
#   scenario  reseau=<n>/s  <peer>=<n>/s  ratio=<reseau/peer>
# (the peer is libuv, or for resolve_cached a hand-written floor).
# Extra arguments go to every benchmark (e.g. -v, -r 3, a scenario name).
# Needs meson, ninja and libuv (libuv1-dev).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build-bench"
benchmarks=(reseau-bench-loop reseau-bench-socket reseau-bench-channel reseau-bench-bootstrap)
# TLS against OpenSSL: needs BearSSL (libbearssl-dev) and libssl-dev.
if [[ -e /usr/include/bearssl.h ]] && pkg-config --exists openssl; then
    benchmarks+=(reseau-bench-tls)
fi
time_limit=120 # seconds per benchmark program

if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" "$root" -Dbuildtype=release -Dbench=true >/dev/null
fi
# Regenerate first: meson compile rejects targets added since the last configure.
ninja -C "$build" build.ninja >/dev/null
meson compile -C "$build" "${benchmarks[@]}" >/dev/null

for bench in "${benchmarks[@]}"; do
    exe="$build/tools/bench/$bench"
    if [[ ! -x "$exe" ]]; then
        echo "run.sh: $bench was not built (is libuv1-dev installed?)" >&2
        exit 1
    fi
    timeout "$time_limit" "$exe" "$@"
done
