"""Helpers: run `python -m compat` as a user does, and read its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    out: Path

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.out / "matrix.json").read_text())
        return data

    def cell(self, scenario: str, client: str) -> dict[str, Any]:
        for cell in self.report["cells"]:
            if cell["scenario"] == scenario and cell["client"] == client:
                found: dict[str, Any] = cell
                return found
        raise AssertionError(f"no cell {scenario} x {client}")

    def statuses(self) -> dict[tuple[str, str], str]:
        return {(c["scenario"], c["client"]): c["status"] for c in self.report["cells"]}


def run_compat(out: Path, *args: str, timeout: float = 600, env: Any = None) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "compat", "--out", str(out), *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False,
    )  # fmt: skip
    return Run(done.returncode, done.stdout, done.stderr, out)
