#!/usr/bin/env python3
"""Layout guard for crates/*/src (non-test code): files over MAX_FILE lines, functions over MAX_FN
lines, and import cycles between files (a file reaching, through `use`/paths, a file that reaches it
back). Exits 1 with the offenders listed; run by .ci/run.

Module paths are resolved to files the way rustc does (`a.rs` or `a/mod.rs`, `#[path]` is not used
in this project); a reference to `crate::x::y::Z` is an edge to the deepest file on that path.
A file's edges to its own `mod` children are counted (a mod.rs driver using its stages is fine);
a child reaching back to its parent is what makes the cycle.
"""
import re
import sys
from pathlib import Path

MAX_FILE = 600
MAX_FN = 120
ROOT = Path(__file__).resolve().parent.parent

FN_RE = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
PATH_RE = re.compile(r"\b(crate|super|self)((?:::\w+)+)(::\{)?")


def non_test_lines(text):
    """The file's lines up to its `#[cfg(test)] mod tests` block (kept last by convention)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "#[cfg(test)]" and i + 1 < len(lines) and re.match(r"\s*mod \w+", lines[i + 1]):
            return lines[:i]
    return lines


def long_functions(lines):
    out = []
    for i, line in enumerate(lines):
        m = FN_RE.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i + 1, len(lines)):
            if lines[j] == indent + "}":
                if j - i + 1 > MAX_FN:
                    out.append((i + 1, m.group(7), j - i + 1))
                break
    return out


def module_files(src):
    """Maps module path tuples (relative to the crate root) to files."""
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        mods[tuple(parts)] = f
    return mods


def module_of(f, src):
    parts = list(f.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def brace_items(text, start):
    """First path segments of each item in a `{...}` use group starting at text[start] == '{'."""
    depth, item, items = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                items.append(item)
                break
        if depth == 1 and ch == ",":
            items.append(item)
            item = ""
        elif depth >= 1:
            item += ch
    return [[p for p in it.strip().split("::") if p] for it in items if it.strip()]


def edges(f, src, mods):
    me = module_of(f, src)
    text = "\n".join(non_test_lines(f.read_text()))
    text = re.sub(r"//[^\n]*", "", text)
    children = set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M))
    targets = set()

    def resolve(base, segs):
        path = list(base) + segs
        for k in range(len(path), -1, -1):
            if tuple(path[:k]) in mods:
                return mods[tuple(path[:k])]
        return None

    is_mod_file = f.name in ("lib.rs", "main.rs", "mod.rs")
    here = me if is_mod_file else me  # `self` is this module either way
    parent = me[:-1]
    for m in PATH_RE.finditer(text):
        kind, rest, group = m.group(1), m.group(2), m.group(3)
        segs = [s for s in rest.split("::") if s]
        base = () if kind == "crate" else (parent if kind == "super" else here)
        if group:
            for item in brace_items(text, m.end() - 1):
                t = resolve(base, segs + item)
                if t:
                    targets.add(t)
        else:
            t = resolve(base, segs)
            if t:
                targets.add(t)
    for c in children:  # bare `child::item` paths in a module file
        if re.search(r"(?<![:\w])" + c + r"::", text):
            t = mods.get(me + (c,))
            if t:
                targets.add(t)
    targets.discard(f)
    return targets


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return out


def main():
    problems = []
    for src in sorted(ROOT.glob("crates/*/src")):
        mods = module_files(src)
        graph = {}
        for f in sorted(src.rglob("*.rs")):
            rel = f.relative_to(ROOT)
            lines = non_test_lines(f.read_text())
            if len(lines) > MAX_FILE:
                problems.append(f"{rel}: {len(lines)} lines (limit {MAX_FILE})")
            for line, name, n in long_functions(lines):
                problems.append(f"{rel}:{line}: fn {name} is {n} lines (limit {MAX_FN})")
            graph[f] = edges(f, src, mods)
        for comp in cycles(graph):
            names = ", ".join(sorted(str(c.relative_to(ROOT)) for c in comp))
            problems.append(f"import cycle between files: {names}")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layout problem(s)", file=sys.stderr)
        return 1
    print("layout ok: files, functions and imports within limits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
