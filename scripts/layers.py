#!/usr/bin/env python3
"""Check the import graph of ``s2lib``: no module imports from a layer above its own (issue 10: the layers follow
the data flow), and no import cycles between modules (within a layer too).

Usage (from the repository root): ``python3 scripts/layers.py [s2lib]``; prints every offending import and every
cycle, and exits 1 if there is one. Imports are read with :mod:`ast` (module level, inside functions and under ``TYPE_CHECKING``
alike). A module may import from its own layer and from any layer below; the package root ``s2lib`` (its lazy
seed-API ``__init__`` and ``__version__``) may be imported from anywhere. Every module must belong to a layer.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

#: Layers from the bottom up; a module belongs to the first entry that is it or a package holding it.
LAYERS: list[tuple[str, ...]] = [
    ("s2lib.errors",),                          # the exception types every layer raises
    ("s2lib.physics",),                         # constants and formulas: no I/O, no fits
    ("s2lib.io",),                              # WFM files, atomic artifact writers and stores, manifests
    ("s2lib.config",),                          # run YAML schema and loader, run/set discovery
    ("s2lib.signal",),                          # waveform kernels, X-ray selection, timing, one-pass engine
    ("s2lib.stats",),                           # fits, line shapes, estimators, toys (never draw)
    ("s2lib.calib", "s2lib.alpha", "s2lib.sim"),  # g_S2 and recombination numbers; alpha channel; simulator
    ("s2lib.analysis",),                        # seed stages that orchestrate and draw; figures; notebook helpers
    ("s2lib.validate",),                        # closure against simulator truth, coverage, validation chapter
    ("s2lib.report",),                          # papermill runner, stage cache, book assembly, fault injection
    ("s2lib.cli",),                             # the s2book command
]


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = f.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def layer_of(module: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return None


def imported(module: str, path: Path, known: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, module) of every s2lib module ``path`` imports."""
    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((node.lineno, full if full in known else base))
    return [(ln, m) for ln, m in out if m in known and m != module]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in graph:
        if v not in index:
            strong(v)
    return out


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "s2lib")
    known = modules(root)
    problems = []
    # packages import their modules to re-export them; only module <-> module cycles count
    graph = {m: (set() if p.name == "__init__.py" else {d for _, d in imported(m, p, known)}) for m, p in known.items()}
    problems += [f"import cycle: {', '.join(c)}" for c in cycles(graph)]
    for mod, path in known.items():
        if mod == "s2lib":
            continue
        own = layer_of(mod)
        if own is None:
            problems.append(f"{path}: module {mod} is in no layer (add it to LAYERS in scripts/layers.py)")
            continue
        if path.name == "__init__.py":
            continue   # a package may re-export its own modules
        for line, dep in imported(mod, path, known):
            if dep == "s2lib":
                continue
            theirs = layer_of(dep)
            if theirs is not None and theirs > own:
                problems.append(f"{path}:{line}: {mod} (layer {own}: {LAYERS[own][0]}) imports {dep} "
                                f"(layer {theirs}: {LAYERS[theirs][0]}), a higher layer")
    for p in problems:
        print(p)
    print(f"{len(problems)} problems (layer violations, import cycles) among {len(known)} modules of {root}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
