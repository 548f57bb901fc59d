#!/usr/bin/env python3
"""Lists import cycles between the top-level modules of a crate's src/ directory.

A module's dependencies are the `crate::NAME` paths its files name (tests excluded:
`#[cfg(test)]` modules and files named tests.rs / *_tests.rs). Prints each strongly
connected component with more than one module and exits 1 if there is any.

    scripts/module-cycles.py controller/src
"""
import os
import re
import sys


def module_of(root, path):
    rel = os.path.relpath(path, root)
    top = rel.split(os.sep)[0]
    return top[:-3] if top.endswith(".rs") else top


def strip_tests(text):
    # Drop `#[cfg(test)] mod x { ... }` bodies and `#[cfg(test)] mod x;` lines.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([a-z]+\))?\s+)?mod\s+\w+\s*(;|\{)", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        if m.group(3) == ";":
            i = m.end()
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def graph(root):
    deps = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs") or f == "tests.rs" or f.endswith("_tests.rs"):
                continue
            path = os.path.join(dirpath, f)
            mod = module_of(root, path)
            if mod in ("lib", "main", "bin"):
                continue
            text = strip_tests(open(path, encoding="utf-8").read())
            text = re.sub(r"//[^\n]*", "", text)  # doc links and comments are not imports
            names = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
            deps.setdefault(mod, set()).update(n for n in names if n != mod)
    return deps


def sccs(deps):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps.get(v, ()):
            if w not in deps:
                continue
            if w not in index:
                visit(w)
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
            out.append(sorted(comp))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "controller/src"
    deps = graph(root)
    for mod in sorted(deps):
        print(f"{mod}: {' '.join(sorted(deps[mod])) or '-'}")
    cycles = sccs(deps)
    for c in cycles:
        print("cycle:", " <-> ".join(c))
    print(f"{len(cycles)} import cycles among {len(deps)} modules")
    sys.exit(1 if cycles else 0)


if __name__ == "__main__":
    main()
