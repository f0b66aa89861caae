#!/bin/sh
# Build BearSSL as a static library for Windows (x86-64) with Debian's
# mingw-w64, for the cross build of reseau_tls.h:
#
#   tools/cross/bearssl-mingw.sh [PREFIX]      # default /opt/bearssl-mingw
#   meson setup build-win --cross-file tools/cross/mingw-w64.ini \
#         -Dcmocka_prefix=/opt/cmocka-mingw -Dbearssl_prefix=/opt/bearssl-mingw
#
# Debian packages no BearSSL for mingw, so this builds Debian's own source
# package (bearssl 0.6+dfsg.1, from deb.debian.org through apt-get source)
# with x86_64-w64-mingw32-gcc: every src/**/*.c into PREFIX/lib/libbearssl.a,
# inc/*.h into PREFIX/include. It does nothing if PREFIX/lib/libbearssl.a is
# there. The deb-src list and apt's index for it live in a temporary
# directory, removed at the end: nothing is added to /etc/apt or
# /var/lib/apt. Needs apt-get, debian-archive-keyring, xz-utils and
# gcc-mingw-w64-x86-64; takes about a minute.
set -eu

PREFIX=${1:-/opt/bearssl-mingw}
SUITE=${BEARSSL_SUITE:-bookworm}
CC=${MINGW_CC:-x86_64-w64-mingw32-gcc}
AR=${MINGW_AR:-x86_64-w64-mingw32-ar}

if [ -f "$PREFIX/lib/libbearssl.a" ] && [ -f "$PREFIX/include/bearssl.h" ]; then
    echo "bearssl-mingw: $PREFIX/lib/libbearssl.a is there; nothing to do"
    exit 0
fi
command -v "$CC" >/dev/null || { echo "bearssl-mingw: no $CC" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bearssl-mingw.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# apt with a private source list, index and cache: the system's apt state is
# only read (its keyring), never written.
mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial" "$tmp/src"
printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$SUITE" >"$tmp/apt/src.sources"
set -- -o Dir::Etc::sourcelist="$tmp/apt/src.sources" -o Dir::Etc::sourceparts=- \
       -o Dir::State::Lists="$tmp/apt/lists" -o Dir::Cache="$tmp/apt/cache" \
       -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1
timeout 300 apt-get -q "$@" update >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log" >&2; echo "bearssl-mingw: apt-get update failed" >&2; exit 1; }
(cd "$tmp/src" && timeout 300 apt-get -q "$@" source --download-only bearssl) >>"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log" >&2; echo "bearssl-mingw: apt-get source bearssl failed" >&2; exit 1; }

orig=$(ls "$tmp"/src/bearssl_*.orig.tar.* 2>/dev/null | head -n 1)
[ -n "$orig" ] || { echo "bearssl-mingw: no bearssl_*.orig.tar.* downloaded" >&2; exit 1; }
(cd "$tmp/src" && tar xf "$orig")
srcdir=$(ls -d "$tmp"/src/bearssl-*/ | head -n 1)
[ -f "$srcdir/inc/bearssl.h" ] || { echo "bearssl-mingw: no inc/bearssl.h in $orig" >&2; exit 1; }

mkdir -p "$tmp/obj"
n=0
for c in $(cd "$srcdir" && find src -name '*.c' | sort); do
    o=$tmp/obj/$(echo "$c" | tr / _ | sed 's/\.c$/.o/')
    timeout 120 "$CC" -O2 -I"$srcdir/inc" -I"$srcdir/src" -c "$srcdir/$c" -o "$o"
    n=$((n + 1))
done
timeout 120 "$AR" rcs "$tmp/libbearssl.a" "$tmp"/obj/*.o

mkdir -p "$PREFIX/include" "$PREFIX/lib"
cp "$srcdir"/inc/*.h "$PREFIX/include/"
cp "$tmp/libbearssl.a" "$PREFIX/lib/libbearssl.a.new"
mv "$PREFIX/lib/libbearssl.a.new" "$PREFIX/lib/libbearssl.a"
echo "bearssl-mingw: $n files from $(basename "$orig") into $PREFIX/lib/libbearssl.a"
