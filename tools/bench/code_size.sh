#!/usr/bin/env bash
# Code size of a minimal echo server (loop + listener + socket handler + echo
# handler: tools/bench/code_size/echo_reseau.c) against the same program on
# libuv (code_size/echo_libuv.c, libuv's echo), both at -Os with unused
# sections dropped (-ffunction-sections -fdata-sections -Wl,--gc-sections):
#   reseau: reseau.h generated from src/ (the current code) with
#           RESEAU_IMPLEMENTATION and RESEAU_STATIC, NDEBUG;
#   libuv:  linked statically against Debian's libuv_a.a (libuv1-dev).
# Both link the C library dynamically, so the figure is the program's own
# code: `size`'s text (code and read-only data) of each executable. Each is
# started and checked to echo a line over 127.0.0.1 before it counts.
# Prints one line in the benchmarks' format; lower is better. Goal (issue 15):
# reseau < 64 KB.
#
# Usage: tools/bench/code_size.sh [-v]   (-v: also the size lines and the flags)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tools/bench/code_size"
verbose=0
[[ ${1:-} != -v ]] || verbose=1
cc=${CC:-cc}
# shellcheck disable=SC2054 # -Wl,--gc-sections is one argument
flags=(-Os -DNDEBUG -ffunction-sections -fdata-sections -Wl,--gc-sections -pthread)
libuv_a=$(pkg-config --variable=libdir libuv 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/libuv_a.a
if [[ ! -f $libuv_a ]]; then
    echo "code_size.sh: no static libuv ($libuv_a); install libuv1-dev" >&2
    exit 1
fi

tmp=$(mktemp -d)
server=""
cleanup() {
    [[ -z $server ]] || kill "$server" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

python3 "$root/tools/amalgamate.py" --root "$root" --out "$tmp" >/dev/null
"$cc" "${flags[@]}" -I"$tmp" "$here/echo_reseau.c" -o "$tmp/echo_reseau"
"$cc" "${flags[@]}" "$here/echo_libuv.c" "$libuv_a" -ldl -o "$tmp/echo_libuv"

# check_echo EXE: the server answers a line with the same line.
check_echo() {
    local exe=$1 port="" line="" i
    "$exe" 0 >"$tmp/out" 2>&1 &
    server=$!
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/out")
        [[ -z $port ]] || break
        sleep 0.05
    done
    if [[ -z $port ]]; then
        echo "code_size.sh: $(basename "$exe") did not start: $(cat "$tmp/out")" >&2
        exit 1
    fi
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    echo "echo me" >&3
    read -r -t 5 line <&3 || true
    exec 3>&-
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
    if [[ $line != "echo me" ]]; then
        echo "code_size.sh: $(basename "$exe") did not echo (got '$line')" >&2
        exit 1
    fi
}
check_echo "$tmp/echo_reseau"
check_echo "$tmp/echo_libuv"

text() { size -A "$1" >/dev/null && size "$1" | awk 'NR == 2 { print $1 }'; }
r=$(text "$tmp/echo_reseau")
u=$(text "$tmp/echo_libuv")
if ((verbose)); then
    echo "  $cc ${flags[*]}  ($("$cc" --version | head -n 1))"
    size "$tmp/echo_reseau" "$tmp/echo_libuv" | sed 's/^/  /'
fi
echo "# code_size.sh: size's text of a minimal echo server at -Os, bytes/1024; libuv $(pkg-config --modversion libuv 2>/dev/null || echo '?') static; lower is better"
awk -v r="$r" -v u="$u" 'BEGIN { printf "%-16s  reseau=%11.1fKB  libuv=%11.1fKB  ratio=%.2f\n", "code_size", r / 1024, u / 1024, r / u }'
