"""Count the tests that compare results with independent truth, at a git revision (default: the work tree).

A test function counts when its source (body, docstring and comments) refers to a source of truth that does
not come from the code under test:

- ``simulated``: the simulator's truth (``truth.json`` document or ``truth/<set>.npz`` arrays: the names
  ``truth``, ``tr[``, ``truth_document``);
- ``real files``: the real Tektronix samples' ``expected.json`` (``expected.json``, ``samples_dir``);
- ``published / by hand``: numbers cited from the notes or computed by hand (``domain.md``, ``hand``,
  ``published``, ``by hand``);
- ``reference implementation``: an independent implementation (``scipy.stats``/``stats.``, ``integrate.quad``,
  ``brute force``).

Two indirect forms count as ``published / by hand`` too: a test that uses a module-level table whose
definition (or the comment just above it) cites such a source (``TABLE_1_5``), and, in a test module whose
docstring cites ``domain.md``, a test comparing with a literal number (``approx(<number>``,
``assert_allclose(..., [<number>``).

This is a keyword classification of each ``def test_*`` (parametrised cases count once), meant to be checked by
reading: ``--list`` prints every counted test with its categories. Usage:
``python scripts/count_truth_tests.py [--rev main] [--list]``.
"""
from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = {
    "simulated": re.compile(r"\btruth\b|\btr\[|truth_document|truth\.json"),
    "real files": re.compile(r"expected\.json|samples_dir"),
    "published / by hand": re.compile(r"domain\.md|\bhand\b|published|by hand", re.IGNORECASE),
    "reference implementation": re.compile(r"\bstats\.|scipy\.stats|integrate\.quad|brute force", re.IGNORECASE),
}


def _files(rev: str | None) -> dict[str, str]:
    if rev is None:
        return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").glob("test_*.py"))}
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:tests"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    return {f"tests/{n}": subprocess.run(["git", "show", f"{rev}:tests/{n}"], cwd=ROOT, capture_output=True,
                                         text=True, check=True).stdout
            for n in sorted(names) if n.startswith("test_") and n.endswith(".py")}


LITERAL = re.compile(r"approx\(\s*-?\d|assert_allclose\([^\n]*\[\s*-?\d")


def classify(files: dict[str, str]) -> tuple[int, list[tuple[str, str, list[str]]]]:
    total, counted = 0, []
    cited = CATEGORIES["published / by hand"]
    for path, text in files.items():
        lines = text.splitlines()
        tree = ast.parse(text)
        doc_cites = bool(cited.search(ast.get_docstring(tree) or ""))
        tables = set()
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                seg = "\n".join(lines[max(node.lineno - 4, 0):node.end_lineno])
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if cited.search(seg):
                    tables |= {t.id for t in targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                total += 1
                src = "\n".join(lines[node.lineno - 1:node.end_lineno])
                cats = [c for c, rx in CATEGORIES.items() if rx.search(src)]
                used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                if "published / by hand" not in cats and ((used & tables) or (doc_cites and LITERAL.search(src))):
                    cats.append("published / by hand")
                if cats:
                    counted.append((path, node.name, cats))
    return total, counted


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default=None, help="git revision (default: the work tree)")
    ap.add_argument("--list", action="store_true", help="print every counted test")
    a = ap.parse_args(argv)
    total, counted = classify(_files(a.rev))
    if a.list:
        for path, name, cats in counted:
            print(f"{path}::{name}: {', '.join(cats)}")
    by_cat = {c: sum(c in cats for _, _, cats in counted) for c in CATEGORIES}
    print(f"{a.rev or 'work tree'}: {len(counted)} of {total} test functions compare with independent truth; "
          + "; ".join(f"{c}: {n}" for c, n in by_cat.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
