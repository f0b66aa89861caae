#!/usr/bin/env bash
# Build the benchmarks in release mode and run every one of them, each bounded
# in time, printing one line per scenario:
#   scenario  reseau=<n>/s  <peer>=<n>/s  ratio=<reseau/peer>
# (the peer is libuv, or for resolve_cached a hand-written floor, or OpenSSL
# for the TLS ones). After the programs: wrk.sh (HTTP keep-alive under wrk,
# when wrk is installed), code_size.sh (a minimal echo server's text) and
# syscalls.sh (system calls per round trip: epoll, io_uring, libuv).
# Extra arguments go to every benchmark program (e.g. -v, -r 3, a scenario
# name); the two scripts get only -v and -r N.
#
#   --report  (first argument) also writes tools/bench/RESULTS.md (the table,
#             with goals, the machine and the versions) and tools/bench/results.svg
#             (the plot; needs python3-matplotlib), from this run.
#
# Needs meson, ninja and libuv (libuv1-dev).
#
# Windows (IOCP, under Wine) is separate: tools/bench/iocp.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build-bench"
report=0
if [[ ${1:-} == --report ]]; then
    report=1
    shift
fi
benchmarks=(reseau-bench-loop reseau-bench-socket reseau-bench-channel reseau-bench-bootstrap reseau-bench-memory)
# TLS against OpenSSL: needs BearSSL (libbearssl-dev) and libssl-dev.
if [[ -e /usr/include/bearssl.h ]] && pkg-config --exists openssl; then
    benchmarks+=(reseau-bench-tls)
fi
time_limit=120 # seconds per benchmark program or code_size.sh
wrk_time_limit=600 # wrk.sh: 4 scenarios x 2 sides x rounds x 5 s, plus starts
script_args=()
for ((i = 1; i <= $#; i++)); do
    case ${!i} in
    -v) script_args+=(-v) ;;
    -r) j=$((i + 1)); script_args+=(-r "${!j}") ;;
    esac
done

if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" "$root" -Dbuildtype=release -Dbench=true >/dev/null
fi
# Regenerate first: meson compile rejects targets added since the last configure.
ninja -C "$build" build.ninja >/dev/null
meson compile -C "$build" "${benchmarks[@]}" reseau-http-hello http-hello-uv >/dev/null

run_all() {
    local bench exe
    for bench in "${benchmarks[@]}"; do
        exe="$build/tools/bench/$bench"
        if [[ ! -x "$exe" ]]; then
            echo "run.sh: $bench was not built (is libuv1-dev installed?)" >&2
            exit 1
        fi
        timeout "$time_limit" "$exe" "$@"
    done
    if command -v wrk >/dev/null; then
        timeout "$wrk_time_limit" "$root/tools/bench/wrk.sh" "${script_args[@]}"
    else
        echo "# wrk.sh skipped: wrk is not installed (apt-get install wrk)"
    fi
    timeout "$time_limit" "$root/tools/bench/code_size.sh" "${script_args[@]}"
    timeout "$time_limit" "$root/tools/bench/syscalls.sh" "$build"
}

if ((!report)); then
    run_all "$@"
    exit 0
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
    echo "# machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(uname -sr)"
    echo "# versions: $(cc --version | head -n 1); libuv $(pkg-config --modversion libuv);" \
        "BearSSL $(dpkg-query -W -f='${Version}' libbearssl-dev 2>/dev/null || echo '?');" \
        "OpenSSL $(pkg-config --modversion openssl 2>/dev/null || echo '?'); $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
    echo "# commit: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src tools examples || echo ' (with changes not committed)')"
    echo "# started: $(date -u '+%Y-%m-%d %H:%M UTC'); uptime:$(uptime)"
    run_all "$@"
    echo "# ended: $(date -u '+%Y-%m-%d %H:%M UTC'); uptime:$(uptime)"
} | tee "$out"
# matplotlib: Debian's python3-matplotlib is for /usr/bin/python3, which may
# not be the python3 first on the PATH.
python=python3
if ! python3 -c 'import matplotlib' 2>/dev/null && [[ -x /usr/bin/python3 ]]; then
    python=/usr/bin/python3
fi
"$python" "$root/tools/bench/report.py" "$out" --md "$root/tools/bench/RESULTS.md" \
    --plot "$root/tools/bench/results.svg" --command "tools/bench/run.sh --report${*:+ $*}"
echo "run.sh: wrote tools/bench/RESULTS.md and tools/bench/results.svg"
