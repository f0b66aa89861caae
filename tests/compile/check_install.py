#!/usr/bin/env python3
"""Check `meson install` (meson suite `compile`).

Installs the build directory given with --build into a temporary DESTDIR
(--no-rebuild: only headers and pkg-config files are installed), then:
  - reseau.h (and reseau_tls.h when BearSSL is there) are in include/;
  - `pkg-config --cflags --libs reseau` (and reseau_tls) works against the
    installed .pc files;
  - a program using reseau (and reseau_tls) compiles and links with exactly
    those flags, and runs.

Exit status: 0 pass, 1 fail, 77 skip (pkg-config missing).
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

PROGRAM = r"""
#define RESEAU_IMPLEMENTATION
#include <reseau.h>
#ifdef WITH_TLS
#define RESEAU_TLS_IMPLEMENTATION
#include <reseau_tls.h>
#endif
int main(void) {
    int err = RS_OK;
    rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
    if (!loop) return 1;
    rs_event_loop_destroy(loop);
#ifdef WITH_TLS
    return rs_tls_cipher_suite_name(0) ? 0 : 1;
#else
    return 0;
#endif
}
"""


def run(cmd, env=None):
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    if not shutil.which("pkg-config"):
        print("SKIP: pkg-config is not installed")
        return 77
    with tempfile.TemporaryDirectory(prefix="reseau-install-") as dest:
        r = run(["meson", "install", "-C", args.build, "--no-rebuild", "--destdir", dest])
        print(r.stdout)
        if r.returncode != 0:
            print("FAIL: meson install")
            return 1
        headers = glob.glob(os.path.join(dest, "**", "reseau.h"), recursive=True)
        pcs = glob.glob(os.path.join(dest, "**", "reseau.pc"), recursive=True)
        if len(headers) != 1 or len(pcs) != 1:
            print("FAIL: installed reseau.h %s, reseau.pc %s" % (headers, pcs))
            return 1
        pcdir = os.path.dirname(pcs[0])
        tls = os.path.exists(os.path.join(pcdir, "reseau_tls.pc"))
        if tls != os.path.exists(os.path.join(os.path.dirname(headers[0]), "reseau_tls.h")):
            print("FAIL: reseau_tls.h and reseau_tls.pc must be installed together")
            return 1
        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = pcdir
        # The .pc files name the prefix; DESTDIR moves it: tell pkg-config.
        env["PKG_CONFIG_SYSROOT_DIR"] = dest
        for pkg in ["reseau"] + (["reseau_tls"] if tls else []):
            r = run(["pkg-config", "--cflags", "--libs", pkg], env=env)
            print(r.stdout)
            if r.returncode != 0:
                print("FAIL: pkg-config " + pkg)
                return 1
            flags = r.stdout.split()
            src = os.path.join(dest, "use.c")
            exe = os.path.join(dest, "use")
            with open(src, "w") as f:
                f.write(PROGRAM)
            cmd = ["cc", "-std=c11", src, "-o", exe] + flags
            if pkg == "reseau_tls":
                cmd.insert(2, "-DWITH_TLS")
            r = run(cmd)
            print(r.stdout)
            if r.returncode != 0:
                print("FAIL: compile and link with the flags of " + pkg)
                return 1
            r = run([exe])
            if r.returncode != 0:
                print("FAIL: the program built with %s exited %d" % (pkg, r.returncode))
                return 1
        print("PASS (%s)" % ("reseau and reseau_tls" if tls else "reseau; no BearSSL, so no reseau_tls"))
        return 0


if __name__ == "__main__":
    sys.exit(main())
