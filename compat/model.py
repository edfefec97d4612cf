"""What a run produces: one cell per (scenario, client), and the report around them."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    # The client has no way to say what the scenario needs (e.g. kcat cannot set a timestamp).
    NOT_EXPRESSIBLE = "not expressible"
    # The broker does not advertise an API the scenario needs: an unbuilt feature, reported as
    # such; neither a pass nor a client failure, and it does not fail the run.
    BROKER_LACKS = "broker lacks"
    # A failure listed, with its reason, in the target's known-failures file: reported, and not
    # counted in the exit status.
    KNOWN_FAILURE = "known failure"


@dataclass
class Cell:
    scenario: str
    client: str
    status: Status
    detail: str = ""  # the error, the reason it is not expressible, or what the broker lacks
    missing_apis: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # The broker's log lines written while this cell ran (None: no log, with the reason in
    # log_note).
    broker_log: list[str] | None = None
    log_note: str = ""
    client_stderr: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        return out


@dataclass
class ScenarioInfo:
    name: str
    title: str
    description: str


@dataclass
class Report:
    target: str  # how the broker was reached: "kbroker (ephemeral)", "librdkafka mock", ...
    bootstrap: str
    broker_apis: dict[str, tuple[int, int]]
    clients: dict[str, str]  # name -> version string
    scenarios: list[ScenarioInfo]
    cells: list[Cell]
    seconds: float = 0.0
    # Known failures that passed: the list is out of date, which fails the run.
    stale_known: list[str] = field(default_factory=list)

    def cell(self, scenario: str, client: str) -> Cell | None:
        for cell in self.cells:
            if cell.scenario == scenario and cell.client == client:
                return cell
        return None

    @property
    def failures(self) -> list[Cell]:
        return [c for c in self.cells if c.status is Status.FAIL]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures or self.stale_known else 0

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in Status}
        for cell in self.cells:
            out[str(cell.status)] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "bootstrap": self.bootstrap,
            "seconds": round(self.seconds, 1),
            "counts": self.counts(),
            "stale_known_failures": self.stale_known,
            "broker_apis": {k: list(v) for k, v in self.broker_apis.items()},
            "clients": self.clients,
            "scenarios": [asdict(s) for s in self.scenarios],
            "cells": [c.to_json() for c in self.cells],
        }
