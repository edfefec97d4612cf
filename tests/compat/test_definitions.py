"""Static checks of the matrix's definitions, which would otherwise fail quietly (a mistyped
capability reads as "not expressible", an import of kbroker would tie compat to it)."""

from __future__ import annotations

import ast
from pathlib import Path

from compat.registry import CLIENTS, Unsupported
from compat.scenarios import SCENARIOS
from protocol.api_keys import API_SPECS

COMPAT = Path(__file__).resolve().parents[2] / "compat"
API_NAMES = {spec.name for spec in API_SPECS.values()}


def test_every_capability_a_scenario_uses_is_in_every_clients_table() -> None:
    for scenario in SCENARIOS:
        for client in CLIENTS:
            unknown = set(scenario.capabilities) - set(client.capabilities)
            assert not unknown, f"{scenario.name}: {client.name} has no entry for {unknown}"


def test_every_api_named_is_a_kafka_api() -> None:
    needs = {api for s in SCENARIOS for api in s.harness_apis}
    for client in CLIENTS:
        for entry in client.capabilities.values():
            if not isinstance(entry, Unsupported):
                needs.update(entry)
    names = {need.partition(" v")[0] for need in needs}
    assert names <= API_NAMES, names - API_NAMES


def test_every_client_can_express_the_basics() -> None:
    for client in CLIENTS:
        _, reasons = client.apis(["produce", "consume", "produce.headers", "compression.none"])
        assert reasons == [], client.name


def test_compat_never_imports_kbroker() -> None:
    offenders = []
    for path in COMPAT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "kbroker"]
    assert offenders == []
