"""How compat reports a failure, a known failure, a stale known failure and a missing client:
real runs against kbroker, with a broker setting that makes one cell fail for a known reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kbroker.testing import Broker
from tests.compat.conftest import run_compat

pytestmark = [pytest.mark.clients, pytest.mark.timeout(300)]

# With compression.type=gzip the broker recompresses every batch, so the lz4 scenario's own
# check of the log (not the client's view) must catch it.
RECOMPRESS = ["--kbroker", "--broker-override", "compression.type=gzip"]
ONE_CELL = ["--clients", "kafka-python", "--scenarios", "compression-lz4"]


def test_a_failing_cell_fails_the_run_with_its_error_and_broker_log(tmp_path: Path) -> None:
    run = run_compat(tmp_path, *RECOMPRESS, *ONE_CELL)
    assert run.code == 1, run.stderr
    cell = run.cell("compression-lz4", "kafka-python")
    assert cell["status"] == "fail"
    assert "the log holds ['gzip'] batches, not lz4" in cell["detail"]
    assert any("created topic compat-compression-lz4" in line for line in cell["broker_log"])
    md = (tmp_path / "matrix.md").read_text()
    assert "### compression-lz4 x kafka-python" in md and "created topic" in md
    assert 'id="compression-lz4--kafka-python"' in (tmp_path / "matrix.html").read_text()


def test_a_known_failure_is_shown_but_not_counted(tmp_path: Path) -> None:
    known = tmp_path / "known.toml"
    known.write_text(
        '[[known]]\nscenario = "compression-lz4"\nclient = "kafka-python"\n'
        'reason = "the broker recompresses"\n'
    )
    run = run_compat(tmp_path / "out", *RECOMPRESS, *ONE_CELL, "--known-failures", str(known))
    assert run.code == 0, run.stderr
    cell = run.cell("compression-lz4", "kafka-python")
    assert cell["status"] == "known failure"
    assert cell["detail"].startswith("known: the broker recompresses")


def test_a_known_failure_that_passes_fails_the_run(tmp_path: Path) -> None:
    known = tmp_path / "known.toml"
    known.write_text(
        '[[known]]\nscenario = "compression-lz4"\nclient = "kafka-python"\nreason = "x"\n'
    )
    run = run_compat(tmp_path / "out", "--kbroker", *ONE_CELL, "--known-failures", str(known))
    assert run.code == 1
    assert run.report["stale_known_failures"] == ["compression-lz4 x kafka-python"]
    assert "stale known failure" in run.stderr


def test_a_missing_client_is_a_failure_that_says_what_to_run(tmp_path: Path) -> None:
    env = {**os.environ, "KBROKER_COMPAT_CACHE": str(tmp_path / "empty")}
    run = run_compat(
        tmp_path / "out", "--kbroker", "--clients", "kafkajs,sarama", "--scenarios",
        "admin-topics", env=env,
    )  # fmt: skip
    assert run.code == 1
    for client in ("kafkajs", "sarama"):
        cell = run.cell("admin-topics", client)
        assert cell["status"] == "fail"
        assert "run scripts/install-compat-clients" in cell["detail"]


def test_a_foreign_broker_has_no_log_and_says_so(tmp_path: Path) -> None:
    # an in-process kbroker stands in for a broker compat did not start
    with Broker({"compression.type": "gzip"}) as broker:
        run = run_compat(tmp_path, "--bootstrap", broker.bootstrap_servers, *ONE_CELL)
    assert run.code == 1
    cell = run.cell("compression-lz4", "kafka-python")
    assert cell["broker_log"] is None
    assert cell["log_note"] == "no broker log: compat did not start this broker"
