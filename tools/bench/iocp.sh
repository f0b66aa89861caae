#!/usr/bin/env bash
# Build reseau-bench-iocp in the mingw-w64 cross build and run it under Wine:
# reseau's IOCP backend against a hand-written Winsock + IOCP loop
# (bench_iocp.c), one line per scenario:
#   scenario  reseau=<n>  iocp=<n>  ratio=<reseau/iocp>
# Wine's overhead applies to both sides; the ratio is the figure to read.
# Arguments go to the program (e.g. -v, -r 3, a scenario name).
#
#   --requests [SCENARIO...]  (first argument) instead counts wineserver
#             requests per round trip or per MB, each side run once with
#             WINEDEBUG=+server: a figure the machine's load does not move,
#             since under Wine most Winsock calls are a wineserver round trip.
#
# Needs meson, ninja, gcc-mingw-w64-x86-64 and wine64 (Debian's, at
# /usr/lib/wine/wine64). The build goes to build-win-bench (release, no
# tests); the Wine prefix lives under it, made on the first run (about 15 s).
set -euo pipefail

requests=0
if [[ ${1:-} == --requests ]]; then
    requests=1
    shift
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build-win-bench"
wine=/usr/lib/wine/wine64
time_limit=300 # seconds for the whole program: 4 scenarios x 2 sides x rounds x 2 s, plus starts

if [[ ! -x $wine ]]; then
    echo "iocp.sh: $wine not found (apt-get install wine64)" >&2
    exit 1
fi
if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" "$root" --cross-file "$root/tools/cross/mingw-w64.ini" \
        -Dbuildtype=release -Dbench=true >/dev/null
fi
# Two jobs at most: the machines these run on are shared.
ninja -C "$build" -j2 build.ninja >/dev/null
ninja -C "$build" -j2 tools/bench/reseau-bench-iocp.exe >/dev/null

export WINEDEBUG=-all WINEPREFIX="$build/wineprefix"
if [[ ! -f "$WINEPREFIX/system.reg" ]]; then
    timeout 120 "$wine" wineboot --init >/dev/null 2>&1
fi
echo "# $("$wine" --version), $(x86_64-w64-mingw32-gcc --version | head -n 1)"
exe="$build/tools/bench/reseau-bench-iocp.exe"
if ((!requests)); then
    timeout "$time_limit" "$wine" "$exe" "$@"
    exit 0
fi

# count_requests SCENARIO SIDE: one traced run; the requests between its
# first and last send_socket (the timed part, less the setup) per unit of
# work, and the most frequent ones.
count_requests() {
    local out trace work unit
    out=$(mktemp)
    trace=$(mktemp)
    WINEDEBUG=+server timeout 120 "$wine" "$exe" -r 1 -v -only "$2" "$1" >"$out" 2>"$trace"
    if grep -q ' round trips in ' "$out"; then
        work=$(grep -oE '[0-9]+ round trips in' "$out" | cut -d' ' -f1)
        unit="round trip"
    else
        work=$(grep -oE '[0-9.]+ MB in' "$out" | cut -d' ' -f1)
        unit=MB
    fi
    # Request lines are "ID: name( ... )"; replies are "ID: name() = ...".
    awk '/^[0-9a-f]+: send_socket\(/ { if (!first) first = NR; last = NR } { line[NR] = $0 }
         END { for (i = first; i <= last; i++) print line[i] }' "$trace" |
        grep -vE '\) = ' | grep -oE '^[0-9a-f]+: [a-z_]+\(' | sed -E 's/^[0-9a-f]+: //; s/\($//' |
        sort | uniq -c | sort -rn |
        awk -v work="$work" -v unit="$unit" -v name="$1/$2" '
            { total += $1; if (n < 6) top[n++] = sprintf("%s %.1f", $2, $1 / work) }
            END { printf "%-28s %6.1f wineserver requests per %s:", name, total / work, unit
                  for (i = 0; i < n; i++) printf " %s%s", top[i], i + 1 < n ? "," : "\n" }'
    rm -f "$out" "$trace"
}

scenarios=("$@")
if ((${#scenarios[@]} == 0)); then
    scenarios=(ping_pongs pump_1 ping_pongs_probe pump_1_probe)
fi
for scenario in "${scenarios[@]}"; do
    peer=iocp
    [[ $scenario == *_probe ]] && peer=iocp_probe
    count_requests "$scenario" reseau
    count_requests "$scenario" "$peer"
done
