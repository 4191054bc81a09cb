#!/usr/bin/env python3
"""No crate that Cargo.lock pins may be a yanked release: the part of
`cargo deny check advisories` this CI can do. A yank is how a crate's
authors withdraw a broken or vulnerable release; the RustSec database
itself is a git repository on GitHub, which this CI cannot reach
(docs/choices.md).

Reads Cargo.lock, asks crates.io's sparse index (the registry cargo uses
anyway) for each crates.io package, prints each pinned version that is
yanked and exits 1 if there is one. A package the index cannot be asked
about (no network) is named, and the check fails only for yanks it saw:
the build itself needs the registry, so it is there when CI runs."""
import concurrent.futures
import json
import sys
import tomllib
import urllib.request

REGISTRY = "registry+https://github.com/rust-lang/crates.io-index"
INDEX = "https://index.crates.io"


def index_path(name: str) -> str:
    """The sparse index's file of a crate (cargo's layout: 1/, 2/, 3/a/,
    then the first four letters in two levels)."""
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"


def yanked(name: str, version: str) -> bool | None:
    """Whether crates.io marks `name` `version` yanked; None when it cannot
    be asked."""
    for _ in range(3):
        try:
            with urllib.request.urlopen(f"{INDEX}/{index_path(name)}", timeout=20) as r:
                for line in r.read().decode().splitlines():
                    if f'"{version}"' not in line:
                        continue
                    entry = json.loads(line)
                    if entry["vers"] == version:
                        return bool(entry.get("yanked"))
                return None
        except (OSError, ValueError):
            continue
    return None


def main() -> int:
    with open("Cargo.lock", "rb") as f:
        lock = tomllib.load(f)
    pinned = sorted({(p["name"], p["version"]) for p in lock["package"] if p.get("source") == REGISTRY})
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda p: yanked(*p), pinned))
    bad = [p for p, y in zip(pinned, answers) if y]
    unknown = [p for p, y in zip(pinned, answers) if y is None]
    for name, version in unknown:
        print(f"check-yanked: could not ask crates.io about {name} {version}", file=sys.stderr)
    for name, version in bad:
        print(f"yanked: {name} {version}")
    print(f"check-yanked: {len(pinned)} crates, {len(bad)} yanked, {len(unknown)} not checked")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
