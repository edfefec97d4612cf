"""Known failures: cells expected to fail against a given broker, with the reason (a TOML file,
e.g. compat/known-failures-kbroker.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from compat.model import Report, Status

KBROKER_KNOWN_FAILURES = Path(__file__).resolve().parent / "known-failures-kbroker.toml"
KnownFailures = dict[tuple[str, str], str]


def load(path: Path | None) -> KnownFailures:
    if path is None:
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        (k["scenario"], k["client"]): " ".join(k["reason"].split()) for k in data.get("known", [])
    }


def apply(report: Report, known: KnownFailures) -> None:
    """Mark listed failures as known, and listed cells that passed as stale."""
    for cell in report.cells:
        reason = known.get((cell.scenario, cell.client))
        if reason is None:
            continue
        if cell.status is Status.FAIL:
            cell.status = Status.KNOWN_FAILURE
            cell.detail = f"known: {reason}\n{cell.detail}"
        elif cell.status is Status.PASS:
            report.stale_known.append(f"{cell.scenario} x {cell.client}")
