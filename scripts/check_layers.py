"""Check the import layering of DESIGN.md: protocol imports nothing of ours, storage only protocol.

Exits 1 and lists every offending import (file:line) otherwise.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = {"protocol", "storage", "kbroker", "compat"}
ALLOWED = {"protocol": {"protocol"}, "storage": {"protocol", "storage"}}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return [(line, name) for line, name in found if name in OURS]


def main() -> int:
    problems = []
    for layer, allowed in ALLOWED.items():
        for path in sorted((ROOT / layer).rglob("*.py")):
            for line, name in imported_packages(path):
                if name not in allowed:
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {layer}/ imports {name}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
