#!/usr/bin/env python3
"""Fails if two files of src/ import from each other, directly or around a longer circle.

An import is any `crate::`, `super::` or `self::` path in a `use` item or in code; a file
depends on the file that defines the module the path names (a folder's module is its mod.rs,
and a path into a child module counts as the child's file). `mod x;` declarations are not
imports."""
import os
import re
import sys

ROOT = "src"


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return tuple(rel)


files = {}
for folder, _, names in os.walk(ROOT):
    for name in names:
        if name.endswith(".rs"):
            path = os.path.join(folder, name)
            files[module_of(path)] = path


# Items the crate root re-exports (`pub use a::b::Item;`), so that `crate::Item` counts as an
# import from the module that defines it, not from lib.rs; filled below.
reexports = {}


def resolve(current, path):
    """The longest known module that `path` (a list of segments) names, from `current`."""
    if path[0] == "crate" and len(path) > 1 and path[1] in reexports:
        return reexports[path[1]]
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] in ("super", "self"):
        base = current
        while path and path[0] in ("super", "self"):
            if path[0] == "super":
                base = base[:-1]
            path = path[1:]
        rest = path
    else:
        return None
    best = None
    for n in range(len(rest) + 1):
        candidate = base + tuple(rest[:n])
        if candidate in files:
            best = candidate
    return best


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = tree.replace(" ", "").replace("\n", "")
    m = re.match(r"^(.*?)::\{(.*)\}$", tree)
    if not m:
        return [tree]
    prefix, inner = m.groups()
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return [p for part in parts if part for p in expand_use(prefix + "::" + part)]


lib = strip_comments(open(os.path.join(ROOT, "lib.rs")).read())
for tree in re.findall(r"\bpub use\s+([^;]+);", lib):
    for used in expand_use(tree):
        segments = used.split("::")
        found = resolve((), ["crate"] + segments[:-1])
        if found is not None:
            reexports[segments[-1]] = found

edges = {}
for module, path in files.items():
    text = strip_comments(open(path).read())
    # Test modules may reach back into their parent: they are part of it.
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    targets = set()
    for tree in re.findall(r"\buse\s+((?:crate|super|self)::[^;]+);", text):
        for used in expand_use(tree):
            found = resolve(module, used.split("::"))
            if found is not None and found != module:
                targets.add(found)
    for inline in re.findall(r"\b((?:crate|super)(?:::\w+)+)", text):
        found = resolve(module, inline.split("::"))
        if found is not None and found != module:
            targets.add(found)
    edges[module] = targets

circles = []
state = {}


def visit(node, stack):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(edges.get(node, ())):
        if state.get(nxt) == "open":
            circles.append(stack[stack.index(nxt):] + [nxt])
        elif nxt not in state:
            visit(nxt, stack)
    stack.pop()
    state[node] = "done"


for node in sorted(edges):
    if node not in state:
        visit(node, [])

name = lambda m: files[m]
print(f"{len(files)} files, {sum(len(t) for t in edges.values())} imports between them")
if circles:
    for circle in circles:
        print("circle: " + " -> ".join(name(m) for m in circle))
    sys.exit(1)
print("no file imports from a file that imports it back")
