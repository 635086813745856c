#!/usr/bin/env python3
"""Writes the package's debian/copyright (DEP-5) to standard output.

    copyright.py METADATA.json [REGISTRY-ROOT]

METADATA.json: `cargo metadata --format-version 1 --filter-platform
x86_64-unknown-linux-musl` of the repository (scripts/build-deb.sh runs it),
so the Rust crates listed are exactly those the static binary is built from:
the normal dependencies reachable from modseal, for that target, without
dev- and build-dependencies, and without procedural macros and what only
they depend on (they run in the compiler; none of their code is in the
binary). Each crate is listed under every licence its licence expression
names, with the copyright lines of its own licence files (the notices MIT
and the BSD licences require to be reproduced). The C libraries linked in
statically are listed by hand below (C_LIBRARIES).

A licence with no text in packaging/debian/licenses/ fails the run, naming
the crates: a Cargo.lock update that brings in a new licence cannot ship an
incomplete copyright file.
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LICENSES = os.path.join(HERE, "licenses")

# The order of the licence paragraphs.
ORDER = [
    "Apache-2.0",
    "Apache-2.0-with-LLVM-exception",
    "MIT",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "0BSD",
    "Unlicense",
    "Zlib",
]

# (what, licence, copyright): linked into /usr/bin/modseal by
# scripts/build-tss.sh and the -sys crates.
C_LIBRARIES = [
    ("musl, the C library", "MIT", ["Copyright 2005-2020 Rich Felker, et al."]),
    (
        "tpm2-tss, the TPM2 software stack",
        "BSD-2-Clause",
        [
            "Copyright 2015-2024 the tpm2-tss contributors (Intel Corporation,",
            "Fraunhofer SIT sponsored by Infineon Technologies AG, and others)",
        ],
    ),
    (
        "Mbed TLS's libmbedcrypto (tpm2-tss's cryptography; Apache-2.0 OR"
        " GPL-2.0-or-later, used under Apache-2.0)",
        "Apache-2.0",
        ["Copyright The Mbed TLS Contributors"],
    ),
    (
        "XZ Utils' liblzma (the .xz decoder, built by liblzma-sys)",
        "0BSD",
        ["Copyright The XZ Utils authors and contributors"],
    ),
    (
        "Zstandard's libzstd (the .zst decoder, built by zstd-sys)",
        "BSD-3-Clause",
        ["Copyright (c) Meta Platforms, Inc. and affiliates."],
    ),
]

LICENSE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|COPYRIGHT|UNLICENSE)", re.I)
COPYRIGHT_LINE = re.compile(r"^\s*(copyright\s*(\(c\)|©|\d)|\(c\)\s*\d)", re.I)
TEMPLATE = re.compile(r"\[yyyy\]|\{yyyy\}|<year>|copyright owner|copyright holder", re.I)


def reachable(meta):
    """The packages of the binary: normal deps from the root, no proc-macros."""
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            normal = any(k["kind"] is None for k in dep["dep_kinds"])
            macro = any(
                "proc-macro" in t["kind"] for t in packages[dep["pkg"]]["targets"]
            )
            if normal and not macro:
                todo.append(dep["pkg"])
    seen.discard(root)
    return sorted(
        (packages[p] for p in seen), key=lambda p: (p["name"], p["version"])
    )


def licences(expr):
    """The licences an SPDX expression (or the old `A/B` form) names."""
    expr = re.sub(r"\s+WITH\s+LLVM-exception", "-with-LLVM-exception", expr)
    return [
        t
        for t in re.split(r"[\s()/]+", expr)
        if t and t.upper() not in ("OR", "AND")
    ]


def notices(pkg):
    """The copyright lines of a crate's licence files, else its authors."""
    d = os.path.dirname(pkg["manifest_path"])
    lines = []
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if not (LICENSE_FILE.match(name) and os.path.isfile(path)):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = " ".join(line.split())
                if (
                    COPYRIGHT_LINE.match(line)
                    and not TEMPLATE.search(line)
                    and len(line) < 160
                    and line not in lines
                ):
                    lines.append(line)
    if lines:
        return lines
    authors = ", ".join(re.sub(r"\s*<[^>]*>", "", a) for a in pkg["authors"])
    who = f"the {pkg['name']} authors" + (f" ({authors})" if authors else "")
    return [f"Copyright {who}"]


def field(lines):
    """Continuation lines of a DEP-5 field: empty lines become ` .`."""
    return "\n".join(f" {l}" if l.strip() else " ." for l in lines)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        meta = json.load(f)
    crates = reachable(meta)
    under = {name: [] for name in ORDER}
    for what, lic, copyright in C_LIBRARIES:
        under[lic].append([what] + [f"  {c}" for c in copyright])
    missing = {}
    for pkg in crates:
        expr = pkg.get("license") or ""
        names = licences(expr)
        if not names:
            missing.setdefault("(no licence field)", []).append(pkg["name"])
        entry = [f"{pkg['name']} {pkg['version']} ({expr})"]
        entry += [f"  {c}" for c in notices(pkg)]
        for name in names:
            if name not in under:
                missing.setdefault(name, []).append(pkg["name"])
                continue
            under[name].append(entry)
    if missing:
        for lic, names in sorted(missing.items()):
            print(
                f"copyright.py: licence {lic} of {', '.join(names)} has no text in"
                f" {LICENSES}: add it (and its place in ORDER)",
                file=sys.stderr,
            )
        sys.exit(1)

    out = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
        "Upstream-Name: modseal",
        "Comment: /usr/bin/modseal is statically linked. Besides modseal's own code it",
        field(
            [
                f"contains {len(crates)} Rust crates and five C libraries, named below",
                "under each licence they are (or may be) used under, each with its",
                "copyright notices: the crates are modseal's dependencies for",
                "x86_64-unknown-linux-musl as Cargo.lock pins them (procedural macros,",
                "which run only in the compiler, left out). Generated by",
                "scripts/build-deb.sh (packaging/debian/copyright.py).",
            ]
        ),
        "",
        "Files: *",
        "Copyright: 2026 the modseal authors",
        "License: Apache-2.0",
    ]
    for name in ORDER:
        entries = under[name]
        if not entries:
            continue
        with open(os.path.join(LICENSES, name), encoding="utf-8") as f:
            text = f.read().rstrip("\n").split("\n")
        out += ["", f"License: {name}", field(text)]
        out += ["Comment: Under this licence in /usr/bin/modseal:"]
        out.append(field([line for e in entries for line in e]))
    print("\n".join(out))


if __name__ == "__main__":
    main()
