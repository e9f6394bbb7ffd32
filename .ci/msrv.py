#!/usr/bin/env python3
"""Checks the declared rust-version against every locked dependency the library builds with
(normal dependencies, every feature): none may need a newer Rust than Cargo.toml promises."""
import json
import re
import subprocess
import sys


def version(text):
    return tuple(int(part) for part in text.split("."))


manifest = open("Cargo.toml").read()
declared = re.search(r'^rust-version\s*=\s*"([^"]+)"', manifest, re.M).group(1)
tree = subprocess.run(
    ["cargo", "tree", "-e", "normal", "--all-features", "--prefix", "none", "--format", "{p}",
     "-p", "connect-any"],
    check=True, capture_output=True, text=True).stdout
used = {line.split()[0] + " " + line.split()[1].lstrip("v") for line in tree.splitlines() if line.strip()}
metadata = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
    check=True, capture_output=True, text=True).stdout)
too_new = []
for package in metadata["packages"]:
    key = package["name"] + " " + package["version"]
    needs = package.get("rust_version")
    if key in used and needs and version(needs) > version(declared):
        too_new.append(f"{key} needs Rust {needs}")
print(f"rust-version {declared}: {len(used)} normal dependencies checked")
if too_new:
    print("newer than the declared rust-version:\n  " + "\n  ".join(sorted(too_new)))
    sys.exit(1)
