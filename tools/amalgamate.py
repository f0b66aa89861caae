#!/usr/bin/env python3
"""Build the single-file headers of reseau from the src/ tree.

Each generated header comes from one *root* file under src/ (see OUTPUTS
below).  Starting at the root, every local include

    #include "path"

is replaced, recursively, by the text of the file it names.  The order of
the amalgamation is therefore simply the order of the includes in the root
file (and, inside an included file, the order of its own includes): to move
a section, move its #include line.

Rules:
  * A local include is resolved relative to src/ first, then relative to the
    directory of the file that contains it.  One that resolves to neither is
    a hard error (exit status 2, naming the file and the line).
  * Each file is inlined at most once per output.  A later include of the
    same file is replaced by a one-line comment.  Beware: the first include
    wins even when it sits inside an #if branch that turns out to be false.
  * System includes (#include <...>) are kept verbatim.
  * Every inlined file is wrapped in markers that double as searchable
    section markers:
        /* >>alloc -- Begin file: src/base/alloc.h */
        ...
        /* <<alloc -- End file: src/base/alloc.h */
    NAME is the file stem for .h files ("alloc") and the stem plus the
    extension for any other file ("alloc.c"), so searching for ">>alloc"
    finds the declarations and then the implementation.
  * The output is deterministic: no timestamps, LF line endings, no trailing
    whitespace, exactly one trailing newline.  Its first line is a
    "GENERATED ... Do not edit" comment, placed before the root's content.

Usage:
  python3 tools/amalgamate.py             write the headers at the top level
  python3 tools/amalgamate.py --check     write nothing; print "stale: NAME"
                                          and exit 1 for each committed header
                                          that is missing or differs
  python3 tools/amalgamate.py --out DIR   write the headers into DIR instead
  --root DIR                              project root (default: the parent
                                          of this script's directory)

Exit status: 0 success, 1 stale (--check only), 2 error.
Only the Python standard library is used.
"""

import argparse
import os
import re
import sys

# Generated header -> root file under the project root.
# A root that does not exist is skipped, except src/reseau.h, which is
# required.
OUTPUTS = [
    # (output name, root file,            required)
    ("reseau.h",     "src/reseau.h",          True),
    ("reseau_tls.h", "src/tls/reseau_tls.h",  False),
]

SRC_DIR = "src"

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


class AmalgamateError(Exception):
    """A problem that must stop the build (exit status 2)."""


def _rel(root, path):
    """Path relative to the project root, with forward slashes."""
    return os.path.relpath(path, root).replace(os.sep, "/")


def _section_name(path):
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    return stem if ext == ".h" else base


def _read_lines(path):
    with open(path, "r", encoding="utf-8", newline="") as f:
        text = f.read()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


class Amalgamator:
    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.src = os.path.join(self.root, SRC_DIR)
        self.seen = set()
        self.out = []

    def _resolve(self, name, including_dir):
        for base in (self.src, including_dir):
            cand = os.path.normpath(os.path.join(base, name))
            if os.path.isfile(cand):
                return os.path.realpath(cand)
        return None

    def _emit_file(self, path, wrap):
        rel = _rel(self.root, path)
        lines = _read_lines(path)
        if lines and lines[-1] == "":
            lines.pop()  # the final newline of the file
        if wrap:
            self.out.append("/* >>%s -- Begin file: %s */"
                            % (_section_name(path), rel))
        here = os.path.dirname(path)
        for lineno, line in enumerate(lines, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                self.out.append(line)
                continue
            target = self._resolve(m.group(1), here)
            if target is None:
                dirs = sorted({SRC_DIR + "/", _rel(self.root, here) + "/"})
                raise AmalgamateError(
                    '%s:%d: cannot resolve #include "%s" (looked in %s)'
                    % (rel, lineno, m.group(1), " and ".join(dirs)))
            if target in self.seen:
                self.out.append("/* (already included: %s) */"
                                % _rel(self.root, target))
                continue
            self.seen.add(target)
            self._emit_file(target, wrap=True)
        if wrap:
            self.out.append("/* <<%s -- End file: %s */"
                            % (_section_name(path), rel))

    def build(self, out_name, root_file):
        root_path = os.path.realpath(os.path.join(self.root, root_file))
        self.seen = {root_path}
        self.out = ["/* %s -- GENERATED by tools/amalgamate.py from src/. "
                    "Do not edit; edit src/ and regenerate. */" % out_name]
        self._emit_file(root_path, wrap=False)
        lines = [l.rstrip() for l in self.out]
        while lines and lines[-1] == "":
            lines.pop()
        return "\n".join(lines) + "\n"


def generate(root):
    """Return a list of (output name, text) for every root that exists."""
    results = []
    for out_name, root_file, required in OUTPUTS:
        path = os.path.join(root, root_file)
        if not os.path.isfile(path):
            if required:
                raise AmalgamateError("root file %s not found under %s"
                                      % (root_file, root))
            continue
        results.append((out_name, Amalgamator(root).build(out_name, root_file)))
    return results


def _read_existing(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write_if_changed(path, text):
    data = text.encode("utf-8")
    if _read_existing(path) == data:
        return  # keep the mtime, so builds that depend on it stay up to date
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv=None):
    default_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(
        description="Generate reseau.h (and reseau_tls.h) from src/.")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a committed header is stale")
    ap.add_argument("--out", metavar="DIR",
                    help="write the generated headers into DIR")
    ap.add_argument("--root", metavar="DIR", default=default_root,
                    help="project root (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.check and args.out:
        ap.error("--check and --out cannot be combined")

    root = os.path.realpath(args.root)
    try:
        results = generate(root)
    except (AmalgamateError, OSError, UnicodeDecodeError) as e:
        print("amalgamate: error: %s" % e, file=sys.stderr)
        return 2

    if args.check:
        stale = 0
        for name, text in results:
            if _read_existing(os.path.join(root, name)) != text.encode("utf-8"):
                print("stale: %s" % name)
                stale += 1
        if stale:
            print("run: python3 tools/amalgamate.py", file=sys.stderr)
            return 1
        return 0

    out_dir = os.path.abspath(args.out) if args.out else root
    try:
        os.makedirs(out_dir, exist_ok=True)
        for name, text in results:
            _write_if_changed(os.path.join(out_dir, name), text)
    except OSError as e:
        print("amalgamate: error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
