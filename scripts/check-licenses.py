#!/usr/bin/env python3
"""Every crate berth builds with must carry a licence berth may ship
(Apache-2.0 and what is compatible with it). The equivalent of
`cargo deny check licenses`, which needs a download this CI has no network
for; advisories are not checked here (docs/choices.md says why).

Reads `cargo metadata` (offline: what Cargo.lock pins, for this host's
platform), prints each crate
whose licence expression is not satisfied by the allow-list, and exits 1
if there is one."""
import json
import re
import subprocess
import sys

ALLOWED = {
    "Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Zlib",
    "Unicode-3.0", "Unicode-DFS-2016", "CC0-1.0", "MPL-2.0", "0BSD",
    "Apache-2.0 WITH LLVM-exception", "BSL-1.0", "CDLA-Permissive-2.0",
}


def satisfied(expr: str) -> bool:
    """An SPDX expression of OR/AND (and `/`, an old spelling of OR) with
    parentheses: true if some choice uses only allowed licences."""
    tokens = re.findall(r"\(|\)|[^\s()]+(?:\s+WITH\s+[^\s()]+)?", expr.replace("/", " OR "))
    pos = 0

    def primary():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            v = disjunction()
            pos += 1  # ")"
            return v
        return tok in ALLOWED

    def conjunction():
        nonlocal pos
        v = primary()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            v = primary() and v
        return v

    def disjunction():
        nonlocal pos
        v = conjunction()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            v = conjunction() or v
        return v

    return bool(tokens) and disjunction()


def main() -> int:
    host = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    triple = next(line.split(": ", 1)[1] for line in host.splitlines() if line.startswith("host: "))
    # This platform's crates: what is built and shipped here.
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--offline", "--locked", "--filter-platform", triple],
        check=True, capture_output=True, text=True,
    ).stdout
    meta = json.loads(out)
    bad = []
    for p in meta["packages"]:
        lic = p.get("license")
        if p.get("source") is None:
            continue  # berth's own crates: the workspace's licence
        if not lic or not satisfied(lic):
            bad.append(f"{p['name']} {p['version']}: {lic or 'no licence field'}")
    for line in sorted(bad):
        print(f"licence not allowed: {line}", file=sys.stderr)
    count = sum(1 for p in meta["packages"] if p.get("source") is not None)
    print(f"licences: {count} crates checked, {len(bad)} not allowed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
