#!/usr/bin/env python3
"""Compile the COMMITTED top-level reseau.h on its own (meson suite `compile`).

One run checks one combination:
  --compiler gcc|clang|TRIPLE-gcc
                           (C++ uses g++ / clang++ / TRIPLE-g++). A mingw
                           TRIPLE (x86_64-w64-mingw32-gcc) builds for
                           Windows: no -pthread, -lws2_32; reseau_tls.h is
                           checked only with --bearssl-prefix.
  --std c99|c11|c++17
  --mode decl|impl|static|firmware
    decl    decl.c: the header only, no implementation macro; compiled only.
    impl    impl.c: RESEAU_IMPLEMENTATION; compiled, linked (-pthread), run.
    static  static.c: RESEAU_STATIC + RESEAU_IMPLEMENTATION; compiled,
            linked, run.
    firmware  firmware.c: an echo over a transport handler on a custom
            loop backend, for
            RESEAU_NO_THREADS and RESEAU_NO_SOCKETS (pass both with
            --define); compiled, linked, run where it can be, and its text
            size printed (TRIPLE-size, or size) in a line "text size: N".
  --root DIR               project root holding reseau.h (default: ../..)
  --opt 0|1|2|3|s          optimisation level, passed as -O<level> (default:
                           none). Some gcc warnings (format-truncation) need
                           -O1 or more.
  --target TRIPLE          clang only: cross-compile with --target=TRIPLE.
  --exe-wrapper CMD        run the programs through CMD (split like a shell
                           command), such as a qemu-user command line. A
                           cross build (a TRIPLE-gcc or --target) without one
                           is compiled and linked but not run.
  --define NAME[=VALUE]    pass -DNAME[=VALUE] (repeatable), such as
                           RESEAU_ATOMICS_INTERLOCKED with mingw.
  --specs FILE             bare metal (a TRIPLE-gcc whose triple has
                           "none", such as arm-none-eabi-gcc): the C
                           library, as gcc's specs file: nosys.specs (newlib,
                           with stub system calls) or picolibc.specs (linked
                           with --oslib=semihost: picolibc has no stubs of
                           its own). Skipped (77) when the compiler does not
                           find the file. Bare metal links no -pthread, and
                           with -ffunction-sections -fdata-sections
                           -Wl,--gc-sections, as firmware is linked.
  --cpu CPU                ARM: -mcpu=CPU -mthumb (such as cortex-m4).
  --bearssl-prefix DIR     mingw only: a BearSSL built for Windows
                           (DIR/include, DIR/lib/libbearssl.a; see
                           tools/cross/bearssl-mingw.sh). reseau_tls.h is
                           then checked like reseau.h, linked with -lbearssl
                           -lbcrypt -lcrypt32 and run; without it, not checked.

Flags: -Wall -Wextra -Werror -pedantic.  C++ compiles the same .c sources
with -x c++.  If the top-level reseau_tls.h exists and is not the
placeholder, it is checked too, included after reseau.h (-DCHECK_TLS), and
the impl/static programs link -lbearssl. In a cross build reseau_tls.h is
compiled only (there is no BearSSL library for the target), then the
program is built, linked and run without it. For bare metal (with
RESEAU_NO_THREADS and RESEAU_NO_SOCKETS) that is how reseau_tls.h is
checked too, with the host's BearSSL headers copied on their own.

Exit status: 0 pass, 1 fail, 77 skip (compiler or C library not installed).
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TLS_PLACEHOLDER = "not implemented yet"
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-pedantic"]
CXX = {"gcc": "g++", "clang": "clang++"}
SKIP = 77


def run(cmd, **kw):
    """Echo and run cmd; its stderr joins stdout so the log reads in order."""
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, stderr=subprocess.STDOUT, **kw).returncode


def tls_wanted(root):
    path = os.path.join(root, "reseau_tls.h")
    if not os.path.isfile(path):
        print("reseau_tls.h: not present, not checked")
        return False
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        if TLS_PLACEHOLDER in f.read():
            print("reseau_tls.h: placeholder ('%s'), not checked"
                  % TLS_PLACEHOLDER)
            return False
    return True


def cxx_for(compiler):
    """The C++ driver of a C compiler name, or None if there is none."""
    for c, cxx in CXX.items():
        if compiler == c or compiler.endswith("-" + c):
            return compiler[:-len(c)] + cxx
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compiler", required=True)
    ap.add_argument("--std", choices=["c99", "c11", "c++17"], required=True)
    ap.add_argument("--mode", choices=["decl", "impl", "static", "firmware"],
                    required=True)
    ap.add_argument("--root",
                    default=os.path.dirname(os.path.dirname(HERE)))
    ap.add_argument("--opt", choices=["0", "1", "2", "3", "s"])
    ap.add_argument("--target")
    ap.add_argument("--exe-wrapper", type=shlex.split, default=[])
    ap.add_argument("--bearssl-prefix")
    ap.add_argument("--define", action="append", default=[])
    ap.add_argument("--specs")
    ap.add_argument("--cpu")
    args = ap.parse_args()

    if cxx_for(args.compiler) is None:
        ap.error("--compiler must be gcc, clang or TRIPLE-gcc")
    if args.target and args.compiler != "clang":
        ap.error("--target is for clang; use TRIPLE-gcc for gcc")
    cplusplus = args.std.startswith("c++")
    compiler = cxx_for(args.compiler) if cplusplus else args.compiler
    cross = bool(args.target) or args.compiler not in CXX
    if shutil.which(compiler) is None:
        print("SKIP: %s is not installed" % compiler)
        return SKIP

    bare_metal = "-none-" in args.compiler
    if args.specs:
        if not bare_metal:
            ap.error("--specs is for a bare-metal TRIPLE-gcc")
        # gcc prints the name unchanged when it finds no such file.
        found = subprocess.run([compiler, "-print-file-name=" + args.specs],
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        if not os.path.isabs(found):
            print("SKIP: %s finds no %s (C library not installed)"
                  % (compiler, args.specs))
            return SKIP

    root = os.path.abspath(args.root)
    if not os.path.isfile(os.path.join(root, "reseau.h")):
        print("FAIL: %s/reseau.h does not exist "
              "(run python3 tools/amalgamate.py)" % root)
        return 1

    # Windows threads come from the C runtime and kernel32; -pthread would
    # link winpthreads, which reseau does not use. Winsock is ws2_32.
    windows = "mingw" in args.compiler
    thread_flags = [] if windows or bare_metal else ["-pthread"]
    src = os.path.join(HERE, args.mode + ".c")
    flags = ["-std=" + args.std] + WARNINGS + ["-I" + root] + thread_flags
    flags += ["-D" + d for d in args.define]
    if args.opt:
        flags.append("-O" + args.opt)
    if cplusplus:
        flags = ["-x", "c++"] + flags
    libs = ["-lws2_32"] if windows else thread_flags[:]
    if bare_metal:
        target = ["-mcpu=" + args.cpu, "-mthumb"] if args.cpu else []
        if args.specs:
            target.append("--specs=" + args.specs)
        flags = target + ["-Os", "-ffunction-sections", "-fdata-sections"] + flags
        if cplusplus:
            # As firmware C++ is built: without exceptions, the unwinder
            # would need the .ARM.exidx bounds that picolibc's linker script
            # does not give.
            flags.append("-fno-exceptions")
        libs = target + ["-Wl,--gc-sections"] + libs
        if args.specs == "picolibc.specs":
            libs.append("--oslib=semihost")
    if args.target:
        flags = ["--target=" + args.target] + flags
        libs = ["--target=" + args.target] + libs
    tls = tls_wanted(root)
    # Bare metal: the host's BearSSL headers (plain C) are copied on their
    # own into the temporary directory, since the target compiler must not
    # see the rest of the host's /usr/include.
    bearssl_host = "/usr/include"
    if tls and bare_metal and not os.path.isfile(os.path.join(bearssl_host, "bearssl.h")):
        print("reseau_tls.h: no host bearssl.h (libbearssl-dev), not checked")
        tls = False
    # mingw: BearSSL built for Windows, from --bearssl-prefix; the host's
    # bearssl.h is not on a mingw compiler's path. With it the check is a
    # native one: compiled, linked (bcrypt: BCryptGenRandom; crypt32: the
    # ROOT certificate store) and run.
    tls_native = not cross
    if tls and windows:
        prefix = args.bearssl_prefix
        if not prefix:
            print("reseau_tls.h: no BearSSL for mingw (--bearssl-prefix), "
                  "not checked")
            tls = False
        elif not os.path.isfile(os.path.join(prefix, "include", "bearssl.h")):
            print("FAIL: --bearssl-prefix %s: no include/bearssl.h" % prefix)
            return 1
        else:
            flags += ["-isystem", os.path.join(prefix, "include")]
            libs = ["-L" + os.path.join(prefix, "lib"), "-lbearssl",
                    "-lbcrypt", "-lcrypt32"] + libs
            tls_native = True
    if tls and tls_native:
        flags.append("-DCHECK_TLS")
        if not windows:
            libs = ["-lbearssl"] + libs

    with tempfile.TemporaryDirectory(prefix="reseau-compile-") as tmp:
        obj = os.path.join(tmp, "check.o")
        if tls and bare_metal:
            inc = os.path.join(tmp, "bearssl-include")
            os.mkdir(inc)
            for name in os.listdir(bearssl_host):
                path = os.path.join(bearssl_host, name)
                if name.startswith("bearssl") and name.endswith(".h"):
                    shutil.copy(path, inc)
                elif name == "bearssl" and os.path.isdir(path):  # Debian's layout
                    shutil.copytree(path, os.path.join(inc, name))
            flags = flags + ["-isystem", inc]
        if tls and not tls_native:
            # No BearSSL library for the target here: reseau_tls.h is compiled
            # (with the host's BearSSL headers, which are plain C), and the
            # program is linked and run without it.
            if run([compiler] + flags + ["-DCHECK_TLS", "-c", src, "-o", obj]) != 0:
                print("FAIL: compile with reseau_tls.h")
                return 1
        if run([compiler] + flags + ["-c", src, "-o", obj]) != 0:
            print("FAIL: compile")
            return 1
        if args.mode == "decl":
            print("PASS")
            return 0
        exe = os.path.join(tmp, "check.exe" if windows else "check")
        if run([compiler, obj, "-o", exe] + libs) != 0:
            print("FAIL: link")
            return 1
        if args.mode == "firmware":
            size = args.compiler[:-len("gcc")] + "size" if cross else "size"
            out = subprocess.run([size, exe], stdout=subprocess.PIPE,
                                 text=True)
            if out.returncode != 0:
                print("FAIL: %s" % size)
                return 1
            print(out.stdout, end="")
            print("text size: %s" % out.stdout.splitlines()[1].split()[0])
        if cross and not args.exe_wrapper:
            print("PASS (cross build: linked, not run without --exe-wrapper)")
            return 0
        try:
            rc = run(args.exe_wrapper + [exe], timeout=60)
        except subprocess.TimeoutExpired:
            print("FAIL: program timed out")
            return 1
        if rc != 0:
            print("FAIL: program exited with %d" % rc)
            return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
