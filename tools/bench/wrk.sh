#!/usr/bin/env bash
# HTTP keep-alive under wrk: examples/http_hello (reseau, built as
# reseau-http-hello like the benchmarks) against tools/bench/http_hello_uv.c
# (libuv), same wrk settings, alternating reseau/libuv, ROUNDS runs each, for
# 1 and 2 server threads x 100 and 1,000 connections. Prints one line per
# scenario, in the format of the other benchmarks (medians of the runs):
#   wrk_t<threads>_c<connections>  reseau=<n>/s  libuv=<n>/s  ratio=<r>  p99 reseau=<ms>ms libuv=<ms>ms  cpu/req reseau=<us>us libuv=<us>us
# Goal (issue 15): ratio >= 1.1 at an equal or lower p99. cpu/req is the
# server process's CPU time (user + system, /proc/PID/stat) per request
# answered: on a shared machine it moves less than the rates do.
#
# Usage: tools/bench/wrk.sh [-d SECONDS] [-r ROUNDS] [-v]
#   -d  length of each wrk run (default 5)
#   -r  runs per side and scenario (default 3)
#   -v  print every run
# Needs wrk (apt-get install wrk), meson, ninja and libuv1-dev. Loopback
# only; each run is bounded by `timeout`. The machine has few cores, so wrk
# (WRK_THREADS threads) and the server share them: the figures compare the
# servers under the same load, they are not either server's ceiling.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build-bench"
duration=5
rounds=3
verbose=0
while getopts "d:r:v" opt; do
    case $opt in
    d) duration=$OPTARG ;;
    r) rounds=$OPTARG ;;
    v) verbose=1 ;;
    *) echo "usage: $0 [-d SECONDS] [-r ROUNDS] [-v]" >&2; exit 2 ;;
    esac
done
if ! [[ $duration =~ ^[0-9]+$ && $duration -ge 1 && $duration -le 60 && $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 20 ]]; then
    echo "wrk.sh: -d must be 1..60 seconds and -r 1..20" >&2
    exit 2
fi
WRK_THREADS=2
SERVER_THREADS=(1 2)
CONNECTIONS=(100 1000)

if ! command -v wrk >/dev/null; then
    echo "wrk.sh: wrk is not installed (apt-get install wrk)" >&2
    exit 1
fi
# 1,000 connections: wrk and each server need a descriptor per connection.
if ! ulimit -n 4096 2>/dev/null; then
    echo "wrk.sh: cannot raise the open-file limit to 4096 (it is $(ulimit -n)); the 1,000-connection runs may fail" >&2
fi

if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" "$root" -Dbuildtype=release -Dbench=true >/dev/null
fi
ninja -C "$build" build.ninja >/dev/null
meson compile -C "$build" reseau-http-hello http-hello-uv >/dev/null
reseau_exe="$build/tools/bench/reseau-http-hello"
uv_exe="$build/tools/bench/http-hello-uv"

tmp=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_server NAME EXE THREADS: starts it on a free port; sets $port and $pid.
start_server() {
    local name=$1 exe=$2 threads=$3 out="$tmp/$1.out" i
    "$exe" 0 "$threads" >"$out" 2>&1 &
    pid=$!
    pids+=("$pid")
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
        [[ -z $port ]] || return 0
        sleep 0.05
    done
    echo "wrk.sh: $name did not start:" >&2
    cat "$out" >&2
    exit 1
}

stop_server() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    timeout 10 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# to_ms VALUE: wrk's latency (e.g. 812.00us, 1.23ms, 2.01s) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# cpu_ticks PID: the process's user + system CPU time, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)

# run_wrk PORT CONNECTIONS SERVER_PID: prints "<requests/s> <p99 ms> <server
# CPU us per request>"; reports socket errors and non-2xx answers.
run_wrk() {
    local port=$1 conns=$2 server=$3 log="$tmp/wrk.log" rps p99 requests cpu0 cpu1
    cpu0=$(cpu_ticks "$server")
    timeout $((duration + 30)) wrk -t "$WRK_THREADS" -c "$conns" -d "${duration}s" --latency \
        "http://127.0.0.1:$port/" >"$log" 2>&1 || { echo "wrk.sh: wrk failed:" >&2; cat "$log" >&2; exit 1; }
    if grep -qE 'Socket errors|Non-2xx' "$log"; then
        echo "wrk.sh: wrk saw errors against port $port:" >&2
        grep -E 'Socket errors|Non-2xx' "$log" >&2
    fi
    cpu1=$(cpu_ticks "$server")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$log")
    p99=$(awk '$1 == "99%" { print $2 }' "$log")
    requests=$(awk '/ requests in / { print $1 }' "$log")
    if [[ -z $rps || -z $p99 || -z $requests ]]; then
        echo "wrk.sh: cannot read wrk's output:" >&2
        cat "$log" >&2
        exit 1
    fi
    echo "$rps $(to_ms "$p99") $(awk -v t=$((cpu1 - cpu0)) -v hz="$ticks_per_s" -v n="$requests" \
        'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# wrk.sh: median of $rounds runs of ${duration}s per side, alternating reseau/libuv; wrk -t$WRK_THREADS;" \
    "$(nproc) CPUs, libuv $(pkg-config --modversion libuv 2>/dev/null || echo '?'), $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
for threads in "${SERVER_THREADS[@]}"; do
    start_server reseau "$reseau_exe" "$threads"
    reseau_port=$port reseau_pid=$pid
    start_server libuv "$uv_exe" "$threads"
    uv_port=$port uv_pid=$pid
    for conns in "${CONNECTIONS[@]}"; do
        name="wrk_t${threads}_c${conns}"
        for side in reseau libuv; do : >"$tmp/$side.rps"; : >"$tmp/$side.p99"; : >"$tmp/$side.cpu"; done
        for ((r = 0; r < rounds; r++)); do
            for side in reseau libuv; do
                if [[ $side == reseau ]]; then p=$reseau_port s=$reseau_pid; else p=$uv_port s=$uv_pid; fi
                result=$(run_wrk "$p" "$conns" "$s")
                read -r rps p99 cpu <<<"$result"
                echo "$rps" >>"$tmp/$side.rps"
                echo "$p99" >>"$tmp/$side.p99"
                echo "$cpu" >>"$tmp/$side.cpu"
                ((verbose)) && printf '  %-22s %12.0f/s  p99 %.3fms  server CPU %.2fus per request\n' "$name/$side" "$rps" "$p99" "$cpu"
            done
        done
        r_rps=$(median <"$tmp/reseau.rps"); u_rps=$(median <"$tmp/libuv.rps")
        r_p99=$(median <"$tmp/reseau.p99"); u_p99=$(median <"$tmp/libuv.p99")
        r_cpu=$(median <"$tmp/reseau.cpu"); u_cpu=$(median <"$tmp/libuv.cpu")
        printf '%-16s  reseau=%11.0f/s  libuv=%11.0f/s  ratio=%.2f  p99 reseau=%.2fms libuv=%.2fms  cpu/req reseau=%.2fus libuv=%.2fus\n' \
            "$name" "$r_rps" "$u_rps" "$(awk -v a="$r_rps" -v b="$u_rps" 'BEGIN { print a / b }')" "$r_p99" "$u_p99" "$r_cpu" "$u_cpu"
    done
    stop_server "$reseau_pid"
    stop_server "$uv_pid"
    pids=()
done
